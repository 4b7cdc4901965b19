/*
 * test_policy: the policy engine against policy/example-policy.json.
 *
 * Part one is a table of decisions: each row is one question a real caller
 * asks (a consent check, an outreach filter entry, a record read) with the
 * answer the example policy must give. Part two loads broken policies, each
 * a small edit of the example, and checks that the exact JSON path and the
 * reason are reported, and that every error is reported, not just the first.
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

#include "policy/policy.h"
#include "service/base/error.h"

#define NOW INT64_C(1700000000)
#define DAY INT64_C(86400)

static char *example_path(void)
{
	static const char rel[] = "/policy/example-policy.json";
	const char *root = getenv("CONSENTD_SOURCE_DIR");
	char *path = NULL;
	if (root != NULL && root[0] != '\0') {
		if (asprintf(&path, "%s%s", root, rel) < 0)
			return NULL;
		return path;
	}
	/* Fall back to the source tree this file was compiled from. */
	const char *slash = strrchr(__FILE__, '/');
	int dir = slash ? (int)(slash - __FILE__) : 1;
	if (asprintf(&path, "%.*s/../..%s", dir, slash ? __FILE__ : ".", rel) < 0)
		return NULL;
	return path;
}

static int load_example(void **state)
{
	struct policy *p = NULL;
	struct policy_errors *errs = NULL;
	char *path = example_path();
	assert_non_null(path);
	int rc = policy_load_file(&p, path, &errs);
	if (rc != 0) {
		fprintf(stderr, "cannot load %s: %s\n", path, err_msg());
		policy_errors_print(errs, stderr);
	}
	free(path);
	policy_errors_free(errs);
	assert_int_equal(rc, 0);
	*state = p;
	return 0;
}

static int free_example(void **state)
{
	policy_free(*state);
	return 0;
}

/* ---- The decision table ----------------------------------------------- */

enum kind { CONTACT, READ };

/* Subject flags. */
#define GONE 0x1 /* the contact does not exist */
#define ERASED 0x2
#define SUPP 0x4 /* the contact's own suppression */
#define LIST 0x8 /* suppression list match */

struct row {
	const char *what;
	enum kind kind;
	const char *role;
	const char *purpose;
	const char *channel;
	const char *collected_for; /* comma-separated */
	unsigned flags;
	enum policy_consent_status status;
	int64_t expires_at; /* 0 = never */
	enum policy_reason expect;
	const char *fields; /* READ only: comma-separated visible fields, "" = none */
};

#define G POLICY_CONSENT_GRANTED
#define N POLICY_CONSENT_NONE
#define R POLICY_CONSENT_REFUSED
#define W POLICY_CONSENT_WITHDRAWN
#define X POLICY_CONSENT_EXPIRED
#define P POLICY_CONSENT_PENDING

#define MKT_FIELDS "name,email"
#define SUPPORT_SERVICE_FIELDS "name,email,phone,postal_address,notes"
#define ALL_FIELDS "email,phone,name,postal_address,birthday,income,health,family,notes"

