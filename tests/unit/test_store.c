/* test_store: migrations, contacts, consents, principals and the
 * append-only audit table, on a real SQLite file in /tmp. The rules that
 * run on the store (which consent is current, which suppression covers a
 * use) are tested with their domain modules: test_consent.c and
 * test_suppression.c; what every backend must do, in tests/store/. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "audit/audit.h"
#include "service/base/error.h"
#include "service/store/store.h"
#include "tests/unit/fixture.h"

static struct store *st;
static struct store_conn *w, *r;
static struct fixture_store fx;
static char db_path[PATH_MAX + 8];

static int setup(void **state)
{
	(void)state;
	if (fixture_store_open(&fx) != 0)
		return -1;
	st = fx.st;
	w = fx.w;
	r = fx.r;
	snprintf(db_path, sizeof db_path, "%s/t.db", fx.dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fixture_store_close(&fx);
	return 0;
}

static void test_schema_is_migrated(void **state)
{
	(void)state;
	assert_true(store_schema_version(st) >= 1);
}

static void test_contact_insert_get_duplicate_and_erase(void **state)
{
	(void)state;
	uint8_t bidx[32], other[32];
	memset(bidx, 1, 32);
	memset(other, 2, 32);
	struct store_contact a = fixture_contact("AAAAAAAAAAAAAAAAAAAAAA"),
			     b = fixture_contact("BBBBBBBBBBBBBBBBBBBBBB"), got;
	a.has_email_shash = true;
	memset(a.email_shash, 9, 32);
	assert_int_equal(store_contact_insert(w, &a, bidx, NULL), 0);
	assert_int_equal(store_contact_insert(w, &b, bidx, NULL), ERR_CONFLICT);
	assert_int_equal(store_contact_insert(w, &b, other, NULL), 0);
	assert_int_equal(store_field_put(w, a.id, "email", (const uint8_t *)"sealed", 6), 0);
	char id[STORE_ID_CAP];
	assert_int_equal(store_contact_find_email(r, bidx, id), 0);
	assert_string_equal(id, a.id);
	assert_int_equal(store_contact_get(r, a.id, &got), 0);
	assert_string_equal(got.collected_for, "service,marketing");
	assert_int_equal(got.wrapped_len, 60);
	assert_true(got.has_email_shash);
	assert_int_equal(store_contact_erase(w, a.id, 2000), 0);
	assert_int_equal(store_contact_get(r, a.id, &got), 0);
	assert_true(got.erased);
	assert_int_equal(got.wrapped_len, 0);
	assert_false(got.has_email_shash);
	assert_int_equal(store_contact_find_email(r, bidx, id), ERR_NOTFOUND);
	assert_int_equal(store_contact_erase(w, a.id, 3000), ERR_NOTFOUND);
	assert_int_equal(store_contact_get(r, "CCCCCCCCCCCCCCCCCCCCCC", &got), ERR_NOTFOUND);
}

static int count_cb(void *ctx, const struct store_consent *cs)
{
	(void)cs;
	(*(int *)ctx)++;
	return 0;
}

static void test_consent_history_is_appended(void **state)
{
	(void)state;
	struct store_consent cs, got;
	memset(&cs, 0, sizeof cs);
	snprintf(cs.contact_id, sizeof cs.contact_id, "BBBBBBBBBBBBBBBBBBBBBB");
	snprintf(cs.purpose, sizeof cs.purpose, "marketing");
	snprintf(cs.channel, sizeof cs.channel, "email");
	snprintf(cs.status, sizeof cs.status, "granted");
	snprintf(cs.receipt_id, sizeof cs.receipt_id, "r1");
	cs.at_us = 10;
	assert_int_equal(store_consent_put(w, &cs, true), 0);
	snprintf(cs.status, sizeof cs.status, "withdrawn");
	snprintf(cs.receipt_id, sizeof cs.receipt_id, "r2");
	cs.at_us = 20;
	assert_int_equal(store_consent_put(w, &cs, true), 0);
	assert_int_equal(store_consent_get(r, cs.contact_id, "marketing", "email", &got), 0);
	assert_string_equal(got.status, "withdrawn");
	int cur = 0, hist = 0;
	store_consents_each(r, cs.contact_id, count_cb, &cur);
	store_consent_history_each(r, cs.contact_id, count_cb, &hist);
	assert_int_equal(cur, 1);
	assert_int_equal(hist, 2);
	snprintf(cs.status, sizeof cs.status, "maybe");
	assert_int_not_equal(store_consent_put(w, &cs, true), 0); /* CHECK constraint */
}

