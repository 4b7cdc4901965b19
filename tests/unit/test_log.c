/* test_log: the JSON log stream (service/log.c): every line one object, the
 * request id and component read off the line, escaping, and a line longer
 * than LIMIT_LOG_LINE_BYTES continued in further objects, never cut. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "service/base/limits.h"
#include "service/log.h"

static void test_every_line_is_one_object_and_nothing_is_cut(void **state)
{
	(void)state;
	char path[] = "/tmp/test_log-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	int saved = dup(STDERR_FILENO);
	assert_true(dup2(fd, STDERR_FILENO) >= 0);
	assert_int_equal(log_setup(true), 0);
	assert_true(log_is_json());

	size_t long_n = LIMIT_LOG_LINE_BYTES * 2 + 123;
	char *longmsg = malloc(long_n + 1);
	assert_non_null(longmsg);
	for (size_t i = 0; i < long_n; i++)
		longmsg[i] = (char)('a' + i % 26);
	longmsg[long_n] = '\0';
	fprintf(stderr, "consentd: request r-17: a \"quoted\" \\ tab\there\n");
	fprintf(stderr, "consentd: audit: ALARM (anchor): something\n");
	fprintf(stderr, "consentd: part one, ");
	fprintf(stderr, "part two\n");
	fprintf(stderr, "%s\n", longmsg);
	log_request("r-17", "POST", 201, 1500);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);

	FILE *f = fopen(path, "r");
	assert_non_null(f);
	char *line = NULL;
	size_t cap = 0;
	json_t *o[16];
	int n = 0;
	while (getline(&line, &cap, f) > 0 && n < 16) {
		json_error_t e;
		o[n] = json_loads(line, 0, &e);
		assert_non_null(o[n]); /* every line parses on its own */
		assert_true(json_is_object(o[n]));
		assert_non_null(json_string_value(json_object_get(o[n], "time")));
		n++;
	}
	fclose(f);
	free(line);
	unlink(path);
	/* 1 + 1 + 1 + the long line in 3 parts + the request line */
	assert_int_equal(n, 7);
	assert_string_equal(json_string_value(json_object_get(o[0], "request_id")), "r-17");
	assert_string_equal(json_string_value(json_object_get(o[0], "message")), "a \"quoted\" \\ tab\there");
	assert_string_equal(json_string_value(json_object_get(o[1], "component")), "audit");
	assert_string_equal(json_string_value(json_object_get(o[1], "level")), "critical");
	assert_string_equal(json_string_value(json_object_get(o[2], "message")), "part one, part two");
	assert_string_equal(json_string_value(json_object_get(o[2], "level")), "info");
	/* The long line: its parts, in order, are the whole message. */
	char *joined = calloc(1, long_n + 1);
	assert_non_null(joined);
	for (int i = 3; i < 6; i++) {
		strcat(joined, json_string_value(json_object_get(o[i], "message")));
		assert_true(json_is_true(json_object_get(o[i], "continued")) == (i > 3));
	}
	assert_string_equal(joined, longmsg);
	assert_string_equal(json_string_value(json_object_get(o[6], "message")), "request done");
	assert_int_equal(json_integer_value(json_object_get(o[6], "status")), 201);
	assert_string_equal(json_string_value(json_object_get(o[6], "method")), "POST");
	for (int i = 0; i < n; i++)
		json_decref(o[i]);
	free(joined);
	free(longmsg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_line_is_one_object_and_nothing_is_cut),
	};
	return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