static const struct row rows[] = {
	/* Consent statuses and expiry, decided at call time. */
	{ "granted email consent, never expires", CONTACT, "marketing", "marketing", "email", "marketing", 0,
	  G, 0, POLICY_REASON_GRANTED, NULL },
	{ "granted, expires one second from now", CONTACT, "marketing", "marketing", "email", "marketing", 0,
	  G, NOW + 1, POLICY_REASON_GRANTED, NULL },
	{ "granted, expires exactly now: expired", CONTACT, "marketing", "marketing", "email", "marketing", 0,
	  G, NOW, POLICY_REASON_EXPIRED, NULL },
	{ "granted, expired a second ago", CONTACT, "marketing", "marketing", "email", "marketing", 0, G,
	  NOW - 1, POLICY_REASON_EXPIRED, NULL },
	{ "stored as expired", CONTACT, "marketing", "marketing", "email", "marketing", 0, X, 0,
	  POLICY_REASON_EXPIRED, NULL },
	{ "withdrawn beats an unexpired grant date", CONTACT, "marketing", "marketing", "email", "marketing",
	  0, W, NOW + 30 * DAY, POLICY_REASON_WITHDRAWN, NULL },
	{ "refused", CONTACT, "marketing", "marketing", "sms", "marketing", 0, R, 0, POLICY_REASON_REFUSED,
	  NULL },
	{ "a grant waiting for the person's confirmation (double opt-in)", CONTACT, "marketing", "marketing",
	  "email", "marketing", 0, P, NOW + 30 * DAY, POLICY_REASON_PENDING_CONFIRMATION, NULL },
	{ "no consent on record", CONTACT, "marketing", "marketing", "post", "marketing", 0, N, 0,
	  POLICY_REASON_NO_CONSENT, NULL },
	{ "email consent does not allow sms (sms state is none)", CONTACT, "marketing", "marketing", "sms",
	  "marketing", 0, N, 0, POLICY_REASON_NO_CONSENT, NULL },
	{ "marketing never allows push, consent or not", CONTACT, "marketing", "marketing", "push",
	  "marketing", 0, G, 0, POLICY_REASON_CHANNEL_NOT_ALLOWED, NULL },
	{ "channel check comes before the withdrawal", CONTACT, "marketing", "marketing", "in_app",
	  "marketing", 0, W, 0, POLICY_REASON_CHANNEL_NOT_ALLOWED, NULL },
	/* Suppression and contact state beat consent. */
	{ "suppression beats consent", CONTACT, "marketing", "marketing", "email", "marketing", SUPP, G, 0,
	  POLICY_REASON_SUPPRESSED, NULL },
	{ "suppression list beats consent", CONTACT, "marketing", "marketing", "email", "marketing", LIST, G,
	  0, POLICY_REASON_SUPPRESSED_BY_LIST, NULL },
	{ "own suppression is named before the list", CONTACT, "marketing", "marketing", "email", "marketing",
	  SUPP | LIST, G, 0, POLICY_REASON_SUPPRESSED, NULL },
	{ "erased person with a stale grant", CONTACT, "marketing", "marketing", "email", "marketing", ERASED,
	  G, 0, POLICY_REASON_ERASED, NULL },
	{ "the suppression list is named before erased", CONTACT, "marketing", "marketing", "email",
	  "marketing", ERASED | LIST, G, 0, POLICY_REASON_SUPPRESSED_BY_LIST, NULL },
	{ "erased without a suppression", CONTACT, "marketing", "marketing", "email", "marketing", ERASED, G,
	  0, POLICY_REASON_ERASED, NULL },
	{ "unknown contact", CONTACT, "marketing", "marketing", "email", "", GONE, N, 0,
	  POLICY_REASON_UNKNOWN_CONTACT, NULL },
	{ "unknown contact on the suppression list", CONTACT, "marketing", "marketing", "email", "",
	  GONE | LIST, N, 0, POLICY_REASON_SUPPRESSED_BY_LIST, NULL },
	{ "suppression beats not_required (service)", CONTACT, "admin", "service", "email", "service", SUPP,
	  N, 0, POLICY_REASON_SUPPRESSED, NULL },
	/* Purpose limitation. */
	{ "care data is never mailed marketing, even with consent", CONTACT, "marketing", "marketing",
	  "email", "care", 0, G, 0, POLICY_REASON_PURPOSE_INCOMPATIBLE, NULL },
	{ "service data is not marketing data", CONTACT, "marketing", "marketing", "email", "service", 0, G,
	  0, POLICY_REASON_PURPOSE_INCOMPATIBLE, NULL },
	{ "collected for service and marketing", CONTACT, "marketing", "marketing", "email",
	  "service,marketing", 0, G, 0, POLICY_REASON_GRANTED, NULL },
	{ "a purpose the policy no longer knows grants nothing", CONTACT, "marketing", "marketing", "email",
	  "legacy", 0, G, 0, POLICY_REASON_PURPOSE_INCOMPATIBLE, NULL },
	{ "incompatible purpose is named before the channel", CONTACT, "marketing", "marketing", "push",
	  "care", 0, G, 0, POLICY_REASON_PURPOSE_INCOMPATIBLE, NULL },
	{ "care by phone with care consent", CONTACT, "care_coordinator", "care", "phone", "care", 0, G, 0,
	  POLICY_REASON_GRANTED, NULL },
	{ "care never by email", CONTACT, "admin", "care", "email", "care", 0, G, 0,
	  POLICY_REASON_CHANNEL_NOT_ALLOWED, NULL },
	{ "analytics has no outreach channel", CONTACT, "admin", "analytics", "email", "marketing", 0, G, 0,
	  POLICY_REASON_CHANNEL_NOT_ALLOWED, NULL },
	/* A purpose without channels is decided without one; one with channels never is. */
	{ "analytics without a channel, consent given", CONTACT, "admin", "analytics", "", "analytics", 0, G,
	  0, POLICY_REASON_GRANTED, NULL },
	{ "analytics without a channel, no consent", CONTACT, "admin", "analytics", "", "analytics", 0, N, 0,
	  POLICY_REASON_NO_CONSENT, NULL },
	{ "marketing needs a channel", CONTACT, "marketing", "marketing", "", "marketing", 0, G, 0,
	  POLICY_REASON_UNKNOWN_CHANNEL, NULL },
	{ "service by sms needs no consent", CONTACT, "admin", "service", "sms", "service", 0, N, 0,
	  POLICY_REASON_NOT_REQUIRED, NULL },
	{ "service ignores a marketing-style refusal", CONTACT, "admin", "service", "post", "service", 0, R,
	  0, POLICY_REASON_NOT_REQUIRED, NULL },
	{ "service not by push", CONTACT, "admin", "service", "push", "service", 0, N, 0,
	  POLICY_REASON_CHANNEL_NOT_ALLOWED, NULL },
	/* Vocabulary and roles come first. */
	{ "unknown purpose", CONTACT, "marketing", "sales", "email", "marketing", 0, G, 0,
	  POLICY_REASON_UNKNOWN_PURPOSE, NULL },
	{ "unknown channel", CONTACT, "marketing", "marketing", "fax", "marketing", 0, G, 0,
	  POLICY_REASON_UNKNOWN_CHANNEL, NULL },
	{ "no channel given", CONTACT, "marketing", "marketing", NULL, "marketing", 0, G, 0,
	  POLICY_REASON_UNKNOWN_CHANNEL, NULL },
	{ "unknown channel is named before unknown contact", CONTACT, "marketing", "marketing", "fax", "",
	  GONE, N, 0, POLICY_REASON_UNKNOWN_CHANNEL, NULL },
	{ "auditor may not check consent", CONTACT, "auditor", "marketing", "email", "marketing", 0, G, 0,
	  POLICY_REASON_ROLE_DENIED, NULL },
	{ "role denial is named before unknown contact", CONTACT, "auditor", "marketing", "email", "", GONE,
	  N, 0, POLICY_REASON_ROLE_DENIED, NULL },
	{ "unknown role", CONTACT, "intern", "marketing", "email", "marketing", 0, G, 0,
	  POLICY_REASON_ROLE_DENIED, NULL },
	{ "no role", CONTACT, NULL, "marketing", "email", "marketing", 0, G, 0, POLICY_REASON_ROLE_DENIED,
	  NULL },
	{ "marketing role may not use the service purpose", CONTACT, "marketing", "service", "email",
	  "service", 0, N, 0, POLICY_REASON_ROLE_DENIED, NULL },
	{ "support holds no consent.check", CONTACT, "support", "service", "email", "service", 0, N, 0,
	  POLICY_REASON_ROLE_DENIED, NULL },

	/* Reads: fields per role and purpose. */
	{ "marketing reads for marketing: name and email only", READ, "marketing", "marketing", NULL,
	  "marketing", 0, G, 0, POLICY_REASON_GRANTED, MKT_FIELDS },
	{ "marketing cannot read a care record, even with marketing consent", READ, "marketing", "marketing",
	  NULL, "care", 0, G, 0, POLICY_REASON_PURPOSE_INCOMPATIBLE, "" },
	{ "marketing read after withdrawal", READ, "marketing", "marketing", NULL, "marketing", 0, W, 0,
	  POLICY_REASON_WITHDRAWN, "" },
	{ "marketing read with lapsed consent at the boundary", READ, "marketing", "marketing", NULL,
	  "marketing", 0, G, NOW, POLICY_REASON_EXPIRED, "" },
	{ "suppression stops outreach, not reading", READ, "marketing", "marketing", NULL, "marketing",
	  SUPP | LIST, G, 0, POLICY_REASON_GRANTED, MKT_FIELDS },
	{ "marketing may not read for care", READ, "marketing", "care", NULL, "care", 0, G, 0,
	  POLICY_REASON_ROLE_DENIED, "" },
	{ "partner_sharing needs its own collection purpose", READ, "marketing", "partner_sharing", NULL,
	  "marketing", 0, G, 0, POLICY_REASON_PURPOSE_INCOMPATIBLE, "" },
	{ "support reads for service", READ, "support", "service", NULL, "service", 0, N, 0,
	  POLICY_REASON_NOT_REQUIRED, SUPPORT_SERVICE_FIELDS },
	{ "support reads for care: no health", READ, "support", "care", NULL, "care", 0, G, 0,
	  POLICY_REASON_GRANTED, "name,phone,postal_address" },
	{ "support may not read for marketing", READ, "support", "marketing", NULL, "marketing", 0, G, 0,
	  POLICY_REASON_ROLE_DENIED, "" },
	{ "care coordinator sees health for care", READ, "care_coordinator", "care", NULL, "care", 0, G, 0,
	  POLICY_REASON_GRANTED, "name,phone,postal_address,birthday,health,family" },
	{ "care record without care consent", READ, "care_coordinator", "care", NULL, "care", 0, N, 0,
	  POLICY_REASON_NO_CONSENT, "" },
	{ "auditor reads no contacts", READ, "auditor", "service", NULL, "service", 0, N, 0,
	  POLICY_REASON_ROLE_DENIED, "" },
	{ "admin: marketing data may feed analytics with consent", READ, "admin", "analytics", NULL,
	  "marketing", 0, G, 0, POLICY_REASON_GRANTED, ALL_FIELDS },
	{ "admin: analytics still needs its own consent", READ, "admin", "analytics", NULL, "marketing", 0, N,
	  0, POLICY_REASON_NO_CONSENT, "" },
	{ "compatibility is one-way", READ, "admin", "marketing", NULL, "analytics", 0, G, 0,
	  POLICY_REASON_PURPOSE_INCOMPATIBLE, "" },
	{ "care data is not service data", READ, "admin", "service", NULL, "care", 0, N, 0,
	  POLICY_REASON_PURPOSE_INCOMPATIBLE, "" },
	{ "no collected_for at all", READ, "admin", "service", NULL, "", 0, N, 0,
	  POLICY_REASON_PURPOSE_INCOMPATIBLE, "" },
	{ "erased record", READ, "admin", "service", NULL, "service", ERASED, N, 0, POLICY_REASON_ERASED,
	  "" },
	{ "unknown record", READ, "marketing", "marketing", NULL, "", GONE, N, 0,
	  POLICY_REASON_UNKNOWN_CONTACT, "" },
	{ "read for an unknown purpose", READ, "admin", "billing", NULL, "service", 0, N, 0,
	  POLICY_REASON_UNKNOWN_PURPOSE, "" },
	{ "read by an unknown role", READ, "root", "service", NULL, "service", 0, N, 0,
	  POLICY_REASON_ROLE_DENIED, "" },
};

