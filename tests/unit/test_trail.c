/* test_trail: the auditor's reads (service/domain/trail.c) and the console
 * session rules (service/domain/console_session.c) on a real SQLite file,
 * a real keyring and a real signing key in a temporary folder (removed afterwards). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "audit/checkpoint.h"
#include "policy/policy.h"
#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/base/limits.h"
#include "service/crypto/fieldcrypt.h"
#include "service/domain/console_session.h"
#include "service/domain/contact.h"
#include "service/domain/release.h"
#include "service/domain/trail.h"
#include "service/store/store.h"
#include "tests/unit/fixture.h"

#define S INT64_C(1000000)
#define T (INT64_C(1767225600) * S) /* 2026-01-01T00:00:00Z */

static struct store *st;
static struct store_conn *w, *r;
static struct keyring *kr;
static struct policy *pol;
static char keyfile[PATH_MAX + 16], pubfile[PATH_MAX + 16];
static int64_t last_seq;
static uint8_t last_hash[AUDIT_HASH_BYTES];

static struct fixture_domain fx;

static int setup(void **state)
{
	(void)state;
	struct audit_signer *sg = NULL;
	if (fixture_domain_open(&fx) != 0)
		return -1;
	st = fx.s.st;
	w = fx.s.w;
	r = fx.s.r;
	kr = fx.kr;
	pol = fx.pol;
	snprintf(keyfile, sizeof keyfile, "%s/audit.key", fx.s.dir);
	snprintf(pubfile, sizeof pubfile, "%s/audit.pub", fx.s.dir);
	if (audit_signer_generate_file(keyfile) != 0 || audit_signer_load(&sg, keyfile) != 0 ||
	    audit_signer_save_public(sg, pubfile) != 0)
		return -1;
	audit_signer_free(sg);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fixture_domain_close(&fx);
	return 0;
}

static struct txn txn_on(struct store_conn *c, int64_t now)
{
	struct txn t = { c, kr, pol, now };
	return t;
}

/* Appends an entry linked to the one before it (or, with broken, linked to
 * nothing), as the writer would. */
static int64_t append(const char *action, const char *decision, const char *detail, bool broken)
{
	struct audit_entry e;
	memset(&e, 0, sizeof e);
	e.seq = ++last_seq;
	e.time_us = T + e.seq * S;
	snprintf(e.actor, sizeof e.actor, "alice");
	snprintf(e.role, sizeof e.role, "marketing");
	snprintf(e.action, sizeof e.action, "%s", action);
	snprintf(e.decision, sizeof e.decision, "%s", decision);
	snprintf(e.detail, sizeof e.detail, "%s", detail);
	memcpy(e.prev_hash, last_hash, sizeof e.prev_hash);
	if (broken)
		e.prev_hash[0] ^= 1;
	assert_int_equal(audit_entry_hash(NULL, &e, e.hash), 0);
	assert_int_equal(store_audit_append(w, &e), 0);
	memcpy(last_hash, e.hash, sizeof last_hash);
	return e.seq;
}

static struct store_console_session session_at(uint8_t tag, int64_t created, int64_t seen)
{
	struct store_console_session s;
	memset(&s, 0, sizeof s);
	memset(s.id_hash, tag, sizeof s.id_hash);
	memset(s.token_hash, 0x55, sizeof s.token_hash);
	snprintf(s.actor, sizeof s.actor, "auditor");
	snprintf(s.role, sizeof s.role, "auditor");
	snprintf(s.csrf, sizeof s.csrf, "csrf-%u", tag);
	s.created_us = created;
	s.seen_us = seen;
	return s;
}

/* A session lives while used within the idle limit and younger than the
 * absolute one; an ended session reads as no session at all. */
static void test_an_ended_console_session_reads_as_none(void **state)
{
	(void)state;
	struct store_console_session s = session_at(1, T, T), got;
	struct txn tw = txn_on(w, T);
	assert_int_equal(console_session_start(&tw, &s), 0);
	struct txn rt = txn_on(r, T + 60 * S);
	assert_int_equal(console_session_load(&rt, s.id_hash, &got), 0);
	assert_string_equal(got.csrf, "csrf-1");
	/* Idle past the limit: ended. */
	rt.now_us = T + (int64_t)CONSOLE_IDLE_SECONDS * S;
	assert_int_equal(console_session_load(&rt, s.id_hash, &got), ERR_NOTFOUND);
	/* A use in time keeps it alive ... */
	tw.now_us = T + (int64_t)(CONSOLE_IDLE_SECONDS - 60) * S;
	assert_int_equal(console_session_touch(&tw, s.id_hash), 0);
	assert_int_equal(console_session_load(&rt, s.id_hash, &got), 0);
	/* ... but never past the absolute limit, however recent the use. */
	tw.now_us = T + (int64_t)(CONSOLE_ABSOLUTE_SECONDS - 1) * S;
	assert_int_equal(console_session_touch(&tw, s.id_hash), 0);
	rt.now_us = T + (int64_t)CONSOLE_ABSOLUTE_SECONDS * S;
	assert_int_equal(console_session_load(&rt, s.id_hash, &got), ERR_NOTFOUND);
	/* A clock before the session began is no licence either. */
	rt.now_us = T - S;
	assert_int_equal(console_session_load(&rt, s.id_hash, &got), ERR_NOTFOUND);
}

