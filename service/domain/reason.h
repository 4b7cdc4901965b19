/*
 * reason: the reasons consentd gives for a decision or a refusal, as one
 * enum with one name table. The names are stable API words: they are the
 * `reason` of consent checks, filter lines and reads, of problem replies
 * (docs/openapi.yaml, schemas Reason and ProblemReason) and of audit
 * entries. Handlers and the domain pass the enum; the name is produced only
 * where the reply or the entry is written (app_reason, audit_decide_reason).
 *
 * The policy's own verdicts (enum policy_reason, policy/policy.h) are a part
 * of it, in the same order, named by the policy's table; the service's own
 * reasons follow. REASON_NONE is 0, so a zeroed request has no reason.
 */
#ifndef CONSENTD_DOMAIN_REASON_H
#define CONSENTD_DOMAIN_REASON_H

#include "policy/policy.h"

enum decision_reason {
	REASON_NONE = 0,
	/* The policy's verdicts: decision_reason_of(POLICY_REASON_x). */
	REASON_GRANTED,
	REASON_NOT_REQUIRED,
	REASON_NO_CONSENT,
	REASON_REFUSED,
	REASON_WITHDRAWN,
	REASON_EXPIRED,
	REASON_PURPOSE_INCOMPATIBLE,
	REASON_CHANNEL_NOT_ALLOWED,
	REASON_UNKNOWN_CONTACT,
	REASON_ERASED,
	REASON_SUPPRESSED,
	REASON_SUPPRESSED_BY_LIST,
	REASON_ROLE_DENIED,
	REASON_UNKNOWN_PURPOSE,
	REASON_UNKNOWN_CHANNEL,
	REASON_FREQUENCY_CAP,
	REASON_PENDING_CONFIRMATION,
	/* A check or filter line that could not be decided (denied, never
	 * allowed), an unreadable line, a person already answered. */
	REASON_ERROR,
	REASON_INVALID,
	REASON_DUPLICATE_PERSON,
	/* Refusals (problem replies) that are not policy verdicts. */
	REASON_UNKNOWN_LINK,
	REASON_NO_CHECKPOINT,
	REASON_NOT_FOUND,
	REASON_LIST_TOO_LARGE,
	REASON_MALFORMED_LIST,
	REASON_IMPORT_FAILED,
	REASON_PURPOSE_WIDENING_DENIED,
	REASON_TOO_LARGE,
	REASON_AUDIT_ENTRY_TOO_BIG,
	REASON_CSRF,
	REASON_NO_SESSION,
	REASON_NO_SUCH_ENTRY,
	REASON_SESSION_TOKEN_REVOKED,
	REASON_BAD_SIGNATURE,
	REASON_STALE_TIMESTAMP,
	REASON_INVALID_EVENTS,
	REASON_TOO_MANY_EVENTS,
	REASON_CAP_CONFLICT,
	REASON_NO_EMAIL,
	REASON_MALFORMED_FORM,
	REASON_TOO_MANY_ENDPOINTS,
	REASON_DISABLED,
	REASON_DUPLICATE_EMAIL,
	/* The console's sign-in refusals. */
	REASON_RATE_LIMITED,
	REASON_UNKNOWN_TOKEN,
	REASON_MISSING_TOKEN,
	REASON_MALFORMED_TOKEN,
	REASON_UNUSABLE_PRINCIPAL_NAME,
	REASON_UNKNOWN_TOPIC,
	REASON_CERT_UNAVAILABLE,
	REASON_BAD_SUBSCRIBE_URL,
	REASON_CONFIRM_FAILED,
	REASON_INVALID_TRANSITION,
	REASON_EXTENSION_TOO_LATE,
	REASON_CSRF_REPLAYED,
	REASON_COUNT
};

/* The reason's API name; NULL for REASON_NONE and for a value outside the
 * enum. */
const char *decision_reason_name(enum decision_reason r);
/* The policy's verdict as a decision reason. */
enum decision_reason decision_reason_of(enum policy_reason r);
/* The reason named name (the adapter for code that still speaks in
 * strings); REASON_NONE for NULL or a name outside the table. */
enum decision_reason decision_reason_from_name(const char *name);

#endif
