/* test_request: data-subject request deadlines (service/domain/request.c),
 * as tables: month ends (31 January), leap years, weekends, year ends. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "service/base/error.h"
#include "service/domain/request.h"

#define D(y, m, d) ((struct request_date){ y, m, d })

static void assert_date(struct request_date got, struct request_date want, const char *what)
{
	if (got.y != want.y || got.m != want.m || got.d != want.d) {
		print_error("%s: got %04d-%02d-%02d, want %04d-%02d-%02d\n", what, got.y, got.m, got.d,
			    want.y, want.m, want.d);
		fail();
	}
}

/* One row of a due-date table: when the request came, whether it was
 * extended, the day it is due, and why that day. */
struct due_case {
	struct request_date received;
	bool extended;
	struct request_date due;
	const char *why;
};

static void check_due(enum request_jurisdiction kind, const struct due_case *cases, size_t n,
		      bool weekdays_only)
{
	for (size_t i = 0; i < n; i++) {
		struct request_date due;
		assert_int_equal(request_due(kind, cases[i].received, cases[i].extended, &due), 0);
		assert_date(due, cases[i].due, cases[i].why);
		if (weekdays_only)
			assert_true(request_weekday(due) < 5);
	}
}

static void test_gdpr_one_month_clamped_to_the_month_end_and_moved_off_weekends(void **state)
{
	(void)state;
	static const struct due_case cases[] = {
		{ D(2026, 1, 31), false, D(2026, 3, 2), "31 Jan -> 28 Feb 2026, a Saturday -> Monday 2 Mar" },
		{ D(2024, 1, 31), false, D(2024, 2, 29), "31 Jan of a leap year -> 29 Feb (a Thursday)" },
		{ D(2023, 1, 31), false, D(2023, 2, 28), "31 Jan 2023 -> 28 Feb (a Tuesday)" },
		{ D(2024, 2, 29), false, D(2024, 3, 29), "29 Feb -> 29 Mar (a Friday)" },
		{ D(2025, 2, 28), false, D(2025, 3, 28), "28 Feb -> 28 Mar, not the month's end" },
		{ D(2026, 3, 15), false, D(2026, 4, 15), "an ordinary Wednesday" },
		{ D(2026, 10, 31), false, D(2026, 11, 30), "31 Oct -> 30 Nov (a Monday)" },
		{ D(2026, 12, 31), false, D(2027, 2, 1), "across the year: 31 Jan 2027 is a Sunday" },
		{ D(2026, 1, 31), true, D(2026, 4, 30), "extended: three months, clamped to 30 Apr" },
		{ D(2023, 11, 30), true, D(2024, 2, 29), "extended into a leap February" },
		{ D(2026, 2, 28), true, D(2026, 5, 28), "extended, a Thursday" },
	};
	check_due(REQUEST_GDPR, cases, sizeof cases / sizeof cases[0], true);
}

static void test_ccpa_45_and_90_calendar_days(void **state)
{
	(void)state;
	static const struct due_case cases[] = {
		{ D(2026, 1, 31), false, D(2026, 3, 17), "45 days over a 28-day February" },
		{ D(2024, 2, 1), false, D(2024, 3, 17), "45 days over a leap February" },
		{ D(2023, 2, 1), false, D(2023, 3, 18), "45 days over a common February" },
		{ D(2026, 1, 31), true, D(2026, 5, 1), "extended once: 90 days" },
		{ D(2026, 12, 1), false, D(2027, 1, 15), "across the year" },
		{ D(2026, 3, 1), false, D(2026, 4, 15), "calendar days: a Wednesday" },
	};
	check_due(REQUEST_CCPA, cases, sizeof cases / sizeof cases[0], false);
}

