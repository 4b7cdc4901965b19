/*
 * test_bulk: the streaming bulk reader (service/bulk.c): every format, every
 * chunking of the same body gives the same items, bounds are enforced and a
 * bad line never stops the rest.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "service/base/error.h"
#include "service/base/limits.h"
#include "service/bulk.h"

struct seen {
	char out[8192];
	size_t len;
	int n, invalid;
};

static int collect(void *ctx, const struct bulk_item *it)
{
	struct seen *s = ctx;
	char *v = it->value ? json_dumps(it->value, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS) : NULL;
	s->len += (size_t)snprintf(s->out + s->len, sizeof s->out - s->len, "%llu:%s;",
				   (unsigned long long)it->line, v ? v : "!");
	free(v);
	s->n++;
	if (it->error)
		s->invalid++;
	return 0;
}

/* Reads body in chunks of `step` bytes (0: all at once); returns finish's rc. */
static int read_all(enum bulk_format fmt, enum bulk_csv_header hdr, const char *body, size_t step,
		    struct seen *s)
{
	struct bulk_reader *r = NULL;
	memset(s, 0, sizeof *s);
	assert_int_equal(bulk_reader_new(&r, fmt, hdr, collect, s), 0);
	size_t len = strlen(body), pos = 0;
	int rc = 0;
	while (rc == 0 && pos < len) {
		size_t n = step == 0 || step > len - pos ? len - pos : step;
		rc = bulk_feed(r, body + pos, n);
		pos += n;
	}
	if (rc == 0)
		rc = bulk_finish(r);
	bulk_reader_free(r);
	return rc;
}

static void same_in_every_chunking(enum bulk_format fmt, const char *body, const char *want, int want_rc)
{
	struct seen s;
	for (size_t step = 0; step < 9; step++) {
		int rc = read_all(fmt, BULK_CSV_AUTO, body, step, &s);
		assert_int_equal(rc, want_rc);
		assert_string_equal(s.out, want);
	}
}

static void test_content_types(void **state)
{
	(void)state;
	enum bulk_format f;
	enum bulk_csv_header h;
	assert_int_equal(bulk_format_from_type("application/json; charset=utf-8", &f, &h), 0);
	assert_int_equal(f, BULK_JSON_ARRAY);
	assert_int_equal(bulk_format_from_type("application/x-ndjson", &f, &h), 0);
	assert_int_equal(f, BULK_NDJSON);
	assert_int_equal(bulk_format_from_type("text/csv;header=absent", &f, &h), 0);
	assert_int_equal(f, BULK_CSV);
	assert_int_equal(h, BULK_CSV_ABSENT);
	assert_int_equal(bulk_format_from_type("text/plain", &f, &h), ERR_UNSUPPORTED);
	assert_int_equal(bulk_format_from_type("application/jsonx", &f, &h), ERR_UNSUPPORTED);
	assert_int_equal(bulk_format_from_type(NULL, &f, &h), ERR_UNSUPPORTED);
}

static void test_json_array(void **state)
{
	(void)state;
	same_in_every_chunking(BULK_JSON_ARRAY,
			       " [\"a@b.org\", {\"email\":\"c,]d@e.org\"} ,\n 7, [1,2], nope ]\n",
			       "1:\"a@b.org\";2:{\"email\":\"c,]d@e.org\"};3:7;4:[1,2];5:!;", 0);
	same_in_every_chunking(BULK_JSON_ARRAY, "[]", "", 0);
	same_in_every_chunking(BULK_JSON_ARRAY, "[\"a\\\"b\"]", "1:\"a\\\"b\";", 0);
}

static void test_json_array_framing_errors_are_fatal(void **state)
{
	(void)state;
	struct seen s;
	assert_int_equal(read_all(BULK_JSON_ARRAY, 0, "{\"a\":1}", 0, &s), ERR_INVALID);
	assert_int_equal(read_all(BULK_JSON_ARRAY, 0, "[\"a\",,\"b\"]", 0, &s), ERR_INVALID);
	assert_int_equal(read_all(BULK_JSON_ARRAY, 0, "[\"a\",]", 0, &s), ERR_INVALID);
	assert_int_equal(read_all(BULK_JSON_ARRAY, 0, "[\"a\"", 0, &s), ERR_INVALID);
	assert_int_equal(read_all(BULK_JSON_ARRAY, 0, "[\"a\"] x", 0, &s), ERR_INVALID);
	assert_int_equal(read_all(BULK_JSON_ARRAY, 0, "", 0, &s), ERR_INVALID);
}

