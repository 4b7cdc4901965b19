/*
 * reason: the name table. The policy's verdicts keep their names in the
 * policy's table (policy_reason_name); the service's own are listed here,
 * once. tests/unit/test_reason.c checks the table against the spec.
 */
#include "service/domain/reason.h"

#include <string.h>

_Static_assert(REASON_PENDING_CONFIRMATION - REASON_GRANTED ==
			       POLICY_REASON_PENDING_CONFIRMATION - POLICY_REASON_GRANTED &&
		       REASON_ERROR == REASON_GRANTED + POLICY_REASON_COUNT,
	       "the policy's verdicts are mirrored in order");

static const char *const own_names[REASON_COUNT - REASON_ERROR] = {
	[REASON_ERROR - REASON_ERROR] = "error",
	[REASON_INVALID - REASON_ERROR] = "invalid",
	[REASON_DUPLICATE_PERSON - REASON_ERROR] = "duplicate_person",
	[REASON_UNKNOWN_LINK - REASON_ERROR] = "unknown_link",
	[REASON_NO_CHECKPOINT - REASON_ERROR] = "no_checkpoint",
	[REASON_NOT_FOUND - REASON_ERROR] = "not_found",
	[REASON_LIST_TOO_LARGE - REASON_ERROR] = "list_too_large",
	[REASON_MALFORMED_LIST - REASON_ERROR] = "malformed_list",
	[REASON_IMPORT_FAILED - REASON_ERROR] = "import_failed",
	[REASON_PURPOSE_WIDENING_DENIED - REASON_ERROR] = "purpose_widening_denied",
	[REASON_TOO_LARGE - REASON_ERROR] = "too_large",
	[REASON_AUDIT_ENTRY_TOO_BIG - REASON_ERROR] = "audit_entry_too_big",
	[REASON_CSRF - REASON_ERROR] = "csrf",
	[REASON_NO_SESSION - REASON_ERROR] = "no_session",
	[REASON_NO_SUCH_ENTRY - REASON_ERROR] = "no_such_entry",
	[REASON_SESSION_TOKEN_REVOKED - REASON_ERROR] = "session_token_revoked",
	[REASON_BAD_SIGNATURE - REASON_ERROR] = "bad_signature",
	[REASON_STALE_TIMESTAMP - REASON_ERROR] = "stale_timestamp",
	[REASON_INVALID_EVENTS - REASON_ERROR] = "invalid_events",
	[REASON_TOO_MANY_EVENTS - REASON_ERROR] = "too_many_events",
	[REASON_CAP_CONFLICT - REASON_ERROR] = "cap_conflict",
	[REASON_NO_EMAIL - REASON_ERROR] = "no_email",
	[REASON_MALFORMED_FORM - REASON_ERROR] = "malformed_form",
	[REASON_TOO_MANY_ENDPOINTS - REASON_ERROR] = "too_many_endpoints",
	[REASON_DISABLED - REASON_ERROR] = "disabled",
	[REASON_DUPLICATE_EMAIL - REASON_ERROR] = "duplicate_email",
	[REASON_RATE_LIMITED - REASON_ERROR] = "rate_limited",
	[REASON_UNKNOWN_TOKEN - REASON_ERROR] = "unknown_token",
	[REASON_MISSING_TOKEN - REASON_ERROR] = "missing_token",
	[REASON_MALFORMED_TOKEN - REASON_ERROR] = "malformed_token",
	[REASON_UNUSABLE_PRINCIPAL_NAME - REASON_ERROR] = "unusable_principal_name",
	[REASON_UNKNOWN_TOPIC - REASON_ERROR] = "unknown_topic",
	[REASON_CERT_UNAVAILABLE - REASON_ERROR] = "cert_unavailable",
	[REASON_BAD_SUBSCRIBE_URL - REASON_ERROR] = "bad_subscribe_url",
	[REASON_CONFIRM_FAILED - REASON_ERROR] = "confirm_failed",
	[REASON_INVALID_TRANSITION - REASON_ERROR] = "invalid_transition",
	[REASON_EXTENSION_TOO_LATE - REASON_ERROR] = "extension_too_late",
	[REASON_CSRF_REPLAYED - REASON_ERROR] = "csrf_replayed",
};

const char *decision_reason_name(enum decision_reason r)
{
	if (r >= REASON_GRANTED && r < REASON_ERROR)
		return policy_reason_name((enum policy_reason)(r - REASON_GRANTED));
	if (r >= REASON_ERROR && r < REASON_COUNT)
		return own_names[r - REASON_ERROR];
	return NULL;
}

enum decision_reason decision_reason_of(enum policy_reason r)
{
	return (unsigned)r < POLICY_REASON_COUNT ? (enum decision_reason)(REASON_GRANTED + (int)r)
						 : REASON_ERROR;
}

enum decision_reason decision_reason_from_name(const char *name)
{
	if (name == NULL)
		return REASON_NONE;
	for (int r = REASON_GRANTED; r < REASON_COUNT; r++) {
		const char *n = decision_reason_name((enum decision_reason)r);
		if (n != NULL && strcmp(n, name) == 0)
			return (enum decision_reason)r;
	}
	return REASON_NONE;
}