/* A new sign-in sweeps the rows of ended sessions; sign-out deletes. */
static void test_sign_in_sweeps_ended_sessions_and_sign_out_ends_one(void **state)
{
	(void)state;
	int64_t now = T + INT64_C(86400) * S;
	struct store_console_session old = session_at(2, T, T), live = session_at(3, now, now), got;
	struct txn tw = txn_on(w, T);
	assert_int_equal(console_session_start(&tw, &old), 0);
	tw.now_us = now;
	assert_int_equal(console_session_start(&tw, &live), 0);
	assert_int_equal(store_console_session_get(r, old.id_hash, &got), ERR_NOTFOUND); /* swept */
	struct txn rt = txn_on(r, now + S);
	assert_int_equal(console_session_load(&rt, live.id_hash, &got), 0);
	assert_int_equal(console_session_end(&tw, live.id_hash), 0);
	assert_int_equal(console_session_load(&rt, live.id_hash, &got), ERR_NOTFOUND);
}

/* One entry with its link: intact, broken, and absent. */
static void test_an_entry_shows_whether_its_hash_link_holds(void **state)
{
	(void)state;
	struct audit_entry *e = calloc(1, sizeof *e);
	bool linked = true;
	assert_non_null(e);
	int64_t a = append("contacts.read", "allow", "", false);
	int64_t b = append("contacts.read", "allow", "", false);
	int64_t c = append("contacts.read", "allow", "", true);
	struct txn rt = txn_on(r, T);
	assert_int_equal(trail_entry(&rt, a, e, &linked), 0);
	assert_true(linked);
	assert_int_equal(trail_entry(&rt, b, e, &linked), 0);
	assert_true(linked);
	assert_int_equal(e->seq, b);
	assert_int_equal(trail_entry(&rt, c, e, &linked), 0);
	assert_false(linked);
	assert_int_equal(trail_entry(&rt, c + 100, e, &linked), ERR_NOTFOUND);
	assert_false(linked);
	assert_int_equal(trail_entry(&rt, 0, e, &linked), ERR_NOTFOUND);
	free(e);
}

static void make_contact(const char *json, char id[STORE_ID_CAP])
{
	struct contact_new c;
	struct txn t = txn_on(w, T);
	json_t *b = json_loads(json, 0, NULL);
	assert_non_null(b);
	assert_int_equal(contact_new_prepare(&t, b, NULL, "api", &c), 0);
	assert_int_equal(contact_new_insert(&t, &c), 0);
	snprintf(id, STORE_ID_CAP, "%s", c.ct.id);
	contact_new_clear(&c);
	json_decref(b);
}

/* An email or phone becomes contact ids through the blind index only. */
static void test_search_by_identifier_goes_through_the_blind_index(void **state)
{
	(void)state;
	char a[STORE_ID_CAP], b[STORE_ID_CAP], ids[4][STORE_ID_CAP];
	size_t n = 9;
	bool more = true;
	make_contact(
		"{\"email\":\"dora@example.org\",\"phone\":\"+44 20 7946 0001\",\"collected_for\":[\"service\"]}",
		a);
	make_contact(
		"{\"email\":\"ed@example.org\",\"phone\":\"+44 20 7946 0001\",\"collected_for\":[\"service\"]}",
		b);
	struct txn rt = txn_on(r, T);
	/* The address is normalised first, like GET /v1/contacts?email=. */
	assert_int_equal(trail_find_contacts(&rt, "Dora@Example.org", NULL, ids, 4, &n, &more), 0);
	assert_int_equal(n, 1);
	assert_false(more);
	assert_string_equal(ids[0], a);
	assert_int_equal(trail_find_contacts(&rt, "nobody@example.org", NULL, ids, 4, &n, &more), 0);
	assert_int_equal(n, 0);
	/* A shared phone lists every holder, up to the cap. */
	assert_int_equal(trail_find_contacts(&rt, NULL, "+44 20 7946 0001", ids, 4, &n, &more), 0);
	assert_int_equal(n, 2);
	assert_true((strcmp(ids[0], a) == 0 && strcmp(ids[1], b) == 0) ||
		    (strcmp(ids[0], b) == 0 && strcmp(ids[1], a) == 0));
	assert_int_equal(trail_find_contacts(&rt, NULL, "+44 20 7946 0001", ids, 1, &n, &more), 0);
	assert_int_equal(n, 1);
	assert_true(more);
	/* What does not normalise, or both or neither, is refused. */
	assert_int_equal(trail_find_contacts(&rt, "not an address", NULL, ids, 4, &n, &more), ERR_INVALID);
	assert_int_equal(trail_find_contacts(&rt, NULL, "12", ids, 4, &n, &more), ERR_INVALID);
	assert_int_equal(trail_find_contacts(&rt, "dora@example.org", "+44 20 7946 0001", ids, 4, &n, &more),
			 ERR_INVALID);
	assert_int_equal(trail_find_contacts(&rt, NULL, NULL, ids, 4, &n, &more), ERR_INVALID);
}

