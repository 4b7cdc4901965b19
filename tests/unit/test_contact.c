/* test_contact: the contact domain (service/domain/contact.c) with a real
 * keyring, the example policy and a real SQLite file in a temporary folder (removed afterwards): the one
 * creation path that the API and the import share, and erasure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"
#include "service/base/error.h"
#include "service/crypto/fieldcrypt.h"
#include "service/domain/consent.h"
#include "service/domain/contact.h"
#include "service/domain/suppression.h"
#include "service/store/store.h"
#include "tests/unit/fixture.h"

static struct store *st;
static struct store_conn *w, *r;
static struct keyring *kr;
static struct policy *pol;
static struct fixture_domain fx;

static int setup(void **state)
{
	(void)state;
	if (fixture_domain_open(&fx) != 0)
		return -1;
	st = fx.s.st;
	w = fx.s.w;
	r = fx.s.r;
	kr = fx.kr;
	pol = fx.pol;
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

static json_t *body(const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, 0, &e);
	assert_non_null(j);
	return j;
}

static void test_a_created_contact_is_stored_sealed_and_found_by_email(void **state)
{
	(void)state;
	struct contact_new c;
	struct txn t = txn_on(w, 1000);
	json_t *b =
		body("{\"email\":\"Alice@Example.org\",\"name\":\"Alice\",\"collected_for\":[\"service\"]}");
	assert_int_equal(contact_new_prepare(&t, b, NULL, "api", &c), 0);
	assert_string_equal(c.ct.source, "api");
	assert_int_equal(c.n_fields, 2);
	assert_string_equal(c.field_names, "email,name");
	/* Nothing plaintext leaves the domain: the sealed value is not the text. */
	for (size_t i = 0; i < c.n_fields; i++)
		assert_null(memmem(c.fields[i].sealed, c.fields[i].len, "Alice", 5));
	assert_int_equal(contact_new_insert(&t, &c), 0);
	char id[STORE_ID_CAP];
	struct txn rt = txn_on(r, 2000);
	assert_int_equal(contact_find_email(&rt, "alice@example.org", id), 0);
	assert_string_equal(id, c.ct.id);
	json_t *fields = NULL;
	char names[256];
	struct store_contact got;
	assert_int_equal(contact_get(&rt, id, &got), 0);
	assert_int_equal(contact_fields_json(&rt, &got, UINT64_MAX, &fields, names, sizeof names), 0);
	assert_string_equal(json_string_value(json_object_get(fields, "name")), "Alice");
	json_decref(fields);
	contact_new_clear(&c);
	json_decref(b);
}

static void test_the_same_email_twice_is_a_conflict_and_writes_nothing(void **state)
{
	(void)state;
	struct contact_new a, b2;
	struct txn t = txn_on(w, 1000);
	json_t *b = body("{\"email\":\"bob@example.org\",\"collected_for\":[\"service\"]}");
	assert_int_equal(contact_new_prepare(&t, b, NULL, "api", &a), 0);
	assert_int_equal(contact_new_prepare(&t, b, NULL, "import", &b2), 0);
	assert_string_not_equal(a.ct.id, b2.ct.id);
	assert_int_equal(contact_new_insert(&t, &a), 0);
	assert_int_equal(contact_new_insert(&t, &b2), ERR_CONFLICT);
	struct store_contact got;
	struct txn rt = txn_on(r, 2000);
	assert_int_equal(contact_get(&rt, b2.ct.id, &got), ERR_NOTFOUND);
	contact_new_clear(&a);
	contact_new_clear(&b2);
	json_decref(b);
}

static void test_imported_consents_follow_the_ordering_rule(void **state)
{
	(void)state;
	struct contact_new c;
	struct txn t = txn_on(w, INT64_C(1767225600000000));
	json_t *b = body("{\"email\":\"carol@example.org\",\"collected_for\":[\"marketing\"]}");
	/* Given out of order: the withdrawal is the later event. */
	json_t *cs = body("[{\"purpose\":\"marketing\",\"channel\":\"email\",\"status\":\"withdrawn\","
			  "\"at\":\"2025-06-01T00:00:00Z\"},"
			  "{\"purpose\":\"marketing\",\"channel\":\"email\",\"status\":\"granted\","
			  "\"at\":\"2025-01-01T00:00:00Z\",\"evidence\":{\"form\":\"signup\"}}]");
	assert_int_equal(contact_new_prepare(&t, b, cs, "import", &c), 0);
	assert_string_equal(c.ct.source, "import");
	assert_int_equal(c.n_consents, 2);
	assert_int_equal(consent_status(&c.consents[0]), POLICY_CONSENT_GRANTED); /* history order */
	assert_true(c.consents[0].evidence_len > 0);
	/* The withdrawal keeps when consent was first given. */
	assert_true(c.consents[1].granted_us == c.consents[0].granted_us);
	assert_int_equal(contact_new_insert(&t, &c), 0);
	struct store_consent cur;
	struct txn rt = txn_on(r, t.now_us);
	assert_int_equal(consent_current(&rt, c.ct.id, "marketing", "email", &cur), 0);
	assert_int_equal(consent_status(&cur), POLICY_CONSENT_WITHDRAWN);
	contact_new_clear(&c);
	json_decref(cs);
	json_decref(b);
}

