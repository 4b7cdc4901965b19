/*
 * evparse: pure parsers of inbound email-provider events (SendGrid's Event
 * Webhook, Mailgun's webhooks, Postmark's webhooks). No keys, no store, no
 * I/O: each turns a raw body into evp_items and is fuzzed on its own
 * (tests/fuzz/fuzz_events_*.c).
 *
 * Each event is classified:
 *   EVP_SUPPRESS  a hard bounce, a complaint or an unsubscribe: it becomes a
 *                 suppression with reason bounce | complaint | unsubscribe;
 *   EVP_SOFT      a soft bounce, a block or a deferral: counted, never
 *                 suppressed (the address may work tomorrow);
 *   EVP_IGNORED   any other event type (delivered, open, click, ...), and
 *                 a provider's reactivation: consentd never lifts a
 *                 suppression because a provider says so.
 *
 * A body is accepted whole or refused whole (ERR_INVALID, ERR_TOOBIG for
 * more than LIMIT_EVENT_BATCH events), so a refused request changes nothing.
 * A suppressing or soft event needs a valid email address and the
 * provider's event id (the dedupe key); an ignored one needs neither.
 * Items hold the address as received (personal data): callers wipe them.
 */
#ifndef CONSENTD_EVPARSE_H
#define CONSENTD_EVPARSE_H

#include <stddef.h>
#include <stdint.h>

#include "service/base/limits.h"

enum evp_kind { EVP_SUPPRESS, EVP_SOFT, EVP_IGNORED };

#define EVP_EMAIL_CAP 256
#define EVP_GROUP_CAP 24

struct evp_item {
	enum evp_kind kind;
	const char *reason;	       /* static: bounce, complaint, unsubscribe; "" unless EVP_SUPPRESS */
	char email[EVP_EMAIL_CAP];     /* as received; "" for ignored events */
	char group[EVP_GROUP_CAP];     /* SendGrid asm_group_id of a group_unsubscribe, else "" */
	char id[LIMIT_EVENT_ID_BYTES]; /* dedupe key */
	int64_t time_us;	       /* the provider's time of the event; 0 when not given */
};

/* What Mailgun signs, from the body's "signature" object. */
struct evp_mailgun_sig {
	char timestamp[24];
	char token[LIMIT_EVENT_ID_BYTES];
	char signature[72];
};

/* A SendGrid batch: a JSON array of event objects, into items[0..*n). */
int evparse_sendgrid(const char *body, size_t len, struct evp_item *items, size_t cap, size_t *n);
/* One Mailgun event: {"signature": {...}, "event-data": {...}}. The dedupe
 * key is the signature's token. */
int evparse_mailgun(const char *body, size_t len, struct evp_item *item, struct evp_mailgun_sig *sig);
/* One Postmark event (RecordType Bounce, SpamComplaint, SubscriptionChange,
 * others ignored). The dedupe key is MessageID|time. */
int evparse_postmark(const char *body, size_t len, struct evp_item *item);

#endif
