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
#include <stdlib.h>
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

/* ---- Amazon SES through SNS ---- */

void evparse_sns_clear(struct evp_sns *s)
{
	if (s == NULL)
		return;
	if (s->message != NULL)
		mem_wipe(s->message, s->message_len);
	if (s->canonical != NULL)
		mem_wipe(s->canonical, s->canonical_len);
	free(s->message);
	free(s->canonical);
	memset(s, 0, sizeof *s);
}

/* A string member that may hold anything but NUL (the Message, Subject). */
static const char *sns_member(json_t *o, const char *key, size_t *len)
{
	json_t *v = json_object_get(o, key);
	if (!json_is_string(v))
		return NULL;
	*len = json_string_length(v);
	return json_string_value(v);
}

/* Appends "key\nvalue\n" to the canonical string (cap: bytes left). */
static int canon_add(struct evp_sns *s, size_t cap, const char *key, const char *value, size_t vlen)
{
	size_t klen = strlen(key);
	if (s->canonical_len + klen + vlen + 2 >= cap)
		return err_set(ERR_TOOBIG, "the SNS message is too large");
	memcpy(s->canonical + s->canonical_len, key, klen);
	s->canonical[s->canonical_len + klen] = '\n';
	s->canonical_len += klen + 1;
	memcpy(s->canonical + s->canonical_len, value, vlen);
	s->canonical[s->canonical_len + vlen] = '\n';
	s->canonical_len += vlen + 1;
	s->canonical[s->canonical_len] = '\0';
	return 0;
}

/* What SNS signs for each message type, in the order AWS documents. */
static const char *const sns_notification_keys[] = { "Message",	 "MessageId", "Subject", "Timestamp",
						     "TopicArn", "Type",      NULL };
static const char *const sns_confirmation_keys[] = { "Message", "MessageId", "SubscribeURL", "Timestamp",
						     "Token",	"TopicArn",  "Type",	     NULL };

