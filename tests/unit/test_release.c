/* test_release: the caps shared by several purposes (policy frequency_caps,
 * service/domain/release.c) on a real SQLite file, counted from the release
 * log as the single check and the writer's recount read it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"
#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/base/limits.h"
#include "service/domain/release.h"
#include "service/store/store.h"
#include "tests/unit/fixture.h"

#define DAY INT64_C(86400000000)
#define NOW (INT64_C(1767225600) * INT64_C(1000000)) /* 2026-01-01T00:00:00Z */

static struct fixture_domain fx;
static struct policy *pol; /* the example policy with one shared cap */

/* "pressure": marketing and service together, at most 2 per 7 days. */
static int setup(void **state)
{
	(void)state;
	char path[PATH_MAX];
	json_error_t jerr;
	if (fixture_domain_open(&fx) != 0)
		return -1;
	snprintf(path, sizeof path, "%s/policy/example-policy.json", getenv("CONSENTD_SOURCE_DIR"));
	json_t *doc = json_load_file(path, 0, &jerr);
	json_t *cap = json_loads("[{\"name\": \"pressure\", \"purposes\": [\"marketing\", \"service\"], "
				 "\"max\": 2, \"per_days\": 7}]",
				 0, &jerr);
	if (doc == NULL || cap == NULL || json_object_set_new(doc, "frequency_caps", cap) != 0)
		return -1;
	char *text = json_dumps(doc, 0);
	json_decref(doc);
	int rc = policy_load_buffer(&pol, text, strlen(text), "test.json", NULL);
	free(text);
	return rc == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	policy_unref(pol);
	fixture_domain_close(&fx);
	return 0;
}

static struct txn txn_on(struct store_conn *c)
{
	struct txn t = { c, fx.kr, pol, NOW };
	return t;
}

/* A contact id of 16 bytes of b, raw and in base64url. */
static void person(uint8_t b, uint8_t raw[16], char id[STORE_ID_CAP])
{
	memset(raw, b, 16);
	b64url_encode(raw, 16, id);
}

static void logged(const char *release, const char *purpose, const char *channel, int64_t at,
		   const uint8_t raw[16])
{
	assert_int_equal(store_begin(fx.s.w), 0);
	assert_int_equal(store_release_log_put(fx.s.w, release, purpose, channel, at, raw, 1), 0);
	assert_int_equal(store_commit(fx.s.w), 0);
}

static void test_a_shared_cap_counts_releases_of_every_purpose_it_lists(void **state)
{
	(void)state;
	uint8_t a[16], b[16];
	char ida[STORE_ID_CAP], idb[STORE_ID_CAP];
	person(0x41, a, ida);
	person(0x42, b, idb);
	/* a: one marketing and one service mail this week (and an old one);
	 * b: one marketing mail and one sms. */
	logged("r1", "marketing", "email", NOW - 1 * DAY, a);
	logged("r2", "service", "email", NOW - 2 * DAY, a);
	logged("r0", "service", "email", NOW - 30 * DAY, a);
	logged("r3", "marketing", "email", NOW - 1 * DAY, b);
	logged("r4", "service", "sms", NOW - 1 * DAY, b);
	struct txn t = txn_on(fx.s.r);
	bool held = false;
	int64_t at = 0;
	/* Each purpose is under its own count, together they reach the cap:
	 * reachable again when the older of the two leaves the window. */
	assert_int_equal(release_shared_held(&t, ida, "marketing", "email", &held, &at), 0);
	assert_true(held);
	assert_int_equal(at, NOW - 2 * DAY + 7 * DAY);
	/* The same cap, asked about the other purpose it lists. */
	held = false;
	assert_int_equal(release_shared_held(&t, ida, "service", "email", &held, &at), 0);
	assert_true(held);
	/* Counted per channel: a's sms is untouched. */
	held = false;
	assert_int_equal(release_shared_held(&t, ida, "marketing", "sms", &held, &at), 0);
	assert_false(held);
	/* b has one email release: under the cap. */
	assert_int_equal(release_shared_held(&t, idb, "marketing", "email", &held, &at), 0);
	assert_false(held);
	/* care is in no shared cap: nothing holds a back for it. */
	assert_int_equal(release_shared_held(&t, ida, "care", "phone", &held, &at), 0);
	assert_false(held);
	/* A person held for good by their own choice ("important": reachable
	 * 0) stays so; a person held until a time is held until the later one. */
	held = true;
	at = 0;
	assert_int_equal(release_shared_held(&t, ida, "marketing", "email", &held, &at), 0);
	assert_true(held);
	assert_int_equal(at, 0);
	held = true;
	at = NOW + DAY;
	assert_int_equal(release_shared_held(&t, ida, "marketing", "email", &held, &at), 0);
	assert_int_equal(at, NOW + 5 * DAY);
	held = true;
	at = NOW + 6 * DAY;
	assert_int_equal(release_shared_held(&t, ida, "marketing", "email", &held, &at), 0);
	assert_int_equal(at, NOW + 6 * DAY);
	/* Not a contact id: refused, never "not held". */
	assert_int_equal(release_shared_held(&t, "not-an-id", "marketing", "email", &held, &at), ERR_INVALID);
}

