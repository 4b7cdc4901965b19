/*
 * trail: reading the audit trail as an auditor (and a person, for their own
 * data export) sees it: filtered pages, a streamed export, the stored head
 * and the newest signed checkpoint. Writing the trail is the writer's
 * (service/writer.c); encoding, chaining and verifying it is audit/'s.
 */
#ifndef CONSENTD_DOMAIN_TRAIL_H
#define CONSENTD_DOMAIN_TRAIL_H

#include <stdint.h>

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

/* The stored head (seq 0 and a zero hash when empty). */
int trail_head(struct txn *t, int64_t *seq, uint8_t hash[32]);
/* The newest signed checkpoint; ERR_NOTFOUND when none. */
int trail_checkpoint_latest(struct txn *t, struct audit_checkpoint *out);

#endif