static int count_reach(void *arg, const struct audit_entry *e)
{
	int64_t *seqs = arg;
	seqs[++seqs[0]] = e->seq;
	return 0;
}

/* Campaign reach: only allowed filter requests whose release holds the
 * person count; a denial or another release does not. */
static void test_campaign_reach_counts_only_releases_that_hold_the_person(void **state)
{
	(void)state;
	const char *id = "AAAAAAAAAAAAAAAAAAAAAA", *other = "BBBBBBBBBBBBBBBBBBBBBA";
	uint8_t raw[16];
	int64_t seqs[8] = { 0 };
	bool more = true;
	assert_int_equal(b64url_decode(id, strlen(id), raw, sizeof raw), 16);
	struct txn tw = txn_on(w, T);
	assert_int_equal(release_put(&tw, "rel-in", 0, raw, 1), 0);
	int64_t hit = append("outreach.filter", "allow", "{\"release_id\":\"rel-in\"}", false);
	append("outreach.filter", "allow", "{\"release_id\":\"rel-out\"}", false);
	append("outreach.filter", "deny", "{\"release_id\":\"rel-in\"}", false);
	append("outreach.filter", "allow", "not json", false);
	struct txn rt = txn_on(r, T);
	assert_int_equal(trail_reach_each(&rt, id, count_reach, seqs, &more), 0);
	assert_false(more);
	assert_int_equal(seqs[0], 1);
	assert_int_equal(seqs[1], hit);
	seqs[0] = 0;
	assert_int_equal(trail_reach_each(&rt, other, count_reach, seqs, &more), 0);
	assert_int_equal(seqs[0], 0);
	assert_int_equal(trail_reach_each(&rt, "short", count_reach, seqs, &more), ERR_INVALID);
}

/* The evidence pack's checkpoint: none yet, then one whose signature holds
 * under the public key; a forged one is refused. */
static void test_the_evidence_checkpoint_is_the_newest_signed_one(void **state)
{
	(void)state;
	struct audit_checkpoint cp, got;
	struct audit_signer *sg = NULL;
	struct txn rt = txn_on(r, T);
	assert_int_equal(trail_evidence_checkpoint(&rt, pubfile, &got), ERR_NOTFOUND);
	int64_t seq = append("contacts.read", "allow", "", false);
	memset(&cp, 0, sizeof cp);
	cp.size = seq;
	memcpy(cp.root, last_hash, sizeof cp.root);
	cp.time_us = T;
	assert_int_equal(audit_signer_load(&sg, keyfile), 0);
	assert_int_equal(audit_checkpoint_sign(sg, &cp), 0);
	assert_int_equal(store_checkpoint_append(w, &cp), 0);
	assert_int_equal(trail_evidence_checkpoint(&rt, pubfile, &got), 0);
	assert_int_equal(got.size, seq);
	/* A newer checkpoint with a bad signature is not evidence. */
	seq = append("contacts.read", "allow", "", false);
	cp.size = seq;
	memcpy(cp.root, last_hash, sizeof cp.root);
	assert_int_equal(store_checkpoint_append(w, &cp), 0);
	assert_true(trail_evidence_checkpoint(&rt, pubfile, &got) != 0);
	audit_signer_free(sg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_an_ended_console_session_reads_as_none),
		cmocka_unit_test(test_sign_in_sweeps_ended_sessions_and_sign_out_ends_one),
		cmocka_unit_test(test_an_entry_shows_whether_its_hash_link_holds),
		cmocka_unit_test(test_search_by_identifier_goes_through_the_blind_index),
		cmocka_unit_test(test_campaign_reach_counts_only_releases_that_hold_the_person),
		cmocka_unit_test(test_the_evidence_checkpoint_is_the_newest_signed_one),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
