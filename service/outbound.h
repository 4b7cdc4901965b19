/*
 * outbound: the webhook delivery workers, LIMIT_WEBHOOK_WORKERS threads,
 * the only user of libcurl for webhooks.
 *
 * Every pass a worker reads the due deliveries (service/domain/webhook.h,
 * round robin over the endpoints) on a reader connection, claims one
 * endpoint that no other worker holds, posts that endpoint's due
 * deliveries one at a time as Standard Webhooks requests, oldest event
 * first, and records each outcome with a writer job whose audit entry
 * (webhooks.delivery) says what happened. So at most one request is in
 * flight per endpoint (its order is kept, except that a retry lets later
 * events overtake), at most LIMIT_WEBHOOK_WORKERS in all, and a slow or
 * dead endpoint holds up one worker only: the others go on serving the
 * other endpoints. A delivery that gets no answer within
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
/* Stops the workers after the attempts in flight; accepts NULL. The stats
 * stay readable (an HTTP worker may still be answering /metrics) until
 * outbound_free, which stops them too if need be. */
void outbound_stop(struct outbound *ob);
void outbound_free(struct outbound *ob);
void outbound_stats(struct outbound *ob, struct outbound_stats *out);

#endif
