/*
 * evparse: pure parsers of inbound email-provider events (SendGrid's Event
 * Webhook, Mailgun's webhooks, Postmark's webhooks, Amazon SNS messages and
 * the SES notifications inside them). No keys, no store, no
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

/* ---- Amazon SES through SNS ---- */

#define EVP_SNS_URL_CAP 1024
#define EVP_SNS_ARN_CAP 256
#define EVP_SNS_SIG_CAP 1400 /* base64 of an RSA-8192 signature */

enum evp_sns_type { EVP_SNS_NOTIFICATION, EVP_SNS_SUBSCRIBE, EVP_SNS_UNSUBSCRIBE };

/* One SNS message (the HTTP body SNS posts). canonical is the string SNS
 * signed, built from the members its Type names, in the order AWS
 * documents ("Key\nValue\n" each); message is the Message member (for a
 * Notification from SES: a JSON document holding addresses). Both are
 * owned by the struct: evparse_sns_clear wipes and frees them. */
struct evp_sns {
	enum evp_sns_type type;
	char message_id[LIMIT_EVENT_ID_BYTES];
	char topic_arn[EVP_SNS_ARN_CAP];
	char timestamp[48];
	int64_t time_us; /* Timestamp: when SNS published the message */
	int version;	 /* SignatureVersion: 1 (SHA1withRSA) or 2 (SHA256withRSA) */
	char signature[EVP_SNS_SIG_CAP];
	char cert_url[EVP_SNS_URL_CAP];	     /* SigningCertURL */
	char subscribe_url[EVP_SNS_URL_CAP]; /* SubscribeURL of a (Un)SubscriptionConfirmation, else "" */
	char *message;
	size_t message_len;
	char *canonical;
	size_t canonical_len;
};

/* Parses an SNS message; on success *out holds it (evparse_sns_clear it),
 * on failure nothing is held. */
int evparse_sns(const char *body, size_t len, struct evp_sns *out);
void evparse_sns_clear(struct evp_sns *s);
/* The SES notification in an SNS Notification's Message ("notificationType"
 * or, from a configuration set's event destination, "eventType"): one item
 * per recipient of a Bounce (Permanent suppresses, others are soft), a
 * Complaint (a "not-spam" feedback is ignored) or a Subscription event that
 * unsubscribes from all topics; anything else is one ignored item. Item ids
 * are message_id "|" the recipient's index, so that each recipient of one
 * notification is taken in once. */
int evparse_ses(const char *message, size_t len, const char *message_id, struct evp_item *items, size_t cap,
		size_t *n);

#endif
