/*
 * parse: the pure parsers of request bodies that are fuzzed
 * (tests/fuzz/): no keys, no store, no HTTP; each fills a plain struct or
 * returns ERR_INVALID / ERR_UNPROCESSABLE with a message naming the key.
 * See parse.h. (The other parse_* functions still live with their routes.)
 */
#include "service/parse.h"

#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/base/limits.h"
#include "service/crypto/fieldcrypt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- POST /v1/consent/check ---- */

static const char *const check_keys[] = { "contact_id", "email", "purpose", "channel", "use", NULL };

int parse_check_body(const struct policy *p, json_t *body, struct check_req *out, const char **reason)
{
	const char *key;
	json_t *v;
	char norm[LIMIT_EMAIL_CAP];
	memset(out, 0, sizeof *out);
	*reason = NULL;
	json_object_foreach (body, key, v) {
		bool known = false;
		for (int i = 0; check_keys[i] != NULL; i++)
			known = known || strcmp(check_keys[i], key) == 0;
		if (!known || !json_is_string(v))
			return err_set(ERR_INVALID, known ? "%s must be a string" : "unknown key \"%s\"",
				       key);
	}
	out->contact_id = json_string_value(json_object_get(body, "contact_id"));
	out->email = json_string_value(json_object_get(body, "email"));
	out->purpose = json_string_value(json_object_get(body, "purpose"));
	out->channel = json_string_value(json_object_get(body, "channel"));
	if ((out->contact_id == NULL) == (out->email == NULL))
		return err_set(ERR_INVALID, "give exactly one of contact_id and email");
	if (out->purpose == NULL)
		return err_set(ERR_INVALID, "purpose is required");
	const char *use = json_string_value(json_object_get(body, "use"));
	if (use != NULL && strcmp(use, "outreach") != 0 && strcmp(use, "lookup") != 0)
		return err_set(ERR_INVALID, "use is \"lookup\" or \"outreach\"");
	out->outreach = use != NULL && strcmp(use, "outreach") == 0;
	if (out->contact_id != NULL && !is_contact_id(out->contact_id))
		return err_set(ERR_INVALID, "contact_id is not a contact id");
	if (out->email != NULL) {
		/* The same normalisation record_email_hashes applies before hashing. */
		int rc = normalize_email(out->email, strlen(out->email), norm, sizeof norm);
		crypto_wipe(norm, sizeof norm);
		if (rc != 0)
			return err_set(ERR_INVALID, "email: %s", err_msg());
	}
	if (policy_purpose_get(p, out->purpose, &out->pi) != 0) {
		*reason = "unknown_purpose";
		return err_set(ERR_UNPROCESSABLE, "unknown purpose \"%s\"", out->purpose);
	}
	/* A purpose that declares no channels is checked without one, and a
	 * channel named for it is a clear 422, never silently dropped. */
	out->ch = POLICY_CH_COUNT;
	if (out->pi.channels == 0) {
		if (out->channel == NULL)
			return 0;
		*reason = "channel_not_allowed";
		return err_set(ERR_UNPROCESSABLE, "purpose %s uses no channel; leave channel out",
			       out->purpose);
	}
	if (out->channel == NULL)
		return err_set(ERR_INVALID, "channel is required for purpose %s", out->purpose);
	if (policy_channel_from_name(out->channel, &out->ch) != 0) {
		*reason = "unknown_channel";
		return err_set(ERR_UNPROCESSABLE, "unknown channel \"%s\"", out->channel);
	}
	return 0;
}

/* ---- suppressions ---- */

static const char *const reasons[] = { "unsubscribe", "withdrawal", "bounce", "complaint",
				       "erasure",     "manual",	    NULL };
static const char *const entry_keys[] = { "email",  "phone",  "scope",	    "scope_value", "value",
					  "reason", "source", "created_at", NULL };

static bool one_of(const char *s, const char *const *list)
{
	for (int i = 0; s != NULL && list[i] != NULL; i++)
		if (strcmp(s, list[i]) == 0)
			return true;
	return false;
}

