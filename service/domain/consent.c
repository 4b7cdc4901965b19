/*
 * consent: the consent domain. See consent.h.
 *
 * Which consent event is the current state: this file holds the one rule
 * that decides it (consent_supersedes); consent_put applies it on the
 * single writer, and nothing else (no SQL string, no handler, no backend)
 * compares events.
 *
 * Every event carries two times: `at`, when the sender says it happened
 * (the original time of an import, or a client's clock, up to five minutes
 * ahead of ours), and `recorded`, when consentd took it. Only the second is
 * ours. So events are ordered by an effective time that never exceeds the
 * recorded one, and wherever the two times disagree the answer is the one
 * that contacts nobody by mistake:
 *
 *   1. A withdrawal or refusal recorded after a grant replaces it, whatever
 *      either claims as `at`: a claimed time (a clock ahead, a clock
 *      behind, a late sync) can never keep a "yes" alive against a later
 *      "no".
 *   2. Otherwise the event with the later effective time, min(at, recorded),
 *      is current. A back-dated event (an import, a replayed receipt) joins
 *      the history and never overrides a state recorded after its time.
 *   3. Equal effective times go to the more restrictive state: withdrawn or
 *      refused, then the grant that expires first (it is expired sooner),
 *      then a grant that never expires.
 *   4. Still equal: the event recorded later (the newcomer) wins.
 *
 * The rule is pure (no store, no clock), so tests/unit/test_consent.c
 * table-tests it.
 */
#include "service/domain/consent.h"
#include "service/domain/optin.h"

#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/base/limits.h"
#include "service/domain/record.h"
#include "service/domain/release.h"
#include "service/domain/event.h"
#include "service/domain/suppression.h"
#include "service/crypto/fieldcrypt.h"
#include "service/parse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum policy_consent_status consent_status(const struct store_consent *cs)
{
	enum policy_consent_status st = POLICY_CONSENT_NONE;
	policy_consent_status_from_name(cs->status, &st);
	return st;
}

int64_t consent_effective_us(const struct store_consent *cs)
{
	return cs->at_us < cs->recorded_us ? cs->at_us : cs->recorded_us;
}

static bool is_restrictive(const struct store_consent *cs)
{
	return consent_status(cs) != POLICY_CONSENT_GRANTED;
}

/* A grant that never expires (0) is the least restrictive of all. */
static int64_t expiry_or_never(const struct store_consent *cs)
{
	return cs->expires_us == 0 ? INT64_MAX : cs->expires_us;
}

bool consent_supersedes(const struct store_consent *next, const struct store_consent *cur)
{
	if (is_restrictive(next) && !is_restrictive(cur))
		return true; /* rule 1 */
	int64_t tn = consent_effective_us(next), tc = consent_effective_us(cur);
	if (tn != tc)
		return tn > tc; /* rule 2 */
	if (is_restrictive(next) != is_restrictive(cur))
		return is_restrictive(next); /* rule 3: a "no" beats a "yes" */
	if (!is_restrictive(next) && expiry_or_never(next) != expiry_or_never(cur))
		return expiry_or_never(next) < expiry_or_never(cur); /* rule 3: expires first */
	return true;						     /* rule 4 */
}

