/*
 * evparse: provider event bodies into evp_items (see evparse.h). Each
 * provider's vocabulary is one table-like function; everything else is
 * shared: bounded strings, the address check, the id check.
 */
#include "service/evparse.h"

#include "service/base/codec.h"
#include "service/base/error.h"

#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static const char R_BOUNCE[] = "bounce", R_COMPLAINT[] = "complaint", R_UNSUBSCRIBE[] = "unsubscribe";

static json_t *load(const char *body, size_t len)
{
	json_error_t jerr;
	if (body == NULL || len == 0)
		return err_set(ERR_INVALID, "the body is empty"), NULL;
	if (!json_depth_within(body, len, LIMIT_JSON_DEPTH))
		return err_set(ERR_INVALID, "JSON nesting is deeper than %d", LIMIT_JSON_DEPTH), NULL;
	json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (doc == NULL)
		err_set(ERR_INVALID, "malformed JSON at line %d: %s", jerr.line, jerr.text);
	return doc;
}

/* Copies a string member into out; ERR_INVALID naming it when absent, not a
 * string, empty, too long or holding control characters. */
static int get_text(json_t *o, const char *key, char *out, size_t cap, const char *where)
{
	const char *s = json_string_value(json_object_get(o, key));
	size_t n = s ? strlen(s) : 0;
	if (s == NULL || n == 0)
		return err_set(ERR_INVALID, "%s: %s must be a non-empty string", where, key);
	if (n >= cap)
		return err_set(ERR_INVALID, "%s: %s is longer than %zu bytes", where, key, cap - 1);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return err_set(ERR_INVALID, "%s: %s holds a control character", where, key);
	memcpy(out, s, n + 1);
	return 0;
}

static int get_email(json_t *o, const char *key, struct evp_item *it, const char *where)
{
	char norm[EVP_EMAIL_CAP];
	int rc = get_text(o, key, it->email, sizeof it->email, where);
	if (rc != 0)
		return rc;
	if (normalize_email(it->email, strlen(it->email), norm, sizeof norm) != 0)
		rc = err_set(ERR_INVALID, "%s: %s is not an email address", where, key);
	mem_wipe(norm, sizeof norm);
	return rc;
}

/* A Unix time in seconds (integer or, as Mailgun sends, fractional). */
static int unix_time(json_t *v, int64_t *us)
{
	double d;
	if (json_is_integer(v))
		d = (double)json_integer_value(v);
	else if (json_is_real(v))
		d = json_real_value(v);
	else
		return ERR_INVALID;
	if (!isfinite(d) || d < 0 || d > 253402300799.0) /* 9999-12-31 */
		return ERR_INVALID;
	*us = (int64_t)(d * 1e6);
	return 0;
}

static void set(struct evp_item *it, enum evp_kind kind, const char *reason)
{
	it->kind = kind;
	it->reason = kind == EVP_SUPPRESS ? reason : "";
}

/* ---- SendGrid ---- */

/* Classifies one SendGrid event by its "event" (and "type"/"reason"). */
static void sendgrid_kind(json_t *o, const char *event, struct evp_item *it)
{
	const char *type = json_string_value(json_object_get(o, "type"));
	const char *reason = json_string_value(json_object_get(o, "reason"));
	if (strcmp(event, "bounce") == 0)
		set(it, type && strcmp(type, "blocked") == 0 ? EVP_SOFT : EVP_SUPPRESS, R_BOUNCE);
	else if (strcmp(event, "spamreport") == 0)
		set(it, EVP_SUPPRESS, R_COMPLAINT);
	else if (strcmp(event, "unsubscribe") == 0 || strcmp(event, "group_unsubscribe") == 0)
		set(it, EVP_SUPPRESS, R_UNSUBSCRIBE);
	else if (strcmp(event, "dropped") == 0) {
		/* SendGrid drops mail to addresses on its own lists; the reason
		 * says which list, and only those three say something about the
		 * person. Other drops (invalid headers, ...) are counted. */
		if (reason && strcmp(reason, "Bounced Address") == 0)
			set(it, EVP_SUPPRESS, R_BOUNCE);
		else if (reason && strcmp(reason, "Spam Reporting Address") == 0)
			set(it, EVP_SUPPRESS, R_COMPLAINT);
		else if (reason && strcmp(reason, "Unsubscribed Address") == 0)
			set(it, EVP_SUPPRESS, R_UNSUBSCRIBE);
		else
			set(it, EVP_SOFT, "");
	} else if (strcmp(event, "deferred") == 0)
		set(it, EVP_SOFT, "");
	else
		set(it, EVP_IGNORED, "");
}