static size_t split(const char *list, char *buf, size_t buflen, const char **out, size_t max)
{
	size_t n = 0;
	snprintf(buf, buflen, "%s", list);
	for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok != NULL && n < max;
	     tok = strtok_r(NULL, ",", &save))
		out[n++] = tok;
	return n;
}

static void test_decision_table(void **state)
{
	const struct policy *p = *state;
	bool seen[POLICY_REASON_COUNT] = { false };

	assert_true(sizeof rows / sizeof rows[0] >= 40);
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		const struct row *r = &rows[i];
		char buf[256];
		const char *collected[16];
		struct policy_subject s = {
			.exists = !(r->flags & GONE),
			.erased = (r->flags & ERASED) != 0,
			.suppressed = (r->flags & SUPP) != 0,
			.suppressed_by_list = (r->flags & LIST) != 0,
			.collected_for = collected,
			.n_collected_for = split(r->collected_for, buf, sizeof buf, collected, 16),
			.consent = { .status = r->status, .expires_at = r->expires_at },
		};
		struct policy_decision d;
		int rc = r->kind == CONTACT
				 ? policy_decide_contact(p, r->role, r->purpose, r->channel, &s, NOW, &d)
				 : policy_decide_read(p, r->role, r->purpose, &s, NOW, &d);
		bool want_allowed =
			r->expect == POLICY_REASON_GRANTED || r->expect == POLICY_REASON_NOT_REQUIRED;
		if (rc != 0 || d.reason != r->expect || d.allowed != want_allowed)
			fail_msg("row %zu \"%s\": got rc %d %s/%s, want %s/%s", i, r->what, rc,
				 d.allowed ? "allowed" : "denied", policy_reason_name(d.reason),
				 want_allowed ? "allowed" : "denied", policy_reason_name(r->expect));
		seen[r->expect] = true;

		if (r->kind == CONTACT) {
			assert_int_equal(d.visible_fields, 0);
			continue;
		}
		const char *want[POLICY_MAX_FIELDS];
		char fbuf[256];
		size_t nwant = split(r->fields, fbuf, sizeof fbuf, want, POLICY_MAX_FIELDS);
		uint64_t mask = 0;
		for (size_t k = 0; k < nwant; k++) {
			struct policy_field_info fi;
			assert_int_equal(policy_field_get(p, want[k], &fi), 0);
			mask |= UINT64_C(1) << fi.index;
		}
		if (d.visible_fields != mask)
			fail_msg("row %zu \"%s\": visible fields %#llx, want %#llx (%s)", i, r->what,
				 (unsigned long long)d.visible_fields, (unsigned long long)mask, r->fields);
	}
	/* Every reason but the ones only a caller's list lookup produces is
	 * covered by a row. */
	/* frequency_cap is decided after the contact decision from the release
	 * count (policy_cap_reached, test_frequency_cap). */
	seen[POLICY_REASON_FREQUENCY_CAP] = true;
	for (int k = 0; k < POLICY_REASON_COUNT; k++)
		if (!seen[k])
			fail_msg("no row for reason %s", policy_reason_name((enum policy_reason)k));
}

static void test_marketing_never_sees_sensitive_fields(void **state)
{
	const struct policy *p = *state;
	for (size_t i = 0; i < policy_purpose_count(p); i++) {
		struct policy_purpose_info pi;
		assert_int_equal(policy_purpose_at(p, i, &pi), 0);
		uint64_t mask = policy_role_fields(p, "marketing", pi.name);
		for (size_t f = 0; f < policy_field_count(p); f++) {
			struct policy_field_info fi;
			assert_int_equal(policy_field_at(p, f, &fi), 0);
			if (mask & (UINT64_C(1) << f)) {
				assert_int_equal(fi.field_class, POLICY_CLASS_PERSONAL);
				assert_true(strcmp(fi.name, "name") == 0 || strcmp(fi.name, "email") == 0);
			}
		}
	}
	/* And through a real decision. */
	const char *collected[] = { "marketing" };
	struct policy_subject s = { .exists = true,
				    .collected_for = collected,
				    .n_collected_for = 1,
				    .consent = { POLICY_CONSENT_GRANTED, 0 } };
	struct policy_decision d;
	assert_int_equal(policy_decide_read(p, "marketing", "marketing", &s, NOW, &d), 0);
	assert_true(d.allowed);
	assert_true(policy_decision_shows(p, &d, "name"));
	assert_true(policy_decision_shows(p, &d, "email"));
	assert_false(policy_decision_shows(p, &d, "income"));
	assert_false(policy_decision_shows(p, &d, "health"));
	assert_false(policy_decision_shows(p, &d, "phone"));
	assert_false(policy_decision_shows(p, &d, "no_such_field"));
}

