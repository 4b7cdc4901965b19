/*
 * mailq: the mail consentd sends as a consequence of a change, as a rule of
 * the domain. A change that causes mail queues it (mailq_*_queue) inside
 * its own job, so the message is durable exactly when the change is; the
 * mail worker (service/mail.c) composes each queued message after the
 * commit (mailq_compose) and delivers it.
 *
 * Kinds: "manage_link" (a manage link, mailed to the person: link.h),
 * "confirm_consent" (a double opt-in confirmation: optin.h; its link_id
 * names the confirmation), and "request_received" / "request_completed"
 * (a data-subject request: request.h; its link_id names the request, and
 * the mail carries no link). The text is in the row's language (en, zh-CN),
 * as a text and an HTML part, with the organisation's details in both.
 *
 * Invariants: the outbox holds ids only, never an address or a token; the
 * address is opened from the contact's sealed fields and the link token
 * recomputed from the link (or confirmation) row only when the message is
 * composed, and a message for a link that is revoked, expired or used, a
 * confirmation a later choice superseded, a contact that is erased, or a
 * kind this consentd does not know, is dropped rather than sent.
 */
#ifndef CONSENTD_DOMAIN_MAILQ_H
#define CONSENTD_DOMAIN_MAILQ_H

#include "service/base/limits.h"
#include "service/domain/txn.h"
#include "service/store/store.h"

struct mailq_message {
	char id[STORE_ID_CAP]; /* the outbox row: the .eml name, Message-ID */
	char link_id[STORE_ID_CAP];
	char lang[8]; /* "en" | "zh-CN": the language it is written in */
	char to[MAIL_ADDRESS_CAP];
	char from_name[256]; /* the organisation's name, "" when none */
	char subject[256];
	char body[MAIL_BODY_CAP]; /* text/plain, UTF-8, CRLF line ends */
	char html[MAIL_HTML_CAP]; /* text/html, UTF-8, every value escaped */
};

/* On the writer, in the job that made link l: queues the mail that hands
 * l's token to the contact's own address, written in lang ("en",
 * "zh-CN"; NULL or another value: English). */
int mailq_manage_link_queue(struct txn *t, const struct store_link *l, const char *lang);

/* Who the mail speaks for, from the configuration ("" leaves one out). */
struct mailq_org {
	const char *name, *postal_address, *privacy_policy_url, *contact_email;
};

/* On a reader: the message for queued row m, its links under public_url,
 * signed with org's details.
 * 0 with *drop NULL: send out; 0 with *drop set: do not send, for that
 * reason (revoked, expired, used, superseded, erased, no_email, unknown_link,
 * unknown_kind, bad_address);
 * a negative code when the store or the keys could not answer (try again
 * later). out->body and out->html hold a live token: wipe out after use. */
int mailq_compose(struct txn *t, const struct store_mail *m, const char *public_url,
		  const struct mailq_org *org, struct mailq_message *out, const char **drop);

#endif
