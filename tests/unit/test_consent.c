/* test_consent: the consent domain (service/domain/consent.c): its rules, and the
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
#include "service/domain/consent.h"
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

static struct store_consent event(const char *status, int64_t at_us, int64_t recorded_us, int64_t expires_us)
{
	struct store_consent cs;
	memset(&cs, 0, sizeof cs);
	snprintf(cs.contact_id, sizeof cs.contact_id, "DDDDDDDDDDDDDDDDDDDDDD");
	snprintf(cs.purpose, sizeof cs.purpose, "marketing");
	snprintf(cs.channel, sizeof cs.channel, "email");
	snprintf(cs.status, sizeof cs.status, "%s", status);
	snprintf(cs.receipt_id, sizeof cs.receipt_id, "%s-%lld", status, (long long)recorded_us);
	cs.at_us = at_us;
	cs.recorded_us = recorded_us;
	cs.expires_us = expires_us;
	return cs;
}

#define S INT64_C(1000000)
#define T (INT64_C(1767225600) * S) /* 2026-01-01T00:00:00Z */

/* The one ordering rule, case by case (service/domain/consent.c). */
static void test_consent_order_rule(void **state)
{
	(void)state;
	struct store_consent g = event("granted", T + 200 * S, T, 0);
	assert_true(consent_effective_us(&g) == T); /* never past when it was recorded */

	/* A grant claimed 200 s ahead, then a withdrawal a second later: the
	 * withdrawal wins (it lost on `at` alone). */
	struct store_consent w1 = event("withdrawn", T + S, T + S, 0);
	assert_true(consent_supersedes(&w1, &g));
	/* The same with a refusal, and with a withdrawal whose sender's clock
	 * is behind ours: a "no" recorded after a "yes" always wins. */
	struct store_consent r1 = event("refused", T - 3600 * S, T + S, 0);
	assert_true(consent_supersedes(&r1, &g));
	/* An old grant imported after a withdrawal is history only, and so
	 * is a grant claimed ahead of its recording when the times tie. */
	struct store_consent wd = event("withdrawn", T, T, 0);
	struct store_consent old = event("granted", T - 86400 * S, T + 5 * S, 0);
	assert_false(consent_supersedes(&old, &wd));
	struct store_consent ahead = event("granted", T + 250 * S, T, 0);
	assert_false(consent_supersedes(&ahead, &wd));
	/* A grant the person gives after withdrawing is current again. */
	struct store_consent again = event("granted", T + 250 * S, T + S, 0);
	assert_true(consent_supersedes(&again, &wd));

	/* Equal effective times: the most restrictive state. */
	struct store_consent ge = event("granted", T, T, 0), we = event("withdrawn", T, T, 0);
	assert_false(consent_supersedes(&ge, &we));
	assert_true(consent_supersedes(&we, &ge));
	struct store_consent soon = event("granted", T, T, T + 86400 * S),
			     late = event("granted", T, T, T + 864000 * S);
	assert_true(consent_supersedes(&soon, &late));
	assert_false(consent_supersedes(&late, &soon));
	assert_false(consent_supersedes(&ge, &soon)); /* never expiring is the least restrictive */
	/* Equal in every way: the one recorded later. */
	struct store_consent re = event("refused", T, T, 0);
	assert_true(consent_supersedes(&re, &we));
	assert_true(consent_supersedes(&we, &re));
	assert_true(consent_supersedes(&ge, &ge));
	/* Between restrictive states, and between grants, time decides. */
	struct store_consent w_before = event("withdrawn", T - S, T + S, 0);
	struct store_consent g_after = event("granted", T + 2 * S, T + 2 * S, 0);
	assert_false(consent_supersedes(&w_before, &re));
	assert_true(consent_supersedes(&g_after, &soon));
}

struct hist {
	char status[8][16];
	int64_t at[8];
	int n;
};

static int hist_cb(void *ctx, const struct store_consent *cs)
{
	struct hist *h = ctx;
	if (h->n < 8) {
		snprintf(h->status[h->n], sizeof h->status[0], "%s", cs->status);
		h->at[h->n] = cs->at_us;
		h->n++;
	}
	return 0;
}

static void test_a_replayed_old_grant_joins_the_history_but_not_the_current_state(void **state)
{
	(void)state;
	struct store_contact ct = fixture_contact("DDDDDDDDDDDDDDDDDDDDDD");
	uint8_t bidx[32];
	memset(bidx, 0x44, 32);
	assert_int_equal(store_contact_insert(w, &ct, bidx, NULL), 0);
	struct txn t = { w, NULL, NULL, T };
	bool current = false;
	struct store_consent got, cs = event("granted", T + 200 * S, T, 0);
	assert_int_equal(consent_apply(&t, &cs, &current), 0);
	assert_true(current);
	cs = event("withdrawn", T + S, T + S, 0);
	assert_int_equal(consent_apply(&t, &cs, &current), 0);
	assert_true(current);
	assert_int_equal(store_consent_get(r, ct.id, "marketing", "email", &got), 0);
	assert_string_equal(got.status, "withdrawn");
	cs = event("granted", T - 86400 * S, T + 2 * S, 0); /* an old receipt replayed */
	assert_int_equal(consent_apply(&t, &cs, &current), 0);
	assert_false(current); /* history only */
	assert_int_equal(store_consent_get(r, ct.id, "marketing", "email", &got), 0);
	assert_string_equal(got.status, "withdrawn");
	/* History keeps every event, in effective-time order. */
	struct hist h = { 0 };
	assert_int_equal(store_consent_history_each(r, ct.id, hist_cb, &h), 0);
	assert_int_equal(h.n, 3);
	assert_string_equal(h.status[0], "granted");
	assert_true(h.at[0] == T - 86400 * S);
	assert_string_equal(h.status[1], "granted");
	assert_true(h.at[1] == T + 200 * S);
	assert_string_equal(h.status[2], "withdrawn");
}

/* A status name outside the table is no status: never a grant. */
static void test_an_unknown_status_name_is_never_a_grant(void **state)
{
	(void)state;
	struct store_consent cs = event("granted", T, T, 0);
	assert_int_equal(consent_status(&cs), POLICY_CONSENT_GRANTED);
	snprintf(cs.status, sizeof cs.status, "Granted");
	assert_int_equal(consent_status(&cs), POLICY_CONSENT_NONE);
	/* ... and so it counts as restrictive against a grant. */
	struct store_consent g = event("granted", T, T, 0);
	assert_true(consent_supersedes(&cs, &g));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_consent_order_rule),
		cmocka_unit_test(test_an_unknown_status_name_is_never_a_grant),
		cmocka_unit_test(test_a_replayed_old_grant_joins_the_history_but_not_the_current_state),
	};
	return cmocka_run_group_tests_name("consent", tests, setup, teardown);
}
