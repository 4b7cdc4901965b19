/*
 * fuzz_contact_body: contact request bodies, parsed the way the server does
 * (json_loadb with duplicate keys rejected) and checked by contact_validate
 * against the example policy, as a create and as a patch.
 *
 * The policy is loaded once from $CONSENTD_SOURCE_DIR/policy/example-policy.json
 * (ctest sets the variable; the compiled-in source directory is the fallback).
 *
 * Invariants checked (abort on violation):
 * - contact_validate returns 0, ERR_INVALID, ERR_UNPROCESSABLE or ERR_TOOBIG,
 *   and an error always comes with a message;
 * - an accepted create has a non-empty collected_for naming only known
 *   purposes, every other key is source, owner or a declared field, and
 *   contact_purposes_join either fits it or refuses it cleanly;
 * - an accepted create is also an accepted patch.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"
#include "service/base/error.h"
#include "service/base/codec.h"
#include "service/base/limits.h"
#include "service/domain/contact.h"
#include "support.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_accepted(const struct policy *p, json_t *body, bool patch)
{
	const char *key;
	json_t *v;
	json_object_foreach (body, key, v) {
		struct policy_field_info f;
		if (strcmp(key, "collected_for") == 0)
			continue;
		/* Plaintext labels: identifier-like only. */
		if (strcmp(key, "source") == 0 || strcmp(key, "owner") == 0) {
			if (!json_is_string(v) || !is_identifier(json_string_value(v), LIMIT_LABEL_BYTES))
				abort();
			continue;
		}
		if (policy_field_get(p, key, &f) != 0)
			abort();
	}
	json_t *cf = json_object_get(body, "collected_for");
	if (!patch && cf == NULL)
		abort();
	if (cf != NULL) {
		if (!json_is_array(cf) || json_array_size(cf) == 0 || json_array_size(cf) > LIMIT_LIST_ITEMS)
			abort();
		char joined[STORE_LIST_CAP];
		int rc = contact_purposes_join(cf, joined, sizeof joined);
		if (rc != 0 && rc != ERR_TOOBIG && rc != ERR_INVALID)
			abort();
		if (rc == 0 && (memchr(joined, '\0', sizeof joined) == NULL || joined[0] == '\0'))
			abort();
	}
}

static void check_rc(int rc)
{
	if (rc != 0 && rc != ERR_INVALID && rc != ERR_UNPROCESSABLE && rc != ERR_TOOBIG)
		abort();
	if (rc != 0 && err_msg()[0] == '\0')
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct policy *p = fuzz_example_policy();
	json_error_t jerr;
	if (size > LIMIT_BODY_BYTES)
		return 0;
	json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
	if (body == NULL || !json_is_object(body)) {
		json_decref(body);
		return 0;
	}
	int rc = contact_validate(p, body, false);
	check_rc(rc);
	if (rc == 0) {
		check_accepted(p, body, false);
		if (contact_validate(p, body, true) != 0)
			abort();
	}
	rc = contact_validate(p, body, true);
	check_rc(rc);
	if (rc == 0)
		check_accepted(p, body, true);
	json_decref(body);
	return 0;
}