static void test_principals(void **state)
{
	(void)state;
	uint8_t h[32];
	char name[STORE_TEXT_CAP], role[STORE_NAME_CAP];
	memset(h, 3, 32);
	assert_int_equal(store_principal_insert(w, "crm", "marketing", h, 1), 0);
	assert_int_equal(store_principal_insert(w, "crm", "admin", h, 1), ERR_CONFLICT);
	assert_int_equal(store_principal_find(r, h, name, role), 0);
	assert_string_equal(name, "crm");
	assert_string_equal(role, "marketing");
	h[0] = 4;
	assert_int_equal(store_principal_find(r, h, name, role), ERR_NOTFOUND);
}

static void test_audit_is_appended_in_sequence_only(void **state)
{
	(void)state;
	struct audit_entry e;
	int64_t seq;
	uint8_t hash[32];
	memset(&e, 0, sizeof e);
	snprintf(e.action, sizeof e.action, "contacts.read");
	snprintf(e.decision, sizeof e.decision, "allow");
	for (int i = 1; i <= 3; i++) {
		e.seq = i;
		e.time_us = i;
		assert_int_equal(audit_entry_link(NULL, &e, e.hash), 0);
		assert_int_equal(store_audit_append(w, &e), 0);
	}
	assert_int_equal(store_audit_head(r, &seq, hash), 0);
	assert_int_equal(seq, 3);
	e.seq = 5; /* a gap */
	assert_int_equal(store_audit_append(w, &e), ERR_UNAVAILABLE);
	e.seq = 2; /* a replay */
	assert_int_equal(store_audit_append(w, &e), ERR_UNAVAILABLE);
	struct store_audit_filter f;
	struct store_audit_cursor *cur = NULL;
	memset(&f, 0, sizeof f);
	f.after_seq = 1;
	assert_int_equal(store_audit_cursor_open(r, &f, &cur), 0);
	int n = 0;
	while (store_audit_cursor_next(cur, &e) == 1)
		n++;
	store_audit_cursor_close(cur);
	assert_int_equal(n, 2);
}

static long wal_bytes(void)
{
	char p[160];
	struct stat sb;
	snprintf(p, sizeof p, "%s-wal", db_path);
	return stat(p, &sb) == 0 ? (long)sb.st_size : -1;
}

static double seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* An erasure's purge: the WAL ends at zero bytes, and a connection that
 * holds it up makes the purge give up within its bound, not hang. */
static void test_wal_truncate_empties_the_wal_or_gives_up_in_time(void **state)
{
	(void)state;
	struct store_contact ct = fixture_contact("walpurge0000000000000a");
	assert_int_equal(store_begin(w), 0);
	assert_int_equal(store_contact_insert(w, &ct, NULL, NULL), 0);
	assert_int_equal(store_commit(w), 0);
	assert_true(wal_bytes() > 0);

	struct store_conn *w2 = NULL;
	assert_int_equal(store_writer_open(st, &w2), 0);
	assert_int_equal(store_begin(w2), 0); /* holds the write lock */
	double t0 = seconds();
	assert_int_equal(store_wal_truncate(w, 200), ERR_UNAVAILABLE);
	double took = seconds() - t0;
	assert_true(took >= 0.15 && took < 2.0);
	assert_true(wal_bytes() > 0);
	store_rollback(w2);
	store_conn_free(w2);

	assert_int_equal(store_wal_truncate(w, 200), 0);
	assert_int_equal(wal_bytes(), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_schema_is_migrated),
		cmocka_unit_test(test_contact_insert_get_duplicate_and_erase),
		cmocka_unit_test(test_consent_history_is_appended),
		cmocka_unit_test(test_principals),
		cmocka_unit_test(test_audit_is_appended_in_sequence_only),
		cmocka_unit_test(test_wal_truncate_empties_the_wal_or_gives_up_in_time),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
