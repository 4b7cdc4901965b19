/*
 * h_consents: recording consent (with a receipt and encrypted evidence),
 * reading the current state and full history, and the consent check.
 *
 * Consent events are append-only (consent_event); the current row per
 * (contact, purpose, channel) is the event that store_consent_supersedes
 * (service/store/store_order.c) picks: a claimed `at` orders events but never
 * past the time consentd recorded them, and a later "no" beats a "yes".
 * Expiry is never stored as a status: it is decided by the policy engine at
 * check time.
 *
 * The check's body is read by parse_check_body (service/parse.h): pure, no
 * keys, and fuzzed by tests/fuzz/fuzz_check_body.c.
 */
#include "service/app.h"

#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/contact.h"
#include "service/crypto/fieldcrypt.h"
#include "service/parse.h"
#include "service/router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct consent_write {
	struct store_consent cs;
	json_t *evidence; /* sealed in apply, under the contact's data key */
};

static void consent_write_free(void *p)
{
	struct consent_write *w = p;
	if (w == NULL)
		return;
	json_decref(w->evidence);
	free(w);
}

static const char *const consent_keys[] = {
	"channel", "status", "legal_basis", "notice_version", "source", "collection_method",
	"evidence", "expires_at", "at", NULL,
};

static int opt_text(json_t *body, const char *key, char *out, size_t cap, const char *dflt)
{
	json_t *v = json_object_get(body, key);
	if (v == NULL || json_is_null(v)) {
		snprintf(out, cap, "%s", dflt);
		return 0;
	}
	/* Every such value is stored in plaintext (and collection_method
	 * reaches the audit trail), so it is a label, never free text. */
	size_t max = cap - 1 < LIMIT_LABEL_BYTES ? cap - 1 : LIMIT_LABEL_BYTES;
	if (!json_is_string(v))
		return err_set(ERR_INVALID, "%s must be a string", key);
	if (json_string_length(v) != strlen(json_string_value(v)) || !is_identifier(json_string_value(v), max))
		return err_set(ERR_INVALID, "%s must be 1 to %zu characters of A-Z a-z 0-9 . _ : @ / + -",
			       key, max);
	snprintf(out, cap, "%s", json_string_value(v));
	return 0;
}

static int opt_time(json_t *body, const char *key, int64_t *out)
{
	json_t *v = json_object_get(body, key);
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v) || parse_time(json_string_value(v), out) != 0)
		return err_set(ERR_INVALID, "%s must be an RFC 3339 time, e.g. 2026-01-31T12:00:00Z", key);
	return 0;
}

/* Validates a consent body for purpose into cs (everything but ids). Shared
 * with the bulk import, which records consents with their original times. */
