/*
 * parse: the request-body parsers that live in the handlers, declared here
 * so that the fuzz targets (tests/fuzz/fuzz_check_body.c,
 * fuzz_suppression_body.c, fuzz_link_body.c, fuzz_form.c) can reach them.
 *
 * Each one is pure: no I/O, no store, no keyring, no request context. It
 * reads bytes or a parsed JSON object (and the policy, where a name must be
 * one the policy knows) and returns 0 or a negative code from
 * service/base/error.h with a message set by err_set(); the handler turns
 * that into exactly the reply it always gave. Strings in a result borrow
 * from the input (the JSON object or the body) unless said otherwise.
 *
 * What stays in the handler: hashing addresses (that needs the keyring),
 * reading the store, authorisation, CSRF checks, and the audit entry.
 */
#ifndef CONSENTD_PARSE_H
#define CONSENTD_PARSE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/policy.h"
#include "service/store/store.h"

/* ---- POST /v1/consent/check (service/h_consents.c) ---- */

struct check_req {
	const char *contact_id; /* exactly one of contact_id and email is set */
	const char *email;	/* as given; it is known to normalise */
	const char *purpose;	/* as given; pi describes it */
	const char *channel;	/* as given; ch is its value */
	struct policy_purpose_info pi;
	enum policy_channel ch; /* POLICY_CH_COUNT for a purpose without channels */
	bool outreach;		/* "use": "outreach": about to contact, so frequency caps apply */
};

/* A consent-check body (keys contact_id|email, purpose, channel, and
 * optionally use: "lookup" (the default) or "outreach"; strings only;
 * unknown keys refused): ERR_INVALID, or ERR_UNPROCESSABLE with
 * *reason "unknown_purpose" or "unknown_channel" (otherwise *reason is NULL). */
int parse_check_body(const struct policy *p, json_t *body, struct check_req *out, const char **reason);

/* ---- POST /v1/suppressions (service/h_suppressions.c) ---- */

struct supp_entry {
	uint8_t hash[32]; /* zero from the parser; the handler hashes the address */
	char kind[8], scope[16], scope_value[STORE_NAME_CAP], reason[16], source[STORE_TEXT_CAP];
	int64_t created_us;
};

/* One suppression object (a JSON body, or one line or row of an import)
 * into e, with *address the email or phone as given (borrowed from o, known
 * to normalise); now is the default and the bound for created_at.
 * ERR_INVALID with a message naming the key. */
int parse_supp_entry(const struct policy *p, json_t *o, int64_t now, struct supp_entry *e,
		     const char **address);

/* A single suppression body (body may be NULL: nothing was sent): one JSON
 * object, duplicate keys refused, then parse_supp_entry. On 0 *doc holds
 * the object *address borrows from; the caller frees it (also on error,
 * where it may be NULL). */
int parse_supp_body(const struct policy *p, const char *body, size_t len, int64_t now, struct supp_entry *e,
		    json_t **doc, const char **address);

/* ---- POST /v1/contacts/{id}/preference-link (service/h_customer.c) ---- */

#define LINK_TTL_DAYS_DEFAULT 90
#define LINK_TTL_DAYS_MAX 365

struct link_req {
	const char *scope; /* "all" (the default, static) or a purpose of the policy */
	int64_t ttl_days;  /* 1 to LINK_TTL_DAYS_MAX; LINK_TTL_DAYS_DEFAULT when absent */
	bool manage;	   /* capability "manage" (grant, download, erase) was asked for */
	const char *lang;  /* "lang": the mail's language, "en" | "zh-CN"; NULL: English */
};

/* A preference-link body (keys scope, ttl_days and capability "optout" |
 * "manage"; body NULL when none was
 * sent): ERR_INVALID, or ERR_UNPROCESSABLE with *reason "unknown_purpose"
 * (otherwise *reason is NULL). */
int parse_link_body(const struct policy *p, json_t *body, struct link_req *out, const char **reason);

/* ---- customer forms: POST /p/{token}, POST /v1/unsubscribe/{token} ---- */

/* The value of the first field `name` of an application/x-www-form-urlencoded
 * body, decoded ('+' is a space, %XX a byte) into out (cap bytes with the
 * NUL). ERR_NOTFOUND without such a field; ERR_INVALID for a bad escape or a
 * value that is not clean UTF-8 (so no NUL or other control byte but tab,
 * CR and LF); ERR_TOOBIG when it does not fit. out is left alone on
 * ERR_NOTFOUND and holds no usable value after the other errors. */
int parse_form_value(const char *body, size_t len, const char *name, char *out, size_t cap);

/* True when the Content-Type header h (may be NULL) is the media type want,
 * case-insensitively, with or without parameters. */
bool parse_media_is(const char *h, const char *want);

/* multipart/form-data with the boundary from ctype: true when a part named
 * List-Unsubscribe holds exactly One-Click. */
bool parse_multipart_one_click(const char *ctype, const char *body, size_t len);

/* RFC 8058 one-click POST body (section 3.1 allows either encoding): true
 * when the body says List-Unsubscribe=One-Click as urlencoded or multipart
 * form data; false for any other body, type, or a NULL one. */
bool parse_one_click(const char *ctype, const char *body, size_t len);

#endif