static void test_consent_best(void **state)
{
	(void)state;
	struct policy_consent a[] = {
		{ POLICY_CONSENT_GRANTED, NOW - 1 }, /* email, lapsed */
		{ POLICY_CONSENT_WITHDRAWN, 0 },     /* sms */
		{ POLICY_CONSENT_GRANTED, NOW + 1 }, /* post, valid */
	};
	struct policy_consent b = policy_consent_best(a, 3, NOW);
	assert_int_equal(b.status, POLICY_CONSENT_GRANTED);
	assert_int_equal(b.expires_at, NOW + 1);
	b = policy_consent_best(a, 2, NOW);
	assert_int_equal(b.status, POLICY_CONSENT_WITHDRAWN);
	b = policy_consent_best(a, 1, NOW);
	assert_int_equal(b.status, POLICY_CONSENT_EXPIRED);
	b = policy_consent_best(NULL, 0, NOW);
	assert_int_equal(b.status, POLICY_CONSENT_NONE);
	struct policy_consent c[] = { { POLICY_CONSENT_NONE, 0 }, { POLICY_CONSENT_REFUSED, 0 } };
	assert_int_equal(policy_consent_best(c, 2, NOW).status, POLICY_CONSENT_REFUSED);
	assert_false(policy_consent_valid(&a[0], NOW));
	assert_true(policy_consent_valid(&a[2], NOW));
	struct policy_consent edge = { POLICY_CONSENT_GRANTED, NOW };
	assert_true(policy_consent_valid(&edge, NOW - 1));
	assert_false(policy_consent_valid(&edge, NOW));
}

static void test_lookups(void **state)
{
	const struct policy *p = *state;
	struct policy_purpose_info pi;

	assert_string_equal(policy_notice_version(p), "2024-06-01");
	assert_int_equal(policy_purpose_count(p), 5);
	assert_int_equal(policy_purpose_get(p, "service", &pi), 0);
	assert_int_equal(pi.legal_basis, POLICY_BASIS_CONTRACT);
	assert_false(pi.consent_required);
	assert_int_equal(pi.channels, (1u << POLICY_CH_EMAIL) | (1u << POLICY_CH_SMS) |
					      (1u << POLICY_CH_PHONE) | (1u << POLICY_CH_POST));
	assert_int_equal(policy_purpose_get(p, "marketing", &pi), 0);
	assert_true(pi.consent_required);
	assert_int_equal(pi.consent_lifetime_days, 365);
	assert_non_null(strstr(pi.description, "offers"));
	assert_non_null(pi.description_zh);
	assert_int_equal(policy_purpose_get(p, "Marketing", &pi), ERR_NOTFOUND);
	assert_true(policy_purpose_allows_channel(p, "marketing", "sms"));
	assert_false(policy_purpose_allows_channel(p, "analytics", "email"));
	assert_true(policy_purpose_compatible(p, "marketing", "analytics"));
	assert_false(policy_purpose_compatible(p, "analytics", "marketing"));
	assert_false(policy_purpose_compatible(p, "care", "marketing"));
	assert_true(policy_purpose_compatible(p, "care", "care"));

	const char *gpc[4];
	assert_int_equal(policy_purposes_for_gpc(p, gpc, 4), 1);
	assert_string_equal(gpc[0], "partner_sharing");

	struct policy_field_info fi;
	assert_int_equal(policy_field_count(p), 9);
	assert_int_equal(policy_field_get(p, "income", &fi), 0);
	assert_int_equal(fi.field_class, POLICY_CLASS_SENSITIVE);
	assert_int_equal(fi.type, POLICY_TYPE_INTEGER);
	assert_string_equal(policy_field_name(p, fi.index), "income");
	assert_null(policy_field_name(p, 9));
	assert_int_equal(policy_field_get(p, "email", &fi), 0);
	assert_int_equal(fi.field_class, POLICY_CLASS_PERSONAL);

	assert_true(policy_role_exists(p, "auditor"));
	assert_false(policy_role_exists(p, "root"));
	assert_true(policy_role_may(p, "auditor", POLICY_ACT_AUDIT_READ));
	assert_false(policy_role_may(p, "auditor", POLICY_ACT_CONTACTS_READ));
	assert_false(policy_role_may(p, "marketing", POLICY_ACT_CONTACTS_ERASE));
	assert_true(policy_role_may(p, "admin", POLICY_ACT_POLICY_RELOAD));
	assert_false(policy_role_may(p, "admin", POLICY_ACT_COUNT));
	assert_false(policy_role_may(p, NULL, POLICY_ACT_AUDIT_READ));
	assert_true(policy_role_may_purpose(p, "support", "care"));
	assert_false(policy_role_may_purpose(p, "support", "marketing"));
	assert_int_equal(policy_role_fields(p, "auditor", "service"), 0);

	/* The example ships without principals: a copied example must not
	 * come with working tokens. */
	assert_int_equal(policy_principal_count(p), 0);
}

static void test_vocabulary(void **state)
{
	(void)state;
	enum policy_action a;
	for (int i = 0; i < POLICY_ACT_COUNT; i++) {
		assert_int_equal(policy_action_from_name(policy_action_name((enum policy_action)i), &a), 0);
		assert_int_equal(a, i);
	}
	assert_int_equal(policy_action_from_name("contacts.delete", &a), ERR_NOTFOUND);
	assert_int_equal(policy_action_from_name(NULL, &a), ERR_NOTFOUND);
	assert_string_equal(policy_action_name(POLICY_ACT_OUTREACH_FILTER), "outreach.filter");
	enum policy_channel c;
	assert_int_equal(policy_channel_from_name("in_app", &c), 0);
	assert_int_equal(c, POLICY_CH_IN_APP);
	assert_int_equal(policy_channel_from_name("EMAIL", &c), ERR_NOTFOUND);

	/* Reason names are part of the API: pin them. */
	static const char *const names[POLICY_REASON_COUNT] = {
		"granted",
		"not_required",
		"no_consent",
		"refused",
		"withdrawn",
		"expired",
		"purpose_incompatible",
		"channel_not_allowed",
		"unknown_contact",
		"erased",
		"suppressed",
		"suppressed_by_list",
		"role_denied",
		"unknown_purpose",
		"unknown_channel",
		"frequency_cap",
		"pending_confirmation",
	};
	for (int i = 0; i < POLICY_REASON_COUNT; i++)
		assert_string_equal(policy_reason_name((enum policy_reason)i), names[i]);
	assert_string_equal(policy_reason_name(POLICY_REASON_COUNT), "unknown");
	enum policy_consent_status st;
	assert_int_equal(policy_consent_status_from_name("withdrawn", &st), 0);
	assert_int_equal(st, POLICY_CONSENT_WITHDRAWN);
	assert_string_equal(policy_consent_status_name(POLICY_CONSENT_EXPIRED), "expired");
	assert_int_equal(policy_consent_status_from_name("pending_confirmation", &st), 0);
	assert_int_equal(st, POLICY_CONSENT_PENDING);
}