int consent_from_json(const struct policy *p, const char *purpose, json_t *body, int64_t now,
		      struct store_consent *cs, int *reason_422)
{
	struct policy_purpose_info pi;
	const char *key;
	json_t *v;
	int rc;
	*reason_422 = -1;
	json_object_foreach(body, key, v) {
		bool known = false;
		for (int i = 0; consent_keys[i] != NULL; i++)
			known = known || strcmp(consent_keys[i], key) == 0;
		if (!known)
			return err_set(ERR_INVALID, "unknown key \"%s\"", key);
	}
	if (policy_purpose_get(p, purpose, &pi) != 0) {
		*reason_422 = POLICY_REASON_UNKNOWN_PURPOSE;
		return err_set(ERR_UNPROCESSABLE, "unknown purpose \"%s\"", purpose);
	}
	snprintf(cs->purpose, sizeof cs->purpose, "%s", purpose);
	json_t *ch = json_object_get(body, "channel");
	if (pi.channels != 0 || (ch != NULL && !json_is_null(ch))) {
		enum policy_channel c;
		if (!json_is_string(ch))
			return err_set(ERR_INVALID, "channel is required for purpose %s", purpose);
		if (policy_channel_from_name(json_string_value(ch), &c) != 0) {
			*reason_422 = POLICY_REASON_UNKNOWN_CHANNEL;
			return err_set(ERR_UNPROCESSABLE, "unknown channel \"%s\"", json_string_value(ch));
		}
		if (!(pi.channels & (1u << c))) {
			*reason_422 = POLICY_REASON_CHANNEL_NOT_ALLOWED;
			return err_set(ERR_UNPROCESSABLE, "purpose %s does not use channel %s", purpose,
				       json_string_value(ch));
		}
		snprintf(cs->channel, sizeof cs->channel, "%s", json_string_value(ch));
	}
	json_t *st = json_object_get(body, "status");
	const char *s = json_string_value(st);
	if (s == NULL || (strcmp(s, "granted") != 0 && strcmp(s, "refused") != 0 && strcmp(s, "withdrawn") != 0))
		return err_set(ERR_INVALID, "status must be granted, refused or withdrawn");
	snprintf(cs->status, sizeof cs->status, "%s", s);
	if ((rc = opt_text(body, "legal_basis", cs->legal_basis, sizeof cs->legal_basis,
			   policy_legal_basis_name(pi.legal_basis))) != 0)
		return rc;
	bool basis_ok = false;
	for (int b = 0; b < POLICY_BASIS_COUNT; b++)
		basis_ok = basis_ok || strcmp(cs->legal_basis, policy_legal_basis_name((enum policy_legal_basis)b)) == 0;
	if (!basis_ok)
		return err_set(ERR_INVALID, "legal_basis \"%s\" is not a GDPR Art. 6 basis", cs->legal_basis);
	if ((rc = opt_text(body, "notice_version", cs->notice_version, sizeof cs->notice_version,
			   policy_notice_version(p))) != 0 ||
	    (rc = opt_text(body, "source", cs->source, sizeof cs->source, "api")) != 0 ||
	    (rc = opt_text(body, "collection_method", cs->method, sizeof cs->method, "api")) != 0)
		return rc;
	cs->at_us = now;
	if ((rc = opt_time(body, "at", &cs->at_us)) != 0)
		return rc;
	/* A sender's clock may run a little ahead of ours; the ordering of the
	 * current state never trusts the excess (store_consent_effective_us). */
	if (cs->at_us > now + LIMIT_CLOCK_AHEAD_SECONDS * INT64_C(1000000))
		return err_set(ERR_INVALID, "at must not be more than %d seconds ahead of the server's clock",
			       LIMIT_CLOCK_AHEAD_SECONDS);
	cs->recorded_us = now;
	cs->expires_us = 0;
	if ((rc = opt_time(body, "expires_at", &cs->expires_us)) != 0)
		return rc;
	if (strcmp(cs->status, "granted") == 0) {
		cs->granted_us = cs->at_us;
		if (cs->expires_us == 0 && pi.consent_lifetime_days > 0)
			cs->expires_us = cs->at_us + pi.consent_lifetime_days * 86400 * INT64_C(1000000);
		if (cs->expires_us != 0 && cs->expires_us <= cs->at_us)
			return err_set(ERR_INVALID, "expires_at must be after the time consent was given");
	} else {
		cs->expires_us = 0;
		if (strcmp(cs->status, "withdrawn") == 0)
			cs->withdrawn_us = cs->at_us;
	}
	json_t *ev = json_object_get(body, "evidence");
	if (ev != NULL && !json_is_null(ev) && !json_is_object(ev) && !json_is_string(ev))
		return err_set(ERR_INVALID, "evidence must be an object or a string");
	return 0;
}

/* Seals evidence and records the consent; runs on the commit thread. */
int consent_record(struct store_conn *wc, const struct keyring *kr, const struct store_contact *ct,
		   struct store_consent *cs, json_t *evidence)
{
	struct store_consent prev;
	uint8_t *sealed = NULL;
	size_t len = 0;
	int rc = 0;
	if (store_consent_get(wc, ct->id, cs->purpose, cs->channel, &prev) == 0 &&
	    strcmp(cs->status, "granted") != 0)
		cs->granted_us = prev.granted_us; /* keep when it was first given */
	if (evidence != NULL && !json_is_null(evidence)) {
		uint8_t dek[32];
		char field[96];
		snprintf(field, sizeof field, "evidence/%s", cs->receipt_id);
		rc = contact_unwrap(kr, ct, dek);
		if (rc == 0)
			rc = contact_seal(dek, "consent", ct->id, field, evidence, &sealed, &len);
		crypto_wipe(dek, sizeof dek);
		if (rc != 0)
			return rc;
	}
	cs->evidence = sealed;
	cs->evidence_len = len;
	rc = store_consent_put(wc, cs);
	free(sealed);
	cs->evidence = NULL;
	return rc;
}

/* The receipt. `current` says whether the event is now the current state
 * or joined the history only (a back-dated grant after a withdrawal), so a
 * system replaying old receipts is not left believing a grant is live. */
