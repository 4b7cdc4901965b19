/*
 * router: maps a method and a decoded path to a route, and checks path
 * parameters before any handler sees them. Pure: no I/O, fuzzable.
 *
 * Each handler file exports a table of routes ending with an all-zero entry;
 * router.c lists the tables. Patterns use {id} (a contact id: 22 base64url
 * characters), {name} (a purpose or channel name: [a-z][a-z0-9_]*) and
 * {token} (1 to ROUTER_PARAM_CAP - 1 base64url or '.' characters, not
 * starting with '.' and without ".."; the handler checks the signature, so
 * a malformed token gets the same refusal as a forged one).
 */
#ifndef CONSENTD_ROUTER_H
#define CONSENTD_ROUTER_H

#include <stdbool.h>
#include <stdint.h>

struct reqctx;
struct stream_ops;

struct route {
	const char *method;
	const char *pattern;
	/* 0 when the reply is sent, prepared or on its way (committed,
	 * deferred); otherwise an error code that app.c renders once as a
	 * problem (app_fail). */
	int (*handler)(struct reqctx *ctx);
	const struct stream_ops *stream; /* bulk body, consumed in chunks */
	bool public;			 /* no bearer token (health, customer pages) */
	uint64_t body_limit;		 /* 0: LIMIT_BODY_BYTES */
	const char *action;		 /* audit action name, for documentation */
};

#define ROUTER_PARAM_CAP 128
#define ROUTER_ALLOW_CAP 64

extern const struct route ops_routes[];
extern const struct route contact_routes[];
extern const struct route consent_routes[];
extern const struct route audit_routes[];	/* h_audit.c */
extern const struct route suppression_routes[]; /* h_suppressions.c */
extern const struct route outreach_routes[];	/* h_outreach.c */
extern const struct route import_routes[];	/* h_import.c */
extern const struct route customer_routes[];	/* h_customer.c */
extern const struct route confirm_routes[];	/* h_confirm.c */
extern const struct route console_routes[];	/* h_console.c */
extern const struct route event_routes[];	/* h_events.c */
extern const struct route webhook_routes[];	/* h_webhooks.c */
extern const struct route request_routes[];	/* h_requests.c */
extern const struct route receipt_routes[];	/* h_receipts.c */

/* 0 and *out on a match; ERR_NOTFOUND when no pattern matches the path or a
 * parameter is malformed; ERR_UNSUPPORTED when the path matches with another
 * method (allow then lists the methods, comma-separated). A GET route also
 * answers HEAD (RFC 9110), and HEAD is in allow wherever GET is. */
int router_match(const char *method, const char *path, const struct route **out,
		 char params[2][ROUTER_PARAM_CAP], char allow[ROUTER_ALLOW_CAP]);

#endif
