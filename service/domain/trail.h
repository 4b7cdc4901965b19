/*
 * trail: reading the audit trail as an auditor (and a person, for their own
 * data export) sees it: filtered pages, a streamed export, the stored head
 * and the newest signed checkpoint. Writing the trail is the writer's
 * (service/writer.c); encoding, chaining and verifying it is audit/'s.
 */
#ifndef CONSENTD_DOMAIN_TRAIL_H
#define CONSENTD_DOMAIN_TRAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "service/domain/txn.h"
#include "service/store/store.h"

/* Entries matching f in seq order; cb returning non-zero stops the walk
 * with that code. */
int trail_each(struct txn *t, const struct store_audit_filter *f, store_audit_cb cb, void *ctx);

/* A streamed read with its own reader connection from st's pool, so it may
 * outlive the request that opened it (an export sent after its commit). */
struct trail_cursor;
int trail_cursor_open(struct store *st, const struct store_audit_filter *f, struct trail_cursor **out);
/* 1 and *e filled, 0 at the end, or a negative error. */
int trail_cursor_next(struct trail_cursor *tc, struct audit_entry *e);
void trail_cursor_close(struct trail_cursor *tc); /* accepts NULL */

/* Entries as lines: the one export stream (GET /v1/audit/export, the
 * console's export and the evidence pack's audit.ndjson). NDJSON lines end
 * in a newline; CSV starts with its header row. A trail_lines owns a
 * trail_cursor, so it may outlive the request (it is the reply's body). */
enum trail_format { TRAIL_NDJSON, TRAIL_CSV };
struct trail_lines;
/* Entries matching f; reason, when not NULL, keeps only the entries with
 * that reason (copied; a filter the store does not index). */
int trail_lines_open(struct store *st, const struct store_audit_filter *f, enum trail_format fmt,
		     const char *reason, struct trail_lines **out);
/* The next line: 1 with *line and *len (borrowed until the next call), 0 at
 * the end, or a negative error. */
int trail_lines_next(struct trail_lines *l, const char **line, size_t *len);
/* The lines as an http reader (see http.h) and its free function: -1 on an
 * error, logged, so a body cut short can never pass for a whole export (the
 * chunked body lacks its last chunk). */
ssize_t trail_lines_read(void *lines, char *buf, size_t cap);
void trail_lines_free(void *lines); /* accepts NULL */

/* The stored head (seq 0 and a zero hash when empty). */
int trail_head(struct txn *t, int64_t *seq, uint8_t hash[32]);
/* The newest signed checkpoint; ERR_NOTFOUND when none. */
int trail_checkpoint_latest(struct txn *t, struct audit_checkpoint *out);

/* ---- the auditor console's reads ---- */

/* The charts' statistics over entries at or after since_us (see
 * store_console_stats). */
int trail_stats(struct txn *t, enum store_console_stat which, int64_t since_us, store_console_stat_cb cb,
		void *ctx);

/* Entry seq into *e and whether it is linked: its stored hash is the hash
 * of its fields and its prev_hash is the hash of entry seq - 1 (zero for the
 * first). ERR_NOTFOUND when there is no entry seq. */
int trail_entry(struct txn *t, int64_t seq, struct audit_entry *e, bool *linked);

/* The contacts an email address or a phone number belongs to (exactly one
 * of email and phone is non-NULL): the value is normalised and turned into
 * its blind index under t->keys, and the index is wiped after the lookup.
 * An email matches at most one contact; a phone may be shared, so up to cap
 * ids are given, *more saying whether there were others. ERR_INVALID when
 * the value does not normalise. */
int trail_find_contacts(struct txn *t, const char *email, const char *phone, char (*ids)[STORE_ID_CAP],
			size_t cap, size_t *n, bool *more);

/* A person's campaign reach: cb gets each allowed outreach filter entry
 * (oldest first) whose release holds contact_id, among the first
 * CONSOLE_CAMPAIGNS_MAX filter entries; *more says that the scan stopped
 * at that limit. ERR_INVALID when contact_id is not a contact id. */
int trail_reach_each(struct txn *t, const char *contact_id, store_audit_cb cb, void *ctx, bool *more);

/* The checkpoint an evidence pack is built on: the newest stored one,
 * whose signature verifies under the public key at pubkey_path.
 * ERR_NOTFOUND when none has been signed yet. */
int trail_evidence_checkpoint(struct txn *t, const char *pubkey_path, struct audit_checkpoint *out);
/* The same on a reader connection of its own from st's pool, for a thread
 * that holds none (the evidence pack is built after the writer's batch,
 * off the HTTP thread). */
int trail_evidence_checkpoint_on(struct store *st, const char *pubkey_path, struct audit_checkpoint *out);

#endif
