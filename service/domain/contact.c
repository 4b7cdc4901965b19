/*
 * contact: validation, creation, sealing, erasure and decision subjects for
 * contact records. See contact.h.
 */
#include "service/domain/contact.h"

#include "service/domain/consent.h"
#include "service/domain/event.h"
#include "service/domain/suppression.h"

#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/base/limits.h"
#include "service/crypto/fieldcrypt.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_text(const char *key, json_t *v, size_t max)
{
	if (!json_is_string(v))
		return err_set(ERR_INVALID, "%s must be a string", key);
	size_t n = json_string_length(v);
	if (n == 0 || n > max)
		return err_set(ERR_INVALID, "%s must be 1 to %zu bytes", key, max);
	if (!is_clean_utf8(json_string_value(v), n))
		return err_set(ERR_INVALID, "%s must be UTF-8 text without control characters", key);
	return 0;
}

static int check_date(const char *key, const char *s)
{
	int64_t us;
	char full[40];
	if (strlen(s) != 10)
		return err_set(ERR_INVALID, "%s must be a date: YYYY-MM-DD", key);
	snprintf(full, sizeof full, "%sT00:00:00Z", s);
	if (parse_time(full, &us) != 0)
		return err_set(ERR_INVALID, "%s must be a date: YYYY-MM-DD", key);
	return 0;
}

static int check_field(const struct policy *p, const char *key, json_t *v, bool patch)
{
	struct policy_field_info f;
	char tmp[LIMIT_STRING_BYTES + 1];
	if (policy_field_get(p, key, &f) != 0)
		return err_set(ERR_INVALID, "unknown field \"%s\": the policy does not declare it", key);
	if (json_is_null(v)) {
		if (patch)
			return 0;
		return err_set(ERR_INVALID, "%s must not be null", key);
	}
	if (f.type == POLICY_TYPE_INTEGER) {
		if (!json_is_integer(v))
			return err_set(ERR_INVALID, "%s must be an integer", key);
		return 0;
	}
	int rc = check_text(key, v, LIMIT_STRING_BYTES);
	if (rc != 0)
		return rc;
	const char *s = json_string_value(v);
	switch (f.type) {
	case POLICY_TYPE_EMAIL:
		return normalize_email(s, strlen(s), tmp, sizeof tmp) == 0
			       ? 0
			       : err_set(ERR_INVALID, "%s: %s", key, err_msg());
	case POLICY_TYPE_PHONE:
		return normalize_phone(s, strlen(s), tmp, sizeof tmp) == 0
			       ? 0
			       : err_set(ERR_INVALID, "%s: %s", key, err_msg());
	case POLICY_TYPE_DATE: return check_date(key, s);
	default: return 0;
	}
}

int contact_validate(const struct policy *p, json_t *body, bool patch)
{
	const char *key;
	json_t *v;
	size_t nfields = 0;
	if (json_object_size(body) > LIMIT_FIELDS)
		return err_set(ERR_TOOBIG, "more than %d keys", LIMIT_FIELDS);
	json_object_foreach (body, key, v) {
		int rc;
		if (strcmp(key, "collected_for") == 0) {
			size_t i;
			json_t *item;
			if (!json_is_array(v) || json_array_size(v) == 0 ||
			    json_array_size(v) > LIMIT_LIST_ITEMS)
				return err_set(ERR_INVALID,
					       "collected_for must be a non-empty array of purpose names");
			json_array_foreach (v, i, item) {
				struct policy_purpose_info pi;
				if (!json_is_string(item) || !is_name(json_string_value(item)))
					return err_set(ERR_INVALID,
						       "collected_for[%zu] must be a purpose name", i);
				if (policy_purpose_get(p, json_string_value(item), &pi) != 0)
					return err_set(ERR_UNPROCESSABLE,
						       "collected_for[%zu]: unknown purpose \"%s\"", i,
						       json_string_value(item));
			}
			continue;
		}
		if (strcmp(key, "source") == 0 || strcmp(key, "owner") == 0) {
			/* Stored in plaintext, so identifier-like only: a label,
			 * never a sentence that could carry personal data. */
			if (!json_is_string(v))
				return err_set(ERR_INVALID, "%s must be a string", key);
			if (!is_identifier(json_string_value(v), LIMIT_LABEL_BYTES) ||
			    json_string_length(v) != strlen(json_string_value(v)))
				return err_set(ERR_INVALID,
					       "%s must be 1 to %d characters of A-Z a-z 0-9 . _ : @ / + -",
					       key, LIMIT_LABEL_BYTES);
			continue;
		}
		if ((rc = check_field(p, key, v, patch)) != 0)
			return rc;
		nfields++;
	}
	if (!patch && json_object_get(body, "collected_for") == NULL)
		return err_set(ERR_INVALID,
			       "collected_for is required: the purposes this data was collected for");
	return 0;
}

