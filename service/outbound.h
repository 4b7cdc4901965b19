/*
 * outbound: the webhook delivery worker, one thread, the only user of
 * libcurl for webhooks.
 *
 * Every pass it reads the due deliveries (service/domain/webhook.h) on a
 * reader connection, posts each one as a Standard Webhooks request, and
 * records the outcome with a writer job (a pure data write, no audit
 * entry). Deliveries are sent one at a time, so at most one request is in
 * flight per endpoint (and in all); a delivery that gets no answer within
 * LIMIT_WEBHOOK_TIMEOUT_SECONDS is retried. Since the outcome is recorded
 * only after the request, a crash in between sends the event again: at
 * least once, never lost, and the same webhook-id lets a subscriber
 * dedupe.
 *
 * The guard against server-side request forgery: https only (http only on
 * loopback with allow_private_targets), TLS peer and host verified, no
 * redirects, no proxy from the environment, and every address curl is about
 * to connect to (after resolution, at every connection) checked by
 * CURLOPT_OPENSOCKETFUNCTION: loopback, private, link-local and reserved
 * addresses are refused unless allow_private_targets.
 */
#ifndef CONSENTD_OUTBOUND_H
#define CONSENTD_OUTBOUND_H

#include <stdint.h>

struct service_env;
struct outbound;

struct outbound_stats {
	uint64_t delivered, retried, dead, gone, refused;
	int64_t pending;   /* deliveries waiting, at the last pass */
	int64_t oldest_us; /* creation time of the oldest of them, 0 when none */
};

int outbound_start(struct outbound **out, const struct service_env *env);
/* Stops the thread after the attempt in flight; accepts NULL. */
void outbound_stop(struct outbound *ob);
void outbound_stats(struct outbound *ob, struct outbound_stats *out);

#endif