static void test_ccpa_acknowledgement_in_10_business_days_and_none_for_gdpr(void **state)
{
	(void)state;
	static const struct {
		struct request_date received, ack;
		const char *why;
	} cases[] = {
		{ D(2026, 1, 2), D(2026, 1, 16), "a Friday: two full weeks" },
		{ D(2026, 1, 3), D(2026, 1, 16), "a Saturday counts from Monday" },
		{ D(2026, 1, 4), D(2026, 1, 16), "a Sunday counts from Monday" },
		{ D(2026, 1, 7), D(2026, 1, 21), "a Wednesday" },
		{ D(2026, 12, 24), D(2027, 1, 7), "across the year (holidays are not modelled)" },
		{ D(2024, 2, 22), D(2024, 3, 7), "over a leap day" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct request_date ack;
		assert_int_equal(request_ack_due(REQUEST_CCPA, cases[i].received, &ack), 0);
		assert_date(ack, cases[i].ack, cases[i].why);
	}
	struct request_date ack;
	assert_int_equal(request_ack_due(REQUEST_GDPR, D(2026, 1, 7), &ack), ERR_NOTFOUND);
}

static void test_an_extension_only_once_and_only_before_the_first_deadline(void **state)
{
	(void)state;
	/* GDPR 31 Jan 2026: first deadline Monday 2 March. */
	assert_true(request_may_extend(REQUEST_GDPR, D(2026, 1, 31), false, D(2026, 2, 10)));
	assert_true(request_may_extend(REQUEST_GDPR, D(2026, 1, 31), false, D(2026, 3, 2)));
	assert_false(request_may_extend(REQUEST_GDPR, D(2026, 1, 31), false, D(2026, 3, 3)));
	assert_false(request_may_extend(REQUEST_GDPR, D(2026, 1, 31), true, D(2026, 2, 10)));
	/* CCPA 31 Jan 2026: first deadline 17 March. */
	assert_true(request_may_extend(REQUEST_CCPA, D(2026, 1, 31), false, D(2026, 3, 17)));
	assert_false(request_may_extend(REQUEST_CCPA, D(2026, 1, 31), false, D(2026, 3, 18)));
	assert_false(request_may_extend(REQUEST_CCPA, D(2026, 1, 31), true, D(2026, 2, 1)));
}

static void test_dates_weekdays_and_invalid_days(void **state)
{
	(void)state;
	assert_int_equal(request_days(D(1970, 1, 1)), 0);
	assert_int_equal(request_weekday(D(1970, 1, 1)), 3);   /* Thursday */
	assert_int_equal(request_weekday(D(2000, 2, 29)), 1);  /* Tuesday */
	assert_int_equal(request_weekday(D(2026, 12, 1)), 1);  /* Tuesday */
	assert_int_equal(request_weekday(D(1969, 12, 28)), 6); /* Sunday, before the epoch */
	for (int64_t z = -719162; z <= 2900000; z += 997) {    /* 0001-01-01 to 9909 */
		struct request_date d = request_from_days(z);
		assert_true(request_date_valid(d));
		assert_int_equal(request_days(d), z);
	}
	struct request_date due;
	assert_false(request_date_valid(D(2026, 2, 29)));
	assert_true(request_date_valid(D(2000, 2, 29)));
	assert_false(request_date_valid(D(1900, 2, 29)));
	assert_int_equal(request_due(REQUEST_GDPR, D(2026, 2, 29), false, &due), ERR_INVALID);
	assert_int_equal(request_due(REQUEST_CCPA, D(2026, 13, 1), false, &due), ERR_INVALID);
	assert_int_equal(request_due(REQUEST_CCPA, D(2026, 4, 31), false, &due), ERR_INVALID);
	assert_false(request_may_extend(REQUEST_GDPR, D(2026, 1, 31), false, D(2026, 2, 30)));
}

/* The whole state table, edge by edge: every pair (from, to) the drawing
 * in request.h allows, and no other. */
static void test_the_transition_table_is_the_drawing(void **state)
{
	(void)state;
	static const char *const allowed[] = {
		"received>verified",	"received>denied",    "received>extended",     "verified>in_progress",
		"verified>denied",	"verified>extended",  "in_progress>completed", "in_progress>denied",
		"in_progress>extended", "extended>completed", "extended>denied",
	};
	int edges = 0;
	for (int f = 0; f < REQUEST_STATE_COUNT; f++) {
		for (int t = 0; t < REQUEST_STATE_COUNT; t++) {
			char pair[48];
			bool want = false;
			snprintf(pair, sizeof pair, "%s>%s", request_state_name((enum request_state)f),
				 request_state_name((enum request_state)t));
			for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
				want = want || strcmp(allowed[i], pair) == 0;
			if (request_may_move((enum request_state)f, (enum request_state)t) != want) {
				print_error("%s: got %d, want %d\n", pair, !want, want);
				fail();
			}
			edges += want;
		}
	}
	assert_int_equal(edges, (int)(sizeof allowed / sizeof allowed[0]));
	assert_false(request_may_move(REQUEST_STATE_COUNT, REQUEST_RECEIVED));
}

/* request_refusal: the edge first, then the extension window. */
static void test_refusals_name_the_rule_that_was_broken(void **state)
{
	(void)state;
	struct store_request r;
	memset(&r, 0, sizeof r);
	snprintf(r.state, sizeof r.state, "in_progress");
	snprintf(r.jurisdiction, sizeof r.jurisdiction, "gdpr");
	r.received_day = request_days(D(2026, 1, 31)); /* first deadline Monday 2 March */
	assert_null(request_refusal(&r, REQUEST_EXTENDED, D(2026, 3, 2)));
	assert_string_equal(request_refusal(&r, REQUEST_EXTENDED, D(2026, 3, 3)), "extension_too_late");
	assert_null(request_refusal(&r, REQUEST_COMPLETED, D(2030, 1, 1)));
	assert_string_equal(request_refusal(&r, REQUEST_VERIFIED, D(2026, 2, 1)), "invalid_transition");
	snprintf(r.jurisdiction, sizeof r.jurisdiction, "ccpa"); /* 45 days: 17 March */
	assert_null(request_refusal(&r, REQUEST_EXTENDED, D(2026, 3, 17)));
	assert_string_equal(request_refusal(&r, REQUEST_EXTENDED, D(2026, 3, 18)), "extension_too_late");
	r.extended = true;
	assert_string_equal(request_refusal(&r, REQUEST_EXTENDED, D(2026, 2, 1)), "extension_too_late");
	snprintf(r.state, sizeof r.state, "completed");
	assert_string_equal(request_refusal(&r, REQUEST_DENIED, D(2026, 2, 1)), "invalid_transition");
	snprintf(r.state, sizeof r.state, "bogus");
	assert_string_equal(request_refusal(&r, REQUEST_VERIFIED, D(2026, 2, 1)), "invalid_transition");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gdpr_one_month_clamped_to_the_month_end_and_moved_off_weekends),
		cmocka_unit_test(test_ccpa_45_and_90_calendar_days),
		cmocka_unit_test(test_ccpa_acknowledgement_in_10_business_days_and_none_for_gdpr),
		cmocka_unit_test(test_an_extension_only_once_and_only_before_the_first_deadline),
		cmocka_unit_test(test_dates_weekdays_and_invalid_days),
		cmocka_unit_test(test_the_transition_table_is_the_drawing),
		cmocka_unit_test(test_refusals_name_the_rule_that_was_broken),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