int contact_purposes_join(json_t *array, char *out, size_t cap)
{
	size_t i, n = 0;
	json_t *item;
	out[0] = '\0';
	json_array_foreach (array, i, item) {
		const char *name = json_string_value(item);
		/* Skip duplicates: the list is a set. */
		char needle[LIMIT_NAME_BYTES + 3];
		char padded[STORE_LIST_CAP + 2];
		snprintf(needle, sizeof needle, ",%s,", name);
		snprintf(padded, sizeof padded, ",%s,", out);
		if (strstr(padded, needle) != NULL)
			continue;
		int w = snprintf(out + n, cap - n, "%s%s", n ? "," : "", name);
		if (w < 0 || (size_t)w >= cap - n)
			return err_set(ERR_TOOBIG, "collected_for is too long");
		n += (size_t)w;
	}
	return 0;
}

bool contact_purposes_widen(const char *prev, const char *next)
{
	char padded[STORE_LIST_CAP + 2], needle[LIMIT_NAME_BYTES + 3];
	snprintf(padded, sizeof padded, ",%s,", prev);
	for (const char *p = next; *p != '\0';) {
		size_t n = strcspn(p, ",");
		if (n > 0) {
			if (n > LIMIT_NAME_BYTES)
				return true; /* not a name prev can hold: treat as new */
			snprintf(needle, sizeof needle, ",%.*s,", (int)n, p);
			if (strstr(padded, needle) == NULL)
				return true;
		}
		p += n;
		if (*p == ',')
			p++;
	}
	return false;
}

struct best_walk {
	const char *purpose;
	struct policy_consent states[POLICY_CH_COUNT + 1];
	size_t n;
};

static int best_cb(void *arg, const struct store_consent *cs)
{
	struct best_walk *w = arg;
	if (strcmp(cs->purpose, w->purpose) != 0 || w->n >= sizeof w->states / sizeof w->states[0])
		return 0;
	w->states[w->n].status = consent_status(cs);
	w->states[w->n].expires_at = cs->expires_us / 1000000;
	w->n++;
	return 0;
}

int contact_read_subject(struct txn *t, const struct store_contact *ct, const char *purpose,
			 struct contact_subject *out)
{
	memset(&out->s, 0, sizeof out->s);
	if (ct == NULL)
		return 0;
	out->s.exists = true;
	out->s.erased = ct->erased;
	record_subject_purposes(out, ct->collected_for);
	if (ct->erased)
		return 0;
	struct best_walk w = { .purpose = purpose };
	int rc = store_consents_each(t->c, ct->id, best_cb, &w);
	if (rc != 0)
		return rc;
	out->s.consent = policy_consent_best(w.states, w.n, t->now_us / 1000000);
	return 0;
}

