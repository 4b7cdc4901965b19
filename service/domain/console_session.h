/*
 * console_session: the rules of an auditor's console session, on a txn.
 *
 * A session row (store_console_session) is keyed by SHA-256 of the random
 * id in the browser's cookie; it holds SHA-256 of the token that opened it,
 * the principal's name and role, the session's CSRF value and two times.
 * This module decides what the row means: a session is alive while it was
 * used within CONSOLE_IDLE_SECONDS and began within
 * CONSOLE_ABSOLUTE_SECONDS (console_session_alive); an
 * ended one reads as ERR_NOTFOUND, exactly like a row that does not exist,
 * so no caller can use a session past its lifetime by forgetting a check.
 * Whether the token behind a session still exists (revocation) is the
 * principal cache's answer (auth_principal), asked by the handler.
 *
 * The writes run in a job's apply on the writer's connection, so the
 * session's start, use and end commit with the audit entry that records
 * them, or not at all.
 */
#ifndef CONSENTD_DOMAIN_CONSOLE_SESSION_H
#define CONSENTD_DOMAIN_CONSOLE_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "service/domain/txn.h"
#include "service/store/store.h"

/* Whether s is still alive at now_us: used within the idle limit, begun
 * within the absolute one, and not begun in the future. */
bool console_session_alive(const struct store_console_session *s, int64_t now_us);

/* The live session whose id hashes to id_hash, at t->now_us; ERR_NOTFOUND
 * when there is none or it ended by time. */
int console_session_load(struct txn *t, const uint8_t id_hash[32], struct store_console_session *out);

/* On the writer: sweeps the sessions that ended by time (so the table holds
 * only live ones), then stores s. */
int console_session_start(struct txn *t, const struct store_console_session *s);
/* On the writer: records a use at t->now_us. */
int console_session_touch(struct txn *t, const uint8_t id_hash[32]);
/* On the writer: ends the session (sign-out, or its token was revoked). */
int console_session_end(struct txn *t, const uint8_t id_hash[32]);

#endif
