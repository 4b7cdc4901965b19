/*
 * record: a stored contact record as data, below the rules: sealing and
 * opening its field values (as their JSON text, so types survive, under the
 * contact's data key with the record id and field name bound as AAD),
 * unwrapping that key, the blind indexes and suppression hashes, its fields
 * as JSON, and the decision subject read from its stored row.
 *
 * It calls no other domain module, so every module may build on it (event,
 * suppression and consent do, without reaching up to contact, which builds
 * on them). The layering is drawn in docs/architecture.md.
 */
#ifndef CONSENTD_DOMAIN_RECORD_H
#define CONSENTD_DOMAIN_RECORD_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "policy/policy.h"
#include "service/base/limits.h"
#include "service/domain/txn.h"
#include "service/store/store.h"

struct keyring;

/* Blind index (for lookups) and suppression hash of a normalised email or
 * phone; ERR_INVALID when the value does not normalise. */
int record_email_hashes(const struct keyring *kr, const char *email, uint8_t bidx[32], uint8_t shash[32]);
int record_phone_hashes(const struct keyring *kr, const char *phone, uint8_t bidx[32], uint8_t shash[32]);

/* Seals value (any JSON) for field `name` of record `id`; *out is malloc'd. */
int record_seal(const uint8_t dek[32], const char *table, const char *id, const char *name, json_t *value,
		uint8_t **out, size_t *out_len);
/* Opens a sealed value into a new JSON value. */
int record_open(const uint8_t dek[32], const char *table, const char *id, const char *name,
		const uint8_t *sealed, size_t len, json_t **out);
/* The contact's data key, unwrapped; ERR_GONE when it was erased. */
int record_unwrap(const struct keyring *kr, const struct store_contact *ct, uint8_t dek[32]);

/* The fields of a contact that `visible` (policy bitmask) allows, as a JSON
 * object, and their names comma-separated for the audit entry. */
int record_fields_json(struct txn *t, const struct store_contact *ct, uint64_t visible, json_t **out,
		       char *names, size_t names_cap);

/* A subject for policy decisions, with storage for collected_for. */
struct contact_subject {
	struct policy_subject s;
	const char *purposes[LIMIT_LIST_ITEMS];
	char buf[STORE_LIST_CAP];
	char suppression_reason[STORE_NAME_CAP];
};

/* Fills a subject for contacting someone, from the one-row lookup used by
 * the consent check and the outreach filter (store_filter_by_*): the
 * contact, its consent for the purpose and channel, and its suppressions. */
void record_subject_from_row(const struct store_filter_row *row, struct contact_subject *out);

/* Time in RFC 3339, or JSON null for 0. */
json_t *json_time(int64_t us);

/* Splits the comma-separated collected_for into out's purposes. */
void record_subject_purposes(struct contact_subject *out, const char *collected_for);

#endif
