/*
 * record: a stored contact record as data, below the rules. Sealing and
 * opening its field values, unwrapping its data key, its blind indexes and
 * suppression hashes, its fields as JSON, and the decision subject read
 * from its stored row.
 *
 * It calls no other domain module, so every module may build on it: event,
 * suppression and consent use it without reaching up to contact (which
 * builds on them: docs/architecture.md, "Domain modules").
 */
#include "service/domain/record.h"

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

/* The blind index (kind) and the suppression hash of a normalised value;
 * bidx or shash may be NULL. norm is wiped whatever happens. */
static int hashes_of(const struct keyring *kr, enum fc_hash_kind kind, int rc, char *norm, size_t cap,
		     uint8_t bidx[32], uint8_t shash[32])
{
	if (rc == 0 && bidx != NULL)
		rc = fieldcrypt_keyed_hash(kr, kind, norm, strlen(norm), bidx);
	if (rc == 0 && shash != NULL)
		rc = fieldcrypt_keyed_hash(kr, FC_HASH_SUPPRESSION, norm, strlen(norm), shash);
	crypto_wipe(norm, cap);
	return rc;
}

int record_email_hashes(const struct keyring *kr, const char *email, uint8_t bidx[32], uint8_t shash[32])
{
	char norm[LIMIT_EMAIL_CAP];
	int rc = normalize_email(email, strlen(email), norm, sizeof norm);
	return hashes_of(kr, FC_HASH_EMAIL, rc, norm, sizeof norm, bidx, shash);
}

int record_phone_hashes(const struct keyring *kr, const char *phone, uint8_t bidx[32], uint8_t shash[32])
{
	char norm[LIMIT_PHONE_CAP];
	int rc = normalize_phone(phone, strlen(phone), norm, sizeof norm);
	return hashes_of(kr, FC_HASH_PHONE, rc, norm, sizeof norm, bidx, shash);
}

int record_seal(const uint8_t dek[32], const char *table, const char *id, const char *name, json_t *value,
		uint8_t **out, size_t *out_len)
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

int record_open(const uint8_t dek[32], const char *table, const char *id, const char *name,
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

int record_unwrap(const struct keyring *kr, const struct store_contact *ct, uint8_t dek[32])
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
	int rc = record_open(w->dek, "contact", w->ct->id, name, sealed, len, &value);
	if (rc != 0)
		return rc;
	json_object_set_new(w->obj, name, value);
	int n = snprintf(w->names + w->len, w->cap - w->len, "%s%s", w->len ? "," : "", name);
	if (n > 0 && (size_t)n < w->cap - w->len)
		w->len += (size_t)n;
	return 0;
}

int record_fields_json(struct txn *t, const struct store_contact *ct, uint64_t visible, json_t **out,
		       char *names, size_t names_cap)
{
	uint8_t dek[32];
	struct fields_walk w = { t->policy, ct, dek, visible, json_object(), names, names_cap, 0 };
	names[0] = '\0';
	int rc = visible ? record_unwrap(t->keys, ct, dek) : 0;
	if (rc == 0 && visible)
		rc = store_fields_each(t->c, ct->id, field_cb, &w);
	crypto_wipe(dek, sizeof dek);
	if (rc != 0) {
		json_decref(w.obj);
		return rc;
	}
	*out = w.obj;
	return 0;
}

void record_subject_purposes(struct contact_subject *out, const char *collected_for)
{
	snprintf(out->buf, sizeof out->buf, "%s", collected_for);
	size_t n = 0;
	for (char *save = NULL, *tok = strtok_r(out->buf, ",", &save); tok != NULL && n < LIMIT_LIST_ITEMS;
	     tok = strtok_r(NULL, ",", &save))
		out->purposes[n++] = tok;
	out->s.collected_for = out->purposes;
	out->s.n_collected_for = n;
}

void record_subject_from_row(const struct store_filter_row *row, struct contact_subject *out)
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
	record_subject_purposes(out, row->collected_for);
	if (row->erased)
		return;
	if (row->has_consent) {
		out->s.consent.status = POLICY_CONSENT_NONE;
		policy_consent_status_from_name(row->status, &out->s.consent.status);
		out->s.consent.expires_at = row->expires_us / 1000000;
	}
	out->s.suppressed = row->own_suppressed || row->list_suppressed;
}