static void consent_receipt(struct reqctx *ctx, const struct store_consent *cs, bool current)
{
	reply_json(ctx, 200,
		   json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:b}", "receipt_id",
			     cs->receipt_id, "contact_id", cs->contact_id, "purpose", cs->purpose, "channel",
			     cs->channel, "status", cs->status, "legal_basis", cs->legal_basis,
			     "notice_version", cs->notice_version, "at", json_time(cs->at_us),
			     "expires_at", json_time(cs->expires_us), "recorded_at",
			     json_time(cs->recorded_us), "current", current));
}

static int apply_consent(struct store_conn *wc, struct writer_job *job)
{
	struct reqctx *ctx = job->ctx;
	struct consent_write *w = ctx->state;
	struct store_contact ct;
	struct store_consent cur;
	int rc = app_active_contact(ctx, wc, w->cs.contact_id, &ct);
	if (rc == 0)
		rc = consent_record(wc, ctx->app->keys, &ct, &w->cs, w->evidence);
	if (rc == 0)
		rc = store_consent_get(wc, w->cs.contact_id, w->cs.purpose, w->cs.channel, &cur);
	if (rc != 0)
		return rc;
	/* Runs on the commit thread before the reply is sent; if the commit
	 * fails, commit_done replaces this receipt with a 503. */
	consent_receipt(ctx, &w->cs, strcmp(cur.receipt_id, w->cs.receipt_id) == 0);
	return 0;
}

void h_consent_put(struct reqctx *ctx)
{
	const char *id = ctx->param[0], *purpose = ctx->param[1];
	json_t *body;
	int reason = -1, rc;
	if (!app_require_logged(ctx, POLICY_ACT_CONSENTS_WRITE, id, NULL, is_name(purpose) ? purpose : NULL))
		return;
	if ((body = app_json_body(ctx)) == NULL)
		return;
	struct consent_write *w = calloc(1, sizeof *w);
	if (w == NULL) {
		json_decref(body);
		reply_problem(ctx, err_set(ERR_NOMEM, "out of memory"), NULL);
		app_send(ctx);
		return;
	}
	ctx->state = w;
	ctx->state_free = consent_write_free;
	if ((rc = consent_from_json(ctx->policy, purpose, body, now_us(), &w->cs, &reason)) != 0) {
		json_decref(body);
		reply_problem(ctx, rc, reason >= 0 ? policy_reason_name((enum policy_reason)reason) : NULL);
		app_send(ctx);
		return;
	}
	uint8_t raw[16];
	crypto_random(raw, sizeof raw);
	b64url_encode(raw, sizeof raw, w->cs.receipt_id);
	snprintf(w->cs.contact_id, sizeof w->cs.contact_id, "%s", id);
	w->evidence = json_incref(json_object_get(body, "evidence"));
	json_decref(body);

	audit_begin(ctx, "consents.write", id, purpose, w->cs.channel);
	audit_decide(ctx, true, w->cs.status);
	audit_detail(ctx, json_pack("{s:s, s:s}", "receipt_id", w->cs.receipt_id, "method", w->cs.method));
	/* The receipt is written by apply_consent, once the store has said
	 * whether the event became the current state. */
	ctx->job.apply = apply_consent;
	app_commit(ctx);
}

/* ---- reading ---- */

struct consents_walk {
	const char *role; /* NULL: every purpose; else only the purposes the role may use */
	json_t *arr;
	const struct keyring *kr;
	const struct store_contact *ct;
	bool evidence;
	int64_t now_s;
	const struct policy *p;
};

json_t *consent_to_json(const struct store_consent *cs, const struct policy *p, int64_t now_s)
{
	struct policy_consent pc = { POLICY_CONSENT_NONE, cs->expires_us / 1000000 };
	policy_consent_status_from_name(cs->status, &pc.status);
	const char *effective = cs->status;
	if (pc.status == POLICY_CONSENT_GRANTED && !policy_consent_valid(&pc, now_s))
		effective = "expired";
	(void)p;
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:o}",
			 "purpose", cs->purpose, "channel", cs->channel, "status", cs->status,
			 "effective_status", effective, "legal_basis", cs->legal_basis, "notice_version",
			 cs->notice_version, "source", cs->source, "collection_method", cs->method,
			 "receipt_id", cs->receipt_id, "at", json_time(cs->at_us), "granted_at",
			 json_time(cs->granted_us), "expires_at", json_time(cs->expires_us),
			 "withdrawn_at", json_time(cs->withdrawn_us), "recorded_at",
			 json_time(cs->recorded_us));
}