static void test_refcount_and_null(void **state)
{
	(void)state;
	struct policy *p = NULL;
	assert_int_equal(load_example((void **)&p), 0);
	assert_ptr_equal(policy_ref(p), p);
	policy_unref(p);
	policy_free(p);
	policy_free(NULL);
	policy_unref(NULL);
	assert_null(policy_ref(NULL));
	policy_errors_free(NULL);
	assert_int_equal(policy_errors_count(NULL), 0);
}

static void test_missing_file(void **state)
{
	(void)state;
	struct policy *p = (struct policy *)1;
	struct policy_errors *errs = (struct policy_errors *)1;
	assert_int_equal(policy_load_file(&p, "/nonexistent/policy.json", &errs), ERR_IO);
	assert_null(p);
	assert_null(errs);
	assert_int_equal(policy_load_file(&p, "/", NULL), ERR_IO);
}

/* ---- Broken policies -------------------------------------------------- */

/* Replaces (or with value NULL removes) the value at a '/'-separated path in
 * doc; numeric components index arrays. */
static void edit(json_t *doc, const char *where, const char *value)
{
	char buf[256];
	snprintf(buf, sizeof buf, "%s", where);
	json_t *cur = doc;
	char *save = NULL, *tok = strtok_r(buf, "/", &save);
	while (tok != NULL) {
		char *next = strtok_r(NULL, "/", &save);
		if (next == NULL)
			break;
		cur = json_is_array(cur) ? json_array_get(cur, strtoul(tok, NULL, 10))
					 : json_object_get(cur, tok);
		assert_non_null(cur);
		tok = next;
	}
	if (value == NULL) {
		assert_int_equal(json_object_del(cur, tok), 0);
		return;
	}
	json_error_t jerr;
	json_t *v = json_loads(value, JSON_DECODE_ANY, &jerr);
	if (v == NULL)
		fail_msg("bad test value %s: %s", value, jerr.text);
	if (json_is_array(cur))
		assert_int_equal(json_array_set_new(cur, strtoul(tok, NULL, 10), v), 0);
	else
		assert_int_equal(json_object_set_new(cur, tok, v), 0);
}

struct bad {
	const char *where;
	const char *value;  /* NULL removes */
	const char *path;   /* expected error path */
	const char *reason; /* expected substring */
};