static void test_ndjson(void **state)
{
	(void)state;
	same_in_every_chunking(BULK_NDJSON,
			       "\"a@b.org\"\r\n\n  {\"id\":\"x\"}\n{bad\n[[[[[[[[[[1]]]]]]]]]]\n\"last\"",
			       "1:\"a@b.org\";3:{\"id\":\"x\"};4:!;5:!;6:\"last\";", 0);
}

static void test_csv_with_and_without_header(void **state)
{
	(void)state;
	same_in_every_chunking(
		BULK_CSV,
		"\xEF\xBB\xBF"
		"email,name\r\na@b.org,\"Smith, J\"\r\n\"x\"\"y@z.org\",\n\"open\n",
		"2:{\"email\":\"a@b.org\",\"name\":\"Smith, J\"};3:{\"email\":\"x\\\"y@z.org\"};4:!;", 0);
	same_in_every_chunking(BULK_CSV, "a@b.org\nc@d.org,extra\n\n", "1:\"a@b.org\";2:\"c@d.org\";", 0);
	/* A first line that is data, not names, is not a header. */
	same_in_every_chunking(BULK_CSV, "abcdefghijklmnopqrstuv\n", "1:\"abcdefghijklmnopqrstuv\";", 0);
	struct seen s;
	assert_int_equal(read_all(BULK_CSV, BULK_CSV_ABSENT, "email\nx@y.org\n", 0, &s), 0);
	assert_string_equal(s.out, "1:\"email\";2:\"x@y.org\";");
}

static void test_long_lines_are_invalid_and_reading_goes_on(void **state)
{
	(void)state;
	size_t big = LIMIT_LINE_BYTES + 10;
	char *body = malloc(big + 64);
	memset(body, 'a', big);
	strcpy(body + big, "\nok@b.org\n");
	struct seen s;
	assert_int_equal(read_all(BULK_CSV, 0, body, 4096, &s), 0);
	assert_string_equal(s.out, "1:!;2:\"ok@b.org\";");
	body[0] = '[';
	body[1] = '"';
	strcpy(body + big, "\",\"ok@b.org\"]");
	assert_int_equal(read_all(BULK_JSON_ARRAY, 0, body, 4096, &s), 0);
	assert_string_equal(s.out, "1:!;2:\"ok@b.org\";");
	free(body);
}

static int stop_at_two(void *ctx, const struct bulk_item *it)
{
	(void)it;
	return ++*(int *)ctx == 2 ? ERR_UNAVAILABLE : 0;
}

static void test_callback_error_stops_and_sticks(void **state)
{
	(void)state;
	int n = 0;
	struct bulk_reader *r = NULL;
	assert_int_equal(bulk_reader_new(&r, BULK_NDJSON, 0, stop_at_two, &n), 0);
	assert_int_equal(bulk_feed(r, "1\n2\n3\n", 6), ERR_UNAVAILABLE);
	assert_int_equal(bulk_feed(r, "4\n", 2), ERR_UNAVAILABLE);
	assert_int_equal(bulk_finish(r), ERR_UNAVAILABLE);
	assert_int_equal(n, 2);
	assert_int_equal((int)bulk_count(r), 2);
	bulk_reader_free(r);
}

static void test_json_quote(void **state)
{
	(void)state;
	char out[64];
	size_t n = bulk_json_quote("a\"b\\c\n", 6, out, sizeof out);
	assert_int_equal(n, strlen("\"a\\\"b\\\\c\\u000a\""));
	out[n] = '\0';
	assert_string_equal(out, "\"a\\\"b\\\\c\\u000a\"");
	assert_int_equal(bulk_json_quote("abcdef", 6, out, 5), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_content_types),
		cmocka_unit_test(test_json_array),
		cmocka_unit_test(test_json_array_framing_errors_are_fatal),
		cmocka_unit_test(test_ndjson),
		cmocka_unit_test(test_csv_with_and_without_header),
		cmocka_unit_test(test_long_lines_are_invalid_and_reading_goes_on),
		cmocka_unit_test(test_callback_error_stops_and_sticks),
		cmocka_unit_test(test_json_quote),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
