/*
 * fuzz_consent_body: consent request bodies (PUT /v1/contacts/{id}/consents/
 * {name}) through consent_from_json against the example policy, then
 * consent_to_json on what was accepted.
 *
 * Input: the first byte picks the purpose from the URL (a known purpose, an
 * unknown one, or a name taken from the input itself); the rest is the JSON
 * body. The policy is loaded once, as in fuzz_contact_body.
 *
 * Invariants checked (abort on violation):
 * - the result is 0, ERR_INVALID or ERR_UNPROCESSABLE; ERR_UNPROCESSABLE,
 *   and only it, comes with a policy reason;
 * - an accepted consent has status granted/refused/withdrawn, a legal basis
 *   the policy knows, a channel the purpose allows (or none when it has
 *   none), NUL-terminated text, at no later than now + 5 minutes, an expiry
 *   only on a grant and after its time, and renders as JSON.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"
#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/base/limits.h"
#include "service/domain/consent.h"
#include "service/domain/contact.h"
#include "support.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW_US INT64_C(1767225600000000) /* 2026-01-01T00:00:00Z */

#define TERMINATED(a) (memchr((a), '\0', sizeof(a)) != NULL)

static void check_accepted(const struct policy *p, const char *purpose, const struct store_consent *cs)
{
	struct policy_purpose_info pi;
	if (policy_purpose_get(p, purpose, &pi) != 0 || strcmp(cs->purpose, purpose) != 0)
		abort();
	if (!TERMINATED(cs->channel) || !TERMINATED(cs->status) || !TERMINATED(cs->legal_basis) ||
	    !TERMINATED(cs->notice_version) || !TERMINATED(cs->source) || !TERMINATED(cs->method))
		abort();
	/* Stored in plaintext: labels only (the policy's own notice version
	 * is the default and is the operator's text). */
	if (!is_identifier(cs->source, LIMIT_LABEL_BYTES) || !is_identifier(cs->method, LIMIT_LABEL_BYTES))
		abort();
	if (strcmp(cs->status, "granted") != 0 && strcmp(cs->status, "refused") != 0 &&
	    strcmp(cs->status, "withdrawn") != 0)
		abort();
	if (pi.channels != 0) {
		enum policy_channel c;
		if (policy_channel_from_name(cs->channel, &c) != 0 || !(pi.channels & (1u << c)))
			abort();
	}
	bool basis = false;
	for (int b = 0; b < POLICY_BASIS_COUNT; b++)
		basis = basis ||
			strcmp(cs->legal_basis, policy_legal_basis_name((enum policy_legal_basis)b)) == 0;
	if (!basis)
		abort();
	if (cs->at_us > NOW_US + 300 * INT64_C(1000000) || cs->recorded_us != NOW_US)
		abort();
	if (strcmp(cs->status, "granted") == 0) {
		if (cs->granted_us != cs->at_us || (cs->expires_us != 0 && cs->expires_us <= cs->at_us))
			abort();
	} else if (cs->expires_us != 0) {
		abort();
	}
	json_t *j = consent_to_json(cs, p, NOW_US / 1000000);
	if (j == NULL)
		abort();
	char *text = json_dumps(j, JSON_COMPACT);
	if (text == NULL)
		abort();
	free(text);
	json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const purposes[] = { "service", "marketing",	      "analytics",
						"care",	   "partner_sharing", "astrology" };
	struct policy *p = fuzz_example_policy();
	char purpose[LIMIT_NAME_BYTES + 1];
	json_error_t jerr;
	if (size < 1 || size > LIMIT_BODY_BYTES)
		return 0;
	uint8_t sel = data[0];
	data++;
	size--;
	if (sel < 0xf0) {
		snprintf(purpose, sizeof purpose, "%s",
			 purposes[sel % (sizeof purposes / sizeof purposes[0])]);
	} else {
		/* A purpose name from the input: up to the first NUL or 64 bytes. */
		size_t n = 0;
		while (n < size && n < LIMIT_NAME_BYTES && data[n] != '\0')
			n++;
		memcpy(purpose, data, n);
		purpose[n] = '\0';
		if (!is_name(purpose))
			return 0; /* the router refuses it before any handler */
		data += n;
		size -= n;
	}
	json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
	if (body == NULL || !json_is_object(body)) {
		json_decref(body);
		return 0;
	}
	struct store_consent cs;
	int reason = -2;
	memset(&cs, 0, sizeof cs);
	int rc = consent_from_json(p, purpose, body, NOW_US, &cs, &reason);
	if (rc == 0) {
		if (reason != -1)
			abort();
		check_accepted(p, purpose, &cs);
	} else if (rc == ERR_UNPROCESSABLE) {
		if (reason < 0 || strcmp(policy_reason_name((enum policy_reason)reason), "unknown") == 0)
			abort();
	} else if (rc != ERR_INVALID || reason != -1) {
		abort();
	}
	json_decref(body);
	return 0;
}