static const struct bad bads[] = {
	{ "roles/marketing/fields/marketing", "[\"name\", \"incme\"]",
	  "$.roles.marketing.fields.marketing[1]", "unknown field \"incme\"" },
	{ "roles/marketing/fields/care", "[\"name\"]", "$.roles.marketing.fields.care",
	  "not in this role's purposes" },
	{ "roles/support/actions", "[\"contacts.read\", \"contacts.delete\"]", "$.roles.support.actions[1]",
	  "unknown action \"contacts.delete\"" },
	{ "roles/support/purposes", "[\"service\", \"care\", \"sales\"]", "$.roles.support.purposes[2]",
	  "unknown purpose \"sales\"" },
	{ "roles/support/field", "{}", "$.roles.support.field", "unknown key" },
	{ "roles/auditor/actions", "\"audit.read\"", "$.roles.auditor.actions", "must be an array" },
	{ "purposes/marketing/consent_requierd", "true", "$.purposes.marketing.consent_requierd",
	  "unknown key" },
	{ "purposes/marketing/compatible_with", "[\"analytic\"]", "$.purposes.marketing.compatible_with[0]",
	  "unknown purpose \"analytic\"" },
	{ "purposes/service/compatible_with", "[\"service\"]", "$.purposes.service.compatible_with[0]",
	  "compatible with itself" },
	{ "purposes/care/legal_basis", "\"consnt\"", "$.purposes.care.legal_basis",
	  "must be one of consent, contract" },
	{ "purposes/marketing/consent_required", "false", "$.purposes.marketing.consent_required",
	  "must be true when legal_basis is \"consent\"" },
	{ "purposes/marketing/consent_lifetime_days", "0", "$.purposes.marketing.consent_lifetime_days",
	  "between 1 and" },
	{ "purposes/marketing/consent_lifetime_days", "365.5", "$.purposes.marketing.consent_lifetime_days",
	  "must be an integer" },
	{ "purposes/marketing/consent_lifetime_days", NULL, "$.purposes.marketing", "consent_lifetime_days" },
	{ "purposes/analytics/channels", "[\"in_app\", \"fax\"]", "$.purposes.analytics.channels[1]",
	  "unknown channel \"fax\"" },
	{ "purposes/service/channels", "[\"email\", \"email\"]", "$.purposes.service.channels[1]",
	  "duplicate channel \"email\"" },
	{ "purposes/service/sale_or_sharing", "\"no\"", "$.purposes.service.sale_or_sharing",
	  "must be true or false" },
	{ "purposes/service/description", "\"\"", "$.purposes.service.description", "must not be empty" },
	{ "purposes/service/description_zh", NULL, "$.purposes.service",
	  "missing required key \"description_zh\"" },
	{ "purposes/Sales", "{}", "$.purposes.Sales", "purpose names must match" },
	{ "fields/Income", "{\"class\": \"sensitive\", \"type\": \"integer\", \"description\": \"x\"}",
	  "$.fields.Income", "field names must match" },
	{ "fields/income/class", "\"secret\"", "$.fields.income.class", "\"personal\" or \"sensitive\"" },
	{ "fields/income/type", "\"money\"", "$.fields.income.type", "must be one of string, email" },
	{ "version", "2", "$.version", "integer 1" },
	{ "notice_version", NULL, "$", "missing required key \"notice_version\"" },
	{ "purpose", "{}", "$.purpose", "unknown key" },
	{ "principals",
	  "[{\"name\": \"ci\", \"role\": \"sales\", \"token_sha256\": "
	  "\"0000000000000000000000000000000000000000000000000000000000000000\"}]",
	  "$.principals[0].role", "unknown role" },
	{ "principals",
	  "[{\"name\": \"ci\", \"role\": \"admin\", \"token_sha256\": "
	  "\"9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08\"}]",
	  "$.principals[0].token_sha256", "lowercase hexadecimal" },
	{ "principals",
	  "[{\"name\": \"a\", \"role\": \"admin\", \"token_sha256\": "
	  "\"0000000000000000000000000000000000000000000000000000000000000001\"},"
	  "{\"name\": \"b\", \"role\": \"auditor\", \"token_sha256\": "
	  "\"0000000000000000000000000000000000000000000000000000000000000001\"}]",
	  "$.principals[1].token_sha256", "tokens must be unique" },
	{ "principals",
	  "[{\"role\": \"admin\", \"token_sha256\": "
	  "\"0000000000000000000000000000000000000000000000000000000000000001\"}]",
	  "$.principals[0]", "missing required key \"name\"" },
	{ "principals",
	  "[{\"name\": \"bad name!\", \"role\": \"admin\", \"token_sha256\": "
	  "\"0000000000000000000000000000000000000000000000000000000000000001\"}]",
	  "$.principals[0].name", "must be a string matching" },
	/* Staff may not pass as consentd's own actors. */
	{ "principals",
	  "[{\"name\": \"Customer\", \"role\": \"admin\", \"token_sha256\": "
	  "\"0000000000000000000000000000000000000000000000000000000000000001\"}]",
	  "$.principals[0].name", "reserved actor name" },
	/* Managing data-subject requests starts from reading them. */
	{ "roles/marketing/actions", "[\"contacts.read\", \"requests.manage\"]", "$.roles.marketing.actions",
	  "requests.manage needs requests.read" },
	{ "erasure_needs_approval", "\"yes\"", "$.erasure_needs_approval", "must be true or false" },
	/* Widening collected_for is a kind of update. */
	{ "roles/marketing/actions", "[\"contacts.read\", \"contacts.widen_purposes\"]",
	  "$.roles.marketing.actions", "contacts.widen_purposes needs contacts.update" },
	/* A contact's plaintext attributes are not sealed fields. */
	{ "fields/source", "{\"class\": \"personal\", \"type\": \"string\", \"description\": \"x\"}",
	  "$.fields.source", "is a contact attribute" },
	{ "roles/support/fields/service", "[\"name\", \"owner\", \"owner\"]",
	  "$.roles.support.fields.service[2]", "duplicate field \"owner\"" },
	/* Frequency caps: both numbers, in range, no other key. */
	{ "purposes/marketing/frequency_cap", "{\"max\": 0, \"per_days\": 7}",
	  "$.purposes.marketing.frequency_cap.max", "between 1 and 1000" },
	{ "purposes/marketing/frequency_cap", "{\"max\": 2, \"per_days\": 400}",
	  "$.purposes.marketing.frequency_cap.per_days", "between 1 and 366" },
	{ "purposes/marketing/frequency_cap", "{\"max\": 2}", "$.purposes.marketing.frequency_cap",
	  "per_days" },
	{ "purposes/marketing/frequency_cap", "{\"max\": 2, \"per_days\": 7, \"weeks\": 1}",
	  "$.purposes.marketing.frequency_cap.weeks", "unknown key" },
	{ "purposes/marketing/frequency_cap", "[2, 7]", "$.purposes.marketing.frequency_cap", "object" },
	{ "purposes/analytics/frequency_choice", "true", "$.purposes.analytics.frequency_choice",
	  "no frequency to choose" },
	{ "purposes/marketing/frequency_choice", "\"yes\"", "$.purposes.marketing.frequency_choice",
	  "must be true or false" },
	/* Caps shared by several purposes: named, at least two known purposes
	 * with channels, both numbers, no other key. */
	{ "frequency_caps", "{}", "$.frequency_caps", "must be an array" },
	{ "frequency_caps",
	  "[{\"name\": \"pressure\", \"purposes\": [\"marketing\"], \"max\": 3, \"per_days\": 7}]",
	  "$.frequency_caps[0].purposes", "at least two purposes" },
	{ "frequency_caps",
	  "[{\"name\": \"pressure\", \"purposes\": [\"marketing\", \"offers\"], \"max\": 3, \"per_days\": 7}]",
	  "$.frequency_caps[0].purposes[1]", "unknown purpose \"offers\"" },
	{ "frequency_caps",
	  "[{\"name\": \"pressure\", \"purposes\": [\"marketing\", \"marketing\"], \"max\": 3, \"per_days\": 7}]",
	  "$.frequency_caps[0].purposes[1]", "duplicate purpose \"marketing\"" },
	{ "frequency_caps",
	  "[{\"name\": \"pressure\", \"purposes\": [\"marketing\", \"analytics\"], \"max\": 3, \"per_days\": 7}]",
	  "$.frequency_caps[0].purposes[1]", "a purpose without channels" },
	{ "frequency_caps",
	  "[{\"name\": \"pressure\", \"purposes\": [\"marketing\", \"care\"], \"max\": 0, \"per_days\": 7}]",
	  "$.frequency_caps[0].max", "between 1 and 1000" },
	{ "frequency_caps",
	  "[{\"name\": \"pressure\", \"purposes\": [\"marketing\", \"care\"], \"max\": 3, \"per_days\": 367}]",
	  "$.frequency_caps[0].per_days", "between 1 and 366" },
	{ "frequency_caps", "[{\"name\": \"pressure\", \"purposes\": [\"marketing\", \"care\"], \"max\": 3}]",
	  "$.frequency_caps[0]", "missing required key \"per_days\"" },
	{ "frequency_caps", "[{\"purposes\": [\"marketing\", \"care\"], \"max\": 3, \"per_days\": 7}]",
	  "$.frequency_caps[0]", "missing required key \"name\"" },
	{ "frequency_caps",
	  "[{\"name\": \"Pressure\", \"purposes\": [\"marketing\", \"care\"], \"max\": 3, \"per_days\": 7}]",
	  "$.frequency_caps[0].name", "cap names must match" },
	{ "frequency_caps",
	  "[{\"name\": \"p\", \"purposes\": [\"marketing\", \"care\"], \"max\": 3, \"per_days\": 7, \"channel\": \"email\"}]",
	  "$.frequency_caps[0].channel", "unknown key" },
	{ "frequency_caps",
	  "[{\"name\": \"p\", \"purposes\": [\"marketing\", \"care\"], \"max\": 3, \"per_days\": 7},"
	  "{\"name\": \"p\", \"purposes\": [\"service\", \"care\"], \"max\": 3, \"per_days\": 7}]",
	  "$.frequency_caps[1].name", "duplicate cap name \"p\"" },
	{ "frequency_caps", "[{\"name\": \"p\", \"purposes\": \"marketing\", \"max\": 3, \"per_days\": 7}]",
	  "$.frequency_caps[0].purposes", "must be an array" },
	/* Double opt-in confirms an address by mail. */
	{ "purposes/analytics/double_opt_in", "true", "$.purposes.analytics.double_opt_in",
	  "needs the email channel" },
	{ "purposes/marketing/double_opt_in", "1", "$.purposes.marketing.double_opt_in",
	  "must be true or false" },
};

static char *example_text(void)
{
	char *path = example_path();
	json_error_t jerr;
	json_t *doc = json_load_file(path, 0, &jerr);
	free(path);
	assert_non_null(doc);
	char *s = json_dumps(doc, 0);
	json_decref(doc);
	return s;
}

