/*
 * webhook: the rules of outbound webhook endpoints and their deliveries.
 *
 * An endpoint is a target URL, the event types it subscribes to, a
 * description and a policy role (the role its payloads are meant for). Its
 * signing secret ("whsec_..." , Standard Webhooks) is made here, shown to
 * the admin once, and stored only sealed under the endpoint's own data key
 * (wrapped by the keyring, like a contact's). Signing happens here too, so
 * the key never leaves this module.
 *
 * Targets: https:// only; a literal address on loopback, private, link-local
 * or otherwise non-public ranges is refused at creation, and the delivery
 * worker checks every address it connects to (webhook_addr_public), unless
 * allow_private_targets, which also admits http:// on loopback.
 *
 * A delivery's life:
 *
 *   pending ──2xx──> delivered
 *      │ ──other status, network error, refused address──> pending, next
 *      │        attempt after base * 2^(attempts-1) (jitter 50..150%, at
 *      │        most LIMIT_WEBHOOK_MAX_BACKOFF_SECONDS) ... until max_age
 *      │        after the event: failed (dead letter)
 *      └──410──> failed; the endpoint is disabled (its other pending too)
 *   failed / delivered ──POST .../retry──> pending, due now
 */
#ifndef CONSENTD_DOMAIN_WEBHOOK_H
#define CONSENTD_DOMAIN_WEBHOOK_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "service/domain/txn.h"
#include "service/store/store.h"

#define WEBHOOK_SECRET_CAP 96
#define WEBHOOK_SIG_CAP 64

/* The delivery settings ("webhooks" in consentd.conf). */
struct webhook_settings {
	bool allow_private_targets;
	int64_t retry_base_ms;	 /* first retry after about this long */
	int64_t max_age_seconds; /* retried until the event is this old: 3 days */
};

/* What a POST /v1/webhooks asks for, checked by webhook_parse. */
struct webhook_new {
	char url[STORE_URL_CAP];
	char events[STORE_TEXT_CAP];
	char description[STORE_TEXT_CAP];
	char role[STORE_NAME_CAP];
};

/* Checks a request body; ERR_INVALID with a message naming the member. */
int webhook_parse(const struct txn *t, const struct webhook_settings *ws, json_t *body,
		  struct webhook_new *out);
/* Checks a target URL (scheme, host, literal addresses). */
int webhook_check_url(const char *url, bool allow_private);
/* Whether an address (AF_INET: 4 bytes, AF_INET6: 16) is public: not
 * loopback, private, link-local, shared, multicast, unspecified or
 * reserved (IPv4-mapped IPv6 is judged as IPv4). */
bool webhook_addr_public(int family, const uint8_t *addr);
bool webhook_addr_loopback(int family, const uint8_t *addr);

/* Creates the endpoint (a writer job's txn): *out is what was stored,
 * secret the signing secret, shown once. */
int webhook_create(struct txn *t, const struct webhook_new *in, struct store_webhook *out,
		   char secret[WEBHOOK_SECRET_CAP]);
int webhook_get(struct txn *t, const char *id, struct store_webhook *out);
int webhook_delete(struct txn *t, const char *id);
/* The endpoints as a JSON array (never their secrets). */
int webhook_list_json(struct txn *t, json_t **out);
json_t *webhook_to_json(const struct store_webhook *w);
/* The endpoint's latest deliveries as a JSON array (no bodies). */
int webhook_deliveries_json(struct txn *t, const char *id, json_t **out);
int webhook_retry(struct txn *t, const char *id, const char *delivery_id);

/* ---- the delivery worker's side (service/outbound.c) ---- */

int webhook_due(struct txn *t, int limit, store_delivery_cb cb, void *ctx);
/* The body one endpoint gets for delivery d (which carries the event's
 * body and sealed personal values): the stored body, plus the personal
 * values its role may see for the event's purpose under t's policy, unless
 * the contact was erased. *out is the caller's to free. */
int webhook_body(struct txn *t, const struct store_webhook *w, const struct store_delivery *d, char **out);
/* The webhook-signature header for one attempt. */
int webhook_sign(struct txn *t, const struct store_webhook *w, const char *id, int64_t timestamp,
		 const char *body, char out[WEBHOOK_SIG_CAP]);
enum webhook_outcome { WEBHOOK_DELIVERED, WEBHOOK_RETRY, WEBHOOK_DEAD, WEBHOOK_GONE };
/* Records one attempt: status is the HTTP status (0 when none came back),
 * error what went wrong ("" on success). d is updated. */
int webhook_attempt_done(struct txn *t, const struct webhook_settings *ws, struct store_delivery *d,
			 long status, const char *error, enum webhook_outcome *out);
int webhook_queue_stats(struct txn *t, int64_t *pending, int64_t *oldest_us);

#endif