int contact_erase(struct txn *t, const struct store_contact *ct)
{
	int64_t now = t->now_us;
	int rc;
	/* The person stays suppressed, by keyed hash, after their data is gone. */
	struct store_suppression sp = { .scope = suppression_scope_name(SUPPRESSION_SCOPE_ALL),
					.scope_value = "",
					.reason = suppression_reason_name(SUPPRESSION_REASON_ERASURE),
					.source = "erasure",
					.created_us = now,
					.recorded_us = now };
	if (ct->has_email_shash) {
		memcpy(sp.hash, ct->email_shash, 32);
		sp.kind = "email";
		if ((rc = suppression_add(t, &sp)) < 0)
			return rc;
	}
	if (ct->has_phone_shash) {
		memcpy(sp.hash, ct->phone_shash, 32);
		sp.kind = "phone";
		if ((rc = suppression_add(t, &sp)) < 0)
			return rc;
	}
	if ((rc = store_contact_erase(t->c, ct->id, now)) != 0)
		return rc;
	return event_emit(t, EVENT_CONTACT_ERASED, ct->id, json_object());
}

/* ---- the one creation path ---- */

void contact_new_clear(struct contact_new *c)
{
	for (size_t i = 0; i < c->n_fields; i++)
		free(c->fields[i].sealed);
	free(c->fields);
	for (size_t i = 0; i < c->n_consents; i++)
		free((void *)c->consents[i].evidence);
	free(c->consents);
	free(c->field_names);
	crypto_wipe(c, sizeof *c);
}

static int add_consents(const struct txn *t, struct contact_new *c, json_t *list, const uint8_t dek[32]);

static _Atomic uint64_t id_counter;
static pthread_once_t id_once = PTHREAD_ONCE_INIT;

static void id_counter_seed(void)
{
	uint64_t seed = 0;
	crypto_random(&seed, sizeof seed);
	atomic_store(&id_counter, seed);
}

/*
 * A new contact id: 16 bytes, base64url. The first CONTACT_ID_SEQ_BYTES are
 * a per-process counter that starts at a random value, the rest are random.
 * Ids made one after the other therefore share their first characters, so
 * the contact, field, consent and consent-event B-trees (all keyed by the
 * id first) are written in a few places per import batch instead of one
 * random leaf page per contact; that write amplification was what limited
 * the import (docs/suppression.md). The counter starts at random and says
 * nothing about time; the 80 random bits keep ids unguessable.
 */
int contact_new_id(char id[STORE_ID_CAP])
{
	uint8_t raw[LIMIT_ID_RAW_BYTES];
	pthread_once(&id_once, id_counter_seed);
	uint64_t n = atomic_fetch_add(&id_counter, 1);
	for (int i = CONTACT_ID_SEQ_BYTES - 1; i >= 0; i--) {
		raw[i] = (uint8_t)(n & 0xff);
		n >>= 8;
	}
	/* A failed generator must not yield an id of leftover stack bytes. The
	 * seed's failure is harmless: the counter only places ids. */
	int rc = crypto_random(raw + CONTACT_ID_SEQ_BYTES, sizeof raw - CONTACT_ID_SEQ_BYTES);
	if (rc != 0)
		return rc;
	b64url_encode(raw, sizeof raw, id);
	return 0;
}

