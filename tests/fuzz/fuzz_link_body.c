/*
 * fuzz_link_body: preference-link create bodies (POST
 * /v1/contacts/{id}/preference-link) through parse_link_body against the
 * example policy, read the way app_json_body reads them; an empty input is
 * the request without a body.
 *
 * Invariants checked (abort on violation):
 * - the result is 0, ERR_INVALID or ERR_UNPROCESSABLE, set as the current
 *   error; the reason "unknown_purpose" comes with ERR_UNPROCESSABLE only;
 * - an accepted body has only the keys scope and ttl_days; its scope is
 *   "all" or a purpose of the policy (the body's own string when given,
 *   "all" when not), and ttl_days is from 1 to LINK_TTL_DAYS_MAX (the body's
 *   integer when given, LINK_TTL_DAYS_DEFAULT when not).
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

static void check_accepted(const struct policy *p, json_t *body, const struct link_req *r)
{
	const char *key;
	json_t *v;
	if (r->scope == NULL || r->ttl_days < 1 || r->ttl_days > LINK_TTL_DAYS_MAX)
		abort();
	if (strcmp(r->scope, "all") != 0) {
		struct policy_purpose_info pi;
		if (policy_purpose_get(p, r->scope, &pi) != 0)
			abort();
	}
	if (body == NULL) {
		if (strcmp(r->scope, "all") != 0 || r->ttl_days != LINK_TTL_DAYS_DEFAULT)
			abort();
		return;
	}
	json_object_foreach (body, key, v) {
		if (strcmp(key, "scope") != 0 && strcmp(key, "ttl_days") != 0)
			abort();
	}
	json_t *s = json_object_get(body, "scope"), *t = json_object_get(body, "ttl_days");
	if (s != NULL ? r->scope != json_string_value(s) : strcmp(r->scope, "all") != 0)
		abort();
	if (t != NULL ? !json_is_integer(t) || r->ttl_days != json_integer_value(t)
		      : r->ttl_days != LINK_TTL_DAYS_DEFAULT)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct policy *p = fuzz_example_policy();
	json_t *body = NULL;
	json_error_t jerr;
	struct link_req r;
	const char *reason = "unset";
	if (size > LIMIT_BODY_BYTES)
		return 0;
	if (size > 0) {
		if (!json_depth_within((const char *)data, size, LIMIT_JSON_DEPTH))
			return 0;
		body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
		if (body == NULL || !json_is_object(body)) {
			json_decref(body);
			return 0;
		}
	}
	err_clear();
	int rc = parse_link_body(p, body, &r, &reason);
	if (rc == 0) {
		if (reason != NULL)
			abort();
		check_accepted(p, body, &r);
	} else if (rc == ERR_UNPROCESSABLE) {
		if (reason == NULL || strcmp(reason, "unknown_purpose") != 0 || err_code() != rc)
			abort();
	} else if (rc != ERR_INVALID || reason != NULL || err_code() != rc) {
		abort();
	}
	json_decref(body);
	return 0;
}