static int consent_cb(void *arg, const struct store_consent *cs)
{
	struct consents_walk *w = arg;
	if (w->role != NULL && !policy_role_may_purpose(w->p, w->role, cs->purpose))
		return 0; /* e.g. a care consent says "patient": not for marketing's eyes */
	json_t *o = consent_to_json(cs, w->p, w->now_s);
	if (w->evidence && cs->evidence != NULL && !w->ct->erased) {
		uint8_t dek[32];
		char field[96];
		json_t *ev = NULL;
		snprintf(field, sizeof field, "evidence/%s", cs->receipt_id);
		if (contact_unwrap(w->kr, w->ct, dek) == 0 &&
		    contact_open(dek, "consent", w->ct->id, field, cs->evidence, cs->evidence_len, &ev) == 0)
			json_object_set_new(o, "evidence", ev);
		crypto_wipe(dek, sizeof dek);
	}
	json_array_append_new(w->arr, o);
	return 0;
}

void h_consents_get(struct reqctx *ctx)
{
	const char *id = ctx->param[0];
	struct store_contact ct;
	if (!app_require(ctx, POLICY_ACT_CONSENTS_READ, id, NULL))
		return;
	audit_begin(ctx, "consents.read", id, NULL, NULL);
	int rc = store_contact_get(ctx->rd, id, &ct);
	if (rc != 0) {
		audit_decide(ctx, false, rc == ERR_NOTFOUND ? "unknown_contact" : "error");
		reply_problem(ctx, rc, rc == ERR_NOTFOUND ? "unknown_contact" : NULL);
		app_commit(ctx);
		return;
	}
	/* Evidence (form URL, user agent, address) is personal data: only roles
	 * that may change the record see it. */
	bool evidence = policy_role_may(ctx->policy, ctx->role, POLICY_ACT_CONTACTS_UPDATE);
	/* Roles that record consents (for any purpose) see them all; a read-only
	 * role sees only the purposes it may use. */
	const char *only = policy_role_may(ctx->policy, ctx->role, POLICY_ACT_CONSENTS_WRITE) ? NULL : ctx->role;
	struct consents_walk cur = { only, json_array(), ctx->app->keys, &ct, evidence, now_us() / 1000000,
				     ctx->policy };
	struct consents_walk hist = cur;
	hist.arr = json_array();
	rc = store_consents_each(ctx->rd, id, consent_cb, &cur);
	if (rc == 0)
		rc = store_consent_history_each(ctx->rd, id, consent_cb, &hist);
	if (rc != 0) {
		json_decref(cur.arr);
		json_decref(hist.arr);
		audit_decide(ctx, false, "error");
		reply_problem(ctx, rc, NULL);
		app_commit(ctx);
		return;
	}
	audit_decide(ctx, true, ct.erased ? "erased" : "allowed");
	if (evidence)
		audit_fields(ctx, "evidence");
	reply_json(ctx, 200, json_pack("{s:s, s:s, s:o, s:o}", "contact_id", id, "status",
				       ct.erased ? "erased" : "active", "consents", cur.arr, "history",
				       hist.arr));
	app_commit(ctx);
}

/* ---- the check ---- */

static const char *const check_keys[] = { "contact_id", "email", "purpose", "channel", NULL };

int parse_check_body(const struct policy *p, json_t *body, struct check_req *out, const char **reason)
{
	const char *key;
	json_t *v;
	char norm[256];
	memset(out, 0, sizeof *out);
	*reason = NULL;
	json_object_foreach(body, key, v) {
		bool known = false;
		for (int i = 0; check_keys[i] != NULL; i++)
			known = known || strcmp(check_keys[i], key) == 0;
		if (!known || !json_is_string(v))
			return err_set(ERR_INVALID, known ? "%s must be a string" : "unknown key \"%s\"", key);
	}
	out->contact_id = json_string_value(json_object_get(body, "contact_id"));
	out->email = json_string_value(json_object_get(body, "email"));
	out->purpose = json_string_value(json_object_get(body, "purpose"));
	out->channel = json_string_value(json_object_get(body, "channel"));
	if ((out->contact_id == NULL) == (out->email == NULL))
		return err_set(ERR_INVALID, "give exactly one of contact_id and email");
	if (out->purpose == NULL || out->channel == NULL)
		return err_set(ERR_INVALID, "purpose and channel are required");
	if (out->contact_id != NULL && !is_contact_id(out->contact_id))
		return err_set(ERR_INVALID, "contact_id is not a contact id");
	if (out->email != NULL) {
		/* The same normalisation contact_email_hashes applies before hashing. */
		int rc = normalize_email(out->email, strlen(out->email), norm, sizeof norm);
		crypto_wipe(norm, sizeof norm);
		if (rc != 0)
			return err_set(ERR_INVALID, "email: %s", err_msg());
	}
	if (policy_purpose_get(p, out->purpose, &out->pi) != 0) {
		*reason = "unknown_purpose";
		return err_set(ERR_UNPROCESSABLE, "unknown purpose \"%s\"", out->purpose);
	}
	if (policy_channel_from_name(out->channel, &out->ch) != 0) {
		*reason = "unknown_channel";
		return err_set(ERR_UNPROCESSABLE, "unknown channel \"%s\"", out->channel);
	}
	return 0;
}

