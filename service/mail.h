/*
 * mail: delivering the mail consentd sends, and the worker that sends what
 * the domain queued (service/domain/mailq.h).
 *
 * A composed message is rendered once (mail_render): RFC 5322 headers, the
 * subject and the sender's name as RFC 2047 encoded words, and a
 * multipart/alternative body of a text/plain and a text/html part, both
 * UTF-8 in base64. It is then delivered one of two ways, by the
 * configuration's "mail" object:
 *   - the development form ("dir"): one file, MAIL_DIR/<id>.eml (mode
 *     0600), written to a temporary name, synced and renamed, so a reader
 *     never sees half a message;
 *   - a relay ("smtp_url"), through libcurl: STARTTLS required by default
 *     (curl refuses to go on without it), the relay's certificate and name
 *     verified (against "ca_file" when given), bounded by
 *     MAIL_SMTP_CONNECT_TIMEOUT_S and MAIL_SMTP_TIMEOUT_S.
 *
 * The worker is one thread. Every MAIL_POLL_MS it reads up to MAIL_BATCH
 * due messages on a reader connection, composes and delivers each, and
 * then records the outcome through the writer (a data write without an
 * audit entry: the change that queued the mail has its entry):
 *
 *   pending --delivered or dropped--> sent
 *   pending --failed, not final-----> pending, not before now + backoff
 *   pending --5xx, or the last try--> failed (never sent; /metrics)
 *
 * The backoff is mail.retry_base_ms doubled per failed attempt, at most
 * MAIL_RETRY_MAX_MS; MAIL_ATTEMPTS_MAX attempts in all. A message is
 * delivered at least once: a crash between delivery and the mark sends it
 * again after the restart, never zero times. No address, token or relay
 * reply text is ever logged (a relay's reply may quote the address): log
 * lines name the outbox id, curl's error and the reply code only.
 */
#ifndef CONSENTD_MAIL_H
#define CONSENTD_MAIL_H

#include "service/config.h"
#include "service/domain/mailq.h"

#include <stdbool.h>
#include <stddef.h>

struct service_env;
struct mail_worker;

/* The whole message m, from address from, dated now: *out (malloc'd, the
 * caller wipes and frees it) and *len. ERR_TOOBIG rather than a cut
 * message. */
int mail_render(const struct mailq_message *m, const char *from, int64_t now_us, char **out, size_t *len);

/* Writes msg as dir/<id>.eml; creates dir (0700) when it is missing. */
int mail_deliver_dir(const char *dir, const char *id, const char *msg, size_t len);

/* Sends msg to the address to through cfg's relay. On failure *permanent
 * says whether the relay refused it for good (a 5xx reply). */
int mail_deliver_smtp(const struct config_mail *cfg, const char *to, const char *msg, size_t len,
		      bool *permanent);

/* The wait before the next try after attempts failed ones. */
int64_t mail_retry_delay_ms(int64_t base_ms, int64_t attempts);

/* Starts the worker on env (borrowed: it must outlive the worker). */
int mail_worker_start(struct mail_worker **out, const struct service_env *env);
/* Stops the thread (after its current round); NULL is fine. The stats stay
 * readable until mail_worker_free, which stops it too if need be: /metrics
 * may read them until the HTTP server has stopped. */
void mail_worker_stop(struct mail_worker *w);
void mail_worker_free(struct mail_worker *w);

/* Counted since start, for /metrics. */
struct mail_stats {
	uint64_t sent, retried, failed, dropped;
};
void mail_worker_stats(struct mail_worker *w, struct mail_stats *out);

#endif