int evparse_sns(const char *body, size_t len, struct evp_sns *out)
{
	int rc = 0;
	char token[2048];
	memset(out, 0, sizeof *out);
	json_t *doc = load(body, len);
	if (doc == NULL)
		return ERR_INVALID;
	if (!json_is_object(doc)) {
		rc = err_set(ERR_INVALID, "an SNS message is a JSON object");
		goto out;
	}
	const char *type = json_string_value(json_object_get(doc, "Type"));
	const char *ver = json_string_value(json_object_get(doc, "SignatureVersion"));
	if (type == NULL) {
		rc = err_set(ERR_INVALID, "Type must be a string");
		goto out;
	}
	const char *const *keys = sns_confirmation_keys;
	if (strcmp(type, "Notification") == 0) {
		out->type = EVP_SNS_NOTIFICATION;
		keys = sns_notification_keys;
	} else if (strcmp(type, "SubscriptionConfirmation") == 0) {
		out->type = EVP_SNS_SUBSCRIBE;
	} else if (strcmp(type, "UnsubscribeConfirmation") == 0) {
		out->type = EVP_SNS_UNSUBSCRIBE;
	} else {
		rc = err_set(ERR_INVALID, "Type must be Notification, SubscriptionConfirmation or "
					  "UnsubscribeConfirmation");
		goto out;
	}
	if (ver == NULL || (strcmp(ver, "1") != 0 && strcmp(ver, "2") != 0)) {
		rc = err_set(ERR_INVALID, "SignatureVersion must be \"1\" or \"2\"");
		goto out;
	}
	out->version = ver[0] - '0';
	if ((rc = get_text(doc, "MessageId", out->message_id, sizeof out->message_id, "SNS")) != 0 ||
	    (rc = get_text(doc, "TopicArn", out->topic_arn, sizeof out->topic_arn, "SNS")) != 0 ||
	    (rc = get_text(doc, "Timestamp", out->timestamp, sizeof out->timestamp, "SNS")) != 0 ||
	    (rc = get_text(doc, "Signature", out->signature, sizeof out->signature, "SNS")) != 0 ||
	    (rc = get_text(doc, "SigningCertURL", out->cert_url, sizeof out->cert_url, "SNS")) != 0)
		goto out;
	if (out->type != EVP_SNS_NOTIFICATION &&
	    ((rc = get_text(doc, "SubscribeURL", out->subscribe_url, sizeof out->subscribe_url, "SNS")) !=
		     0 ||
	     (rc = get_text(doc, "Token", token, sizeof token, "SNS")) != 0))
		goto out;
	if (parse_time(out->timestamp, &out->time_us) != 0) {
		rc = err_set(ERR_INVALID, "SNS: Timestamp must be an ISO 8601 time");
		goto out;
	}
	size_t mlen = 0;
	const char *msg = sns_member(doc, "Message", &mlen);
	if (msg == NULL) {
		rc = err_set(ERR_INVALID, "SNS: Message must be a string");
		goto out;
	}
	if ((out->message = malloc(mlen + 1)) == NULL) {
		rc = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	memcpy(out->message, msg, mlen + 1);
	out->message_len = mlen;
	/* The canonical string is at most the body plus the key names: every
	 * value in it came from the body, and JSON escapes only shrink. */
	size_t cap = len + 256;
	if ((out->canonical = malloc(cap)) == NULL) {
		rc = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	out->canonical[0] = '\0';
	for (size_t i = 0; keys[i] != NULL; i++) {
		size_t vlen = 0;
		const char *v = sns_member(doc, keys[i], &vlen);
		if (v == NULL && strcmp(keys[i], "Subject") == 0 && json_object_get(doc, "Subject") == NULL)
			continue; /* signed only when present */
		if (v == NULL) {
			rc = err_set(ERR_INVALID, "SNS: %s must be a string", keys[i]);
			goto out;
		}
		if ((rc = canon_add(out, cap, keys[i], v, vlen)) != 0)
			goto out;
	}
out:
	mem_wipe(token, sizeof token);
	if (rc != 0)
		evparse_sns_clear(out);
	json_decref(doc);
	return rc;
}

/* Adds one item per address in the array arr (objects with key, or strings
 * when key is NULL). */
static int ses_recipients(json_t *arr, const char *key, const char *message_id, enum evp_kind kind,
			  const char *reason, int64_t when, struct evp_item *items, size_t cap, size_t *n,
			  const char *where)
{
	size_t i;
	json_t *r;
	if (kind == EVP_IGNORED) {
		/* Counted once, whoever it names: nothing is taken from it. */
		memset(&items[0], 0, sizeof items[0]);
		set(&items[0], EVP_IGNORED, "");
		*n = 1;
		return 0;
	}
	if (!json_is_array(arr) || json_array_size(arr) == 0)
		return err_set(ERR_INVALID, "%s must be a non-empty array", where);
	if (json_array_size(arr) > cap)
		return err_set(ERR_TOOBIG, "a notification names at most %zu recipients", cap);
	json_array_foreach (arr, i, r) {
		struct evp_item *it = &items[i];
		char name[48];
		memset(it, 0, sizeof *it);
		set(it, kind, reason);
		it->time_us = when;
		snprintf(name, sizeof name, "%s[%zu]", where, i);
		int rc;
		if (key != NULL) {
			if (!json_is_object(r))
				return err_set(ERR_INVALID, "%s must be an object", name);
			rc = get_email(r, key, it, name);
		} else {
			json_t *wrap = json_pack("{s:O}", "address", r);
			rc = wrap ? get_email(wrap, "address", it, name)
				  : err_set(ERR_NOMEM, "out of memory");
			json_decref(wrap);
		}
		if (rc != 0)
			return rc;
		snprintf(it->id, sizeof it->id, "%s|%zu", message_id, i);
	}
	*n = json_array_size(arr);
	return 0;
}

/* The event's own time (bounce.timestamp, ...), or 0 when absent. */
static int ses_time(json_t *o, int64_t *us)
{
	const char *ts = json_string_value(json_object_get(o, "timestamp"));
	*us = 0;
	if (ts == NULL)
		return 0;
	return parse_time(ts, us) == 0 ? 0 : err_set(ERR_INVALID, "the SES event's timestamp is not a time");
}

int evparse_ses(const char *message, size_t len, const char *message_id, struct evp_item *items, size_t cap,
		size_t *n)
{
	int rc = 0;
	int64_t when = 0;
	*n = 0;
	json_t *doc = load(message, len);
	if (doc == NULL)
		return ERR_INVALID;
	const char *type = json_string_value(json_object_get(doc, "notificationType"));
	if (type == NULL)
		type = json_string_value(json_object_get(doc, "eventType"));
	if (!json_is_object(doc) || type == NULL) {
		rc = err_set(ERR_INVALID,
			     "an SES notification is an object with notificationType or eventType");
		goto out;
	}
	if (cap == 0 || strlen(message_id) + 8 > sizeof items[0].id) {
		rc = err_set(ERR_TOOBIG, "no room for the notification's events");
		goto out;
	}
	if (strcmp(type, "Bounce") == 0) {
		json_t *b = json_object_get(doc, "bounce");
		const char *bt = json_string_value(json_object_get(b, "bounceType"));
		if (!json_is_object(b) || bt == NULL) {
			rc = err_set(ERR_INVALID, "a Bounce needs bounce.bounceType");
			goto out;
		}
		/* Only a permanent bounce says the address is dead; a transient
		 * or undetermined one may work tomorrow. */
		enum evp_kind kind = strcmp(bt, "Permanent") == 0 ? EVP_SUPPRESS : EVP_SOFT;
		if ((rc = ses_time(b, &when)) == 0)
			rc = ses_recipients(json_object_get(b, "bouncedRecipients"), "emailAddress",
					    message_id, kind, R_BOUNCE, when, items, cap, n,
					    "bounce.bouncedRecipients");
	} else if (strcmp(type, "Complaint") == 0) {
		json_t *c = json_object_get(doc, "complaint");
		const char *fb = json_string_value(json_object_get(c, "complaintFeedbackType"));
		if (!json_is_object(c)) {
			rc = err_set(ERR_INVALID, "a Complaint needs a complaint object");
			goto out;
		}
		/* A "not-spam" report is the opposite of a complaint. */
		enum evp_kind kind = fb != NULL && strcmp(fb, "not-spam") == 0 ? EVP_IGNORED : EVP_SUPPRESS;
		if ((rc = ses_time(c, &when)) == 0)
			rc = ses_recipients(json_object_get(c, "complainedRecipients"), "emailAddress",
					    message_id, kind, R_COMPLAINT, when, items, cap, n,
					    "complaint.complainedRecipients");
	} else if (strcmp(type, "Subscription") == 0) {
		json_t *s = json_object_get(doc, "subscription");
		json_t *all = json_object_get(json_object_get(s, "newTopicPreferences"), "unsubscribeAll");
		if (!json_is_object(s)) {
			rc = err_set(ERR_INVALID, "a Subscription event needs a subscription object");
			goto out;
		}
		/* A change of topics is not a "stop": only unsubscribeAll is. */
		enum evp_kind kind = json_is_true(all) ? EVP_SUPPRESS : EVP_IGNORED;
		if ((rc = ses_time(s, &when)) == 0)
			rc = ses_recipients(json_object_get(json_object_get(doc, "mail"), "destination"),
					    NULL, message_id, kind, R_UNSUBSCRIBE, when, items, cap, n,
					    "mail.destination");
	} else {
		memset(&items[0], 0, sizeof items[0]);
		set(&items[0], EVP_IGNORED, "");
		*n = 1;
	}
out:
	if (rc != 0) {
		mem_wipe(items, cap * sizeof *items);
		*n = 0;
	}
	json_decref(doc);
	return rc;
}