void h_consent_check(struct reqctx *ctx)
{
	json_t *body;
	struct check_req req;
	struct contact_subject subj;
	struct policy_decision d;
	struct policy_purpose_info pi;
	enum policy_channel chv;
	uint8_t bidx[32], shash[32];
	const char *reason_422;
	int rc;

	atomic_fetch_add(&ctx->app->metrics.checks, 1);
	if ((body = app_json_body(ctx)) == NULL)
		return;
	rc = parse_check_body(ctx->policy, body, &req, &reason_422);
	if (rc == 0 && req.email != NULL && contact_email_hashes(ctx->app->keys, req.email, bidx, shash) != 0)
		rc = err_set(ERR_INVALID, "email: %s", err_msg());
	if (rc != 0) {
		json_decref(body);
		reply_problem(ctx, rc, rc == ERR_UNPROCESSABLE ? reason_422 : NULL);
		app_send(ctx);
		return;
	}
	const char *id = req.contact_id, *email = req.email, *purpose = req.purpose, *channel = req.channel;
	pi = req.pi;
	chv = req.ch;
	if (!app_require(ctx, POLICY_ACT_CONSENT_CHECK, NULL, purpose)) {
		json_decref(body);
		return;
	}
	/* One statement: the contact, its consent for (purpose, channel), its own
	 * suppressions and the given address's; one read lock. */
	struct store_filter_row row;
	rc = email != NULL ? store_filter_by_email(ctx->rd, bidx, shash, pi.name, policy_channel_name(chv), &row)
			   : store_filter_by_id(ctx->rd, id, pi.name, policy_channel_name(chv), &row);
	if (rc != 0)
		goto fail;
	bool known = row.found;
	contact_subject_from_row(&row, &subj);
	policy_decide_contact(ctx->policy, ctx->role, purpose, channel, &subj.s, now_us() / 1000000, &d);
	const char *reason = policy_reason_name(d.reason);
	audit_begin(ctx, "consent.check", known ? row.id : "", purpose, channel);
	audit_decide(ctx, d.allowed, reason);
	/* The hot path: every value here is a policy name or a contact id
	 * (validated, [A-Za-z0-9_-]), so the reply is written directly. */
	char *out = NULL;
	int n = asprintf(&out, "{\"allowed\":%s,\"reason\":\"%s\",\"purpose\":\"%s\",\"channel\":\"%s\"%s%s%s}",
			 d.allowed ? "true" : "false", reason, pi.name, policy_channel_name(chv),
			 known ? ",\"contact_id\":\"" : "", known ? row.id : "", known ? "\"" : "");
	json_decref(body);
	if (n < 0) {
		rc = err_set(ERR_NOMEM, "out of memory");
		goto fail_noid;
	}
	reply_text(ctx, 200, "application/json", out, (size_t)n);
	app_commit(ctx);
	return;
fail:
	json_decref(body);
fail_noid:
	audit_begin(ctx, "consent.check", "", pi.name, policy_channel_name(chv));
	audit_decide(ctx, false, "error");
	reply_problem(ctx, rc, NULL);
	app_commit(ctx);
}

const struct route consent_routes[] = {
	{ "PUT", "/v1/contacts/{id}/consents/{name}", h_consent_put, NULL, false, 0, "consents.write" },
	{ "GET", "/v1/contacts/{id}/consents", h_consents_get, NULL, false, 0, "consents.read" },
	{ "POST", "/v1/consent/check", h_consent_check, NULL, false, 0, "consent.check" },
	{ 0 },
};
