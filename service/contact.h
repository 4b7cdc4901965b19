/*
 * contact: the rules for contact records shared by every handler that
 * touches one: validating a body against the policy's fields, sealing and
 * opening field values, the blind indexes, and assembling what the policy
 * engine needs to decide (the "subject").
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
 * phone; ERR_INVALID when the value does not normalise. */
int contact_email_hashes(const struct keyring *kr, const char *email, uint8_t bidx[32],
			 uint8_t shash[32]);
int contact_phone_hashes(const struct keyring *kr, const char *phone, uint8_t bidx[32],
			 uint8_t shash[32]);

/* Seals value (any JSON) for field `name` of record `id`; *out is malloc'd. */
int contact_seal(const uint8_t dek[32], const char *table, const char *id, const char *name,
		 json_t *value, uint8_t **out, size_t *out_len);
/* Opens a sealed value into a new JSON value. */
int contact_open(const uint8_t dek[32], const char *table, const char *id, const char *name,
		 const uint8_t *sealed, size_t len, json_t **out);
int contact_unwrap(const struct keyring *kr, const struct store_contact *ct, uint8_t dek[32]);

/* The fields of a contact that `visible` (policy bitmask) allows, as a JSON
 * object, and their names comma-separated for the audit entry. */
int contact_fields_json(struct store_conn *c, const struct keyring *kr, const struct policy *p,
			const struct store_contact *ct, uint64_t visible, json_t **out,
			char *names, size_t names_cap);

/* A subject for policy decisions, with storage for collected_for. */
struct contact_subject {
	struct policy_subject s;
	const char *purposes[LIMIT_LIST_ITEMS];
	char buf[STORE_LIST_CAP];
	char suppression_reason[STORE_NAME_CAP];
};

/* Fills a subject for reading ct (NULL: unknown contact) for purpose: the
 * consent is the best across the purpose's channels. */
int contact_read_subject(struct store_conn *c, const struct store_contact *ct, const char *purpose,
			 int64_t now_s, struct contact_subject *out);

/* Fills a subject for contacting someone, from the one-row lookup used by
 * the consent check and the outreach filter (store_filter_by_*): the
 * contact, its consent for the purpose and channel, and its suppressions. */
void contact_subject_from_row(const struct store_filter_row *row, struct contact_subject *out);

/* Consents (service/h_consents.c). consent_from_json validates a consent
 * body for purpose into cs (ids excepted); on ERR_UNPROCESSABLE *reason_422
 * is the policy_reason that explains it. consent_record seals the evidence
 * and records the consent on the writer connection. */
int consent_from_json(const struct policy *p, const char *purpose, json_t *body, int64_t now,
		      struct store_consent *cs, int *reason_422);
int consent_record(struct store_conn *wc, const struct keyring *kr, const struct store_contact *ct,
		   struct store_consent *cs, json_t *evidence);
json_t *consent_to_json(const struct store_consent *cs, const struct policy *p, int64_t now_s);

/* Crypto-shreds a live contact on the writer connection: suppresses its
 * email and phone hashes (scope all, reason erasure), then destroys its data
 * key, sealed fields and blind indexes (store_contact_erase). Shared by
 * DELETE /v1/contacts/{id} and the customer's own erasure request. */
int contact_erase(struct store_conn *wc, const struct store_contact *ct, int64_t now);

/* Time in RFC 3339, or JSON null for 0. */
json_t *json_time(int64_t us);

#endif
