/*
 * trail: auditor reads of the audit trail. See trail.h.
 */
#include "service/domain/trail.h"

#include "service/base/error.h"

#include <stdlib.h>

struct trail_cursor {
	struct store *st;
	struct store_conn *c;
	struct store_audit_cursor *cur;
};

int trail_each(struct txn *t, const struct store_audit_filter *f, store_audit_cb cb, void *ctx)
{
	return store_audit_each(t->c, f, cb, ctx);
}

int trail_cursor_open(struct store *st, const struct store_audit_filter *f, struct trail_cursor **out)
{
	struct trail_cursor *tc = calloc(1, sizeof *tc);
	int rc;
	*out = NULL;
	if (tc == NULL)
		return err_set(ERR_NOMEM, "out of memory");
	tc->st = st;
	if ((rc = store_conn_get(st, &tc->c)) != 0 || (rc = store_audit_cursor_open(tc->c, f, &tc->cur)) != 0) {
		trail_cursor_close(tc);
		return rc;
	}
	*out = tc;
	return 0;
}

int trail_cursor_next(struct trail_cursor *tc, struct audit_entry *e)
{
	return store_audit_cursor_next(tc->cur, e);
}

void trail_cursor_close(struct trail_cursor *tc)
{
	if (tc == NULL)
		return;
	/* The cursor's statement goes before its connection returns. */
	store_audit_cursor_close(tc->cur);
	if (tc->c != NULL)
		store_conn_put(tc->st, tc->c);
	free(tc);
}

int trail_head(struct txn *t, int64_t *seq, uint8_t hash[32])
{
	return store_audit_head(t->c, seq, hash);
}

int trail_checkpoint_latest(struct txn *t, struct audit_checkpoint *out)
{
	return store_checkpoint_latest(t->c, out);
}
