/*
 * fuzz_check_body: consent-check request bodies (POST /v1/consent/check)
 * through parse_check_body against the example policy, read the way
 * app_json_body reads them (depth bound, duplicate keys refused, an object).
 *
 * The policy is loaded once from $CONSENTD_SOURCE_DIR/policy/example-policy.json
 * (ctest sets the variable; the compiled-in source directory is the fallback).
 *
 * Invariants checked (abort on violation):
 * - the result is 0, ERR_INVALID or ERR_UNPROCESSABLE, an error always
 *   comes with a message, and a reason comes with ERR_UNPROCESSABLE only
 *   ("unknown_purpose", "unknown_channel", or "channel_not_allowed" for a
 *   channel named for a purpose that declares none);
 * - an accepted body has only the keys contact_id, email, purpose,
 *   channel and use (lookup|outreach, which sets outreach), all strings; exactly one of contact_id and email,
 * the one given being a contact id or an email that normalises; purpose and channel the body's own strings,
 * naming a purpose and a channel the policy knows (no channel exactly when the purpose declares none);
 * - an email that does not normalise is refused with "email: " and
 *   exactly the message normalize_email gives for it (the prefix is
 *   formatted from the message buffer itself, which err_setv must allow);
 * - the answer is the same the second time.
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
#include "service/parse.h"
#include "support.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_accepted(const struct policy *p, json_t *body, const struct check_req *r)
{
	static const char *const keys[] = { "contact_id", "email", "purpose", "channel", "use" };
	const char *key;
	json_t *v;
	json_object_foreach (body, key, v) {
		bool known = false;
		for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
			known = known || strcmp(key, keys[i]) == 0;
		if (!known || !json_is_string(v))
			abort();
	}
	if ((r->contact_id == NULL) == (r->email == NULL))
		abort();
	/* use is "lookup" or "outreach", and outreach says which. */
	const char *use = json_string_value(json_object_get(body, "use"));
	if (use != NULL && strcmp(use, "lookup") != 0 && strcmp(use, "outreach") != 0)
		abort();
	if (r->outreach != (use != NULL && strcmp(use, "outreach") == 0))
		abort();
	if (r->contact_id != json_string_value(json_object_get(body, "contact_id")) ||
	    r->email != json_string_value(json_object_get(body, "email")) ||
	    r->purpose != json_string_value(json_object_get(body, "purpose")) ||
	    r->channel != json_string_value(json_object_get(body, "channel")))
		abort();
	if (r->contact_id != NULL && !is_contact_id(r->contact_id))
		abort();
	if (r->email != NULL) {
		char norm[256];
		if (normalize_email(r->email, strlen(r->email), norm, sizeof norm) != 0 ||
		    memchr(norm, '\0', sizeof norm) == NULL)
			abort();
	}
	struct policy_purpose_info pi;
	enum policy_channel ch;
	if (r->purpose == NULL || policy_purpose_get(p, r->purpose, &pi) != 0 ||
	    strcmp(pi.name, r->purpose) != 0 || strcmp(r->pi.name, r->purpose) != 0)
		abort();
	/* A purpose without channels is accepted only without one (ch is then
	 * POLICY_CH_COUNT); any other needs a channel the policy knows. */
	if (pi.channels == 0) {
		if (r->channel != NULL || r->ch != POLICY_CH_COUNT)
			abort();
	} else if (r->channel == NULL || policy_channel_from_name(r->channel, &ch) != 0 || ch != r->ch ||
		   strcmp(policy_channel_name(r->ch), r->channel) != 0) {
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct policy *p = fuzz_example_policy();
	json_error_t jerr;
	if (size == 0 || size > LIMIT_BODY_BYTES ||
	    !json_depth_within((const char *)data, size, LIMIT_JSON_DEPTH))
		return 0;
	json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
	if (body == NULL || !json_is_object(body)) {
		json_decref(body);
		return 0;
	}
	struct check_req r, again;
	const char *reason = "unset", *reason2 = "unset";
	err_clear();
	int rc = parse_check_body(p, body, &r, &reason);
	if (rc == 0) {
		if (reason != NULL)
			abort();
		check_accepted(p, body, &r);
	} else if (rc == ERR_UNPROCESSABLE) {
		if (reason == NULL ||
		    (strcmp(reason, "unknown_purpose") != 0 && strcmp(reason, "unknown_channel") != 0 &&
		     strcmp(reason, "channel_not_allowed") != 0))
			abort();
	} else if (rc != ERR_INVALID || reason != NULL) {
		abort();
	}
	if (rc != 0 && err_code() != rc)
		abort();
	if (rc == ERR_INVALID && strncmp(err_msg(), "email: ", 7) == 0) {
		char msg[512], norm[256];
		const char *email = json_string_value(json_object_get(body, "email"));
		snprintf(msg, sizeof msg, "%s", err_msg());
		if (email == NULL || normalize_email(email, strlen(email), norm, sizeof norm) == 0 ||
		    strcmp(msg + 7, err_msg()) != 0)
			abort();
	}
	if (parse_check_body(p, body, &again, &reason2) != rc || reason2 != reason)
		abort();
	if (rc == 0 && (again.contact_id != r.contact_id || again.email != r.email || again.ch != r.ch))
		abort();
	json_decref(body);
	return 0;
}
