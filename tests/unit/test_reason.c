/*
 * test_reason: the one name table of decision and refusal reasons
 * (service/domain/reason.h) against the contract: every reason the spec
 * lists (docs/openapi.yaml: Reason, ProblemReason and the filter line's
 * extra reasons) is in the table, every name in the table is in the spec,
 * the policy's verdicts keep the policy's names, and names round-trip.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/domain/reason.h"

#define MAX_NAMES 128

static char *spec;
static char *lists[16]; /* the copies enum_after's names point into */
static int n_lists;

/* The names of the first "enum: [...]" at or after the line that is exactly
 * `anchor`, into names (pointers into a copy); their count. */
static int enum_after(const char *anchor, char *names[], int cap)
{
	const char *at = strstr(spec, anchor);
	assert_non_null(at);
	const char *open = strstr(at, "enum: [");
	assert_non_null(open);
	open += strlen("enum: [");
	const char *close = strchr(open, ']');
	assert_non_null(close);
	char *list = strndup(open, (size_t)(close - open));
	assert_non_null(list);
	assert_true(n_lists < 16);
	lists[n_lists++] = list;
	int n = 0;
	for (char *save = NULL, *t = strtok_r(list, ", \n", &save); t != NULL;
	     t = strtok_r(NULL, ", \n", &save)) {
		assert_true(n < cap);
		names[n++] = t;
	}
	return n;
}

static int setup(void **state)
{
	(void)state;
	const char *dir = getenv("CONSENTD_SOURCE_DIR");
	char path[4096];
	snprintf(path, sizeof path, "%s/docs/openapi.yaml", dir ? dir : ".");
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	spec = calloc(1, (size_t)n + 1);
	assert_int_equal(fread(spec, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	for (int i = 0; i < n_lists; i++)
		free(lists[i]);
	n_lists = 0;
	free(spec);
	return 0;
}

static int spec_names(char *names[])
{
	int n = enum_after("\n    Reason:\n", names, MAX_NAMES);
	n += enum_after("\n    ProblemReason:\n", names + n, MAX_NAMES - n);
	n += enum_after("`duplicate_person` (the same person", names + n, MAX_NAMES - n);
	return n;
}

static void test_every_reason_of_the_spec_is_in_the_table(void **state)
{
	(void)state;
	char *names[MAX_NAMES];
	int n = spec_names(names);
	assert_true(n > 40);
	for (int i = 0; i < n; i++) {
		enum decision_reason r = decision_reason_from_name(names[i]);
		if (r == REASON_NONE)
			fail_msg("the spec's reason %s is not in service/domain/reason.c", names[i]);
		assert_string_equal(decision_reason_name(r), names[i]);
	}
}

static void test_every_name_in_the_table_is_in_the_spec(void **state)
{
	(void)state;
	char *names[MAX_NAMES];
	int n = spec_names(names);
	for (int r = REASON_GRANTED; r < REASON_COUNT; r++) {
		const char *name = decision_reason_name((enum decision_reason)r);
		assert_non_null(name);
		bool found = false;
		for (int i = 0; i < n && !found; i++)
			found = strcmp(names[i], name) == 0;
		if (!found)
			fail_msg("reason %s is sent but not in docs/openapi.yaml", name);
		/* One name, one reason. */
		assert_int_equal(decision_reason_from_name(name), r);
	}
	assert_null(decision_reason_name(REASON_NONE));
	assert_null(decision_reason_name(REASON_COUNT));
	assert_int_equal(decision_reason_from_name(NULL), REASON_NONE);
	assert_int_equal(decision_reason_from_name("no_such_reason"), REASON_NONE);
}

static void test_the_policy_verdicts_keep_their_names(void **state)
{
	(void)state;
	for (int p = 0; p < POLICY_REASON_COUNT; p++)
		assert_string_equal(decision_reason_name(decision_reason_of((enum policy_reason)p)),
				    policy_reason_name((enum policy_reason)p));
	assert_int_equal(decision_reason_of(POLICY_REASON_WITHDRAWN), REASON_WITHDRAWN);
	assert_int_equal(decision_reason_of(POLICY_REASON_COUNT), REASON_ERROR);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_reason_of_the_spec_is_in_the_table),
		cmocka_unit_test(test_every_name_in_the_table_is_in_the_spec),
		cmocka_unit_test(test_the_policy_verdicts_keep_their_names),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