static bool has_error(const struct policy_errors *errs, const char *path, const char *reason)
{
	for (size_t i = 0; i < policy_errors_count(errs); i++)
		if (strcmp(policy_errors_path(errs, i), path) == 0 &&
		    strstr(policy_errors_reason(errs, i), reason) != NULL)
			return true;
	return false;
}

static void expect_invalid(const char *text, size_t len, int want_rc, const char *path, const char *reason)
{
	struct policy *p = (struct policy *)1;
	struct policy_errors *errs = NULL;
	int rc = policy_load_buffer(&p, text, len, "test.json", &errs);
	assert_null(p);
	if (rc != want_rc || !has_error(errs, path, reason)) {
		policy_errors_print(errs, stderr);
		fail_msg("want rc %d and \"%s: %s\", got rc %d", want_rc, path, reason, rc);
	}
	policy_errors_free(errs);
}

static void test_invalid_policies(void **state)
{
	(void)state;
	json_error_t jerr;
	char *base = example_text();

	assert_true(sizeof bads / sizeof bads[0] >= 10);
	for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++) {
		json_t *doc = json_loads(base, 0, &jerr);
		edit(doc, bads[i].where, bads[i].value);
		char *text = json_dumps(doc, 0);
		json_decref(doc);
		expect_invalid(text, strlen(text), ERR_INVALID, bads[i].path, bads[i].reason);
		free(text);
	}

	/* The unedited base loads, so each failure above is its edit's. */
	struct policy *p = NULL;
	assert_int_equal(policy_load_buffer(&p, base, strlen(base), "test.json", NULL), 0);
	policy_free(p);
	free(base);
}

static void test_frequency_cap(void **state)
{
	(void)state;
	json_error_t jerr;
	char *base = example_text();
	json_t *doc = json_loads(base, 0, &jerr);
	edit(doc, "purposes/marketing/frequency_cap", "{\"max\": 2, \"per_days\": 7}");
	char *text = json_dumps(doc, 0);
	json_decref(doc);
	struct policy *p = NULL;
	struct policy_purpose_info pi;
	assert_int_equal(policy_load_buffer(&p, text, strlen(text), "test.json", NULL), 0);
	assert_int_equal(policy_purpose_get(p, "marketing", &pi), 0);
	assert_int_equal(pi.cap_max, 2);
	assert_int_equal(pi.cap_per_days, 7);
	assert_int_equal(policy_purpose_get(p, "service", &pi), 0);
	assert_int_equal(pi.cap_max, 0);
	assert_false(pi.double_opt_in);
	policy_free(p);
	/* double_opt_in is read into the purpose. */
	doc = json_loads(base, 0, &jerr);
	edit(doc, "purposes/marketing/double_opt_in", "true");
	free(text);
	text = json_dumps(doc, 0);
	json_decref(doc);
	assert_int_equal(policy_load_buffer(&p, text, strlen(text), "test.json", NULL), 0);
	assert_int_equal(policy_purpose_get(p, "marketing", &pi), 0);
	assert_true(pi.double_opt_in);
	policy_free(p);
	free(text);
	free(base);

	const int64_t day = INT64_C(86400000000), now = INT64_C(1700000000000000);
	int64_t at = -1;
	assert_int_equal(policy_cap_window_start(7, now), now - 7 * day);
	/* No cap, or fewer releases than max: reachable. */
	assert_false(policy_cap_reached(0, 0, 5, now, &at));
	assert_int_equal(at, 0);
	assert_false(policy_cap_reached(2, 7, 1, now - day, &at));
	/* At max: held until the max-th newest release leaves the window. */
	assert_true(policy_cap_reached(2, 7, 2, now - 3 * day, &at));
	assert_int_equal(at, now + 4 * day);

	/* The person's own choices, as caps. */
	static const struct {
		const char *name;
		int64_t max, days;
	} freq[] = { { "any", 0, 0 }, { "weekly", 1, 7 }, { "monthly", 1, 30 }, { "important", -1, 0 } };
	for (size_t i = 0; i < sizeof freq / sizeof freq[0]; i++) {
		enum policy_frequency f;
		int64_t mx = 9, pd = 9;
		assert_int_equal(policy_frequency_from_name(freq[i].name, &f), 0);
		assert_string_equal(policy_frequency_name(f), freq[i].name);
		policy_frequency_cap(f, &mx, &pd);
		assert_int_equal(mx, freq[i].max);
		assert_int_equal(pd, freq[i].days);
	}
	enum policy_frequency f;
	assert_int_equal(policy_frequency_from_name("hourly", &f), ERR_NOTFOUND);
}

/* A cap shared by several purposes is read with its purposes in the
 * policy's order; a policy without one has none. */
static void test_shared_frequency_caps(void **state)
{
	(void)state;
	json_error_t jerr;
	char *base = example_text();
	json_t *doc = json_loads(base, 0, &jerr);
	edit(doc, "frequency_caps",
	     "[{\"name\": \"pressure\", \"purposes\": [\"care\", \"marketing\"], \"max\": 3, "
	     "\"per_days\": 7}]");
	char *text = json_dumps(doc, 0);
	json_decref(doc);
	struct policy *p = NULL;
	struct policy_shared_cap cap;
	assert_int_equal(policy_load_buffer(&p, text, strlen(text), "test.json", NULL), 0);
	assert_int_equal(policy_shared_cap_count(p), 1);
	assert_int_equal(policy_shared_cap_get(p, 0, &cap), 0);
	assert_string_equal(cap.name, "pressure");
	assert_int_equal(cap.max, 3);
	assert_int_equal(cap.per_days, 7);
	assert_int_equal(cap.n_purposes, 2);
	assert_true(policy_shared_cap_covers(&cap, "marketing"));
	assert_true(policy_shared_cap_covers(&cap, "care"));
	assert_false(policy_shared_cap_covers(&cap, "service"));
	assert_int_equal(policy_shared_cap_get(p, 1, &cap), ERR_NOTFOUND);
	policy_free(p);
	assert_int_equal(policy_load_buffer(&p, base, strlen(base), "test.json", NULL), 0);
	assert_int_equal(policy_shared_cap_count(p), 0);
	policy_free(p);
	free(text);
	free(base);
}