static const char *const consent_keys[] = {
	"channel",    "status", "legal_basis", "notice_version", "source", "collection_method", "evidence",
	"expires_at", "at",	NULL,
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
	if (json_string_length(v) != strlen(json_string_value(v)) ||
	    !is_identifier(json_string_value(v), max))
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

int consent_from_json(const struct policy *p, const char *purpose, json_t *body, int64_t now,
		      struct store_consent *cs, int *reason_422)
{
	struct policy_purpose_info pi;
	const char *key;
	json_t *v;
	int rc;
	*reason_422 = -1;
	json_object_foreach (body, key, v) {
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
	enum policy_consent_status status = POLICY_CONSENT_NONE;
	/* Only the three states a person can express are recorded; "expired"
	 * and "none" are what the engine derives. */
	if (s == NULL || policy_consent_status_from_name(s, &status) != 0 ||
	    (status != POLICY_CONSENT_GRANTED && status != POLICY_CONSENT_REFUSED &&
	     status != POLICY_CONSENT_WITHDRAWN))
		return err_set(ERR_INVALID, "status must be granted, refused or withdrawn");
	snprintf(cs->status, sizeof cs->status, "%s", policy_consent_status_name(status));
	if ((rc = opt_text(body, "legal_basis", cs->legal_basis, sizeof cs->legal_basis,
			   policy_legal_basis_name(pi.legal_basis))) != 0)
		return rc;
	bool basis_ok = false;
	for (int b = 0; b < POLICY_BASIS_COUNT; b++)
		basis_ok = basis_ok ||
			   strcmp(cs->legal_basis, policy_legal_basis_name((enum policy_legal_basis)b)) == 0;
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
	 * current state never trusts the excess (consent_effective_us). */
	if (cs->at_us > now + LIMIT_CLOCK_AHEAD_SECONDS * INT64_C(1000000))
		return err_set(ERR_INVALID, "at must not be more than %d seconds ahead of the server's clock",
			       LIMIT_CLOCK_AHEAD_SECONDS);
	cs->recorded_us = now;
	cs->expires_us = 0;
	if ((rc = opt_time(body, "expires_at", &cs->expires_us)) != 0)
		return rc;
	if (status == POLICY_CONSENT_GRANTED) {
		cs->granted_us = cs->at_us;
		if (cs->expires_us == 0 && pi.consent_lifetime_days > 0)
			cs->expires_us = cs->at_us + pi.consent_lifetime_days * 86400 * INT64_C(1000000);
		if (cs->expires_us != 0 && cs->expires_us <= cs->at_us)
			return err_set(ERR_INVALID, "expires_at must be after the time consent was given");
	} else {
		cs->expires_us = 0;
		if (status == POLICY_CONSENT_WITHDRAWN)
			cs->withdrawn_us = cs->at_us;
	}
	json_t *ev = json_object_get(body, "evidence");
	if (ev != NULL && !json_is_null(ev) && !json_is_object(ev) && !json_is_string(ev))
		return err_set(ERR_INVALID, "evidence must be an object or a string");
	return 0;
}

void consent_new_receipt(char receipt_id[STORE_ID_CAP])
{
	uint8_t raw[LIMIT_ID_RAW_BYTES];
	crypto_random(raw, sizeof raw);
	b64url_encode(raw, sizeof raw, receipt_id);
}

int consent_seal_evidence(const uint8_t dek[32], const char *contact_id, struct store_consent *cs,
			  json_t *evidence, uint8_t **sealed)
{
	char field[96];
	size_t len = 0;
	*sealed = NULL;
	if (evidence == NULL || json_is_null(evidence))
		return 0;
	snprintf(field, sizeof field, "evidence/%s", cs->receipt_id);
	int rc = record_seal(dek, "consent", contact_id, field, evidence, sealed, &len);
	cs->evidence = *sealed;
	cs->evidence_len = len;
	return rc;
}

int consent_apply(struct txn *t, const struct store_consent *cs, bool *current)
{
	struct store_consent cur;
	/* The writer applies events in recording order, so cs is recorded
	 * after whatever is current now. */
	int rc = store_consent_get(t->c, cs->contact_id, cs->purpose, cs->channel, &cur);
	if (rc != 0 && rc != ERR_NOTFOUND)
		return rc;
	bool is_current = rc == ERR_NOTFOUND || consent_supersedes(cs, &cur);
	if (current != NULL)
		*current = is_current;
	if ((rc = store_consent_put(t->c, cs, is_current)) != 0 || !is_current)
		return rc;
	return event_emit(t, EVENT_CONSENT_CHANGED, cs->contact_id,
			  json_pack("{s:s, s:s, s:s}", "purpose", cs->purpose, "channel", cs->channel,
				    "status", cs->status));
}

static int put(struct txn *t, const struct store_contact *ct, struct store_consent *cs, json_t *evidence,
	       bool *current, bool confirmed)
{
	struct store_consent prev;
	uint8_t *sealed = NULL;
	bool is_current = false;
	int rc = store_consent_get(t->c, ct->id, cs->purpose, cs->channel, &prev);
	if (rc != 0 && rc != ERR_NOTFOUND)
		return rc;
	bool have_prev = rc == 0;
	rc = 0;
	/* Double opt-in: the grant waits for the person's confirmation
	 * (optin.h); only consent_confirm records it as given. */
	bool pending = !confirmed && optin_needed(t->policy, cs, have_prev ? &prev : NULL);
	if (pending) {
		snprintf(cs->status, sizeof cs->status, "pending_confirmation");
		cs->granted_us = 0;
	}
	if (have_prev && consent_status(cs) != POLICY_CONSENT_GRANTED)
		cs->granted_us = prev.granted_us; /* keep when it was first given */
	if (evidence != NULL && !json_is_null(evidence)) {
		uint8_t dek[32];
		rc = record_unwrap(t->keys, ct, dek);
		if (rc == 0)
			rc = consent_seal_evidence(dek, ct->id, cs, evidence, &sealed);
		crypto_wipe(dek, sizeof dek);
		if (rc != 0) {
			free(sealed);
			cs->evidence = NULL;
			return rc;
		}
	}
	rc = consent_apply(t, cs, &is_current);
	free(sealed);
	cs->evidence = NULL;
	cs->evidence_len = 0;
	if (current != NULL)
		*current = is_current;
	/* A back-dated grant that is not the current state asks nothing. */
	if (rc == 0 && pending && is_current)
		rc = optin_begin(t, cs, NULL);
	return rc;
}

int consent_put(struct txn *t, const struct store_contact *ct, struct store_consent *cs, json_t *evidence,
		bool *current)
{
	return put(t, ct, cs, evidence, current, false);
}

int consent_put_confirmed(struct txn *t, const struct store_contact *ct, struct store_consent *cs,
			  json_t *evidence, bool *current)
{
	return put(t, ct, cs, evidence, current, true);
}

int consent_frequency_set(struct txn *t, const struct store_contact *ct, const char *purpose,
			  const char *channel, enum policy_frequency f, const char *link_id)
{
	struct store_consent cs;
	uint8_t dek[32], *sealed = NULL;
	json_t *evidence = NULL;
	int rc = release_choice_set(t, ct->id, purpose, channel, f);
	if (rc != 0)
		return rc;
	rc = store_consent_get(t->c, ct->id, purpose, channel, &cs);
	if (rc == ERR_NOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	consent_new_receipt(cs.receipt_id);
	snprintf(cs.method, sizeof cs.method, "frequency_choice");
	snprintf(cs.source, sizeof cs.source, "customer");
	cs.at_us = cs.recorded_us = t->now_us;
	evidence = json_pack("{s:s, s:s}", "frequency", policy_frequency_name(f), "link_id", link_id);
	rc = evidence != NULL ? record_unwrap(t->keys, ct, dek) : err_set(ERR_NOMEM, "out of memory");
	if (rc == 0)
		rc = consent_seal_evidence(dek, ct->id, &cs, evidence, &sealed);
	crypto_wipe(dek, sizeof dek);
	/* History only: the choice is evidence about the consent, not a new
	 * state of it. */
	if (rc == 0)
		rc = store_consent_put(t->c, &cs, false);
	free(sealed);
	json_decref(evidence);
	return rc;
}

json_t *consent_to_json(const struct store_consent *cs, const struct policy *p, int64_t now_s)
{
	struct policy_consent pc = { POLICY_CONSENT_NONE, cs->expires_us / 1000000 };
	policy_consent_status_from_name(cs->status, &pc.status);
	const char *effective = cs->status;
	if (pc.status == POLICY_CONSENT_GRANTED && !policy_consent_valid(&pc, now_s))
		effective = "expired";
	(void)p;
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:o}", "purpose",
			 cs->purpose, "channel", cs->channel, "status", cs->status, "effective_status",
			 effective, "legal_basis", cs->legal_basis, "notice_version", cs->notice_version,
			 "source", cs->source, "collection_method", cs->method, "receipt_id", cs->receipt_id,
			 "at", json_time(cs->at_us), "granted_at", json_time(cs->granted_us), "expires_at",
			 json_time(cs->expires_us), "withdrawn_at", json_time(cs->withdrawn_us),
			 "recorded_at", json_time(cs->recorded_us));
}

struct consents_walk {
	const char *role; /* NULL: every purpose; else only the purposes the role may use */
	json_t *arr;
	struct txn *t;
	const struct store_contact *ct;
	bool evidence;
	int64_t now_s;
};

static int consent_cb(void *arg, const struct store_consent *cs)
{
	struct consents_walk *w = arg;
	if (w->role != NULL && !policy_role_may_purpose(w->t->policy, w->role, cs->purpose))
		return 0; /* e.g. a care consent says "patient": not for marketing's eyes */
	json_t *o = consent_to_json(cs, w->t->policy, w->now_s);
	if (w->evidence && cs->evidence != NULL && !w->ct->erased) {
		uint8_t dek[32];
		char field[96];
		json_t *ev = NULL;
		snprintf(field, sizeof field, "evidence/%s", cs->receipt_id);
		if (record_unwrap(w->t->keys, w->ct, dek) == 0 &&
		    record_open(dek, "consent", w->ct->id, field, cs->evidence, cs->evidence_len, &ev) == 0)
			json_object_set_new(o, "evidence", ev);
		crypto_wipe(dek, sizeof dek);
	}
	json_array_append_new(w->arr, o);
	return 0;
}

int consent_lists_json(struct txn *t, const struct store_contact *ct, const char *only_role, bool evidence,
		       json_t **current, json_t **history)
{
	struct consents_walk cur = { only_role, json_array(), t, ct, evidence, t->now_us / 1000000 };
	struct consents_walk hist = cur;
	hist.arr = json_array();
	int rc = store_consents_each(t->c, ct->id, consent_cb, &cur);
	if (rc == 0)
		rc = store_consent_history_each(t->c, ct->id, consent_cb, &hist);
	if (rc != 0) {
		json_decref(cur.arr);
		json_decref(hist.arr);
		return rc;
	}
	*current = cur.arr;
	*history = hist.arr;
	return 0;
}

int consent_lookup(struct txn *t, const char *contact_id, const char *email, const char *purpose,
		   const char *channel, struct store_filter_row *row)
{
	struct store_scope_keys keys;
	uint8_t bidx[32], shash[32];
	int rc;
	suppression_covering(purpose, channel, &keys);
	if (email == NULL)
		return store_filter_by_id(t->c, contact_id, purpose, channel, &keys, row);
	/* One statement: the contact, its consent for (purpose, channel), its own
	 * suppressions and the given address's; one read lock. */
	if (record_email_hashes(t->keys, email, bidx, shash) != 0)
		return err_set(ERR_INVALID, "email: %s", err_msg());
	rc = store_filter_by_email(t->c, bidx, shash, purpose, channel, &keys, row);
	crypto_wipe(bidx, sizeof bidx);
	return rc;
}

/* The channel a check is about: "" for a purpose without channels (its
 * consent is stored under the empty channel). */
static const char *check_channel(const struct check_req *req)
{
	return req->ch == POLICY_CH_COUNT ? "" : policy_channel_name(req->ch);
}

int consent_check(struct txn *t, const char *role, const struct check_req *req, struct consent_decision *out)
{
	struct store_filter_row row;
	int rc = consent_lookup(t, req->contact_id, req->email, req->pi.name, check_channel(req), &row);
	if (rc != 0)
		return rc;
	out->known = row.found;
	snprintf(out->contact_id, sizeof out->contact_id, "%s", row.found ? row.id : "");
	consent_decide(t, role, req->purpose, req->channel, &row, t->now_us / 1000000, &out->d);
	out->reachable_us = 0;
	/* Asked about an outreach, the check answers as the filter would: the
	 * purpose's frequency cap, the person's choice and the caps shared
	 * with other purposes apply (a look-up is not a contact). */
	if (req->outreach && out->d.allowed &&
	    (req->pi.cap_max > 0 || req->pi.frequency_choice || policy_shared_cap_count(t->policy) > 0)) {
		bool held = false;
		rc = release_outreach_held(t, row.id, req->pi.name, check_channel(req), req->pi.cap_max,
					   req->pi.cap_per_days, req->pi.frequency_choice, &held,
					   &out->reachable_us);
		if (rc == 0)
			rc = release_shared_held(t, row.id, req->pi.name, check_channel(req), &held,
						 &out->reachable_us);
		if (rc != 0)
			return rc;
		if (held) {
			out->d.allowed = false;
			out->d.reason = POLICY_REASON_FREQUENCY_CAP;
		}
	}
	return 0;
}

void consent_decide(const struct txn *t, const char *role, const char *purpose, const char *channel,
		    const struct store_filter_row *row, int64_t now_s, struct policy_decision *d)
{
	struct contact_subject subj;
	record_subject_from_row(row, &subj);
	policy_decide_contact(t->policy, role, purpose, channel, &subj.s, now_s, d);
}

int consent_lookup_bulk(struct txn *t)
{
	return store_conn_bulk_mode(t->c);
}

int consent_current(struct txn *t, const char *contact_id, const char *purpose, const char *channel,
		    struct store_consent *out)
{
	return store_consent_get(t->c, contact_id, purpose, channel, out);
}

int consent_each(struct txn *t, const char *contact_id, store_consent_cb cb, void *ctx)
{
	return store_consents_each(t->c, contact_id, cb, ctx);
}

int consent_history_each(struct txn *t, const char *contact_id, store_consent_cb cb, void *ctx)
{
	return store_consent_history_each(t->c, contact_id, cb, ctx);
}

bool consent_offerable(const struct policy *p, const char *collected_for, const char *purpose)
{
	char one[STORE_NAME_CAP];
	for (const char *s = collected_for; *s;) {
		size_t n = strcspn(s, ",");
		if (n > 0 && n < sizeof one) {
			memcpy(one, s, n);
			one[n] = '\0';
			if (policy_purpose_compatible(p, one, purpose))
				return true;
		}
		s += n;
		if (*s == ',')
			s++;
	}
	return false;
}

int consent_confirm(struct txn *t, const struct store_confirmation *cf, json_t *evidence,
		    struct store_consent *granted, const char **refusal)
{
	struct store_confirmation now;
	struct store_contact ct;
	json_t *ev = NULL;
	*refusal = NULL;
	int rc = store_confirmation_get(t->c, cf->id, &now);
	if (rc == ERR_NOTFOUND) {
		*refusal = "invalid";
		return 0;
	}
	if (rc != 0 || (rc = optin_check(t, &now, refusal)) != 0 || *refusal != NULL)
		return rc;
	if ((rc = store_contact_get(t->c, now.contact_id, &ct)) != 0 ||
	    (rc = store_consent_get(t->c, now.contact_id, now.purpose, now.channel, granted)) != 0)
		return rc;
	/* The grant as it was asked for (basis, notice, lifetime), now given:
	 * a new event with its own receipt, the confirmation as its evidence. */
	snprintf(granted->status, sizeof granted->status, "granted");
	snprintf(granted->method, sizeof granted->method, OPTIN_METHOD);
	consent_new_receipt(granted->receipt_id);
	granted->at_us = t->now_us;
	granted->recorded_us = t->now_us;
	granted->granted_us = t->now_us;
	granted->withdrawn_us = 0;
	granted->evidence = NULL;
	granted->evidence_len = 0;
	ev = json_pack("{s:s, s:s, s:O?}", "confirmation_id", now.id, "pending_receipt_id", now.receipt_id,
		       "request", evidence);
	if (ev == NULL)
		return err_set(ERR_NOMEM, "out of memory");
	if ((rc = consent_put_confirmed(t, &ct, granted, ev, NULL)) == 0)
		rc = store_confirmation_done(t->c, now.id, t->now_us);
	json_decref(ev);
	return rc;
}
