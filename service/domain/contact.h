/*
 * contact: the contact domain: validating a body against the policy's
 * fields, the ONE way a contact is created (the API and the import both use
 * contact_new_prepare + contact_new_insert), sealing and opening field
 * values, the blind indexes, erasure, and assembling what the policy engine
 * needs to decide (the "subject").
 *
 * Field values are sealed as their JSON text (so types survive) under the
 * contact's data key, with the record id and field name bound as AAD.
 */
#ifndef CONSENTD_CONTACT_H
#define CONSENTD_CONTACT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "policy/policy.h"
#include "service/base/auditrec.h"
#include "service/domain/reason.h"
#include "service/domain/record.h"
#include "service/domain/txn.h"
#include "service/store/store.h"

struct keyring;

/* Checks a create (patch=false) or update (patch=true) body: keys are
 * collected_for, source, owner, or fields the policy declares, with values
 * of the field's type (null deletes, in a patch). ERR_INVALID with a message
 * naming the key, or ERR_UNPROCESSABLE for an unknown purpose. */
int contact_validate(const struct policy *p, json_t *body, bool patch);

/* Comma-separated collected_for from a validated body's array. */
int contact_purposes_join(json_t *array, char *out, size_t cap);

/* True when the comma-separated list `next` names a purpose that `prev`
 * does not: the change widens what the data may be used for. */
bool contact_purposes_widen(const char *prev, const char *next);

/* Blind index (for lookups) and suppression hash of a normalised email or
 * phone under the request's keys (t->keys; record_email_hashes); bidx or
 * shash may be NULL. ERR_INVALID when the value does not normalise. */
int contact_hash_email(const struct txn *t, const char *email, uint8_t bidx[32], uint8_t shash[32]);
int contact_hash_phone(const struct txn *t, const char *phone, uint8_t bidx[32], uint8_t shash[32]);

/* The handlers' name for record_fields_json (record.h). */
static inline int contact_fields_json(struct txn *t, const struct store_contact *ct, uint64_t visible,
				      json_t **out, char *names, size_t names_cap)
{
	return record_fields_json(t, ct, visible, out, names, names_cap);
}

/* Fills a subject for reading ct (NULL: unknown contact) for purpose: the
 * consent is the best across the purpose's channels. */
int contact_read_subject(struct txn *t, const struct store_contact *ct, const char *purpose,
			 struct contact_subject *out);

/* Crypto-shreds a live contact on the writer: suppresses its email and
 * phone hashes (scope all, reason erasure), then destroys its data key,
 * sealed fields and blind indexes (store_contact_erase), at t->now_us.
 * Shared by DELETE /v1/contacts/{id} and the customer's own erasure. */
int contact_erase(struct txn *t, const struct store_contact *ct);

/* ---- creating a contact: the one path ---------------------------------- */

struct contact_new_field {
	char name[STORE_NAME_CAP];
	uint8_t *sealed;
	size_t len;
};

/* A contact ready to insert: everything costly (validation, the new data
 * key wrapped under the master key, sealing, keyed hashes) is done by
 * contact_new_prepare on the request thread, so the single writer only
 * inserts. */
struct contact_new {
	struct store_contact ct;
	bool has_email, has_phone;
	uint8_t email_bidx[32], phone_bidx[32];
	struct contact_new_field *fields;
	size_t n_fields;
	struct store_consent *consents; /* their evidence sealed; owned */
	size_t n_consents;
	/* The fields written, comma-separated, for the audit entry; owned. On
	 * the heap, sized to the names: a fixed AUDIT_FIELDS_MAX buffer made
	 * every prepared contact 4 KiB larger, and the import holds thousands. */
	char *field_names;
	/* Set by contact_new_insert_many: the email already named a contact,
	 * so nothing of this one was stored. */
	bool duplicate;
};

/* A new contact id (CONTACT_ID_BYTES of base64url): a per-process counter
 * that starts at random, then 80 random bits, so that ids made in sequence
 * are close together in the id-keyed B-trees. Thread-safe. ERR_CRYPTO when
 * the random generator fails (no id is written). */
int contact_new_id(char id[STORE_ID_CAP]);

/* Validates body (a create body: contact_validate) and prepares it as a new
 * contact with a new id (contact_new_id), at t->now_us; source defaults to
 * default_source. consents (NULL: none; the import's) is an array of
 * consent bodies, each with its purpose: validated, given receipts, their
 * evidence sealed, put in history order. Clear out with contact_new_clear,
 * also on failure. */
int contact_new_prepare(const struct txn *t, json_t *body, json_t *consents, const char *default_source,
			struct contact_new *out);
/* On the writer: inserts cs[0..n) (a batch of the import; the API's create
 * is n = 1), each with its sealed fields and consents, in a few store
 * calls for the whole batch (store_contacts_insert_many and the others) so
 * that a backend with a round trip per statement makes a few per batch,
 * not several per contact. A contact whose email already names one (stored
 * before, or an earlier contact of the batch) gets duplicate set and
 * nothing of it is stored; that is no failure. Any other failure is
 * returned, and the caller rolls the whole batch back. */
int contact_new_insert_many(struct txn *t, struct contact_new *const *cs, size_t n);
/* contact_new_insert_many of one: ERR_CONFLICT when the email already
 * names a contact. */
int contact_new_insert(struct txn *t, struct contact_new *c);
/* Frees and wipes what c holds (not c itself). */
void contact_new_clear(struct contact_new *c);

/* ---- reading ----------------------------------------------------------- */

/* The contact with this id (erased ones too); ERR_NOTFOUND when none. */
int contact_get(struct txn *t, const char *id, struct store_contact *out);
/* A live contact: ERR_NOTFOUND (REASON_UNKNOWN_CONTACT) or ERR_GONE
 * (REASON_ERASED) otherwise; *reason is REASON_NONE on success. */
int contact_get_active(struct txn *t, const char *id, struct store_contact *out,
		       enum decision_reason *reason);

/* On the writer: applies a validated patch body to live contact id at
 * t->now_us for role: collected_for (widening it only when the role has
 * contacts.widen_purposes; record is
 * called with the old and new lists first and refuses the update by
 * returning non-zero), source, owner, the blind indexes when email or phone
 * change, and the sealed fields. On failure *reason is the audit reason
 * (unknown_contact, erased, too_large, purpose_widening_denied,
 * duplicate_email or error). */
int contact_update(struct txn *t, const char *id, json_t *body, const char *role,
		   int (*record)(void *ctx, const char *old_purposes, const char *new_purposes), void *ctx,
		   enum decision_reason *reason);

/* The id of the contact with this email; ERR_INVALID when it does not
 * normalise, ERR_NOTFOUND when no contact has it. */
int contact_find_email(struct txn *t, const char *email, char id[STORE_ID_CAP]);

#endif
