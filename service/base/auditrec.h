/*
 * auditrec: the plain records of the audit trail, one entry and one signed
 * checkpoint, as fixed-size structs of strings, integers and bytes.
 *
 * They live in base/ so that the two modules that handle them need not know
 * each other: audit/ encodes, links, signs and verifies them (audit.h,
 * checkpoint.h), the store keeps and returns them (service/store/store.h),
 * and neither includes the other's headers. The bounds are the format's own
 * (changing one changes what a valid entry is); the invariants are written
 * at the top of audit/audit.h.
 */
#ifndef CONSENTD_AUDITREC_H
#define CONSENTD_AUDITREC_H

#include <stdint.h>

#include "service/base/limits.h"

#define AUDIT_HASH_BYTES 32

/* Bounds of each string, in bytes, without the terminating NUL. They live
 * here rather than in limits.h because they are the format's own: changing one
 * changes what a valid entry is. */
#define AUDIT_NAME_MAX LIMIT_NAME_BYTES	      /* role, action, purpose, channel */
#define AUDIT_ACTOR_MAX LIMIT_PRINCIPAL_BYTES /* a principal name, in any script */
#define AUDIT_RECORD_ID_MAX 128
#define AUDIT_DECISION_MAX 8
#define AUDIT_REASON_MAX 256
#define AUDIT_FIELDS_MAX (LIMIT_FIELDS * (LIMIT_NAME_BYTES + 1))
#define AUDIT_REQUEST_ID_MAX 64
#define AUDIT_CLIENT_MAX 64
#define AUDIT_DETAIL_MAX 2048

/* Number of strings in the encoding and the largest possible encoding. */
#define AUDIT_STRINGS 12
#define AUDIT_ENCODED_MAX                                                                                    \
	(16 + 4 * AUDIT_STRINGS + AUDIT_ACTOR_MAX + 4 * AUDIT_NAME_MAX + AUDIT_RECORD_ID_MAX +               \
	 AUDIT_DECISION_MAX + AUDIT_REASON_MAX + AUDIT_FIELDS_MAX + AUDIT_REQUEST_ID_MAX +                   \
	 AUDIT_CLIENT_MAX + AUDIT_DETAIL_MAX)

struct audit_entry {
	int64_t seq;			 /* 1-based, contiguous */
	int64_t time_us;		 /* microseconds since 1970-01-01T00:00:00Z */
	char actor[AUDIT_ACTOR_MAX + 1]; /* principal name, "customer" or "system" */
	char role[AUDIT_NAME_MAX + 1];
	char action[AUDIT_NAME_MAX + 1]; /* "contacts.read", "consent.check", ... */
	char record_id[AUDIT_RECORD_ID_MAX + 1];
	char purpose[AUDIT_NAME_MAX + 1];
	char channel[AUDIT_NAME_MAX + 1];
	char decision[AUDIT_DECISION_MAX + 1]; /* allow | deny | error | none */
	char reason[AUDIT_REASON_MAX + 1];
	char fields[AUDIT_FIELDS_MAX + 1]; /* comma-separated revealed field names */
	char request_id[AUDIT_REQUEST_ID_MAX + 1];
	char client[AUDIT_CLIENT_MAX + 1]; /* client address */
	char detail[AUDIT_DETAIL_MAX + 1]; /* "" or a canonical flat JSON object */
	uint8_t prev_hash[AUDIT_HASH_BYTES];
	uint8_t hash[AUDIT_HASH_BYTES];
};

#define AUDIT_KEY_ID_BYTES 8
#define AUDIT_SIG_BYTES 64

struct audit_checkpoint {
	int64_t size;			/* number of entries covered, >= 1 */
	uint8_t root[AUDIT_HASH_BYTES]; /* hash of entry number size */
	int64_t time_us;		/* when it was signed */
	uint8_t key_id[AUDIT_KEY_ID_BYTES];
	uint8_t sig[AUDIT_SIG_BYTES];
};

#endif
