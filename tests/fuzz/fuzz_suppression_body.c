/*
 * fuzz_suppression_body: single suppression bodies (POST /v1/suppressions as
 * application/json) through parse_supp_body against the example policy; when
 * the body is a JSON array, each element also goes through parse_supp_entry,
 * the way an import line does.
 *
 * The policy is loaded once from $CONSENTD_SOURCE_DIR/policy/example-policy.json
 * (ctest sets the variable; the compiled-in source directory is the fallback).
 *
 * Invariants checked (abort on violation):
 * - the result is 0 or ERR_INVALID, set as the current error;
 * - an accepted entry has kind email or phone, and *address is that key's
 *   string in the object and normalises as one; the hash is left zero;
 *   scope is all (with an empty scope_value), purpose (naming a purpose of
 *   the policy) or channel (naming a channel); reason is one of the six;
 *   source is clean text; every text is NUL-terminated in its array;
 *   created_at is now when not given and never later than now + 5 minutes.
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

#define NOW_US INT64_C(1767225600000000) /* 2026-01-01T00:00:00Z */

#define TERMINATED(a) (memchr((a), '\0', sizeof(a)) != NULL)

static void check_accepted(const struct policy *p, json_t *o, const struct supp_entry *e, const char *address)
{
	static const uint8_t zero[32];
	static const char *const reasons[] = { "unsubscribe", "withdrawal", "bounce",
					       "complaint",   "erasure",    "manual" };
	char norm[256];
	if (!TERMINATED(e->kind) || !TERMINATED(e->scope) || !TERMINATED(e->scope_value) ||
	    !TERMINATED(e->reason) || !TERMINATED(e->source) || memcmp(e->hash, zero, 32) != 0)
		abort();
	if (!json_is_object(o) || address == NULL ||
	    address != json_string_value(json_object_get(o, e->kind)))
		abort();
	if (strcmp(e->kind, "email") == 0) {
		if (json_string_value(json_object_get(o, "phone")) != NULL ||
		    normalize_email(address, strlen(address), norm, sizeof norm) != 0)
			abort();
	} else if (strcmp(e->kind, "phone") == 0) {
		if (json_string_value(json_object_get(o, "email")) != NULL ||
		    normalize_phone(address, strlen(address), norm, 32) != 0)
			abort();
	} else {
		abort();
	}
	if (strcmp(e->scope, "all") == 0) {
		if (e->scope_value[0] != '\0')
			abort();
	} else if (strcmp(e->scope, "purpose") == 0) {
		struct policy_purpose_info pi;
		if (policy_purpose_get(p, e->scope_value, &pi) != 0)
			abort();
	} else if (strcmp(e->scope, "channel") == 0) {
		enum policy_channel ch;
		if (policy_channel_from_name(e->scope_value, &ch) != 0)
			abort();
	} else {
		abort();
	}
	bool known = false;
	for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
		known = known || strcmp(e->reason, reasons[i]) == 0;
	if (!known || !is_identifier(e->source, LIMIT_LABEL_BYTES))
		abort();
	const char *created = json_string_value(json_object_get(o, "created_at"));
	if ((created == NULL || created[0] == '\0') && e->created_us != NOW_US)
		abort();
	if (e->created_us > NOW_US + 300 * INT64_C(1000000))
		abort();
}

static void check_rc(int rc)
{
	if (rc != 0 && (rc != ERR_INVALID || err_code() != rc))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct policy *p = fuzz_example_policy();
	struct supp_entry e;
	const char *address = "unset";
	json_t *doc = NULL;
	if (size > LIMIT_BODY_BYTES)
		return 0;
	/* The handler buffers the body NUL-terminated; an empty body is NULL. */
	char *body = size ? malloc(size + 1) : NULL;
	if (size && body == NULL)
		return 0;
	if (body) {
		memcpy(body, data, size);
		body[size] = '\0';
	}
	err_clear();
	int rc = parse_supp_body(p, body, size, NOW_US, &e, &doc, &address);
	check_rc(rc);
	if (rc == 0)
		check_accepted(p, doc, &e, address);
	else if (address != NULL)
		abort();
	if (json_is_array(doc)) {
		size_t i;
		json_t *item;
		json_array_foreach (doc, i, item) {
			if (i >= 64)
				break;
			err_clear();
			rc = parse_supp_entry(p, item, NOW_US, &e, &address);
			check_rc(rc);
			if (rc == 0)
				check_accepted(p, item, &e, address);
		}
	}
	json_decref(doc);
	free(body);
	return 0;
}
