/*
 * conformance: what every store backend must do (service/store/backend.h),
 * checked through the store_* interface only, so one suite serves every
 * backend.
 *
 * The backend under test comes from the factory below: by default a fresh
 * SQLite file per test; with CONSENTD_STORE_TEST_LOCATION set, store_open
 * gets that location instead (a postgresql:// URI once a PostgreSQL backend
 * is built in). Such a database must start empty; CONSENTD_STORE_TEST_RESET,
 * when set, is a shell command run before each test to empty it again.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "service/base/error.h"
#include "service/base/limits.h"
#include "service/store/backend.h"
#include "service/store/store.h"
#include "tests/unit/fixture.h"

struct fixture {
	char dir[64];
	struct store *st;
	struct store_conn *w, *r;
};

/* ---- the backend factory ---------------------------------------------- */

static int factory_open(struct fixture *f)
{
	const char *loc = getenv("CONSENTD_STORE_TEST_LOCATION");
	const char *reset = getenv("CONSENTD_STORE_TEST_RESET");
	char path[128];
	if (loc != NULL && loc[0] != '\0') {
		if (reset != NULL && reset[0] != '\0' && system(reset) != 0)
			return -1;
		return store_open(&f->st, loc);
	}
	snprintf(f->dir, sizeof f->dir, "/tmp/conformance-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(path, sizeof path, "%s/t.db", f->dir);
	return store_open(&f->st, path);
}

static void factory_close(struct fixture *f)
{
	char cmd[128];
	store_close(f->st);
	if (f->dir[0] != '\0') {
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
		if (system(cmd) != 0)
			fprintf(stderr, "conformance: cannot remove %s\n", f->dir);
	}
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	if (f == NULL || factory_open(f) != 0 || store_writer_open(f->st, &f->w) != 0 ||
	    store_conn_get(f->st, &f->r) != 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	store_conn_put(f->st, f->r);
	store_conn_free(f->w);
	factory_close(f);
	free(f);
	return 0;
}

/* ---- helpers ---------------------------------------------------------- */

static void hash_of(uint8_t h[32], int seed)
{
	memset(h, 0, 32);
	h[0] = (uint8_t)seed;
	h[31] = (uint8_t)(seed * 7 + 1);
}

static int add_principal(struct store_conn *c, const char *name)
{
	uint8_t h[32];
	memset(h, 0, sizeof h);
	snprintf((char *)h, sizeof h, "%s", name);
	return store_principal_insert(c, name, "admin", h, 1);
}

static bool has_principal(struct store_conn *c, const char *name)
{
	char role[STORE_NAME_CAP];
	int rc = store_principal_role(c, name, role);
	assert_true(rc == 0 || rc == ERR_NOTFOUND);
	return rc == 0;
}

static void entry(struct audit_entry *e, int64_t seq, const uint8_t prev[32])
{
	memset(e, 0, sizeof *e);
	e->seq = seq;
	e->time_us = 1700000000000000 + seq;
	snprintf(e->actor, sizeof e->actor, "alice");
	snprintf(e->action, sizeof e->action, "contacts.read");
	snprintf(e->record_id, sizeof e->record_id, "rec%lld", (long long)seq);
	snprintf(e->decision, sizeof e->decision, "allow");
	snprintf(e->detail, sizeof e->detail, "{\"n\":%lld}", (long long)seq);
	memcpy(e->prev_hash, prev, 32);
	hash_of(e->hash, (int)seq);
}

/* ---- 1. transactions -------------------------------------------------- */

static void test_commit_keeps_and_rollback_drops_every_write(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(store_begin(f->w), 0);
	assert_int_equal(add_principal(f->w, "a"), 0);
	assert_int_equal(add_principal(f->w, "b"), 0);
	assert_int_equal(store_rollback(f->w), 0);
	assert_false(has_principal(f->r, "a"));
	assert_false(has_principal(f->r, "b"));

	assert_int_equal(store_begin(f->w), 0);
	assert_int_equal(add_principal(f->w, "a"), 0);
	assert_int_equal(add_principal(f->w, "b"), 0);
	assert_int_equal(store_commit(f->w), 0);
	assert_true(has_principal(f->r, "a"));
	assert_true(has_principal(f->r, "b"));
}

static void test_rollback_to_a_savepoint_undoes_only_what_came_after_it(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(store_begin(f->w), 0);
	assert_int_equal(add_principal(f->w, "kept"), 0);
	assert_int_equal(store_savepoint(f->w), 0);
	assert_int_equal(add_principal(f->w, "undone"), 0);
	assert_int_equal(store_rollback_to(f->w), 0);
	assert_int_equal(store_release(f->w), 0);
	assert_int_equal(store_savepoint(f->w), 0);
	assert_int_equal(add_principal(f->w, "released"), 0);
	assert_int_equal(store_release(f->w), 0);
	assert_int_equal(store_commit(f->w), 0);
	assert_true(has_principal(f->r, "kept"));
	assert_false(has_principal(f->r, "undone"));
	assert_true(has_principal(f->r, "released"));
}

static void test_readers_see_committed_data_only(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(store_begin(f->w), 0);
	assert_int_equal(add_principal(f->w, "pending"), 0);
	assert_true(has_principal(f->w, "pending")); /* the writer sees its own */
	assert_false(has_principal(f->r, "pending"));
	assert_int_equal(store_commit(f->w), 0);
	assert_true(has_principal(f->r, "pending"));
}

static void test_a_duplicate_email_is_a_conflict_and_the_transaction_goes_on(void **state)
{
	struct fixture *f = *state;
	uint8_t bidx[32], other[32];
	char id[STORE_ID_CAP];
	struct store_contact a = fixture_contact("AAAAAAAAAAAAAAAAAAAAAA"),
			     b = fixture_contact("BBBBBBBBBBBBBBBBBBBBBB");
	hash_of(bidx, 1);
	hash_of(other, 2);
	assert_int_equal(store_begin(f->w), 0);
	assert_int_equal(store_contact_insert(f->w, &a, bidx, NULL), 0);
	assert_int_equal(store_contact_insert(f->w, &b, bidx, NULL), ERR_CONFLICT);
	assert_int_equal(store_contact_insert(f->w, &b, other, NULL), 0);
	assert_int_equal(store_commit(f->w), 0);
	assert_int_equal(store_contact_find_email(f->r, bidx, id), 0);
	assert_string_equal(id, a.id);
	assert_int_equal(store_contact_find_email(f->r, other, id), 0);
	assert_string_equal(id, b.id);
}

/* ---- 4. ordering; 7. what is stored comes back ------------------------- */

static void test_a_contact_comes_back_as_stored_and_erasure_leaves_a_tombstone(void **state)
{
	struct fixture *f = *state;
	uint8_t bidx[32];
	char id[STORE_ID_CAP];
	struct store_contact a = fixture_contact("CCCCCCCCCCCCCCCCCCCCCC"), got;
	hash_of(bidx, 3);
	a.has_email_shash = true;
	hash_of(a.email_shash, 4);
	assert_int_equal(store_contact_insert(f->w, &a, bidx, NULL), 0);
	assert_int_equal(store_field_put(f->w, a.id, "email", (const uint8_t *)"sealed\0bytes", 12), 0);
	assert_int_equal(store_contact_get(f->r, a.id, &got), 0);
	assert_string_equal(got.collected_for, a.collected_for);
	assert_int_equal(got.wrapped_len, a.wrapped_len);
	assert_memory_equal(got.wrapped_key, a.wrapped_key, a.wrapped_len);
	assert_true(got.has_email_shash);
	assert_memory_equal(got.email_shash, a.email_shash, 32);
	assert_false(got.erased);

	assert_int_equal(store_contact_erase(f->w, a.id, 2000), 0);
	assert_int_equal(store_contact_get(f->r, a.id, &got), 0);
	assert_true(got.erased);
	assert_int_equal(got.wrapped_len, 0);
	assert_int_equal(store_contact_find_email(f->r, bidx, id), ERR_NOTFOUND);
}

struct reasons {
	int n;
	char reasons[4][16];
};

static int collect(void *ctx, const struct store_suppression_row *row)
{
	struct reasons *seen = ctx;
	if (seen->n < 4)
		snprintf(seen->reasons[seen->n], sizeof seen->reasons[0], "%s", row->reason);
	seen->n++;
	return 0;
}

static void test_suppressions_are_listed_oldest_first_and_added_once(void **state)
{
	struct fixture *f = *state;
	uint8_t h[32];
	hash_of(h, 5);
	struct store_suppression sp = { .kind = "email",
					.scope = "all",
					.scope_value = "",
					.reason = "bounce",
					.source = "test",
					.created_us = 300,
					.recorded_us = 300 };
	memcpy(sp.hash, h, 32);
	assert_int_equal(store_suppression_add(f->w, &sp), 1);
	assert_int_equal(store_suppression_add(f->w, &sp), 0);
	sp.reason = "complaint";
	sp.created_us = 100;
	assert_int_equal(store_suppression_add(f->w, &sp), 1);
	sp.reason = "manual";
	sp.created_us = 200;
	assert_int_equal(store_suppression_add(f->w, &sp), 1);

	struct reasons seen = { 0 };
	assert_int_equal(store_suppressions_active(f->r, h, collect, &seen), 0);
	assert_int_equal(seen.n, 3);
	assert_string_equal(seen.reasons[0], "complaint");
	assert_string_equal(seen.reasons[1], "manual");
	assert_string_equal(seen.reasons[2], "bounce");
}

static int count_history(void *ctx, const struct store_consent *cs)
{
	char *order = ctx;
	size_t n = strlen(order);
	order[n] = cs->status[0];
	order[n + 1] = '\0';
	return 0;
}

static void test_consent_history_keeps_every_event_in_order(void **state)
{
	struct fixture *f = *state;
	uint8_t bidx[32];
	struct store_contact a = fixture_contact("DDDDDDDDDDDDDDDDDDDDDD");
	struct store_consent cs, got;
	char order[8] = "";
	int64_t n = 0;
	hash_of(bidx, 6);
	assert_int_equal(store_contact_insert(f->w, &a, bidx, NULL), 0);
	memset(&cs, 0, sizeof cs);
	snprintf(cs.contact_id, sizeof cs.contact_id, "%s", a.id);
	snprintf(cs.purpose, sizeof cs.purpose, "marketing");
	snprintf(cs.channel, sizeof cs.channel, "email");
	snprintf(cs.legal_basis, sizeof cs.legal_basis, "consent");
	snprintf(cs.status, sizeof cs.status, "granted");
	cs.at_us = cs.recorded_us = cs.granted_us = 1000;
	assert_int_equal(store_consent_put(f->w, &cs, true), 0);
	snprintf(cs.status, sizeof cs.status, "withdrawn");
	cs.at_us = cs.recorded_us = cs.withdrawn_us = 2000;
	assert_int_equal(store_consent_put(f->w, &cs, true), 0);
	assert_int_equal(store_consent_get(f->r, a.id, "marketing", "email", &got), 0);
	assert_string_equal(got.status, "withdrawn");
	/* History only: the current state is the caller's decision. */
	snprintf(cs.status, sizeof cs.status, "granted");
	cs.at_us = cs.recorded_us = 3000;
	assert_int_equal(store_consent_put(f->w, &cs, false), 0);
	assert_int_equal(store_consent_get(f->r, a.id, "marketing", "email", &got), 0);
	assert_string_equal(got.status, "withdrawn");
	assert_int_equal(store_consent_history_count(f->r, a.id, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(store_consent_history_each(f->r, a.id, count_history, order), 0);
	assert_string_equal(order, "gwg");
}

/* ---- 9. batched writes ------------------------------------------------- */

/* A batch answers each row as the single insert would: a row whose email a
 * stored contact or an earlier row of the batch holds is a duplicate and is
 * not stored, every other row is, byte for byte, and the transaction goes
 * on. 5,000 rows cross the PostgreSQL backend's statement size, so a
 * duplicate of a row in an earlier statement is caught too. */
static void test_a_batched_contact_insert_reports_each_duplicate_and_stores_the_rest(void **state)
{
	struct fixture *f = *state;
	enum { N = 5000 };
	struct store_contact *cts = calloc(N, sizeof *cts), got, first = fixture_contact("stored-first");
	struct store_contact_new *rows = calloc(N, sizeof *rows);
	uint8_t(*bidx)[32] = calloc(N, 32), phone[32], stored[32];
	char id[STORE_ID_CAP];
	assert_non_null(cts);
	assert_non_null(rows);
	assert_non_null(bidx);
	memset(stored, 0xee, 32);
	memset(phone, 0x11, 32);
	assert_int_equal(store_begin(f->w), 0);
	assert_int_equal(store_contact_insert(f->w, &first, stored, NULL), 0);
	for (int i = 0; i < N; i++) {
		char cid[STORE_ID_CAP];
		snprintf(cid, sizeof cid, "batch-%05d", i);
		cts[i] = fixture_contact(cid);
		cts[i].has_email_shash = true;
		memset(cts[i].email_shash, i & 0xff, 32);
		memset(bidx[i], 0, 32);
		memcpy(bidx[i], &i, sizeof i);
		rows[i] = (struct store_contact_new){ &cts[i], bidx[i], NULL, true };
	}
	memcpy(bidx[1], stored, 32);	  /* a stored contact's email */
	memcpy(bidx[3], bidx[2], 32);	  /* the row before's */
	memcpy(bidx[4500], bidx[10], 32); /* a row of an earlier statement */
	rows[5].email_bidx = NULL;	  /* no email: never a duplicate */
	rows[6].email_bidx = NULL;
	rows[6].phone_bidx = phone;
	assert_int_equal(store_contacts_insert_many(f->w, rows, N), 0);
	for (int i = 0; i < N; i++)
		assert_int_equal(rows[i].duplicate, i == 1 || i == 3 || i == 4500);
	assert_int_equal(store_commit(f->w), 0);

	assert_int_equal(store_contact_find_email(f->r, stored, id), 0);
	assert_string_equal(id, "stored-first");
	assert_int_equal(store_contact_find_email(f->r, bidx[2], id), 0);
	assert_string_equal(id, "batch-00002");
	assert_int_equal(store_contact_find_email(f->r, bidx[10], id), 0);
	assert_string_equal(id, "batch-00010");
	assert_int_equal(store_contact_get(f->r, "batch-00001", &got), ERR_NOTFOUND);
	assert_int_equal(store_contact_get(f->r, "batch-00003", &got), ERR_NOTFOUND);
	assert_int_equal(store_contact_get(f->r, "batch-04500", &got), ERR_NOTFOUND);
	assert_int_equal(store_contact_get(f->r, "batch-00006", &got), 0);
	assert_int_equal(store_contact_get(f->r, "batch-04999", &got), 0);
	assert_string_equal(got.collected_for, cts[4999].collected_for);
	assert_int_equal(got.wrapped_len, cts[4999].wrapped_len);
	assert_memory_equal(got.wrapped_key, cts[4999].wrapped_key, got.wrapped_len);
	assert_true(got.has_email_shash);
	assert_memory_equal(got.email_shash, cts[4999].email_shash, 32);
	assert_false(got.has_phone_shash);
	int64_t n = 0;
	assert_int_equal(store_contact_count(f->r, &n), 0);
	assert_int_equal(n, 1 + N - 3);
	free(cts);
	free(rows);
	free(bidx);
}

struct field_seen {
	int n;
	char names[4][16];
	uint8_t values[4][16];
	size_t lens[4];
};

static int field_cb(void *ctx, const char *name, const uint8_t *sealed, size_t len)
{
	struct field_seen *s = ctx;
	if (s->n < 4 && len <= sizeof s->values[0]) {
		snprintf(s->names[s->n], sizeof s->names[0], "%s", name);
		memcpy(s->values[s->n], sealed, len);
		s->lens[s->n] = len;
	}
	s->n++;
	return 0;
}

/* Sealed bytes come back exact (a NUL inside too), a later row of the same
 * contact and name wins, and a stored field is replaced, as a loop of
 * store_field_put leaves them. */
static void test_batched_fields_are_stored_as_single_puts_would_leave_them(void **state)
{
	struct fixture *f = *state;
	struct store_contact a = fixture_contact("fields-a"), b = fixture_contact("fields-b");
	assert_int_equal(store_contact_insert(f->w, &a, NULL, NULL), 0);
	assert_int_equal(store_contact_insert(f->w, &b, NULL, NULL), 0);
	assert_int_equal(store_field_put(f->w, b.id, "phone", (const uint8_t *)"old", 3), 0);
	const struct store_field_new rows[] = {
		{ a.id, "email", (const uint8_t *)"first", 5 },
		{ b.id, "phone", (const uint8_t *)"new\0phone", 9 },
		{ a.id, "email", (const uint8_t *)"se\0led", 6 },
		{ a.id, "name", (const uint8_t *)"n", 1 },
	};
	assert_int_equal(store_fields_put_many(f->w, rows, 4), 0);
	struct field_seen sa = { 0 }, sb = { 0 };
	assert_int_equal(store_fields_each(f->r, a.id, field_cb, &sa), 0);
	assert_int_equal(sa.n, 2);
	assert_string_equal(sa.names[0], "email");
	assert_int_equal(sa.lens[0], 6);
	assert_memory_equal(sa.values[0], "se\0led", 6);
	assert_string_equal(sa.names[1], "name");
	assert_int_equal(store_fields_each(f->r, b.id, field_cb, &sb), 0);
	assert_int_equal(sb.n, 1);
	assert_int_equal(sb.lens[0], 9);
	assert_memory_equal(sb.values[0], "new\0phone", 9);
}

static void consent_of(struct store_consent *cs, const char *contact, const char *channel, const char *status,
		       int64_t at)
{
	memset(cs, 0, sizeof *cs);
	snprintf(cs->contact_id, sizeof cs->contact_id, "%s", contact);
	snprintf(cs->purpose, sizeof cs->purpose, "marketing");
	snprintf(cs->channel, sizeof cs->channel, "%s", channel);
	snprintf(cs->legal_basis, sizeof cs->legal_basis, "consent");
	snprintf(cs->status, sizeof cs->status, "%s", status);
	snprintf(cs->receipt_id, sizeof cs->receipt_id, "r%lld", (long long)at);
	cs->at_us = cs->recorded_us = at;
}

struct evidence_seen {
	int n;
	uint8_t bytes[16];
	size_t len;
};

static int evidence_cb(void *ctx, const struct store_consent *cs)
{
	struct evidence_seen *s = ctx;
	s->n++;
	if (strcmp(cs->channel, "email") == 0 && cs->evidence != NULL &&
	    cs->evidence_len <= sizeof s->bytes) {
		memcpy(s->bytes, cs->evidence, cs->evidence_len);
		s->len = cs->evidence_len;
	}
	return 0;
}

/* Every row joins the history in row order; of the current rows of one
 * contact, purpose and channel the last is the state (a non-current row
 * never is), over a state stored before; evidence comes back exact. */
static void test_batched_consents_keep_the_history_order_and_the_last_current_state(void **state)
{
	struct fixture *f = *state;
	struct store_contact a = fixture_contact("consents-a");
	struct store_consent cs[5], got;
	char order[8] = "";
	int64_t n = 0;
	assert_int_equal(store_contact_insert(f->w, &a, NULL, NULL), 0);
	consent_of(&cs[0], a.id, "sms", "granted", 500);
	assert_int_equal(store_consent_put(f->w, &cs[0], true), 0);
	consent_of(&cs[0], a.id, "email", "granted", 1000);
	consent_of(&cs[1], a.id, "sms", "refused", 1500);
	consent_of(&cs[2], a.id, "email", "withdrawn", 2000);
	cs[2].evidence = (const uint8_t *)"ev\0idence";
	cs[2].evidence_len = 9;
	consent_of(&cs[3], a.id, "email", "granted", 2000); /* a tie: row order decides */
	consent_of(&cs[4], a.id, "sms", "withdrawn", 100);
	const struct store_consent_new rows[] = {
		{ &cs[0], true }, { &cs[1], true }, { &cs[2], true }, { &cs[3], false }, { &cs[4], false },
	};
	assert_int_equal(store_consents_put_many(f->w, rows, 5), 0);
	assert_int_equal(store_consent_get(f->r, a.id, "marketing", "email", &got), 0);
	assert_string_equal(got.status, "withdrawn");
	assert_int_equal(got.at_us, 2000);
	assert_int_equal(store_consent_get(f->r, a.id, "marketing", "sms", &got), 0);
	assert_string_equal(got.status, "refused");
	assert_int_equal(store_consent_history_count(f->r, a.id, &n), 0);
	assert_int_equal(n, 6);
	assert_int_equal(store_consent_history_each(f->r, a.id, count_history, order), 0);
	assert_string_equal(order, "wggrwg");
	struct evidence_seen ev = { 0 };
	assert_int_equal(store_consents_each(f->r, a.id, evidence_cb, &ev), 0);
	assert_int_equal(ev.n, 2);
	assert_int_equal(ev.len, 9);
	assert_memory_equal(ev.bytes, "ev\0idence", 9);
}

struct supp_seen {
	int n;
	char reasons[8][16];
	char sources[8][16];
};

static int supp_cb(void *ctx, const struct store_suppression_row *row)
{
	struct supp_seen *s = ctx;
	if (s->n < 8) {
		snprintf(s->reasons[s->n], sizeof s->reasons[0], "%s", row->reason);
		snprintf(s->sources[s->n], sizeof s->sources[0], "%s", row->source);
	}
	s->n++;
	return 0;
}

/* An entry is added unless an unlifted equal one (same hash, scope, value
 * and reason) is stored or came earlier in the batch; a lifted one does not
 * count. Added entries keep their order. */
static void test_batched_suppressions_are_added_once_as_single_adds_would(void **state)
{
	struct fixture *f = *state;
	uint8_t h1[32], h2[32];
	int64_t lifted = 0;
	hash_of(h1, 41);
	hash_of(h2, 42);
	struct store_suppression base = { .kind = "email",
					  .scope = "all",
					  .scope_value = "",
					  .reason = "bounce",
					  .source = "before",
					  .created_us = 100,
					  .recorded_us = 100 };
	struct store_suppression sp[7];
	bool added[7];
	memcpy(base.hash, h1, 32);
	assert_int_equal(store_suppression_add(f->w, &base), 1);
	base.reason = "manual";
	assert_int_equal(store_suppression_add(f->w, &base), 1);
	assert_int_equal(store_suppressions_lift(f->w, h1, "all", "", "manual", 150, "test", &lifted), 0);
	assert_int_equal(lifted, 1);
	for (int i = 0; i < 7; i++) {
		sp[i] = base;
		sp[i].reason = "bounce";
		sp[i].source = "batch";
		sp[i].created_us = 200 + i;
		memcpy(sp[i].hash, i < 2 || i == 6 ? h1 : h2, 32);
	}
	/* 0: h1 all bounce, stored: no.   1: h1 manual, lifted: yes.
	 * 2: h2 all bounce: yes.          3: the same again: no.
	 * 4: h2 purpose marketing: yes.   5: h2 complaint, kind phone: yes.
	 * 6: h1 manual again: no (entry 1). */
	sp[1].reason = "manual";
	sp[4].scope = "purpose";
	sp[4].scope_value = "marketing";
	sp[5].reason = "complaint";
	sp[5].kind = "phone";
	sp[6].reason = "manual";
	assert_int_equal(store_suppressions_add_many(f->w, sp, 7, added), 0);
	const bool want[7] = { false, true, true, false, true, true, false };
	for (int i = 0; i < 7; i++)
		assert_int_equal(added[i], want[i]);
	struct supp_seen s1 = { 0 }, s2 = { 0 };
	assert_int_equal(store_suppressions_active(f->r, h1, supp_cb, &s1), 0);
	assert_int_equal(s1.n, 2);
	assert_string_equal(s1.reasons[0], "bounce");
	assert_string_equal(s1.sources[0], "before");
	assert_string_equal(s1.reasons[1], "manual");
	assert_string_equal(s1.sources[1], "batch");
	assert_int_equal(store_suppressions_active(f->r, h2, supp_cb, &s2), 0);
	assert_int_equal(s2.n, 3);
	assert_string_equal(s2.reasons[0], "bounce");
	assert_string_equal(s2.reasons[1], "bounce");
	assert_string_equal(s2.reasons[2], "complaint");
}

/* ---- 5. the audit append ---------------------------------------------- */

static void test_audit_entries_come_back_byte_for_byte_in_seq_order(void **state)
{
	struct fixture *f = *state;
	struct audit_entry e[3], got;
	uint8_t zero[32] = { 0 }, head[32];
	int64_t seq = -1;
	struct store_audit_cursor *cur = NULL;
	struct store_audit_filter flt;

	assert_int_equal(store_audit_head(f->r, &seq, head), 0);
	assert_int_equal(seq, 0);
	assert_memory_equal(head, zero, 32);
	assert_int_equal(store_begin(f->w), 0);
	for (int i = 0; i < 3; i++) {
		entry(&e[i], i + 1, i == 0 ? zero : e[i - 1].hash);
		assert_int_equal(store_audit_append(f->w, &e[i]), 0);
	}
	assert_int_equal(store_commit(f->w), 0);
	assert_int_equal(store_audit_head(f->r, &seq, head), 0);
	assert_int_equal(seq, 3);
	assert_memory_equal(head, e[2].hash, 32);
	assert_int_equal(store_audit_hash_at(f->r, 2, head), 0);
	assert_memory_equal(head, e[1].hash, 32);
	assert_int_equal(store_audit_hash_at(f->r, 4, head), ERR_NOTFOUND);

	memset(&flt, 0, sizeof flt);
	assert_int_equal(store_audit_cursor_open(f->r, &flt, &cur), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(store_audit_cursor_next(cur, &got), 1);
		assert_int_equal(got.seq, e[i].seq);
		assert_int_equal(got.time_us, e[i].time_us);
		assert_string_equal(got.record_id, e[i].record_id);
		assert_string_equal(got.detail, e[i].detail);
		assert_memory_equal(got.prev_hash, e[i].prev_hash, 32);
		assert_memory_equal(got.hash, e[i].hash, 32);
	}
	assert_int_equal(store_audit_cursor_next(cur, &got), 0);
	store_audit_cursor_close(cur);

	flt.after_seq = 1;
	flt.record_id = "rec3";
	assert_int_equal(store_audit_cursor_open(f->r, &flt, &cur), 0);
	assert_int_equal(store_audit_cursor_next(cur, &got), 1);
	assert_int_equal(got.seq, 3);
	assert_int_equal(store_audit_cursor_next(cur, &got), 0);
	store_audit_cursor_close(cur);
}

static void test_an_audit_append_out_of_sequence_fails(void **state)
{
	struct fixture *f = *state;
	struct audit_entry e;
	uint8_t zero[32] = { 0 };
	entry(&e, 2, zero); /* the trail is empty: 1 comes first */
	assert_true(store_audit_append(f->w, &e) < 0);
	entry(&e, 1, zero);
	assert_int_equal(store_audit_append(f->w, &e), 0);
	assert_true(store_audit_append(f->w, &e) < 0); /* 1 again */
}

/* A cursor reads from its first next, not from its open: the console's
 * export opens its cursor before the export's own audit entry commits and
 * must still list that entry (SQLite steps its statement lazily; a backend
 * that fetched at open missed it). */
static void test_a_cursor_sees_what_committed_between_its_open_and_its_first_read(void **state)
{
	struct fixture *f = *state;
	struct audit_entry e, got;
	struct audit_checkpoint cp, gotcp;
	struct store_audit_cursor *cur = NULL;
	struct store_checkpoint_cursor *ccur = NULL;
	struct store_audit_filter flt;
	uint8_t zero[32] = { 0 };
	memset(&flt, 0, sizeof flt);
	memset(&cp, 0, sizeof cp);
	assert_int_equal(store_audit_cursor_open(f->r, &flt, &cur), 0);
	assert_int_equal(store_checkpoint_cursor_open(f->r, 0, &ccur), 0);
	entry(&e, 1, zero);
	cp.size = 1;
	hash_of(cp.root, 1);
	assert_int_equal(store_begin(f->w), 0);
	assert_int_equal(store_audit_append(f->w, &e), 0);
	assert_int_equal(store_checkpoint_append(f->w, &cp), 0);
	assert_int_equal(store_commit(f->w), 0);
	assert_int_equal(store_audit_cursor_next(cur, &got), 1);
	assert_int_equal(got.seq, 1);
	assert_int_equal(store_audit_cursor_next(cur, &got), 0);
	store_audit_cursor_close(cur);
	assert_int_equal(store_checkpoint_cursor_next(ccur, &gotcp), 1);
	assert_int_equal(gotcp.size, 1);
	assert_int_equal(store_checkpoint_cursor_next(ccur, &gotcp), 0);
	store_checkpoint_cursor_close(ccur);
}

static void test_checkpoints_come_back_in_size_order(void **state)
{
	struct fixture *f = *state;
	struct audit_checkpoint cp, got;
	struct store_checkpoint_cursor *cur = NULL;
	assert_int_equal(store_checkpoint_latest(f->r, &got), ERR_NOTFOUND);
	for (int size = 1; size <= 3; size++) {
		memset(&cp, 0, sizeof cp);
		cp.size = size * 10;
		hash_of(cp.root, size);
		cp.time_us = size;
		memset(cp.sig, size, sizeof cp.sig);
		assert_int_equal(store_checkpoint_append(f->w, &cp), 0);
	}
	assert_int_equal(store_checkpoint_latest(f->r, &got), 0);
	assert_int_equal(got.size, 30);
	assert_memory_equal(got.sig, cp.sig, sizeof cp.sig);
	assert_int_equal(store_checkpoint_cursor_open(f->r, 10, &cur), 0);
	assert_int_equal(store_checkpoint_cursor_next(cur, &got), 1);
	assert_int_equal(got.size, 20);
	assert_int_equal(store_checkpoint_cursor_next(cur, &got), 1);
	assert_int_equal(got.size, 30);
	assert_int_equal(store_checkpoint_cursor_next(cur, &got), 0);
	store_checkpoint_cursor_close(cur);
}

/* The keys a use of (marketing, email) is covered by, as the suppression
 * domain gives them; the store must match them exactly and decide nothing. */
static const struct store_scope_keys marketing_email = {
	.scope = { "all", "purpose", "channel" },
	.value = { "", "marketing", "email" },
};

static void test_a_suppression_matches_exactly_the_keys_it_is_asked_for(void **state)
{
	struct fixture *f = *state;
	uint8_t h[32];
	char reason[STORE_NAME_CAP];
	struct store_scope_keys only_all = { .scope = { "all" }, .value = { "" } };
	hash_of(h, 9);
	struct store_suppression sp = { .kind = "email",
					.scope = "purpose",
					.scope_value = "marketing",
					.reason = "unsubscribe",
					.source = "test",
					.created_us = 1,
					.recorded_us = 1 };
	memcpy(sp.hash, h, 32);
	assert_int_equal(store_suppression_add(f->w, &sp), 1);
	assert_int_equal(store_suppression_match(f->r, h, NULL, &marketing_email, reason), 0);
	assert_string_equal(reason, "unsubscribe");
	assert_int_equal(store_suppression_match(f->r, NULL, h, &marketing_email, reason), 0);
	assert_int_equal(store_suppression_match(f->r, h, NULL, &only_all, reason), ERR_NOTFOUND);
	/* Lifted only with a reason the caller names. */
	int64_t lifted = -1;
	assert_int_equal(store_suppressions_lift(f->w, h, NULL, NULL, "bounce,manual", 5, "op", &lifted), 0);
	assert_int_equal(lifted, 0);
	assert_int_equal(store_suppressions_lift(f->w, h, "purpose", "marketing", "manual,unsubscribe", 5,
						 "op", &lifted),
			 0);
	assert_int_equal(lifted, 1);
	assert_int_equal(store_suppression_match(f->r, h, NULL, &marketing_email, reason), ERR_NOTFOUND);
}

/* ---- 8. batched lookups ----------------------------------------------- */

static void test_a_batched_filter_lookup_answers_like_single_ones(void **state)
{
	struct fixture *f = *state;
	uint8_t bidx[3][32], list[3][32];
	struct store_filter_row one, many[3];
	struct store_contact a = fixture_contact("EEEEEEEEEEEEEEEEEEEEEE");
	for (int i = 0; i < 3; i++) {
		hash_of(bidx[i], 20 + i);
		hash_of(list[i], 40 + i);
	}
	assert_int_equal(store_contact_insert(f->w, &a, bidx[1], NULL), 0);
	assert_int_equal(store_filter_by_email_many(f->r, 3, (const uint8_t(*)[32])bidx,
						    (const uint8_t(*)[32])list, "marketing", "email",
						    &marketing_email, many),
			 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(store_filter_by_email(f->r, bidx[i], list[i], "marketing", "email",
						       &marketing_email, &one),
				 0);
		assert_int_equal(many[i].found, one.found);
		assert_string_equal(many[i].id, one.id);
	}
	assert_false(many[0].found);
	assert_true(many[1].found);
	assert_string_equal(many[1].id, a.id);
}

static int count_entry(void *ctx, const struct store_release_entry *e)
{
	int *n = ctx;
	(*n)++;
	assert_string_equal(e->purpose, "marketing");
	return 0;
}

static void test_the_release_log_counts_newest_first_within_the_window(void **state)
{
	struct fixture *f = *state;
	uint8_t ids[2][16], other[16];
	int64_t count = -1, last = -1;
	char *text = NULL;
	int n = 0;
	memset(ids, 0, sizeof ids);
	ids[0][0] = 1;
	ids[1][0] = 2;
	memset(other, 9, sizeof other);
	assert_int_equal(store_begin(f->w), 0);
	assert_int_equal(store_release_log_put(f->w, "r1", "marketing", "email", 100, &ids[0][0], 2), 0);
	assert_int_equal(store_release_log_put(f->w, "r2", "marketing", "email", 200, &ids[0][0], 1), 0);
	assert_int_equal(store_release_log_put(f->w, "r3", "marketing", "email", 300, &ids[0][0], 1), 0);
	assert_int_equal(store_release_log_put(f->w, "r4", "marketing", "sms", 400, &ids[0][0], 1), 0);
	assert_int_equal(store_release_summary_put(f->w, "r1", 100, "{\"total\":2}"), 0);
	assert_int_equal(store_commit(f->w), 0);
	/* Newest first, at most limit, only after the window's start, only
	 * for the (purpose, channel) asked. */
	assert_int_equal(store_release_recent(f->r, ids[0], "marketing", "email", 0, 2, &count, &last), 0);
	assert_int_equal(count, 2);
	assert_int_equal(last, 200);
	assert_int_equal(store_release_recent(f->r, ids[0], "marketing", "email", 150, 10, &count, &last), 0);
	assert_int_equal(count, 2);
	assert_int_equal(store_release_recent(f->r, ids[1], "marketing", "email", 0, 10, &count, &last), 0);
	assert_int_equal(count, 1);
	assert_int_equal(last, 100);
	assert_int_equal(store_release_recent(f->r, other, "marketing", "email", 0, 10, &count, &last), 0);
	assert_int_equal(count, 0);
	/* A batch answers like one call per contact, in the batch's order, on
	 * a reader and inside the writer's transaction (the cap recheck). */
	uint8_t batch[3][16];
	int64_t counts[3] = { -1, -1, -1 }, lasts[3] = { -1, -1, -1 };
	memcpy(batch[0], ids[1], 16);
	memcpy(batch[1], other, 16);
	memcpy(batch[2], ids[0], 16);
	assert_int_equal(store_release_recent_many(f->r, 3, (const uint8_t(*)[16])batch, "marketing", "email",
						   0, 2, counts, lasts),
			 0);
	assert_int_equal(counts[0], 1);
	assert_int_equal(lasts[0], 100);
	assert_int_equal(counts[1], 0);
	assert_int_equal(lasts[1], 0);
	assert_int_equal(counts[2], 2);
	assert_int_equal(lasts[2], 200);
	assert_int_equal(store_begin(f->w), 0);
	assert_int_equal(store_release_recent_many(f->w, 3, (const uint8_t(*)[16])batch, "marketing", "email",
						   150, 10, counts, lasts),
			 0);
	assert_int_equal(store_commit(f->w), 0);
	assert_int_equal(counts[0], 0);
	assert_int_equal(counts[1], 0);
	assert_int_equal(counts[2], 2);
	assert_int_equal(lasts[2], 200);
	assert_int_equal(store_release_log_each(f->r, ids[0], 3, count_entry, &n), ERR_OK);
	assert_int_equal(n, 3);
	assert_int_equal(store_release_summary_get(f->r, "r1", &last, &text), 0);
	assert_string_equal(text, "{\"total\":2}");
	assert_int_equal(last, 100);
	free(text);
	assert_int_equal(store_release_summary_get(f->r, "r9", &last, &text), ERR_NOTFOUND);
	assert_null(text);
}

static int count_freq(void *ctx, const struct store_frequency *fq)
{
	int *n = ctx;
	(*n)++;
	assert_string_equal(fq->choice, "monthly");
	return 0;
}

static void test_a_frequency_choice_is_replaced_not_added(void **state)
{
	struct fixture *f = *state;
	struct store_contact a = fixture_contact("FFFFFFFFFFFFFFFFFFFFFF");
	struct store_frequency fq = { "marketing", "email", "weekly", 100 }, got;
	uint8_t bidx[32];
	int n = 0;
	hash_of(bidx, 77);
	assert_int_equal(store_begin(f->w), 0);
	assert_int_equal(store_contact_insert(f->w, &a, bidx, NULL), 0);
	assert_int_equal(store_frequency_put(f->w, a.id, &fq), 0);
	snprintf(fq.choice, sizeof fq.choice, "monthly");
	fq.set_us = 200;
	assert_int_equal(store_frequency_put(f->w, a.id, &fq), 0);
	assert_int_equal(store_commit(f->w), 0);
	assert_int_equal(store_frequency_get(f->r, a.id, "marketing", "email", &got), 0);
	assert_string_equal(got.choice, "monthly");
	assert_int_equal(got.set_us, 200);
	assert_int_equal(store_frequency_get(f->r, a.id, "marketing", "sms", &got), ERR_NOTFOUND);
	assert_int_equal(store_frequency_each(f->r, a.id, count_freq, &n), 0);
	assert_int_equal(n, 1);
}

static void test_release_times_are_newest_first_and_bounded(void **state)
{
	struct fixture *f = *state;
	uint8_t ids[3][16];
	int64_t times[3 * 2] = { 0 }, n[3] = { -1, -1, -1 };
	memset(ids[0], 3, 16);
	memset(ids[1], 4, 16);
	memset(ids[2], 5, 16);
	assert_int_equal(store_begin(f->w), 0);
	assert_int_equal(store_release_log_put(f->w, "r1", "news", "email", 100, ids[0], 1), 0);
	assert_int_equal(store_release_log_put(f->w, "r2", "news", "email", 200, ids[0], 1), 0);
	assert_int_equal(store_release_log_put(f->w, "r3", "news", "email", 300, ids[0], 1), 0);
	assert_int_equal(store_release_log_put(f->w, "r4", "offers", "email", 250, ids[0], 1), 0);
	assert_int_equal(store_release_log_put(f->w, "r5", "news", "email", 150, ids[2], 1), 0);
	assert_int_equal(store_release_log_put(f->w, "r6", "news", "sms", 160, ids[2], 1), 0);
	assert_int_equal(store_commit(f->w), 0);
	/* Newest first, at most limit each, each id in its own slots. */
	assert_int_equal(store_release_times_many(f->r, 3, &ids[0][0], "news", "email", 0, 2, times, n), 0);
	assert_int_equal(n[0], 2);
	assert_int_equal(times[0], 300);
	assert_int_equal(times[1], 200);
	assert_int_equal(n[1], 0);
	assert_int_equal(n[2], 1);
	assert_int_equal(times[4], 150);
	/* Only after the window's start, only the purpose and channel asked. */
	assert_int_equal(store_release_times_many(f->r, 1, &ids[0][0], "news", "email", 150, 2, times, n), 0);
	assert_int_equal(n[0], 2);
	assert_int_equal(store_release_times_many(f->r, 1, &ids[0][0], "offers", "email", 0, 2, times, n), 0);
	assert_int_equal(n[0], 1);
	assert_int_equal(times[0], 250);
	assert_int_equal(store_release_times_many(f->r, 1, &ids[0][0], "news", "sms", 0, 2, times, n), 0);
	assert_int_equal(n[0], 0);
	assert_int_equal(store_release_times_many(f->r, 0, &ids[0][0], "news", "email", 0, 2, times, n), 0);
}

/* ---- the choice of backend -------------------------------------------- */

/* ---- the mail outbox ------------------------------------------------- */

struct mail_seen {
	size_t n;
	char ids[4][STORE_ID_CAP];
	int64_t attempts[4];
};

static int mail_collect(void *ctx, const struct store_mail *m)
{
	struct mail_seen *s = ctx;
	assert_string_equal(m->lang, "zh-CN"); /* the language travels with the message */
	if (s->n < 4) {
		snprintf(s->ids[s->n], sizeof s->ids[0], "%s", m->id);
		s->attempts[s->n] = m->attempts;
	}
	s->n++;
	return 0;
}

static struct store_mail mail(const char *id, int64_t created)
{
	struct store_mail m;
	memset(&m, 0, sizeof m);
	snprintf(m.id, sizeof m.id, "%s", id);
	snprintf(m.kind, sizeof m.kind, "manage_link");
	snprintf(m.contact_id, sizeof m.contact_id, "c1");
	snprintf(m.link_id, sizeof m.link_id, "l-%s", id);
	snprintf(m.lang, sizeof m.lang, "zh-CN");
	m.created_us = created;
	return m;
}

static void test_queued_mail_is_pending_oldest_first_until_sent_and_a_rollback_drops_it(void **state)
{
	struct fixture *f = *state;
	struct store_mail a = mail("m-a", 200), b = mail("m-b", 100), c = mail("m-c", 300);
	assert_int_equal(store_begin(f->w), 0);
	assert_int_equal(store_mail_put(f->w, &c), 0);
	assert_int_equal(store_rollback(f->w), 0);
	assert_int_equal(store_begin(f->w), 0);
	assert_int_equal(store_mail_put(f->w, &a), 0);
	assert_int_equal(store_mail_put(f->w, &b), 0);
	assert_int_equal(store_mail_put(f->w, &a), ERR_CONFLICT);
	assert_int_equal(store_commit(f->w), 0);

	struct mail_seen seen = { 0 };
	assert_int_equal(store_mail_pending(f->r, 10, 1000, mail_collect, &seen), 0);
	assert_int_equal(seen.n, 2);
	assert_string_equal(seen.ids[0], "m-b");
	assert_string_equal(seen.ids[1], "m-a");
	memset(&seen, 0, sizeof seen);
	assert_int_equal(store_mail_pending(f->r, 1, 1000, mail_collect, &seen), 0);
	assert_int_equal(seen.n, 1);

	assert_int_equal(store_begin(f->w), 0);
	assert_int_equal(store_mail_mark(f->w, "m-b", STORE_MAIL_RETRY, 2000), 0);
	assert_int_equal(store_mail_mark(f->w, "m-a", STORE_MAIL_SENT, 500), 0);
	assert_int_equal(store_mail_mark(f->w, "m-a", STORE_MAIL_SENT, 600), ERR_NOTFOUND);
	assert_int_equal(store_mail_mark(f->w, "m-none", STORE_MAIL_SENT, 600), ERR_NOTFOUND);
	assert_int_equal(store_commit(f->w), 0);
	/* A retried message waits until its time. */
	memset(&seen, 0, sizeof seen);
	assert_int_equal(store_mail_pending(f->r, 10, 1999, mail_collect, &seen), 0);
	assert_int_equal(seen.n, 0);
	assert_int_equal(store_mail_pending(f->r, 10, 2000, mail_collect, &seen), 0);
	assert_int_equal(seen.n, 1);
	assert_string_equal(seen.ids[0], "m-b");
	assert_int_equal(seen.attempts[0], 1);
	/* A failed one is never pending again, and cannot be marked again. */
	assert_int_equal(store_begin(f->w), 0);
	assert_int_equal(store_mail_mark(f->w, "m-b", STORE_MAIL_FAILED, 2100), 0);
	assert_int_equal(store_mail_mark(f->w, "m-b", STORE_MAIL_SENT, 2200), ERR_NOTFOUND);
	assert_int_equal(store_commit(f->w), 0);
	memset(&seen, 0, sizeof seen);
	assert_int_equal(store_mail_pending(f->r, 10, INT64_MAX, mail_collect, &seen), 0);
	assert_int_equal(seen.n, 0);
}

static void test_a_confirmation_is_kept_and_confirms_once(void **state)
{
	struct fixture *f = *state;
	struct store_confirmation cf, got;
	memset(&cf, 0, sizeof cf);
	snprintf(cf.id, sizeof cf.id, "cf-1");
	snprintf(cf.contact_id, sizeof cf.contact_id, "c1");
	snprintf(cf.purpose, sizeof cf.purpose, "marketing");
	snprintf(cf.channel, sizeof cf.channel, "email");
	snprintf(cf.receipt_id, sizeof cf.receipt_id, "r-1");
	cf.created_us = 100;
	cf.expires_us = 200;
	assert_int_equal(store_begin(f->w), 0);
	assert_int_equal(store_confirmation_put(f->w, &cf), 0);
	assert_int_equal(store_commit(f->w), 0);
	assert_int_equal(store_confirmation_get(f->r, "cf-1", &got), 0);
	assert_string_equal(got.contact_id, "c1");
	assert_string_equal(got.purpose, "marketing");
	assert_string_equal(got.channel, "email");
	assert_string_equal(got.receipt_id, "r-1");
	assert_int_equal(got.created_us, 100);
	assert_int_equal(got.expires_us, 200);
	assert_int_equal(got.confirmed_us, 0);
	assert_int_equal(store_confirmation_get(f->r, "cf-none", &got), ERR_NOTFOUND);
	assert_int_equal(store_begin(f->w), 0);
	assert_int_equal(store_confirmation_done(f->w, "cf-1", 150), 0);
	assert_int_equal(store_confirmation_done(f->w, "cf-1", 160), ERR_NOTFOUND);
	assert_int_equal(store_commit(f->w), 0);
	assert_int_equal(store_confirmation_get(f->r, "cf-1", &got), 0);
	assert_int_equal(got.confirmed_us, 150);
}

static int request_collect(void *ctx, const struct store_request *r)
{
	char *ids = ctx;
	strcat(ids, r->id);
	strcat(ids, " ");
	return 0;
}

static int step_collect(void *ctx, const struct store_request_step *st)
{
	struct store_request_step *out = ctx;
	out[st->seq - 1] = *st;
	return 0;
}

static struct store_request request_row(const char *id, const char *state, int64_t due_day)
{
	struct store_request r;
	memset(&r, 0, sizeof r);
	snprintf(r.id, sizeof r.id, "%s", id);
	snprintf(r.contact_id, sizeof r.contact_id, "c1");
	snprintf(r.kind, sizeof r.kind, "erasure");
	snprintf(r.jurisdiction, sizeof r.jurisdiction, "ccpa");
	snprintf(r.state, sizeof r.state, "%s", state);
	snprintf(r.origin, sizeof r.origin, "page");
	r.received_day = due_day - 45;
	r.due_day = due_day;
	r.ack_day = due_day - 31;
	r.needs_approval = true;
	r.created_us = r.updated_us = 1000;
	return r;
}

/* Data-subject requests: a row comes back as stored, a transition wins only
 * against the version it read, the list is earliest due first with a
 * filter and a bound that says "more", and the due counts skip closed
 * requests. */
static void test_a_request_moves_once_per_version_and_lists_by_due_date(void **state)
{
	struct fixture *f = *state;
	struct store_request a = request_row("rq-a", "received", 20000),
			     b = request_row("rq-b", "verified", 19990),
			     c = request_row("rq-c", "completed", 19980), got;
	struct store_request_step st, steps[2];
	char ids[256] = "";
	bool more = true;
	int64_t overdue = -1, soon = -1;
	assert_int_equal(store_begin(f->w), 0);
	assert_int_equal(store_request_put(f->w, &a), 0);
	assert_int_equal(store_request_put(f->w, &b), 0);
	assert_int_equal(store_request_put(f->w, &c), 0);
	assert_int_equal(store_commit(f->w), 0);
	assert_int_equal(store_request_get(f->r, "rq-a", &got), 0);
	assert_string_equal(got.contact_id, "c1");
	assert_string_equal(got.kind, "erasure");
	assert_string_equal(got.jurisdiction, "ccpa");
	assert_string_equal(got.state, "received");
	assert_string_equal(got.origin, "page");
	assert_int_equal(got.received_day, 19955);
	assert_int_equal(got.due_day, 20000);
	assert_int_equal(got.ack_day, 19969);
	assert_true(got.needs_approval);
	assert_false(got.extended);
	assert_int_equal(got.steps, 0);
	assert_int_equal(store_request_get(f->r, "rq-none", &got), ERR_NOTFOUND);

	/* One transition: the row and its step, with the sealed reason's bytes. */
	memset(&st, 0, sizeof st);
	snprintf(st.request_id, sizeof st.request_id, "rq-a");
	st.seq = 1;
	snprintf(st.from_state, sizeof st.from_state, "received");
	snprintf(st.to_state, sizeof st.to_state, "extended");
	snprintf(st.actor, sizeof st.actor, "support-1");
	st.at_us = 2000;
	memset(st.reason, 0xA5, 77);
	st.reason_len = 77;
	a.steps = 1;
	a.extended = true;
	a.needs_approval = false;
	a.due_day = 20045;
	snprintf(a.state, sizeof a.state, "extended");
	assert_int_equal(store_begin(f->w), 0);
	assert_int_equal(store_request_update(f->w, &a, 0), 0);
	assert_int_equal(store_request_step_put(f->w, &st), 0);
	/* A second writer that read version 0 loses. */
	assert_int_equal(store_request_update(f->w, &a, 0), ERR_CONFLICT);
	struct store_request ghost = request_row("rq-ghost", "received", 1);
	assert_int_equal(store_request_update(f->w, &ghost, 0), ERR_NOTFOUND);
	assert_int_equal(store_commit(f->w), 0);
	assert_int_equal(store_request_get(f->r, "rq-a", &got), 0);
	assert_string_equal(got.state, "extended");
	assert_true(got.extended);
	assert_false(got.needs_approval);
	assert_int_equal(got.due_day, 20045);
	assert_int_equal(got.steps, 1);
	memset(steps, 0, sizeof steps);
	assert_int_equal(store_request_steps_each(f->r, "rq-a", step_collect, steps), 0);
	assert_string_equal(steps[0].from_state, "received");
	assert_string_equal(steps[0].to_state, "extended");
	assert_string_equal(steps[0].actor, "support-1");
	assert_int_equal(steps[0].at_us, 2000);
	assert_int_equal(steps[0].reason_len, 77);
	assert_memory_equal(steps[0].reason, st.reason, 77);

	assert_int_equal(store_requests_each(f->r, NULL, 0, 10, request_collect, ids, &more), 0);
	assert_string_equal(ids, "rq-c rq-b rq-a ");
	assert_false(more);
	ids[0] = '\0';
	assert_int_equal(store_requests_each(f->r, NULL, 0, 2, request_collect, ids, &more), 0);
	assert_string_equal(ids, "rq-c rq-b ");
	assert_true(more);
	ids[0] = '\0';
	assert_int_equal(store_requests_each(f->r, "verified", 0, 10, request_collect, ids, &more), 0);
	assert_string_equal(ids, "rq-b ");
	ids[0] = '\0';
	assert_int_equal(store_requests_each(f->r, NULL, 19990, 10, request_collect, ids, &more), 0);
	assert_string_equal(ids, "rq-c ");

	/* Today 19995: rq-b (due 19990) is overdue, rq-a (20045) is not due
	 * soon within 7 days, rq-c is closed. */
	assert_int_equal(store_requests_due_counts(f->r, 19995, 20002, &overdue, &soon), 0);
	assert_int_equal(overdue, 1);
	assert_int_equal(soon, 0);
	assert_int_equal(store_requests_due_counts(f->r, 19980, 20045, &overdue, &soon), 0);
	assert_int_equal(overdue, 0);
	assert_int_equal(soon, 2);
}

/* A store function a backend does not implement yet (added to the interface
 * after the backend was written, so its table entry is NULL) fails with an
 * error naming it, so this suite lists what a backend lacks instead of
 * crashing on the first call. */
static void test_an_entry_the_backend_lacks_is_an_error_naming_it(void **state)
{
	struct fixture *f = *state;
	const struct store_backend *real = f->r->be;
	struct store_backend partial = *real;
	int64_t n = -1;
	partial.contact_count = NULL;
	f->r->be = &partial;
	int rc = store_contact_count(f->r, &n);
	f->r->be = real;
	assert_int_equal(rc, ERR_UNSUPPORTED);
	assert_non_null(strstr(err_msg(), "does not implement store_contact_count"));
	assert_int_equal(n, -1);
}

/* The same for every store function added with the release log, frequency
 * choices, provider events, the mail outbox and webhooks: a backend table
 * with none of them set answers each call with ERR_UNSUPPORTED naming it
 * (these once dereferenced the NULL entry and crashed the caller). */
static void test_every_later_entry_the_backend_lacks_is_an_error_too(void **state)
{
	struct fixture *f = *state;
	const struct store_backend *real = f->r->be;
	struct store_backend none = { .name = real->name };
	struct store_frequency fq = { .purpose = "news", .channel = "email", .choice = "weekly" };
	struct store_mail m = { .id = "m1", .kind = "manage_link" };
	struct store_webhook w;
	struct store_delivery d = { .id = "msg_1", .state = "delivered" };
	uint8_t id[32] = { 0 };
	int64_t a = 0, b = 0;
	char *summary = NULL;
	memset(&w, 0, sizeof w);
	f->r->be = &none;
#define LACKS(call, name)                                                                                    \
	do {                                                                                                 \
		int rc_ = (call);                                                                            \
		f->r->be = real;                                                                             \
		assert_int_equal(rc_, ERR_UNSUPPORTED);                                                      \
		assert_non_null(strstr(err_msg(), "does not implement store_" name));                        \
		f->r->be = &none;                                                                            \
	} while (0)
	LACKS(store_release_log_put(f->r, "r1", "news", "email", 1, id, 1), "release_log_put");
	LACKS(store_release_recent(f->r, id, "news", "email", 0, 1, &a, &b), "release_recent");
	LACKS(store_release_log_each(f->r, id, 1, NULL, NULL), "release_log_each");
	LACKS(store_release_summary_put(f->r, "r1", 1, "{}"), "release_summary_put");
	LACKS(store_release_summary_get(f->r, "r1", &a, &summary), "release_summary_get");
	LACKS(store_frequency_put(f->r, "c1", &fq), "frequency_put");
	LACKS(store_frequency_get(f->r, "c1", "news", "email", &fq), "frequency_get");
	LACKS(store_frequency_each(f->r, "c1", NULL, NULL), "frequency_each");
	LACKS(store_provider_event_once(f->r, "sendgrid", id, 1), "provider_event_once");
	LACKS(store_mail_put(f->r, &m), "mail_put");
	LACKS(store_mail_pending(f->r, 1, 0, NULL, NULL), "mail_pending");
	LACKS(store_mail_mark(f->r, "m1", STORE_MAIL_SENT, 1), "mail_mark");
	LACKS(store_webhook_insert(f->r, &w), "webhook_insert");
	LACKS(store_webhook_get(f->r, "w1", &w), "webhook_get");
	LACKS(store_webhooks_each(f->r, NULL, NULL, &a), "webhooks_each");
	LACKS(store_webhook_delete(f->r, "w1", 1), "webhook_delete");
	LACKS(store_webhook_disable(f->r, "w1", 1, "why"), "webhook_disable");
	LACKS(store_webhook_subscribers(f->r, "consent.changed", &a), "webhook_subscribers");
	LACKS(store_outbox_next_version(f->r, "c1", &a), "outbox_next_version");
	LACKS(store_outbox_add(f->r, "consent.changed", "c1", 1, "{}", NULL, 0, 1, &a), "outbox_add");
	LACKS(store_outbox_forget_personal(f->r, "c1"), "outbox_forget_personal");
	LACKS(store_deliveries_each(f->r, "w1", 1, NULL, NULL), "deliveries_each");
	LACKS(store_deliveries_due(f->r, 1, 1, NULL, NULL), "deliveries_due");
	LACKS(store_delivery_record(f->r, &d), "delivery_record");
	LACKS(store_key_check_get(f->r, "index", id), "key_check_get");
	LACKS(store_key_check_add(f->r, "index", id), "key_check_add");
	LACKS(store_delivery_retry(f->r, "w1", "msg_1", 1), "delivery_retry");
	LACKS(store_outbox_stats(f->r, &a, &b), "outbox_stats");
	LACKS(store_request_get(f->r, "rq", NULL), "request_get");
	LACKS(store_requests_due_counts(f->r, 1, 2, &a, &b), "requests_due_counts");
#undef LACKS
	f->r->be = real;
	assert_null(summary);
}

/* A PostgreSQL server that does not answer is ERR_UNAVAILABLE (the service
 * answers 503 and /readyz fails), never a store that half works. In a
 * consentd built without libpq the URI is refused as not built in. */
static void test_an_unreachable_postgresql_server_is_unavailable(void **state)
{
	struct store *st = NULL;
	(void)state;
	int rc = store_open(&st, "postgresql://consentd@127.0.0.1:1/consent?connect_timeout=2");
	assert_null(st);
#ifdef CONSENTD_WITH_POSTGRES
	assert_int_equal(rc, ERR_UNAVAILABLE);
	assert_non_null(strstr(err_msg(), "unreachable"));
#else
	assert_int_equal(rc, ERR_INVALID);
	assert_non_null(strstr(err_msg(), "not built into"));
#endif
}

/* A provider event is taken in once per provider; a rolled-back batch
 * forgets its events, so the provider's retry is taken in then. */
static void test_a_provider_event_is_taken_in_once_and_a_rollback_forgets_it(void **state)
{
	struct fixture *f = *state;
	uint8_t a[32], b[32];
	hash_of(a, 7);
	hash_of(b, 8);
	assert_int_equal(store_begin(f->w), 0);
	assert_int_equal(store_provider_event_once(f->w, "sendgrid", a, 100), 1);
	assert_int_equal(store_provider_event_once(f->w, "sendgrid", a, 200), 0);
	assert_int_equal(store_provider_event_once(f->w, "mailgun", a, 200), 1);
	assert_int_equal(store_commit(f->w), 0);
	assert_int_equal(store_begin(f->w), 0);
	assert_int_equal(store_provider_event_once(f->w, "sendgrid", a, 300), 0);
	assert_int_equal(store_provider_event_once(f->w, "sendgrid", b, 300), 1);
	assert_int_equal(store_rollback(f->w), 0);
	assert_int_equal(store_begin(f->w), 0);
	assert_int_equal(store_provider_event_once(f->w, "sendgrid", b, 400), 1);
	assert_int_equal(store_commit(f->w), 0);
}

/* Outbound webhooks: an outbox row fans out to the enabled subscribers of
 * its type only, in the caller's transaction (a rollback queues nothing);
 * the version counts per contact; due deliveries come oldest event first
 * with their body; a recorded attempt, a retry, a disable and a delete
 * behave as store.h says. */
static int collect_delivery(void *ctx, const struct store_delivery *d)
{
	struct store_delivery *out = ctx;
	size_t i = 0;
	while (out[i].id[0] != '\0')
		i++;
	if (i >= 7)
		return 0;
	out[i] = *d;
	out[i].body = NULL;
	out[i].personal = NULL;
	if (d->body != NULL)
		assert_non_null(strstr(d->body, "\"type\""));
	return 0;
}

static void endpoint(struct store_webhook *w, const char *id, const char *events)
{
	memset(w, 0, sizeof *w);
	snprintf(w->id, sizeof w->id, "%s", id);
	snprintf(w->url, sizeof w->url, "https://example.org/%s", id);
	snprintf(w->events, sizeof w->events, "%s", events);
	snprintf(w->role, sizeof w->role, "marketing");
	w->key_version = 1;
	w->wrapped_len = 61;
	memset(w->wrapped_key, 0xaa, w->wrapped_len);
	w->secret_len = 67;
	memset(w->secret, 0xbb, w->secret_len);
	w->created_us = 10;
}

static void test_the_outbox_fans_out_in_the_transaction_and_deliveries_follow_their_states(void **state)
{
	struct fixture *f = *state;
	struct store_webhook a, b, got;
	struct store_delivery due[8];
	int64_t n = -1, v = 0, pending = 0, oldest = 0;
	const uint8_t sealed[4] = { 1, 2, 3, 4 };
	endpoint(&a, "AAAAAAAAAAAAAAAAAAAAAA", "consent.changed,contact.erased");
	endpoint(&b, "BBBBBBBBBBBBBBBBBBBBBB", "suppression.added");
	assert_int_equal(store_begin(f->w), 0);
	assert_int_equal(store_webhook_insert(f->w, &a), 0);
	assert_int_equal(store_webhook_insert(f->w, &b), 0);
	assert_int_equal(store_commit(f->w), 0);
	assert_int_equal(store_webhook_get(f->r, a.id, &got), 0);
	assert_string_equal(got.url, a.url);
	assert_int_equal(got.secret_len, a.secret_len);
	assert_memory_equal(got.secret, a.secret, a.secret_len);
	assert_int_equal(store_webhooks_each(f->r, NULL, NULL, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(store_webhook_subscribers(f->r, "consent.changed", &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(store_webhook_subscribers(f->r, "consent", &n), 0);
	assert_int_equal(n, 0); /* whole names only */

	/* A rolled-back event queues nothing. */
	assert_int_equal(store_begin(f->w), 0);
	assert_int_equal(store_outbox_add(f->w, "consent.changed", "c1", 1, "{\"type\":1}", NULL, 0, 100, &n),
			 0);
	assert_int_equal(n, 1);
	assert_int_equal(store_rollback(f->w), 0);
	assert_int_equal(store_outbox_stats(f->r, &pending, &oldest), 0);
	assert_int_equal(pending, 0);

	assert_int_equal(store_begin(f->w), 0);
	assert_int_equal(store_outbox_next_version(f->w, "c1", &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(store_outbox_add(f->w, "consent.changed", "c1", v, "{\"type\":1}", sealed,
					  sizeof sealed, 100, &n),
			 0);
	assert_int_equal(store_outbox_next_version(f->w, "c1", &v), 0);
	assert_int_equal(v, 2);
	assert_int_equal(store_outbox_add(f->w, "contact.erased", "c1", v, "{\"type\":2}", NULL, 0, 200, &n),
			 0);
	assert_int_equal(store_outbox_add(f->w, "suppression.added", "", 0, "{\"type\":3}", NULL, 0, 300, &n),
			 0);
	assert_int_equal(n, 1);
	assert_int_equal(store_commit(f->w), 0);
	assert_int_equal(store_outbox_next_version(f->r, "c2", &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(store_outbox_stats(f->r, &pending, &oldest), 0);
	assert_int_equal(pending, 3);
	assert_int_equal(oldest, 100);

	memset(due, 0, sizeof due);
	assert_int_equal(store_deliveries_due(f->r, 250, 10, collect_delivery, due), 0);
	assert_string_equal(due[0].type, "consent.changed");
	assert_string_equal(due[1].type, "contact.erased");
	assert_string_equal(due[2].id, ""); /* the third is due at 300 */
	assert_string_equal(due[0].endpoint_id, a.id);
	assert_string_equal(due[0].contact_id, "c1");
	assert_int_equal(due[0].personal_len, sizeof sealed);
	assert_int_equal(due[1].personal_len, 0);

	/* An erasure drops the sealed values of the contact's events. */
	assert_int_equal(store_begin(f->w), 0);
	assert_int_equal(store_outbox_forget_personal(f->w, "c1"), 0);
	assert_int_equal(store_commit(f->w), 0);
	memset(due, 0, sizeof due);
	assert_int_equal(store_deliveries_due(f->r, 250, 10, collect_delivery, due), 0);
	assert_int_equal(due[0].personal_len, 0);

	struct store_delivery d = due[0];
	snprintf(d.state, sizeof d.state, "delivered");
	d.attempts = 1;
	d.last_us = 260;
	d.last_status = 200;
	assert_int_equal(store_begin(f->w), 0);
	assert_int_equal(store_delivery_record(f->w, &d), 0);
	assert_int_equal(store_delivery_retry(f->w, a.id, "msg_none", 270), ERR_NOTFOUND);
	assert_int_equal(store_delivery_retry(f->w, b.id, d.id, 270), ERR_NOTFOUND); /* not b's */
	assert_int_equal(store_webhook_disable(f->w, b.id, 280, "gone"), 0);
	assert_int_equal(store_commit(f->w), 0);
	memset(due, 0, sizeof due);
	assert_int_equal(store_deliveries_each(f->r, a.id, 10, collect_delivery, due), 0);
	assert_string_equal(due[0].type, "contact.erased"); /* newest first */
	assert_string_equal(due[1].state, "delivered");
	assert_int_equal(due[1].last_status, 200);
	memset(due, 0, sizeof due);
	assert_int_equal(store_deliveries_each(f->r, b.id, 10, collect_delivery, due), 0);
	assert_string_equal(due[0].state, "failed");
	assert_string_equal(due[0].last_error, "gone");
	assert_int_equal(store_webhook_subscribers(f->r, "suppression.added", &n), 0);
	assert_int_equal(n, 0);

	assert_int_equal(store_begin(f->w), 0);
	assert_int_equal(store_webhook_delete(f->w, a.id, 400), 0);
	assert_int_equal(store_webhook_delete(f->w, a.id, 400), ERR_NOTFOUND);
	assert_int_equal(store_commit(f->w), 0);
	assert_int_equal(store_webhook_get(f->r, a.id, &got), ERR_NOTFOUND);
	assert_int_equal(store_outbox_stats(f->r, &pending, &oldest), 0);
	assert_int_equal(pending, 0);
}

/* Due deliveries come round robin over the endpoints: one endpoint's
 * backlog cannot keep another's events out of a batch. */
static void test_one_endpoints_backlog_does_not_fill_the_due_batch(void **state)
{
	struct fixture *f = *state;
	struct store_webhook a, b;
	struct store_delivery due[8];
	int64_t n = 0;
	endpoint(&a, "AAAAAAAAAAAAAAAAAAAAAA", "consent.changed");
	endpoint(&b, "BBBBBBBBBBBBBBBBBBBBBB", "suppression.added");
	assert_int_equal(store_begin(f->w), 0);
	assert_int_equal(store_webhook_insert(f->w, &a), 0);
	assert_int_equal(store_webhook_insert(f->w, &b), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(store_outbox_add(f->w, "consent.changed", "", 0, "{\"type\":1}", NULL, 0,
						  100 + i, &n),
				 0);
	assert_int_equal(store_outbox_add(f->w, "suppression.added", "", 0, "{\"type\":2}", NULL, 0, 200, &n),
			 0);
	assert_int_equal(store_commit(f->w), 0);
	memset(due, 0, sizeof due);
	assert_int_equal(store_deliveries_due(f->r, 300, 2, collect_delivery, due), 0);
	assert_string_equal(due[0].endpoint_id, a.id);
	assert_int_equal(due[0].created_us, 100);
	assert_string_equal(due[1].endpoint_id, b.id);
	memset(due, 0, sizeof due);
	assert_int_equal(store_deliveries_due(f->r, 300, 8, collect_delivery, due), 0);
	assert_int_equal(due[2].created_us, 101); /* then each endpoint's next, oldest first */
	assert_int_equal(due[3].created_us, 102);
}

/* ---- key check values and the pool --------------------------------------- */

/* ---- claims across instances ---------------------------------------- */

/* A second store on the same database with its own writer connection: what
 * a second instance holds. */
static void second_writer(struct fixture *f, struct store **st, struct store_conn **w)
{
	const char *loc = getenv("CONSENTD_STORE_TEST_LOCATION");
	char path[128];
	if (loc != NULL && loc[0] != '\0')
		snprintf(path, sizeof path, "%s", loc);
	else
		snprintf(path, sizeof path, "%s/t.db", f->dir);
	assert_int_equal(store_open(st, path), 0);
	assert_int_equal(store_writer_open(*st, w), 0);
}

static size_t claim_mail(struct store_conn *w, const char *owner, int64_t now, int64_t until,
			 struct mail_seen *seen)
{
	memset(seen, 0, sizeof *seen);
	assert_int_equal(store_begin(w), 0);
	assert_int_equal(store_mail_claim(w, owner, 10, now, until, mail_collect, seen), 0);
	assert_int_equal(store_commit(w), 0);
	return seen->n;
}

static void test_a_mail_claim_is_one_instances_until_it_is_marked_released_or_runs_out(void **state)
{
	struct fixture *f = *state;
	struct store *st2 = NULL;
	struct store_conn *w2 = NULL;
	struct mail_seen seen;
	struct store_mail a = mail("m-a", 100), b = mail("m-b", 200);
	assert_int_equal(store_begin(f->w), 0);
	assert_int_equal(store_mail_put(f->w, &a), 0);
	assert_int_equal(store_mail_put(f->w, &b), 0);
	assert_int_equal(store_commit(f->w), 0);
	second_writer(f, &st2, &w2);

	/* Instance A claims both; B, a moment later, gets none. A itself,
	 * restarted, takes its own claims up again. */
	assert_int_equal(claim_mail(f->w, "A", 1000, 5000, &seen), 2);
	assert_string_equal(seen.ids[0], "m-a");
	assert_int_equal(claim_mail(w2, "B", 2000, 6000, &seen), 0);
	assert_int_equal(claim_mail(f->w, "A", 2000, 5000, &seen), 2);
	/* A sends m-a and dies holding m-b: when its claim runs out, B takes
	 * m-b, and only m-b. */
	assert_int_equal(store_begin(f->w), 0);
	assert_int_equal(store_mail_mark(f->w, "m-a", STORE_MAIL_SENT, 2500), 0);
	assert_int_equal(store_commit(f->w), 0);
	assert_int_equal(claim_mail(w2, "B", 5000, 9000, &seen), 0); /* until 5000 still runs at 5000 */
	assert_int_equal(claim_mail(w2, "B", 5001, 9000, &seen), 1);
	assert_string_equal(seen.ids[0], "m-b");
	/* A's release cannot free B's claim; B's own release does. */
	assert_int_equal(store_begin(f->w), 0);
	assert_int_equal(store_mail_release(f->w, "A"), 0);
	assert_int_equal(store_commit(f->w), 0);
	assert_int_equal(claim_mail(f->w, "A", 5002, 9000, &seen), 0);
	assert_int_equal(store_begin(w2), 0);
	assert_int_equal(store_mail_release(w2, "B"), 0);
	assert_int_equal(store_commit(w2), 0);
	assert_int_equal(claim_mail(f->w, "A", 5003, 9000, &seen), 1);
	/* A retry mark ends the claim too: due again later, claimable by B. */
	assert_int_equal(store_begin(f->w), 0);
	assert_int_equal(store_mail_mark(f->w, "m-b", STORE_MAIL_RETRY, 6000), 0);
	assert_int_equal(store_commit(f->w), 0);
	assert_int_equal(claim_mail(w2, "B", 6000, 9000, &seen), 1);
	assert_int_equal(seen.attempts[0], 1);
	/* A rolled-back claim took nothing. */
	assert_int_equal(store_begin(w2), 0);
	assert_int_equal(store_mail_release(w2, "B"), 0);
	assert_int_equal(store_commit(w2), 0);
	assert_int_equal(store_begin(f->w), 0);
	memset(&seen, 0, sizeof seen);
	assert_int_equal(store_mail_claim(f->w, "A", 10, 7000, 9000, mail_collect, &seen), 0);
	assert_int_equal(seen.n, 1);
	assert_int_equal(store_rollback(f->w), 0);
	assert_int_equal(claim_mail(w2, "B", 7000, 9000, &seen), 1);
	store_conn_free(w2);
	store_close(st2);
}

static int claim_endpoint(struct store_conn *w, const char *id, const char *owner, int64_t now, int64_t until)
{
	assert_int_equal(store_begin(w), 0);
	int rc = store_webhook_claim(w, id, owner, now, until);
	assert_int_equal(store_commit(w), 0);
	return rc;
}

static void release_endpoint(struct store_conn *w, const char *id, const char *owner)
{
	assert_int_equal(store_begin(w), 0);
	assert_int_equal(store_webhook_release(w, id, owner), 0);
	assert_int_equal(store_commit(w), 0);
}

static void test_an_endpoint_claim_is_one_instances_until_it_is_released_or_runs_out(void **state)
{
	struct fixture *f = *state;
	struct store *st2 = NULL;
	struct store_conn *w2 = NULL;
	struct store_webhook a;
	const char *id = "AAAAAAAAAAAAAAAAAAAAAA";
	endpoint(&a, id, "consent.changed");
	assert_int_equal(store_begin(f->w), 0);
	assert_int_equal(store_webhook_insert(f->w, &a), 0);
	assert_int_equal(store_commit(f->w), 0);
	second_writer(f, &st2, &w2);

	assert_int_equal(claim_endpoint(f->w, id, "A", 1000, 5000), 0);
	assert_int_equal(claim_endpoint(w2, id, "B", 2000, 6000), ERR_CONFLICT);
	assert_int_equal(claim_endpoint(f->w, id, "A", 3000, 5000), 0); /* its own: extended */
	release_endpoint(w2, id, "B");					/* not B's to release */
	assert_int_equal(claim_endpoint(w2, id, "B", 5000, 9000), ERR_CONFLICT);
	/* A was killed: its claim runs out and B takes the endpoint. */
	assert_int_equal(claim_endpoint(w2, id, "B", 5001, 9000), 0);
	assert_int_equal(claim_endpoint(f->w, id, "A", 5002, 9000), ERR_CONFLICT);
	release_endpoint(w2, id, "B");
	assert_int_equal(claim_endpoint(f->w, id, "A", 5003, 9000), 0);
	assert_int_equal(claim_endpoint(f->w, "ZZZZZZZZZZZZZZZZZZZZZZ", "A", 5003, 9000), ERR_NOTFOUND);
	store_conn_free(w2);
	store_close(st2);
}

static void test_a_form_value_is_spent_once_for_every_connection_until_it_expires(void **state)
{
	struct fixture *f = *state;
	struct store *st2 = NULL;
	struct store_conn *w2 = NULL;
	const uint8_t k1[28] = { 1, 2, 3 }, k2[28] = { 9, 9, 9 };
	bool spent = true;
	assert_int_equal(store_form_nonce_spent(f->r, k1, sizeof k1, 1000, &spent), 0);
	assert_false(spent);
	assert_int_equal(store_begin(f->w), 0);
	assert_int_equal(store_form_nonce_spend(f->w, k1, sizeof k1, 1000, 5000), 0);
	assert_int_equal(store_form_nonce_spend(f->w, k1, sizeof k1, 1000, 5000), ERR_CONFLICT);
	assert_int_equal(store_commit(f->w), 0);
	assert_int_equal(store_form_nonce_spent(f->r, k1, sizeof k1, 1000, &spent), 0);
	assert_true(spent);
	assert_int_equal(store_form_nonce_spent(f->r, k2, sizeof k2, 1000, &spent), 0);
	assert_false(spent);
	/* Spent through one instance is spent for the other. */
	second_writer(f, &st2, &w2);
	assert_int_equal(store_begin(w2), 0);
	assert_int_equal(store_form_nonce_spend(w2, k1, sizeof k1, 2000, 5000), ERR_CONFLICT);
	assert_int_equal(store_rollback(w2), 0);
	/* A rolled-back spend leaves the value unspent. */
	assert_int_equal(store_begin(w2), 0);
	assert_int_equal(store_form_nonce_spend(w2, k2, sizeof k2, 2000, 5000), 0);
	assert_int_equal(store_rollback(w2), 0);
	assert_int_equal(store_form_nonce_spent(f->r, k2, sizeof k2, 2000, &spent), 0);
	assert_false(spent);
	/* Past its expiry it is swept (the form check refuses it by then). */
	assert_int_equal(store_begin(w2), 0);
	assert_int_equal(store_form_nonce_spend(w2, k2, sizeof k2, 6000, 9000), 0);
	assert_int_equal(store_form_nonce_spend(w2, k1, sizeof k1, 6000, 9000), 0);
	assert_int_equal(store_commit(w2), 0);
	assert_int_equal(store_begin(w2), 0);
	assert_int_equal(store_form_nonce_spend(w2, k1, 0, 6000, 9000), ERR_INVALID);
	assert_int_equal(store_rollback(w2), 0);
	store_conn_free(w2);
	store_close(st2);
}

static void test_a_key_check_value_is_recorded_once_and_never_replaced(void **state)
{
	struct fixture *f = *state;
	uint8_t a[32], b[32], got[32];
	hash_of(a, 1);
	hash_of(b, 2);
	assert_int_equal(store_key_check_get(f->r, "index", got), ERR_NOTFOUND);
	assert_int_equal(store_key_check_add(f->r, "index", a), 0);
	assert_int_equal(store_key_check_get(f->r, "index", got), 0);
	assert_memory_equal(got, a, 32);
	/* A second add (another instance, another key) leaves the first. */
	assert_int_equal(store_key_check_add(f->r, "index", b), 0);
	assert_int_equal(store_key_check_get(f->r, "index", got), 0);
	assert_memory_equal(got, a, 32);
	assert_int_equal(store_key_check_get(f->r, "master-v1", got), ERR_NOTFOUND);
}

struct giver {
	struct store *st;
	struct store_conn *c;
};

static void *give_back_later(void *arg)
{
	struct giver *g = arg;
	usleep(300 * 1000);
	store_conn_put(g->st, g->c);
	return NULL;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* PostgreSQL only (SQLite has no pool to size): an exhausted pool waits a
 * bounded time for a connection to come back, then fails unavailable. */
static void test_an_exhausted_pool_waits_for_a_connection_then_is_unavailable(void **state)
{
	struct fixture *f = *state;
	const char *loc = getenv("CONSENTD_STORE_TEST_LOCATION");
	if (loc == NULL || strstr(loc, "://") == NULL)
		skip();
	struct store_conn *c2 = NULL, *c3 = NULL;
	assert_int_equal(store_set_pool_size(f->st, 1), ERR_INVALID);
	assert_int_equal(store_set_pool_size(f->st, 257), ERR_INVALID);
	/* The writer and the fixture's reader are two; a third fits. */
	assert_int_equal(store_set_pool_size(f->st, 3), 0);
	assert_int_equal(store_conn_get(f->st, &c2), 0);
	int64_t t0 = mono_ms();
	assert_int_equal(store_conn_get(f->st, &c3), ERR_UNAVAILABLE);
	int64_t waited = mono_ms() - t0;
	assert_true(waited >= LIMIT_PG_POOL_WAIT_MS - 50 && waited < LIMIT_PG_POOL_WAIT_MS + 2000);
	/* One that comes back within the wait is handed on. */
	struct giver g = { f->st, c2 };
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, give_back_later, &g), 0);
	t0 = mono_ms();
	assert_int_equal(store_conn_get(f->st, &c3), 0);
	waited = mono_ms() - t0;
	pthread_join(t, NULL);
	assert_true(waited >= 250 && waited < LIMIT_PG_POOL_WAIT_MS);
	store_conn_put(f->st, c3);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_commit_keeps_and_rollback_drops_every_write),
		T(test_rollback_to_a_savepoint_undoes_only_what_came_after_it),
		T(test_readers_see_committed_data_only),
		T(test_a_duplicate_email_is_a_conflict_and_the_transaction_goes_on),
		T(test_a_batched_contact_insert_reports_each_duplicate_and_stores_the_rest),
		T(test_batched_fields_are_stored_as_single_puts_would_leave_them),
		T(test_batched_consents_keep_the_history_order_and_the_last_current_state),
		T(test_batched_suppressions_are_added_once_as_single_adds_would),
		T(test_a_contact_comes_back_as_stored_and_erasure_leaves_a_tombstone),
		T(test_suppressions_are_listed_oldest_first_and_added_once),
		T(test_consent_history_keeps_every_event_in_order),
		T(test_audit_entries_come_back_byte_for_byte_in_seq_order),
		T(test_an_audit_append_out_of_sequence_fails),
		T(test_checkpoints_come_back_in_size_order),
		T(test_a_cursor_sees_what_committed_between_its_open_and_its_first_read),
		T(test_a_suppression_matches_exactly_the_keys_it_is_asked_for),
		T(test_a_batched_filter_lookup_answers_like_single_ones),
		T(test_a_provider_event_is_taken_in_once_and_a_rollback_forgets_it),
		T(test_the_release_log_counts_newest_first_within_the_window),
		T(test_release_times_are_newest_first_and_bounded),
		T(test_a_frequency_choice_is_replaced_not_added),
		T(test_queued_mail_is_pending_oldest_first_until_sent_and_a_rollback_drops_it),
		T(test_a_confirmation_is_kept_and_confirms_once),
		T(test_a_request_moves_once_per_version_and_lists_by_due_date),
		T(test_the_outbox_fans_out_in_the_transaction_and_deliveries_follow_their_states),
		T(test_one_endpoints_backlog_does_not_fill_the_due_batch),
		T(test_a_mail_claim_is_one_instances_until_it_is_marked_released_or_runs_out),
		T(test_an_endpoint_claim_is_one_instances_until_it_is_released_or_runs_out),
		T(test_a_form_value_is_spent_once_for_every_connection_until_it_expires),
		T(test_a_key_check_value_is_recorded_once_and_never_replaced),
		T(test_an_exhausted_pool_waits_for_a_connection_then_is_unavailable),
		T(test_an_entry_the_backend_lacks_is_an_error_naming_it),
		T(test_every_later_entry_the_backend_lacks_is_an_error_too),
		cmocka_unit_test(test_an_unreachable_postgresql_server_is_unavailable),
	};
#undef T
	return cmocka_run_group_tests_name("store_conformance", tests, NULL, NULL);
}