static void test_an_invalid_body_prepares_nothing(void **state)
{
	(void)state;
	struct contact_new c;
	struct txn t = txn_on(w, 1000);
	json_t *b = body("{\"email\":\"dave@example.org\",\"shoe_size\":44,\"collected_for\":[\"service\"]}");
	assert_int_equal(contact_new_prepare(&t, b, NULL, "api", &c), ERR_INVALID);
	contact_new_clear(&c);
	json_decref(b);
}

static void test_erasure_shreds_the_contact_and_keeps_it_suppressed(void **state)
{
	(void)state;
	struct contact_new c;
	struct txn t = txn_on(w, 1000);
	json_t *b =
		body("{\"email\":\"erin@example.org\",\"name\":\"Erin\",\"collected_for\":[\"service\"]}");
	assert_int_equal(contact_new_prepare(&t, b, NULL, "api", &c), 0);
	assert_int_equal(contact_new_insert(&t, &c), 0);
	struct store_contact got;
	enum decision_reason reason = REASON_NONE;
	assert_int_equal(contact_get_active(&t, c.ct.id, &got, &reason), 0);
	assert_int_equal(contact_erase(&t, &got), 0);
	assert_int_equal(contact_get_active(&t, c.ct.id, &got, &reason), ERR_GONE);
	assert_int_equal(reason, REASON_ERASED);
	char sreason[STORE_NAME_CAP];
	struct txn rt = txn_on(r, 2000);
	assert_int_equal(suppression_match(&rt, c.ct.email_shash, NULL, "marketing", "email", sreason), 0);
	assert_string_equal(sreason, "erasure");
	char id[STORE_ID_CAP];
	assert_int_equal(contact_find_email(&rt, "erin@example.org", id), ERR_NOTFOUND);
	contact_new_clear(&c);
	json_decref(b);
}

/* The import's speed depends on this: ids made one after the other land
 * next to each other in the id-keyed B-trees (docs/suppression.md), yet stay
 * unguessable and distinct. On random 16-byte ids two consecutive ids share
 * their first six characters with probability 64^-6, so this fails there. */
static void test_ids_made_in_sequence_are_close_together_and_still_random(void **state)
{
	(void)state;
	enum { N = 2000 };
	static char ids[N][STORE_ID_CAP];
	struct contact_new c;
	struct txn t = txn_on(w, 3000);
	json_t *b = body("{\"email\":\"seq@example.org\",\"collected_for\":[\"service\"]}");
	int close = 0, same_tail = 0;
	for (int i = 0; i < N; i++) {
		assert_int_equal(contact_new_prepare(&t, b, NULL, "import", &c), 0);
		snprintf(ids[i], sizeof ids[i], "%s", c.ct.id);
		contact_new_clear(&c);
		assert_int_equal(strlen(ids[i]), CONTACT_ID_BYTES);
		assert_int_equal(
			strspn(ids[i], "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
			CONTACT_ID_BYTES);
		if (i > 0) {
			close += memcmp(ids[i], ids[i - 1], 6) == 0;
			same_tail += memcmp(ids[i] + 9, ids[i - 1] + 9, CONTACT_ID_BYTES - 9) == 0;
			for (int k = 0; k < i; k++)
				assert_string_not_equal(ids[i], ids[k]);
		}
	}
	/* The counter carries into the sixth character once every 4096 ids. */
	assert_true(close >= N - 1 - 2);
	assert_int_equal(same_tail, 0);
	json_decref(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_created_contact_is_stored_sealed_and_found_by_email),
		cmocka_unit_test(test_the_same_email_twice_is_a_conflict_and_writes_nothing),
		cmocka_unit_test(test_imported_consents_follow_the_ordering_rule),
		cmocka_unit_test(test_an_invalid_body_prepares_nothing),
		cmocka_unit_test(test_erasure_shreds_the_contact_and_keeps_it_suppressed),
		cmocka_unit_test(test_ids_made_in_sequence_are_close_together_and_still_random),
	};
	return cmocka_run_group_tests_name("contact", tests, setup, teardown);
}