int contact_new_prepare(const struct txn *t, json_t *body, json_t *consents, const char *default_source,
			struct contact_new *c)
{
	const struct policy *p = t->policy;
	uint8_t dek[32];
	char field_names[AUDIT_FIELDS_MAX + 1] = "";
	const char *key;
	json_t *val;
	size_t names = 0;
	int rc;
	memset(c, 0, sizeof *c);
	if ((rc = contact_validate(p, body, false)) != 0)
		return rc;
	if ((rc = contact_new_id(c->ct.id)) != 0)
		return rc;
	c->ct.created_us = c->ct.updated_us = t->now_us;
	if ((rc = contact_purposes_join(json_object_get(body, "collected_for"), c->ct.collected_for,
					sizeof c->ct.collected_for)) != 0)
		return rc;
	snprintf(c->ct.source, sizeof c->ct.source, "%s",
		 json_string_value(json_object_get(body, "source")) ?: default_source);
	snprintf(c->ct.owner, sizeof c->ct.owner, "%s",
		 json_string_value(json_object_get(body, "owner")) ?: "");
	json_t *email = json_object_get(body, "email"), *phone = json_object_get(body, "phone");
	if (json_is_string(email)) {
		c->has_email = c->ct.has_email_shash = true;
		if ((rc = record_email_hashes(t->keys, json_string_value(email), c->email_bidx,
					      c->ct.email_shash)) != 0)
			return rc;
	}
	if (json_is_string(phone)) {
		c->has_phone = c->ct.has_phone_shash = true;
		if ((rc = record_phone_hashes(t->keys, json_string_value(phone), c->phone_bidx,
					      c->ct.phone_shash)) != 0)
			return rc;
	}
	if ((rc = fieldcrypt_dek_new(dek)) != 0 ||
	    (rc = fieldcrypt_dek_wrap(t->keys, c->ct.id, dek, c->ct.wrapped_key, &c->ct.key_version)) != 0)
		goto out;
	c->ct.wrapped_len = FC_WRAPPED_DEK_BYTES;
	c->fields = calloc(json_object_size(body) + 1, sizeof *c->fields);
	if (c->fields == NULL) {
		rc = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	json_object_foreach (body, key, val) {
		struct policy_field_info fi;
		if (policy_field_get(p, key, &fi) != 0)
			continue; /* collected_for, source, owner */
		struct contact_new_field *f = &c->fields[c->n_fields];
		snprintf(f->name, sizeof f->name, "%s", key);
		if ((rc = record_seal(dek, "contact", c->ct.id, key, val, &f->sealed, &f->len)) != 0)
			goto out;
		c->n_fields++;
		int k = snprintf(field_names + names, sizeof field_names - names, "%s%s", names ? "," : "",
				 key);
		if (k > 0 && (size_t)k < sizeof field_names - names)
			names += (size_t)k;
	}
	if ((c->field_names = strdup(field_names)) == NULL) {
		rc = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	rc = add_consents(t, c, consents, dek);
out:
	crypto_wipe(dek, sizeof dek);
	return rc;
}

static int cmp_consent_at(const void *a, const void *b)
{
	const struct store_consent *x = a, *y = b;
	return x->at_us < y->at_us ? -1 : x->at_us > y->at_us;
}

/* The import's consents of c, validated, with receipts and evidence sealed
 * under dek, in history order (by `at`). */
static int add_consents(const struct txn *t, struct contact_new *c, json_t *list, const uint8_t dek[32])
{
	size_t i;
	json_t *item;
	int rc = 0;
	if (list == NULL || json_is_null(list))
		return 0;
	if (!json_is_array(list) || json_array_size(list) > LIMIT_IMPORT_CONSENTS)
		return err_set(ERR_INVALID, "consents must be an array of at most %d objects",
			       LIMIT_IMPORT_CONSENTS);
	c->consents = calloc(json_array_size(list) + 1, sizeof *c->consents);
	if (c->consents == NULL)
		return err_set(ERR_NOMEM, "out of memory");
	json_array_foreach (list, i, item) {
		struct store_consent *cs = &c->consents[c->n_consents];
		uint8_t *sealed = NULL;
		int reason = -1;
		if (!json_is_object(item))
			return err_set(ERR_INVALID, "consents[%zu] must be an object", i);
		const char *purpose = json_string_value(json_object_get(item, "purpose"));
		if (purpose == NULL || !is_name(purpose))
			return err_set(ERR_INVALID, "consents[%zu].purpose must be a purpose name", i);
		json_t *body = json_copy(item);
		json_object_del(body, "purpose");
		rc = consent_from_json(t->policy, purpose, body, t->now_us, cs, &reason);
		json_t *ev = json_object_get(body, "evidence");
		if (rc == 0 && ev != NULL && !json_is_null(ev)) {
			consent_new_receipt(cs->receipt_id);
			rc = consent_seal_evidence(dek, c->ct.id, cs, ev, &sealed);
		}
		json_decref(body);
		if (rc != 0) {
			free(sealed);
			cs->evidence = NULL;
			return err_set(rc, "consents[%zu]: %s", i, err_msg());
		}
		if (cs->receipt_id[0] == '\0')
			consent_new_receipt(cs->receipt_id);
		snprintf(cs->contact_id, sizeof cs->contact_id, "%s", c->ct.id);
		c->n_consents++;
	}
	qsort(c->consents, c->n_consents, sizeof *c->consents, cmp_consent_at);
	/* A later refusal or withdrawal keeps when consent was first given. */
	for (size_t k = 1; k < c->n_consents; k++)
		for (size_t j = 0; j < k; j++)
			if (strcmp(c->consents[j].purpose, c->consents[k].purpose) == 0 &&
			    strcmp(c->consents[j].channel, c->consents[k].channel) == 0 &&
			    consent_status(&c->consents[k]) != POLICY_CONSENT_GRANTED &&
			    c->consents[j].granted_us != 0)
				c->consents[k].granted_us = c->consents[j].granted_us;
	return 0;
}

/* Which of c's consents become current. c is a new contact, so no consent
 * of it is stored yet, and its consents are in history order: applying them
 * one by one (consent_apply) would compare each with the current state its
 * predecessors left, which is what this does in memory, without reading the
 * state back from the store per consent. */
static void new_consents_current(const struct contact_new *c, bool *current)
{
	for (size_t k = 0; k < c->n_consents; k++) {
		const struct store_consent *cs = &c->consents[k], *cur = NULL;
		for (size_t j = 0; j < k; j++)
			if (current[j] && strcmp(c->consents[j].purpose, cs->purpose) == 0 &&
			    strcmp(c->consents[j].channel, cs->channel) == 0)
				cur = &c->consents[j]; /* the last one put as current is the state */
		current[k] = cur == NULL || consent_supersedes(cs, cur);
	}
}

int contact_new_insert_many(struct txn *t, struct contact_new *const *cs, size_t n)
{
	struct store_contact_new *rows = NULL;
	struct store_field_new *fields = NULL;
	struct store_consent_new *consents = NULL;
	bool *current = NULL, wanted = false;
	size_t n_fields = 0, n_consents = 0, max_consents = 0, k = 0;
	int rc = 0;
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		n_fields += cs[i]->n_fields;
		n_consents += cs[i]->n_consents;
		if (cs[i]->n_consents > max_consents)
			max_consents = cs[i]->n_consents;
	}
	rows = calloc(n, sizeof *rows);
	fields = calloc(n_fields + 1, sizeof *fields);
	consents = calloc(n_consents + 1, sizeof *consents);
	current = calloc(max_consents + 1, sizeof *current);
	if (rows == NULL || fields == NULL || consents == NULL || current == NULL) {
		rc = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	/* The email blind index is unique, and the store answers a duplicate
	 * per row without failing the writer's transaction (SQLite checks
	 * every constraint before it writes a row; PostgreSQL inserts ON
	 * CONFLICT DO NOTHING), so there is no lookup first. */
	for (size_t i = 0; i < n; i++) {
		rows[i].ct = &cs[i]->ct;
		rows[i].email_bidx = cs[i]->has_email ? cs[i]->email_bidx : NULL;
		rows[i].phone_bidx = cs[i]->has_phone ? cs[i]->phone_bidx : NULL;
	}
	if ((rc = store_contacts_insert_many(t->c, rows, n)) != 0)
		goto out;
	n_fields = n_consents = 0;
	for (size_t i = 0; i < n; i++) {
		struct contact_new *c = cs[i];
		c->duplicate = rows[i].duplicate;
		if (c->duplicate)
			continue;
		for (k = 0; k < c->n_fields; k++)
			fields[n_fields++] =
				(struct store_field_new){ c->ct.id, c->fields[k].name, c->fields[k].sealed,
							  c->fields[k].len };
		memset(current, 0, (max_consents + 1) * sizeof *current);
		new_consents_current(c, current);
		for (k = 0; k < c->n_consents; k++)
			consents[n_consents++] = (struct store_consent_new){ &c->consents[k], current[k] };
	}
	if ((rc = store_fields_put_many(t->c, fields, n_fields)) != 0 ||
	    (rc = store_consents_put_many(t->c, consents, n_consents)) != 0)
		goto out;
	/* The consent.changed events of the states that became current, in
	 * row order, once every row they may read is in. */
	if (n_consents > 0 && (rc = event_wanted(t, EVENT_CONSENT_CHANGED, &wanted)) != 0)
		goto out;
	for (k = 0; wanted && rc == 0 && k < n_consents; k++) {
		const struct store_consent *x = consents[k].cs;
		if (consents[k].current)
			rc = event_emit(t, EVENT_CONSENT_CHANGED, x->contact_id,
					json_pack("{s:s, s:s, s:s}", "purpose", x->purpose, "channel",
						  x->channel, "status", x->status));
	}
out:
	free(rows);
	free(fields);
	free(consents);
	free(current);
	return rc;
}

int contact_new_insert(struct txn *t, struct contact_new *c)
{
	int rc = contact_new_insert_many(t, &c, 1);
	if (rc == 0 && c->duplicate)
		return err_set(ERR_CONFLICT, "a contact with this email already exists");
	return rc;
}

int contact_hash_email(const struct txn *t, const char *email, uint8_t bidx[32], uint8_t shash[32])
{
	return record_email_hashes(t->keys, email, bidx, shash);
}

int contact_hash_phone(const struct txn *t, const char *phone, uint8_t bidx[32], uint8_t shash[32])
{
	return record_phone_hashes(t->keys, phone, bidx, shash);
}

int contact_get(struct txn *t, const char *id, struct store_contact *out)
{
	return store_contact_get(t->c, id, out);
}

int contact_get_active(struct txn *t, const char *id, struct store_contact *out, enum decision_reason *reason)
{
	int rc = store_contact_get(t->c, id, out);
	*reason = REASON_NONE;
	if (rc == ERR_NOTFOUND) {
		*reason = REASON_UNKNOWN_CONTACT;
		return err_set(ERR_NOTFOUND, "no contact with this id");
	}
	if (rc == 0 && out->erased) {
		*reason = REASON_ERASED;
		return err_set(ERR_GONE, "the contact was erased");
	}
	return rc;
}

/* Seals and stores every declared field of body for contact id (null
 * deletes one). */
static int put_fields(struct txn *t, const uint8_t dek[32], const char *id, json_t *body)
{
	const char *key;
	json_t *v;
	json_object_foreach (body, key, v) {
		struct policy_field_info f;
		if (policy_field_get(t->policy, key, &f) != 0)
			continue; /* collected_for, source, owner */
		if (json_is_null(v)) {
			int rc = store_field_delete(t->c, id, key);
			if (rc != 0)
				return rc;
			continue;
		}
		uint8_t *sealed = NULL;
		size_t len = 0;
		int rc = record_seal(dek, "contact", id, key, v, &sealed, &len);
		if (rc == 0)
			rc = store_field_put(t->c, id, key, sealed, len);
		free(sealed);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* The blind indexes and suppression hashes from the email and phone that
 * will be current after body is applied to ct. */
static int reindex(struct txn *t, const struct store_contact *ct, json_t *body)
{
	json_t *email = json_object_get(body, "email"), *phone = json_object_get(body, "phone");
	json_t *cur_email = NULL, *cur_phone = NULL;
	uint8_t eb[32], pb[32], es[32], ps[32];
	bool he = false, hp = false;
	int rc;
	if (email == NULL || phone == NULL) {
		json_t *all = NULL;
		char names[AUDIT_FIELDS_MAX + 1];
		struct policy_field_info fe, fp;
		uint64_t mask = 0;
		if (policy_field_get(t->policy, "email", &fe) == 0)
			mask |= UINT64_C(1) << fe.index;
		if (policy_field_get(t->policy, "phone", &fp) == 0)
			mask |= UINT64_C(1) << fp.index;
		if ((rc = record_fields_json(t, ct, mask, &all, names, sizeof names)) != 0)
			return rc;
		if (email == NULL)
			cur_email = json_incref(json_object_get(all, "email"));
		if (phone == NULL)
			cur_phone = json_incref(json_object_get(all, "phone"));
		json_decref(all);
	}
	json_t *e = email ? email : cur_email, *p = phone ? phone : cur_phone;
	if (json_is_string(e) && record_email_hashes(t->keys, json_string_value(e), eb, es) == 0)
		he = true;
	if (json_is_string(p) && record_phone_hashes(t->keys, json_string_value(p), pb, ps) == 0)
		hp = true;
	json_decref(cur_email);
	json_decref(cur_phone);
	return store_contact_set_index(t->c, ct->id, he ? eb : NULL, hp ? pb : NULL, he ? es : NULL,
				       hp ? ps : NULL);
}

int contact_update(struct txn *t, const char *id, json_t *body, const char *role,
		   int (*record)(void *ctx, const char *old_purposes, const char *new_purposes), void *ctx,
		   enum decision_reason *reason)
{
	struct store_contact ct;
	uint8_t dek[32];
	int rc = contact_get_active(t, id, &ct, reason);
	if (rc == 0)
		rc = record_unwrap(t->keys, &ct, dek);
	if (rc != 0)
		goto out;
	json_t *cf = json_object_get(body, "collected_for");
	if (cf != NULL) {
		/* collected_for is the gate of purpose limitation: narrowing it
		 * is an ordinary update, widening it a right of its own. The
		 * comparison runs here, on the writer, against the value the
		 * update replaces, and the caller records both lists. */
		char prev[STORE_LIST_CAP];
		snprintf(prev, sizeof prev, "%s", ct.collected_for);
		if ((rc = contact_purposes_join(cf, ct.collected_for, sizeof ct.collected_for)) != 0)
			goto out;
		if ((rc = record(ctx, prev, ct.collected_for)) != 0) {
			*reason = REASON_TOO_LARGE; /* never change the gate without recording it in full */
			goto out;
		}
		if (contact_purposes_widen(prev, ct.collected_for) &&
		    !policy_role_may(t->policy, role, POLICY_ACT_CONTACTS_WIDEN_PURPOSES)) {
			*reason = REASON_PURPOSE_WIDENING_DENIED;
			rc = err_set(ERR_DENIED,
				     "role %s may narrow collected_for but not add purposes to it "
				     "(that needs contacts.widen_purposes)",
				     role);
			goto out;
		}
	}
	if (json_is_string(json_object_get(body, "source")))
		snprintf(ct.source, sizeof ct.source, "%s",
			 json_string_value(json_object_get(body, "source")));
	if (json_is_string(json_object_get(body, "owner")))
		snprintf(ct.owner, sizeof ct.owner, "%s", json_string_value(json_object_get(body, "owner")));
	ct.updated_us = t->now_us;
	if ((rc = store_contact_update(t->c, &ct)) != 0)
		goto out;
	if (json_object_get(body, "email") != NULL || json_object_get(body, "phone") != NULL) {
		if ((rc = reindex(t, &ct, body)) != 0) {
			if (rc == ERR_CONFLICT)
				*reason = REASON_DUPLICATE_EMAIL;
			goto out;
		}
	}
	rc = put_fields(t, dek, ct.id, body);
out:
	crypto_wipe(dek, sizeof dek);
	if (rc != 0 && *reason == REASON_NONE)
		*reason = REASON_ERROR;
	return rc;
}

int contact_find_email(struct txn *t, const char *email, char id[STORE_ID_CAP])
{
	uint8_t bidx[32];
	if (record_email_hashes(t->keys, email, bidx, NULL) != 0)
		return err_set(ERR_INVALID, "email: %s", err_msg());
	return store_contact_find_email(t->c, bidx, id);
}
