/*
 * contact: validation, sealing and decision subjects for contact records.
 */
#include "service/contact.h"

#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/base/limits.h"
#include "service/crypto/fieldcrypt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *json_time(int64_t us)
{
	char buf[40];
	if (us == 0)
		return json_null();
	format_time_us(us, buf, sizeof buf);
	return json_string(buf);
}

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
	case POLICY_TYPE_DATE:
		return check_date(key, s);
	default:
		return 0;
	}
}

int contact_validate(const struct policy *p, json_t *body, bool patch)
{
	const char *key;
	json_t *v;
	size_t nfields = 0;
	if (json_object_size(body) > LIMIT_FIELDS)
		return err_set(ERR_TOOBIG, "more than %d keys", LIMIT_FIELDS);
	json_object_foreach(body, key, v) {
		int rc;
		if (strcmp(key, "collected_for") == 0) {
			size_t i;
			json_t *item;
			if (!json_is_array(v) || json_array_size(v) == 0 ||
			    json_array_size(v) > LIMIT_LIST_ITEMS)
				return err_set(ERR_INVALID,
					       "collected_for must be a non-empty array of purpose names");
			json_array_foreach(v, i, item) {
				struct policy_purpose_info pi;
				if (!json_is_string(item) || !is_name(json_string_value(item)))
					return err_set(ERR_INVALID, "collected_for[%zu] must be a purpose name", i);
				if (policy_purpose_get(p, json_string_value(item), &pi) != 0)
					return err_set(ERR_UNPROCESSABLE, "collected_for[%zu]: unknown purpose \"%s\"",
						       i, json_string_value(item));
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
					       "%s must be 1 to %d characters of A-Z a-z 0-9 . _ : @ / + -", key,
					       LIMIT_LABEL_BYTES);
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
	json_array_foreach(array, i, item) {
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

int contact_email_hashes(const struct keyring *kr, const char *email, uint8_t bidx[32],
			 uint8_t shash[32])
{
	char norm[256];
	int rc = normalize_email(email, strlen(email), norm, sizeof norm);
	if (rc == 0 && bidx != NULL)
		rc = fieldcrypt_keyed_hash(kr, FC_HASH_EMAIL, norm, strlen(norm), bidx);
	if (rc == 0 && shash != NULL)
		rc = fieldcrypt_keyed_hash(kr, FC_HASH_SUPPRESSION, norm, strlen(norm), shash);
	crypto_wipe(norm, sizeof norm);
	return rc;
}

int contact_phone_hashes(const struct keyring *kr, const char *phone, uint8_t bidx[32],
			 uint8_t shash[32])
{
	char norm[32];
	int rc = normalize_phone(phone, strlen(phone), norm, sizeof norm);
	if (rc == 0 && bidx != NULL)
		rc = fieldcrypt_keyed_hash(kr, FC_HASH_PHONE, norm, strlen(norm), bidx);
	if (rc == 0 && shash != NULL)
		rc = fieldcrypt_keyed_hash(kr, FC_HASH_SUPPRESSION, norm, strlen(norm), shash);
	crypto_wipe(norm, sizeof norm);
	return rc;
}

int contact_seal(const uint8_t dek[32], const char *table, const char *id, const char *name,
		 json_t *value, uint8_t **out, size_t *out_len)
{
	char *text = json_dumps(value, JSON_ENCODE_ANY | JSON_COMPACT);
	if (text == NULL)
		return err_set(ERR_NOMEM, "out of memory");
	size_t len = strlen(text);
	uint8_t *buf = malloc(len + FC_SEAL_OVERHEAD);
	int rc = buf ? fieldcrypt_seal(dek, table, id, name, text, len, buf, out_len)
		     : err_set(ERR_NOMEM, "out of memory");
	crypto_wipe(text, len);
	free(text);
	if (rc != 0) {
		free(buf);
		return rc;
	}
	*out = buf;
	return 0;
}

int contact_open(const uint8_t dek[32], const char *table, const char *id, const char *name,
		 const uint8_t *sealed, size_t len, json_t **out)
{
	if (len < FC_SEAL_OVERHEAD)
		return err_set(ERR_CRYPTO, "sealed value too short");
	char *plain = malloc(len - FC_SEAL_OVERHEAD + 1);
	size_t n = 0;
	if (plain == NULL)
		return err_set(ERR_NOMEM, "out of memory");
	int rc = fieldcrypt_open(dek, table, id, name, sealed, len, (uint8_t *)plain, &n);
	if (rc == 0) {
		*out = json_loadb(plain, n, JSON_DECODE_ANY, NULL);
		if (*out == NULL)
			rc = err_set(ERR_CRYPTO, "sealed value is not JSON");
	}
	crypto_wipe(plain, len - FC_SEAL_OVERHEAD + 1);
	free(plain);
	return rc;
}

int contact_unwrap(const struct keyring *kr, const struct store_contact *ct, uint8_t dek[32])
{
	if (ct->erased || ct->wrapped_len == 0)
		return err_set(ERR_GONE, "the contact was erased");
	return fieldcrypt_dek_unwrap(kr, ct->id, ct->key_version, ct->wrapped_key, ct->wrapped_len, dek);
}

struct fields_walk {
	const struct policy *p;
	const struct store_contact *ct;
	const uint8_t *dek;
	uint64_t visible;
	json_t *obj;
	char *names;
	size_t cap, len;
};

static int field_cb(void *arg, const char *name, const uint8_t *sealed, size_t len)
{
	struct fields_walk *w = arg;
	struct policy_field_info f;
	json_t *value = NULL;
	/* A field the policy no longer declares is never shown. */
	if (policy_field_get(w->p, name, &f) != 0 || !(w->visible & (UINT64_C(1) << f.index)))
		return 0;
	int rc = contact_open(w->dek, "contact", w->ct->id, name, sealed, len, &value);
	if (rc != 0)
		return rc;
	json_object_set_new(w->obj, name, value);
	int n = snprintf(w->names + w->len, w->cap - w->len, "%s%s", w->len ? "," : "", name);
	if (n > 0 && (size_t)n < w->cap - w->len)
		w->len += (size_t)n;
	return 0;
}

int contact_fields_json(struct store_conn *c, const struct keyring *kr, const struct policy *p,
			const struct store_contact *ct, uint64_t visible, json_t **out,
			char *names, size_t names_cap)
{
	uint8_t dek[32];
	struct fields_walk w = { p, ct, dek, visible, json_object(), names, names_cap, 0 };
	names[0] = '\0';
	int rc = visible ? contact_unwrap(kr, ct, dek) : 0;
	if (rc == 0 && visible)
		rc = store_fields_each(c, ct->id, field_cb, &w);
	crypto_wipe(dek, sizeof dek);
	if (rc != 0) {
		json_decref(w.obj);
		return rc;
	}
	*out = w.obj;
	return 0;
}

static enum policy_consent_status status_of(const char *s)
{
	enum policy_consent_status st = POLICY_CONSENT_NONE;
	policy_consent_status_from_name(s, &st);
	return st;
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
	w->states[w->n].status = status_of(cs->status);
	w->states[w->n].expires_at = cs->expires_us / 1000000;
	w->n++;
	return 0;
}

static void subject_purposes(struct contact_subject *out, const char *collected_for)
{
	snprintf(out->buf, sizeof out->buf, "%s", collected_for);
	size_t n = 0;
	for (char *save = NULL, *tok = strtok_r(out->buf, ",", &save); tok != NULL && n < LIMIT_LIST_ITEMS;
	     tok = strtok_r(NULL, ",", &save))
		out->purposes[n++] = tok;
	out->s.collected_for = out->purposes;
	out->s.n_collected_for = n;
}

int contact_read_subject(struct store_conn *c, const struct store_contact *ct, const char *purpose,
			 int64_t now_s, struct contact_subject *out)
{
	memset(&out->s, 0, sizeof out->s);
	if (ct == NULL)
		return 0;
	out->s.exists = true;
	out->s.erased = ct->erased;
	subject_purposes(out, ct->collected_for);
	if (ct->erased)
		return 0;
	struct best_walk w = { .purpose = purpose };
	int rc = store_consents_each(c, ct->id, best_cb, &w);
	if (rc != 0)
		return rc;
	out->s.consent = policy_consent_best(w.states, w.n, now_s);
	return 0;
}

void contact_subject_from_row(const struct store_filter_row *row, struct contact_subject *out)
{
	memset(&out->s, 0, sizeof out->s);
	if (!row->found) {
		/* Unknown, but the address itself may be on the suppression list
		 * (an erased person, a bounce, a complaint, an imported opt-out). */
		out->s.suppressed_by_list = row->list_suppressed;
		return;
	}
	out->s.exists = true;
	out->s.erased = row->erased;
	subject_purposes(out, row->collected_for);
	if (row->erased)
		return;
	if (row->has_consent) {
		out->s.consent.status = status_of(row->status);
		out->s.consent.expires_at = row->expires_us / 1000000;
	}
	out->s.suppressed = row->own_suppressed || row->list_suppressed;
}

int contact_erase(struct store_conn *wc, const struct store_contact *ct, int64_t now)
{
	int rc;
	/* The person stays suppressed, by keyed hash, after their data is gone. */
	struct store_suppression sp = { .scope = "all", .scope_value = "", .reason = "erasure",
					.source = "erasure", .created_us = now, .recorded_us = now };
	if (ct->has_email_shash) {
		memcpy(sp.hash, ct->email_shash, 32);
		sp.kind = "email";
		if ((rc = store_suppression_add(wc, &sp)) < 0)
			return rc;
	}
	if (ct->has_phone_shash) {
		memcpy(sp.hash, ct->phone_shash, 32);
		sp.kind = "phone";
		if ((rc = store_suppression_add(wc, &sp)) < 0)
			return rc;
	}
	return store_contact_erase(wc, ct->id, now);
}
