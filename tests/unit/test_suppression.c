/* test_suppression: the suppression domain (service/domain/suppression.c): its rules, and the
 * same rules applied through the store on a real SQLite file in /tmp. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/base/error.h"
#include "service/domain/suppression.h"
#include "service/store/store.h"
#include "tests/unit/fixture.h"

static struct store *st;
static struct store_conn *w, *r;
static struct fixture_store fx;

static int setup(void **state)
{
	(void)state;
	if (fixture_store_open(&fx) != 0)
		return -1;
	st = fx.st;
	w = fx.w;
	r = fx.r;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fixture_store_close(&fx);
	return 0;
}

static void test_a_suppression_covers_its_scope_only(void **state)
{
	(void)state;
	struct txn t = { r, NULL, NULL, 1 };
	uint8_t h[32];
	char reason[STORE_NAME_CAP];
	memset(h, 5, 32);
	struct store_suppression sp = { .kind = "email",
					.scope = "purpose",
					.scope_value = "marketing",
					.reason = "unsubscribe",
					.source = "t",
					.created_us = 1,
					.recorded_us = 1 };
	memcpy(sp.hash, h, 32);
	assert_int_equal(store_suppression_add(w, &sp), 1);
	assert_int_equal(store_suppression_add(w, &sp), 0); /* already there: not stacked */
	assert_int_equal(suppression_match(&t, h, NULL, "marketing", "sms", reason), 0);
	assert_string_equal(reason, "unsubscribe");
	assert_int_equal(suppression_match(&t, h, NULL, "service", "email", reason), ERR_NOTFOUND);
	sp.scope = "channel";
	sp.scope_value = "sms";
	sp.reason = "complaint";
	assert_int_equal(store_suppression_add(w, &sp), 1);
	assert_int_equal(suppression_match(&t, NULL, h, "service", "sms", reason), 0);
	assert_int_equal(suppression_match(&t, NULL, h, "service", "post", reason), ERR_NOTFOUND);
	sp.reason = "whim";
	assert_true(store_suppression_add(w, &sp) < 0);
}

static void test_who_may_lift_what(void **state)
{
	(void)state;
	for (int r2 = 0; r2 < SUPPRESSION_REASON_COUNT; r2++) {
		enum suppression_reason reason = (enum suppression_reason)r2;
		bool own = reason == SUPPRESSION_REASON_UNSUBSCRIBE ||
			   reason == SUPPRESSION_REASON_WITHDRAWAL || reason == SUPPRESSION_REASON_GPC;
		assert_int_equal(suppression_may_lift(SUPPRESSION_BY_OPERATOR, reason),
				 reason != SUPPRESSION_REASON_ERASURE);
		assert_int_equal(suppression_may_lift(SUPPRESSION_BY_SUBJECT, reason), own);
	}
}

static void test_names_round_trip_through_their_one_table(void **state)
{
	(void)state;
	for (int i = 0; i < SUPPRESSION_REASON_COUNT; i++) {
		enum suppression_reason back;
		assert_int_equal(suppression_reason_from_name(
					 suppression_reason_name((enum suppression_reason)i), &back),
				 0);
		assert_int_equal(back, i);
	}
	for (int i = 0; i < SUPPRESSION_SCOPE_COUNT; i++) {
		enum suppression_scope back;
		assert_int_equal(
			suppression_scope_from_name(suppression_scope_name((enum suppression_scope)i), &back),
			0);
		assert_int_equal(back, i);
	}
	enum suppression_reason rr;
	assert_int_equal(suppression_reason_from_name("whim", &rr), ERR_INVALID);
}

static int add(const uint8_t h[32], const char *scope, const char *value, const char *reason)
{
	struct store_suppression sp = { .kind = "email",
					.scope = scope,
					.scope_value = value,
					.reason = reason,
					.source = "t",
					.created_us = 1,
					.recorded_us = 1 };
	memcpy(sp.hash, h, 32);
	return store_suppression_add(w, &sp);
}

static void test_an_operator_lifts_everything_but_an_erasure(void **state)
{
	(void)state;
	uint8_t h[32];
	int64_t lifted = -1;
	struct txn t = { w, NULL, NULL, 50 };
	memset(h, 6, 32);
	assert_int_equal(add(h, "all", "", "erasure"), 1);
	assert_int_equal(add(h, "all", "", "bounce"), 1);
	assert_int_equal(add(h, "purpose", "marketing", "manual"), 1);
	assert_int_equal(suppression_lift(&t, h, NULL, NULL, "op", &lifted), 0);
	assert_int_equal(lifted, 2);
	t.c = r;
	char reason[STORE_NAME_CAP];
	assert_int_equal(suppression_match(&t, h, NULL, "marketing", "email", reason), 0);
	assert_string_equal(reason, "erasure");
}

static void test_a_persons_new_consent_lifts_only_their_own_opt_outs_of_that_purpose(void **state)
{
	(void)state;
	uint8_t h[32];
	char reason[STORE_NAME_CAP];
	struct txn t = { w, NULL, NULL, 60 };
	memset(h, 7, 32);
	assert_int_equal(add(h, "purpose", "marketing", "unsubscribe"), 1);
	assert_int_equal(add(h, "purpose", "marketing", "gpc"), 1);
	assert_int_equal(add(h, "purpose", "newsletter", "withdrawal"), 1);
	assert_int_equal(add(h, "purpose", "marketing", "complaint"), 1);
	assert_int_equal(suppression_lift_by_subject(&t, h, "marketing", "customer"), 0);
	t.c = r;
	assert_int_equal(suppression_match(&t, h, NULL, "marketing", "email", reason), 0);
	assert_string_equal(reason, "complaint"); /* the complaint stays */
	assert_int_equal(suppression_match(&t, h, NULL, "newsletter", "email", reason), 0);
	assert_string_equal(reason, "withdrawal"); /* another purpose stays */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_suppression_covers_its_scope_only),
		cmocka_unit_test(test_who_may_lift_what),
		cmocka_unit_test(test_names_round_trip_through_their_one_table),
		cmocka_unit_test(test_an_operator_lifts_everything_but_an_erasure),
		cmocka_unit_test(test_a_persons_new_consent_lifts_only_their_own_opt_outs_of_that_purpose),
	};
	return cmocka_run_group_tests_name("suppression", tests, setup, teardown);
}