static int sendgrid_one(json_t *o, size_t i, struct evp_item *it)
{
	char where[32];
	snprintf(where, sizeof where, "event %zu", i);
	memset(it, 0, sizeof *it);
	if (!json_is_object(o))
		return err_set(ERR_INVALID, "%s is not an object", where);
	const char *event = json_string_value(json_object_get(o, "event"));
	if (event == NULL)
		return err_set(ERR_INVALID, "%s: event must be a string", where);
	sendgrid_kind(o, event, it);
	if (it->kind == EVP_IGNORED)
		return 0;
	int rc;
	if ((rc = get_email(o, "email", it, where)) != 0 ||
	    (rc = get_text(o, "sg_event_id", it->id, sizeof it->id, where)) != 0)
		return rc;
	json_t *ts = json_object_get(o, "timestamp");
	if (ts != NULL && unix_time(ts, &it->time_us) != 0)
		return err_set(ERR_INVALID, "%s: timestamp must be Unix seconds", where);
	if (strcmp(event, "group_unsubscribe") == 0) {
		json_t *g = json_object_get(o, "asm_group_id");
		if (!json_is_integer(g) || json_integer_value(g) < 0)
			return err_set(ERR_INVALID, "%s: a group_unsubscribe needs asm_group_id (an integer)",
				       where);
		snprintf(it->group, sizeof it->group, "%lld", (long long)json_integer_value(g));
	}
	return 0;
}

int evparse_sendgrid(const char *body, size_t len, struct evp_item *items, size_t cap, size_t *n)
{
	int rc = 0;
	*n = 0;
	json_t *doc = load(body, len);
	if (doc == NULL)
		return ERR_INVALID;
	if (!json_is_array(doc)) {
		rc = err_set(ERR_INVALID, "a SendGrid batch is a JSON array of events");
		goto out;
	}
	if (json_array_size(doc) > cap) {
		rc = err_set(ERR_TOOBIG, "a batch holds at most %zu events", cap);
		goto out;
	}
	size_t i;
	json_t *o;
	json_array_foreach (doc, i, o) {
		if ((rc = sendgrid_one(o, i, &items[i])) != 0)
			goto out;
	}
	*n = json_array_size(doc);
out:
	if (rc != 0)
		mem_wipe(items, cap * sizeof *items);
	json_decref(doc);
	return rc;
}

/* ---- Mailgun ---- */

int evparse_mailgun(const char *body, size_t len, struct evp_item *it, struct evp_mailgun_sig *sig)
{
	int rc = 0;
	memset(it, 0, sizeof *it);
	memset(sig, 0, sizeof *sig);
	json_t *doc = load(body, len);
	if (doc == NULL)
		return ERR_INVALID;
	json_t *s = json_object_get(doc, "signature"), *ed = json_object_get(doc, "event-data");
	if (!json_is_object(s) || !json_is_object(ed)) {
		rc = err_set(ERR_INVALID,
			     "a Mailgun webhook body has a signature object and an event-data object");
		goto out;
	}
	if ((rc = get_text(s, "timestamp", sig->timestamp, sizeof sig->timestamp, "signature")) != 0 ||
	    (rc = get_text(s, "token", sig->token, sizeof sig->token, "signature")) != 0 ||
	    (rc = get_text(s, "signature", sig->signature, sizeof sig->signature, "signature")) != 0)
		goto out;
	for (const char *p = sig->timestamp; *p; p++)
		if (*p < '0' || *p > '9') {
			rc = err_set(ERR_INVALID, "signature: timestamp must be Unix seconds");
			goto out;
		}
	const char *event = json_string_value(json_object_get(ed, "event"));
	const char *severity = json_string_value(json_object_get(ed, "severity"));
	if (event == NULL) {
		rc = err_set(ERR_INVALID, "event-data: event must be a string");
		goto out;
	}
	if (strcmp(event, "failed") == 0)
		set(it, severity && strcmp(severity, "permanent") == 0 ? EVP_SUPPRESS : EVP_SOFT, R_BOUNCE);
	else if (strcmp(event, "complained") == 0)
		set(it, EVP_SUPPRESS, R_COMPLAINT);
	else if (strcmp(event, "unsubscribed") == 0)
		set(it, EVP_SUPPRESS, R_UNSUBSCRIBE);
	else
		set(it, EVP_IGNORED, "");
	snprintf(it->id, sizeof it->id, "%s", sig->token);
	if (it->kind == EVP_IGNORED)
		goto out;
	if ((rc = get_email(ed, "recipient", it, "event-data")) != 0)
		goto out;
	json_t *ts = json_object_get(ed, "timestamp");
	if (ts != NULL && unix_time(ts, &it->time_us) != 0)
		rc = err_set(ERR_INVALID, "event-data: timestamp must be Unix seconds");
out:
	if (rc != 0)
		mem_wipe(it, sizeof *it);
	json_decref(doc);
	return rc;
}