int parse_supp_entry(const struct policy *p, json_t *o, int64_t now, struct supp_entry *e,
		     const char **address)
{
	const char *key;
	json_t *v;
	memset(e, 0, sizeof *e);
	*address = NULL;
	if (!json_is_object(o))
		return err_set(ERR_INVALID, "an entry is an object with email or phone");
	json_object_foreach (o, key, v) {
		if (!one_of(key, entry_keys))
			return err_set(ERR_INVALID, "unknown key \"%s\"", key);
		if (!json_is_string(v) && !json_is_null(v))
			return err_set(ERR_INVALID, "%s must be a string", key);
	}
	const char *email = json_string_value(json_object_get(o, "email"));
	const char *phone = json_string_value(json_object_get(o, "phone"));
	if ((email == NULL) == (phone == NULL))
		return err_set(ERR_INVALID, "give exactly one of email and phone");
	/* The normalisation record_*_hashes applies, with its buffer sizes;
	 * the handler hashes the address afterwards. */
	char norm[LIMIT_EMAIL_CAP];
	int rc = email ? normalize_email(email, strlen(email), norm, sizeof norm)
		       : normalize_phone(phone, strlen(phone), norm, LIMIT_PHONE_CAP);
	crypto_wipe(norm, sizeof norm);
	if (rc != 0)
		return err_set(ERR_INVALID, "%s is not a valid address", email ? "email" : "phone");
	snprintf(e->kind, sizeof e->kind, "%s", email ? "email" : "phone");
	const char *scope = json_string_value(json_object_get(o, "scope"));
	const char *value = json_string_value(json_object_get(o, "scope_value"));
	if (value == NULL)
		value = json_string_value(json_object_get(o, "value"));
	if (scope == NULL)
		scope = "all";
	if (strcmp(scope, "all") == 0) {
		if (value != NULL && value[0] != '\0')
			return err_set(ERR_INVALID, "scope all takes no scope_value");
		value = "";
	} else if (strcmp(scope, "purpose") == 0) {
		struct policy_purpose_info pi;
		if (value == NULL || policy_purpose_get(p, value, &pi) != 0)
			return err_set(ERR_INVALID,
				       "scope purpose needs scope_value naming a purpose of the policy");
	} else if (strcmp(scope, "channel") == 0) {
		enum policy_channel ch;
		if (value == NULL || policy_channel_from_name(value, &ch) != 0)
			return err_set(ERR_INVALID, "scope channel needs scope_value naming a channel");
	} else {
		return err_set(ERR_INVALID, "scope must be all, purpose or channel");
	}
	snprintf(e->scope, sizeof e->scope, "%s", scope);
	snprintf(e->scope_value, sizeof e->scope_value, "%s", value);
	const char *reason = json_string_value(json_object_get(o, "reason"));
	if (reason == NULL)
		reason = "manual";
	if (!one_of(reason, reasons))
		return err_set(ERR_INVALID, "reason must be unsubscribe, withdrawal, bounce, complaint, "
					    "erasure or manual");
	snprintf(e->reason, sizeof e->reason, "%s", reason);
	json_t *sv = json_object_get(o, "source");
	const char *source = json_string_value(sv);
	if (sv != NULL && !json_is_null(sv) && source == NULL)
		return err_set(ERR_INVALID, "source must be a string");
	if (source == NULL)
		source = "api";
	/* Stored in plaintext next to the hash: a label, never free text. */
	if (!is_identifier(source, LIMIT_LABEL_BYTES) ||
	    (sv != NULL && json_string_length(sv) != strlen(source)))
		return err_set(ERR_INVALID, "source must be 1 to %d characters of A-Z a-z 0-9 . _ : @ / + -",
			       LIMIT_LABEL_BYTES);
	snprintf(e->source, sizeof e->source, "%s", source);
	e->created_us = now;
	const char *created = json_string_value(json_object_get(o, "created_at"));
	if (created != NULL && created[0] != '\0') {
		if (parse_time(created, &e->created_us) != 0)
			return err_set(ERR_INVALID, "created_at must be an RFC 3339 time");
		if (e->created_us > now + 300 * INT64_C(1000000))
			return err_set(ERR_INVALID, "created_at must not be in the future");
	}
	*address = email ? email : phone;
	return 0;
}

int parse_supp_body(const struct policy *p, const char *body, size_t len, int64_t now, struct supp_entry *e,
		    json_t **doc, const char **address)
{
	json_error_t jerr;
	*address = NULL;
	*doc = body ? json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
	if (*doc == NULL)
		return err_set(ERR_INVALID, "the body must be one JSON object");
	return parse_supp_entry(p, *doc, now, e, address);
}
