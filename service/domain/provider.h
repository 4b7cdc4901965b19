/*
 * provider: inbound email-provider events become suppressions.
 *
 * The rules, for every provider alike (the parsers in service/evparse.c
 * say which event is which):
 *   - a signed timestamp more than LIMIT_EVENT_TOLERANCE_SECONDS from our
 *     clock, either way, is refused (provider_fresh): a captured request
 *     cannot be replayed later;
 *   - each event is taken in once per provider, by keyed hash of the
 *     provider's event id (FC_HASH_EVENT); a replay changes nothing;
 *   - a hard bounce, complaint or unsubscribe becomes a suppression of the
 *     keyed hash of the address with that reason, source = the provider,
 *     created_at = the provider's time of the event (ours when it gives none
 *     or claims the future); scope all, except a SendGrid group unsubscribe
 *     whose group the configuration maps to a purpose of the live policy
 *     (scope purpose); an unmapped group suppresses everything, the safe
 *     reading of "stop";
 *   - a soft bounce is counted and suppresses nothing; other event types
 *     are counted as ignored;
 *   - a provider never lifts a suppression.
 * All of one request's events are written in the job's transaction with its
 * audit entry: the batch is taken in whole or not at all.
 */
#ifndef CONSENTD_DOMAIN_PROVIDER_H
#define CONSENTD_DOMAIN_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "service/base/limits.h"
#include "service/domain/txn.h"
#include "service/evparse.h"

#define PROVIDER_IDS_LISTED 32 /* event id hashes named in one audit entry */

struct provsig;

enum provider_kind { PROVIDER_SENDGRID, PROVIDER_MAILGUN, PROVIDER_POSTMARK, PROVIDER_SES, PROVIDER_COUNT };

/* ERR_NOTFOUND for a name outside the table. */
int provider_from_name(const char *name, enum provider_kind *out);
const char *provider_name(enum provider_kind k);
/* Whether consentd.conf configures k (its keys loaded at start); SES is
 * configured by its topics (provider_ses_configured). */
bool provider_configured(const struct provsig *ps, enum provider_kind k);

/* SendGrid unsubscribe groups (asm_group_id) and the purpose each means. */
struct provider_groups {
	size_t n;
	struct {
		char group[EVP_GROUP_CAP];
		char purpose[LIMIT_NAME_BYTES];
	} map[LIMIT_EVENT_GROUPS];
};

struct provider_counts {
	uint64_t events, suppressed, already, replayed, soft, ignored;
	/* The first PROVIDER_IDS_LISTED event ids taken in, as the first 16 hex
	 * digits of their keyed hash, comma-separated: what the audit names. */
	char ids[PROVIDER_IDS_LISTED * 17 + 1];
};

/* 0 when the signed Unix-seconds timestamp is within the tolerance of
 * t->now_us; ERR_UNAUTHENTICATED (with the reason) otherwise. */
int provider_fresh(const struct txn *t, const char *timestamp);

/* What a request offers as proof that it comes from the provider. */
struct provider_proof {
	const char *timestamp;	   /* SendGrid's header, Mailgun's signature.timestamp */
	const char *signature;	   /* SendGrid's header (base64), Mailgun's (hex) */
	const char *token;	   /* Mailgun's signature.token */
	const char *authorization; /* Postmark: the Authorization header */
	const char *body;	   /* SendGrid signs the raw body */
	size_t len;
};

/* 0 when the proof holds for k (signature and, where signed, a fresh
 * timestamp); ERR_UNAUTHENTICATED otherwise, *why = "stale_timestamp" or
 * "bad_signature" for the audit entry. */
int provider_authenticate(const struct txn *t, const struct provsig *ps, enum provider_kind k,
			  const struct provider_proof *p, const char **why);

/* ---- Amazon SES through SNS ----
 *
 * SNS signs each message with the key of a certificate it names by URL
 * (SigningCertURL). The URL is trusted only when it is https://, its host
 * is the configured suffix or ends with it (on a label boundary), and its
 * path ends in .pem; the certificate is fetched over verified TLS from
 * there (service/snscert.c). The topic must be one of the configured ARNs,
 * checked before anything is fetched. SNS keeps the same Timestamp on
 * every retry of a message, for up to an hour by its default policy, so a
 * message is stale after LIMIT_SNS_TOLERANCE_SECONDS (and refused when
 * more than LIMIT_EVENT_TOLERANCE_SECONDS in the future); within that the
 * MessageId dedupe answers replays. */

/* "events": {"ses": {...}} in consentd.conf. */
struct provider_ses {
	size_t n_topics; /* 0: SES not configured (its route answers 404) */
	char topics[LIMIT_SES_TOPICS][EVP_SNS_ARN_CAP];
	char cert_host_suffix[LIMIT_SES_HOST_BYTES];
};

bool provider_ses_configured(const struct provider_ses *cfg);
/* 0 when url may be fetched for this SES configuration: https://, no
 * credentials, a host that is cfg's suffix or ends with it; a certificate
 * URL (cert) also has a path ending in .pem and no query. ERR_UNAUTHENTICATED
 * otherwise. */
int provider_sns_url_ok(const struct provider_ses *cfg, const char *url, bool cert);

/* Fetches the PEM certificate at url (checked already) into *pem, which the
 * caller frees; ERR_UNAVAILABLE when it cannot be had now. */
typedef int (*provider_cert_fetch)(void *ctx, const char *url, char **pem, size_t *len);

/* 0 when m comes from SNS for one of cfg's topics: topic, certificate URL,
 * signature, freshness, in that order. ERR_UNAUTHENTICATED with *why
 * "unknown_topic", "bad_signature" or "stale_timestamp", or ERR_UNAVAILABLE
 * with *why "cert_unavailable" (SNS retries). */
int provider_sns_authenticate(const struct txn *t, const struct provider_ses *cfg, const struct evp_sns *m,
			      provider_cert_fetch fetch, void *fetch_ctx, const char **why);

/* Takes in items[0..n) from provider on t (a job's apply). */
int provider_take_in(struct txn *t, const char *provider, const struct evp_item *items, size_t n,
		     const struct provider_groups *groups, struct provider_counts *out);

#endif