static void test_the_block_count_merges_purposes_newest_first(void **state)
{
	(void)state;
	uint8_t ids[2][16];
	char id0[STORE_ID_CAP], id1[STORE_ID_CAP];
	const char *const both[] = { "marketing", "service" };
	int64_t count[2] = { -1, -1 }, kth[2] = { -1, -1 };
	person(0x51, ids[0], id0);
	person(0x52, ids[1], id1);
	logged("s1", "marketing", "email", NOW - 3 * DAY, ids[0]);
	logged("s2", "service", "email", NOW - 2 * DAY, ids[0]);
	logged("s3", "marketing", "email", NOW - 1 * DAY, ids[0]);
	struct txn t = txn_on(fx.s.r);
	assert_int_equal(release_counts_many(&t, 2, (const uint8_t(*)[16])ids, both, 2, "email",
					     NOW - 7 * DAY, 2, count, kth),
			 0);
	assert_int_equal(count[0], 2);
	assert_int_equal(kth[0], NOW - 2 * DAY); /* the 2nd newest over both purposes */
	assert_int_equal(count[1], 0);
	assert_int_equal(release_counts_many(&t, 1, (const uint8_t(*)[16])ids, both, 2, "email",
					     NOW - 7 * DAY, 10, count, kth),
			 0);
	assert_int_equal(count[0], 3);
	assert_int_equal(kth[0], NOW - 3 * DAY);
	assert_int_equal(
		release_counts_many(&t, 1, (const uint8_t(*)[16])ids, both, 2, "email", 0, 0, count, kth),
		ERR_INVALID);
}

static void test_the_writer_recount_refuses_a_person_at_a_shared_cap(void **state)
{
	(void)state;
	uint8_t ids[2][16];
	char id0[STORE_ID_CAP], id1[STORE_ID_CAP];
	person(0x61, ids[0], id0);
	person(0x62, ids[1], id1);
	logged("w1", "service", "email", NOW - 1 * DAY, ids[0]);
	logged("w2", "marketing", "email", NOW - 1 * DAY, ids[0]);
	logged("w3", "service", "email", NOW - 1 * DAY, ids[1]);
	struct txn t = txn_on(fx.s.w);
	assert_int_equal(store_begin(fx.s.w), 0);
	assert_int_equal(release_shared_recheck(&t, "marketing", "email", &ids[1][0], 1), 0);
	assert_int_equal(release_shared_recheck(&t, "marketing", "email", &ids[0][0], 2), ERR_CONFLICT);
	assert_int_equal(release_shared_recheck(&t, "care", "email", &ids[0][0], 2), 0);
	store_rollback(fx.s.w);
}

/* A block larger than one store call (65,536 times / a cap of 1000 = 65
 * people a call) is counted in several calls, each person in their slot;
 * a person the caller already denied is skipped. */
static void test_a_large_block_is_counted_in_batches_and_chains(void **state)
{
	(void)state;
	enum { N = 70 };
	static uint8_t raw[N][16];
	static char ids[N][STORE_ID_CAP];
	const char *const both[] = { "marketing", "service" };
	int64_t count[N], kth[N], reach[N];
	bool held[N];
	int rc_each[N];
	for (size_t i = 0; i < N; i++) {
		memset(raw[i], 0, 16);
		raw[i][0] = 0x70;
		raw[i][1] = (uint8_t)i;
		b64url_encode(raw[i], 16, ids[i]);
	}
	/* The 66th and the 70th person (past the first call) have two releases. */
	logged("b1", "marketing", "email", NOW - DAY, raw[65]);
	logged("b2", "service", "email", NOW - 2 * DAY, raw[65]);
	logged("b3", "marketing", "email", NOW - DAY, raw[69]);
	logged("b4", "service", "email", NOW - 3 * DAY, raw[69]);
	struct txn t = txn_on(fx.s.r);
	assert_int_equal(release_counts_many(&t, N, (const uint8_t(*)[16])raw, both, 2, "email",
					     NOW - 7 * DAY, 1000, count, kth),
			 0);
	for (size_t i = 0; i < N; i++)
		assert_int_equal(count[i], i == 65 || i == 69 ? 2 : 0);
	assert_int_equal(kth[69], NOW - 3 * DAY);
	for (size_t i = 0; i < N; i++) {
		held[i] = false;
		reach[i] = 0;
		rc_each[i] = 0;
	}
	rc_each[69] = ERR_IO; /* denied already by the caller */
	assert_int_equal(release_shared_held_many(&t, N, (const char(*)[STORE_ID_CAP])ids, "marketing",
						  "email", held, reach, rc_each),
			 0);
	for (size_t i = 0; i < N; i++)
		assert_int_equal(held[i], i == 65);
	assert_int_equal(reach[65], NOW + 5 * DAY);
	assert_int_equal(rc_each[69], ERR_IO);
	assert_int_equal(rc_each[0], 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_shared_cap_counts_releases_of_every_purpose_it_lists),
		cmocka_unit_test(test_the_block_count_merges_purposes_newest_first),
		cmocka_unit_test(test_the_writer_recount_refuses_a_person_at_a_shared_cap),
		cmocka_unit_test(test_a_large_block_is_counted_in_batches_and_chains),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