/* ---- Postmark ---- */

static void postmark_bounce_kind(const char *type, struct evp_item *it)
{
	/* Postmark's bounce types: the permanent ones suppress, a person's
	 * own spam complaint or unsubscribe reply is what it says, and the
	 * rest (soft, transient, DNS, auto-responders, ...) are counted. */
	if (strcmp(type, "HardBounce") == 0 || strcmp(type, "BadEmailAddress") == 0)
		set(it, EVP_SUPPRESS, R_BOUNCE);
	else if (strcmp(type, "SpamComplaint") == 0)
		set(it, EVP_SUPPRESS, R_COMPLAINT);
	else if (strcmp(type, "Unsubscribe") == 0)
		set(it, EVP_SUPPRESS, R_UNSUBSCRIBE);
	else
		set(it, EVP_SOFT, "");
}

int evparse_postmark(const char *body, size_t len, struct evp_item *it)
{
	int rc = 0;
	char when[48] = "", message[LIMIT_EVENT_ID_BYTES - 50] = "";
	const char *addr_key = "Email", *time_key = "BouncedAt";
	memset(it, 0, sizeof *it);
	json_t *doc = load(body, len);
	if (doc == NULL)
		return ERR_INVALID;
	if (!json_is_object(doc)) {
		rc = err_set(ERR_INVALID, "a Postmark webhook body is a JSON object");
		goto out;
	}
	const char *rt = json_string_value(json_object_get(doc, "RecordType"));
	if (rt == NULL) {
		rc = err_set(ERR_INVALID, "RecordType must be a string");
		goto out;
	}
	if (strcmp(rt, "Bounce") == 0) {
		const char *type = json_string_value(json_object_get(doc, "Type"));
		if (type == NULL) {
			rc = err_set(ERR_INVALID, "a Bounce needs Type");
			goto out;
		}
		postmark_bounce_kind(type, it);
	} else if (strcmp(rt, "SpamComplaint") == 0) {
		set(it, EVP_SUPPRESS, R_COMPLAINT);
	} else if (strcmp(rt, "SubscriptionChange") == 0) {
		json_t *ss = json_object_get(doc, "SuppressSending");
		const char *why = json_string_value(json_object_get(doc, "SuppressionReason"));
		addr_key = "Recipient";
		time_key = "ChangedAt";
		if (!json_is_boolean(ss)) {
			rc = err_set(ERR_INVALID,
				     "a SubscriptionChange needs SuppressSending (true or false)");
			goto out;
		}
		if (!json_is_true(ss))
			set(it, EVP_IGNORED, ""); /* a reactivation lifts nothing here */
		else if (why && strcmp(why, "HardBounce") == 0)
			set(it, EVP_SUPPRESS, R_BOUNCE);
		else if (why && strcmp(why, "SpamComplaint") == 0)
			set(it, EVP_SUPPRESS, R_COMPLAINT);
		else
			set(it, EVP_SUPPRESS, R_UNSUBSCRIBE);
	} else {
		set(it, EVP_IGNORED, "");
	}
	if (it->kind == EVP_IGNORED)
		goto out;
	if ((rc = get_email(doc, addr_key, it, rt)) != 0 ||
	    (rc = get_text(doc, "MessageID", message, sizeof message, rt)) != 0 ||
	    (rc = get_text(doc, time_key, when, sizeof when, rt)) != 0)
		goto out;
	if (parse_time(when, &it->time_us) != 0) {
		rc = err_set(ERR_INVALID, "%s: %s must be an RFC 3339 time", rt, time_key);
		goto out;
	}
	/* Postmark reuses the MessageID of a message for each of its events,
	 * so the time makes the key of one event. */
	snprintf(it->id, sizeof it->id, "%s|%s", message, when);
out:
	if (rc != 0)
		mem_wipe(it, sizeof *it);
	json_decref(doc);
	return rc;
}
