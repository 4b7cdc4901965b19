/*
 * mail: delivering the mail consentd sends, and the worker that sends what
 * the domain queued (service/domain/mailq.h).
 *
 * Delivery today is the development form: each message becomes one file,
 * MAIL_DIR/<id>.eml (RFC 5322, mode 0600), written to a temporary name,
 * synced and renamed, so a reader never sees half a message. SMTP through
 * a relay is not built yet (config.c refuses its keys).
 *
 * The worker is one thread. Every MAIL_POLL_MS it reads up to MAIL_BATCH
 * queued messages on a reader connection, composes and delivers each, and
 * then marks it sent through the writer (a data write without an audit
 * entry: the change that queued the mail has its entry). A message is
 * delivered at least once: a crash between delivery and the mark sends it
 * again after the restart, never zero times. A failed delivery is retried
 * on the next round, up to MAIL_ATTEMPTS_MAX times. No address or token
 * is ever logged: log lines name the outbox id only.
 */
#ifndef CONSENTD_MAIL_H
#define CONSENTD_MAIL_H

#include "service/domain/mailq.h"

struct service_env;
struct mail_worker;

/* Writes m as dir/<m->id>.eml; creates dir (0700) when it is missing. */
int mail_deliver_dir(const char *dir, const struct mailq_message *m, int64_t now_us);

/* Starts the worker on env (borrowed: it must outlive the worker). */
int mail_worker_start(struct mail_worker **out, const struct service_env *env);
/* Stops the thread (after its current round) and frees; NULL is fine. */
void mail_worker_stop(struct mail_worker *w);

#endif