static void test_all_errors_reported(void **state)
{
	(void)state;
	json_error_t jerr;
	char *base = example_text();
	json_t *doc = json_loads(base, 0, &jerr);
	for (size_t i = 0; i < 12; i++)
		edit(doc, bads[i].where, bads[i].value);
	char *text = json_dumps(doc, 0);
	json_decref(doc);

	struct policy *p = NULL;
	struct policy_errors *errs = NULL;
	assert_int_equal(policy_load_buffer(&p, text, strlen(text), "test.json", &errs), ERR_INVALID);
	assert_null(p);
	for (size_t i = 0; i < 12; i++)
		if (!has_error(errs, bads[i].path, bads[i].reason)) {
			policy_errors_print(errs, stderr);
			fail_msg("error %zu (%s) not reported", i, bads[i].path);
		}
	assert_int_equal(policy_errors_count(errs), 12);
	assert_string_equal(policy_errors_source(errs), "test.json");

	char line[512];
	assert_true(policy_errors_format(errs, 0, line, sizeof line) > 0);
	assert_non_null(strstr(line, "test.json: $."));
	assert_int_equal(policy_errors_format(errs, 99, line, sizeof line), -1);
	assert_null(policy_errors_path(errs, 99));
	/* err_msg() carries a one-line summary for callers that only log. */
	assert_non_null(strstr(err_msg(), "12 error(s)"));
	policy_errors_free(errs);
	free(text);
	free(base);
}

static void test_malformed_text(void **state)
{
	(void)state;
	static const char not_json[] = "{\"version\": 1,";
	expect_invalid(not_json, strlen(not_json), ERR_INVALID, "$", "not valid JSON");

	static const char dup[] = "{\"version\": 1, \"version\": 1}";
	expect_invalid(dup, strlen(dup), ERR_INVALID, "$", "duplicate");

	static const char array[] = "[]";
	expect_invalid(array, strlen(array), ERR_INVALID, "$", "must be an object");

	static const char nul[] = "{\"version\": 1}\0{";
	expect_invalid(nul, sizeof nul - 1, ERR_INVALID, "$", "not valid JSON");

	char deep[64];
	memset(deep, '[', sizeof deep);
	expect_invalid(deep, sizeof deep, ERR_TOOBIG, "$", "deeper than");

	size_t big = LIMIT_POLICY_BYTES + 1;
	char *huge = malloc(big);
	assert_non_null(huge);
	memset(huge, ' ', big);
	expect_invalid(huge, big, ERR_TOOBIG, "$", "the limit is");
	free(huge);

	/* A key with control characters is escaped in the path. */
	static const char odd[] = "{\"ver\\u0001sion\": 1}";
	expect_invalid(odd, strlen(odd), ERR_INVALID, "$[\"ver\\x01sion\"]", "unknown key");
}

static void test_principals(void **state)
{
	(void)state;
	char *base = example_text();
	json_error_t jerr;
	json_t *doc = json_loads(base, 0, &jerr);
	/* SHA-256("test") and SHA-256("test2"). */
	edit(doc, "principals",
	     "[{\"name\": \"crm-sync\", \"role\": \"admin\", \"token_sha256\": "
	     "\"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"},"
	     "{\"name\": \"campaign-tool\", \"role\": \"marketing\", \"token_sha256\": "
	     "\"60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752\"}]");
	char *text = json_dumps(doc, 0);
	json_decref(doc);
	struct policy *p = NULL;
	assert_int_equal(policy_load_buffer(&p, text, strlen(text), "p.json", NULL), 0);

	static const uint8_t test2[32] = { 0x60, 0x30, 0x3a, 0xe2, 0x2b, 0x99, 0x88, 0x61, 0xbc, 0xe3, 0xb2,
					   0x8f, 0x33, 0xee, 0xc1, 0xbe, 0x75, 0x8a, 0x21, 0x3c, 0x86, 0xc9,
					   0x3c, 0x07, 0x6d, 0xbe, 0x9f, 0x55, 0x8c, 0x11, 0xc7, 0x52 };
	const char *name = NULL, *role = NULL;
	assert_int_equal(policy_principal_count(p), 2);
	assert_int_equal(policy_principal_find(p, test2, &name, &role), 0);
	assert_string_equal(name, "campaign-tool");
	assert_string_equal(role, "marketing");
	uint8_t other[32];
	memcpy(other, test2, 32);
	other[31] ^= 1;
	assert_int_equal(policy_principal_find(p, other, &name, &role), ERR_NOTFOUND);
	assert_int_equal(policy_principal_role(p, "crm-sync", &role), 0);
	assert_string_equal(role, "admin");
	policy_free(p);
	free(text);
	free(base);
}

/* contacts.widen_purposes is admin's alone in the example policy, and the
 * plaintext labels are shown per purpose like fields. */
static void test_widening_and_labels(void **state)
{
	struct policy *p = *state;
	enum policy_action act;
	assert_int_equal(policy_action_from_name("contacts.widen_purposes", &act), 0);
	assert_int_equal(act, POLICY_ACT_CONTACTS_WIDEN_PURPOSES);
	assert_string_equal(policy_action_name(POLICY_ACT_CONTACTS_WIDEN_PURPOSES),
			    "contacts.widen_purposes");
	assert_true(policy_role_may(p, "admin", POLICY_ACT_CONTACTS_WIDEN_PURPOSES));
	static const char *const others[] = { "support", "care_coordinator", "marketing", "auditor",
					      "nobody" };
	for (size_t i = 0; i < sizeof others / sizeof others[0]; i++)
		assert_false(policy_role_may(p, others[i], POLICY_ACT_CONTACTS_WIDEN_PURPOSES));
	assert_int_equal(policy_role_metadata(p, "admin", "care"), POLICY_META_SOURCE | POLICY_META_OWNER);
	assert_int_equal(policy_role_metadata(p, "support", "service"),
			 POLICY_META_SOURCE | POLICY_META_OWNER);
	assert_int_equal(policy_role_metadata(p, "support", "care"), 0);
	assert_int_equal(policy_role_metadata(p, "support", "marketing"), 0); /* not its purpose */
	assert_int_equal(policy_role_metadata(p, "marketing", "marketing"), 0);
	assert_int_equal(policy_role_metadata(p, "nobody", "service"), 0);
	const char *role = NULL;
	assert_int_equal(policy_principal_role(p, "no-such-principal", &role), ERR_NOTFOUND);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_decision_table, load_example, free_example),
		cmocka_unit_test_setup_teardown(test_marketing_never_sees_sensitive_fields, load_example,
						free_example),
		cmocka_unit_test_setup_teardown(test_lookups, load_example, free_example),
		cmocka_unit_test(test_consent_best),
		cmocka_unit_test(test_vocabulary),
		cmocka_unit_test(test_refcount_and_null),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_invalid_policies),
		cmocka_unit_test(test_all_errors_reported),
		cmocka_unit_test(test_frequency_cap),
		cmocka_unit_test(test_shared_frequency_caps),
		cmocka_unit_test(test_malformed_text),
		cmocka_unit_test(test_principals),
		cmocka_unit_test_setup_teardown(test_widening_and_labels, load_example, free_example),
	};
	return cmocka_run_group_tests_name("policy", tests, NULL, NULL);
}
