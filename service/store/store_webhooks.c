/*
 * store_webhooks: outbound webhook endpoints, the transactional outbox and
 * its deliveries (tables webhook_endpoint, outbox_event, webhook_delivery).
 *
 * An event row and its delivery rows are written in the caller's
 * transaction, which is the writer's batch that holds the change and its
 * audit entry: a change is never sent without having committed, and never
 * committed without its deliveries queued. Bodies are thin (ids, names,
 * statuses, versions); endpoint secrets are stored sealed only.
 */
#include "service/store/store_internal.h"

#include "service/base/error.h"

#include <string.h>

static const char SQL_WH_INSERT[] =
	"INSERT INTO webhook_endpoint (id, url, events, description, role, key_version, wrapped_key,"
	" secret, created_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
static const char SQL_WH_COLS[] =
	"SELECT id, url, events, description, role, key_version, wrapped_key, secret, created_us,"
	" coalesce(disabled_us, 0), disabled_reason FROM webhook_endpoint WHERE deleted_us IS NULL AND id = ?1";
static const char SQL_WH_EACH[] =
	"SELECT id, url, events, description, role, key_version, wrapped_key, secret, created_us,"
	" coalesce(disabled_us, 0), disabled_reason FROM webhook_endpoint WHERE deleted_us IS NULL"
	" ORDER BY created_us, id";
static const char SQL_WH_DELETE[] =
	"UPDATE webhook_endpoint SET deleted_us = ?2 WHERE id = ?1 AND deleted_us IS NULL";
static const char SQL_WH_DISABLE[] =
	"UPDATE webhook_endpoint SET disabled_us = ?2, disabled_reason = ?3 WHERE id = ?1 AND deleted_us IS NULL";
static const char SQL_WH_FAIL_PENDING[] =
	"UPDATE webhook_delivery SET state = 'failed', last_error = ?2 WHERE endpoint_id = ?1 AND state = 'pending'";
static const char SQL_WH_SUBSCRIBERS[] =
	"SELECT count(*) FROM webhook_endpoint WHERE deleted_us IS NULL AND disabled_us IS NULL"
	" AND instr(',' || events || ',', ',' || ?1 || ',') > 0";
static const char SQL_OUTBOX_VERSION[] =
	"SELECT coalesce(max(version), 0) + 1 FROM outbox_event WHERE contact_id = ?1";
static const char SQL_OUTBOX_INSERT[] =
	"INSERT INTO outbox_event (type, contact_id, version, body, personal, created_us)"
	" VALUES (?1, ?2, ?3, ?4, ?6, ?5)";
static const char SQL_OUTBOX_FORGET[] =
	"UPDATE outbox_event SET personal = NULL WHERE contact_id = ?1 AND personal IS NOT NULL";
/* The delivery id is the webhook-id header: the same on every attempt. */
static const char SQL_OUTBOX_FANOUT[] =
	"INSERT INTO webhook_delivery (id, endpoint_id, event_seq, state, attempts, created_us, next_us)"
	" SELECT 'msg_' || lower(hex(randomblob(12))), id, ?1, 'pending', 0, ?3, ?3 FROM webhook_endpoint"
	" WHERE deleted_us IS NULL AND disabled_us IS NULL AND instr(',' || events || ',', ',' || ?2 || ',') > 0";
static const char SQL_DELIVERIES_EACH[] =
	"SELECT d.id, d.endpoint_id, e.type, d.state, d.attempts, d.created_us, d.next_us,"
	" coalesce(d.last_us, 0), d.last_status, d.last_error, e.body, e.contact_id, NULL FROM webhook_delivery d"
	" JOIN outbox_event e ON e.seq = d.event_seq WHERE d.endpoint_id = ?1"
	" ORDER BY d.event_seq DESC LIMIT ?2";
static const char SQL_DELIVERIES_DUE[] =
	"SELECT d.id, d.endpoint_id, e.type, d.state, d.attempts, d.created_us, d.next_us,"
	" coalesce(d.last_us, 0), d.last_status, d.last_error, e.body, e.contact_id, e.personal"
	" FROM webhook_delivery d JOIN outbox_event e ON e.seq = d.event_seq JOIN webhook_endpoint w ON w.id = d.endpoint_id"
	" WHERE d.state = 'pending' AND d.next_us <= ?1 AND w.deleted_us IS NULL AND w.disabled_us IS NULL"
	" ORDER BY row_number() OVER (PARTITION BY d.endpoint_id ORDER BY d.event_seq), d.event_seq LIMIT ?2";
static const char SQL_DELIVERY_RECORD[] =
	"UPDATE webhook_delivery SET state = ?2, attempts = ?3, next_us = ?4, last_us = ?5, last_status = ?6,"
	" last_error = ?7 WHERE id = ?1";
static const char SQL_DELIVERY_RETRY[] =
	"UPDATE webhook_delivery SET state = 'pending', next_us = ?3 WHERE endpoint_id = ?1 AND id = ?2";
/* An endpoint's claim (migration 13): taken when free, run out, or this
 * owner's already; the UPDATE's WHERE is the check. */
static const char SQL_WH_CLAIM[] =
	"UPDATE webhook_endpoint SET claimed_by = ?2, claim_until = ?4 WHERE id = ?1 AND deleted_us IS NULL"
	" AND (claim_until < ?3 OR claimed_by = ?2)";
static const char SQL_WH_EXISTS[] =
	"SELECT count(*) FROM webhook_endpoint WHERE id = ?1 AND deleted_us IS NULL";
static const char SQL_WH_RELEASE[] =
	"UPDATE webhook_endpoint SET claimed_by = '', claim_until = 0 WHERE id = ?1 AND claimed_by = ?2";
static const char SQL_OUTBOX_STATS[] =
	"SELECT count(*), coalesce(min(created_us), 0) FROM webhook_delivery WHERE state = 'pending'";

int sqlite_webhook_insert(struct store_conn *c, const struct store_webhook *w)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_WH_INSERT);
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, w->id);
	store_bind_text(s, 2, w->url);
	store_bind_text(s, 3, w->events);
	store_bind_text(s, 4, w->description);
	store_bind_text(s, 5, w->role);
	sqlite3_bind_int(s, 6, w->key_version);
	sqlite3_bind_blob(s, 7, w->wrapped_key, (int)w->wrapped_len, SQLITE_STATIC);
	sqlite3_bind_blob(s, 8, w->secret, (int)w->secret_len, SQLITE_STATIC);
	sqlite3_bind_int64(s, 9, w->created_us);
	return store_step_done(c, s, "cannot store the webhook endpoint");
}

static void read_webhook(sqlite3_stmt *s, struct store_webhook *w)
{
	memset(w, 0, sizeof *w);
	store_col_text(s, 0, w->id, sizeof w->id);
	store_col_text(s, 1, w->url, sizeof w->url);
	store_col_text(s, 2, w->events, sizeof w->events);
	store_col_text(s, 3, w->description, sizeof w->description);
	store_col_text(s, 4, w->role, sizeof w->role);
	w->key_version = sqlite3_column_int(s, 5);
	w->wrapped_len = store_col_blob(s, 6, w->wrapped_key, sizeof w->wrapped_key);
	w->secret_len = store_col_blob(s, 7, w->secret, sizeof w->secret);
	w->created_us = sqlite3_column_int64(s, 8);
	w->disabled_us = sqlite3_column_int64(s, 9);
	store_col_text(s, 10, w->disabled_reason, sizeof w->disabled_reason);
}

int sqlite_webhook_get(struct store_conn *c, const char *id, struct store_webhook *out)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_WH_COLS);
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, id);
	int rc = sqlite3_step(s), ret = 0;
	if (rc == SQLITE_ROW)
		read_webhook(s, out);
	else if (rc == SQLITE_DONE)
		ret = err_set(ERR_NOTFOUND, "no such webhook endpoint");
	else
		ret = store_db_error(sq_conn(c)->db, rc, "cannot read the webhook endpoint");
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return ret;
}

int sqlite_webhooks_each(struct store_conn *c, store_webhook_cb cb, void *ctx, int64_t *n)
{
	struct store_webhook w;
	int64_t count = 0;
	int rc, ret = 0;
	sqlite3_stmt *s = store_stmt_sql(c, SQL_WH_EACH);
	if (s == NULL)
		return err_code();
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		count++;
		if (cb == NULL)
			continue;
		read_webhook(s, &w);
		if ((ret = cb(ctx, &w)) != 0)
			break;
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = store_db_error(sq_conn(c)->db, rc, "cannot list the webhook endpoints");
	sqlite3_reset(s);
	memset(&w, 0, sizeof w);
	if (n != NULL)
		*n = count;
	return ret;
}

static int fail_pending(struct store_conn *c, const char *id, const char *why)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_WH_FAIL_PENDING);
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, id);
	store_bind_text(s, 2, why);
	return store_step_done(c, s, "cannot fail the pending deliveries");
}

int sqlite_webhook_delete(struct store_conn *c, const char *id, int64_t when_us)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_WH_DELETE);
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, id);
	sqlite3_bind_int64(s, 2, when_us);
	int rc = store_step_done(c, s, "cannot delete the webhook endpoint");
	if (rc != 0)
		return rc;
	if (sqlite3_changes(sq_conn(c)->db) == 0)
		return err_set(ERR_NOTFOUND, "no such webhook endpoint");
	return fail_pending(c, id, "endpoint deleted");
}

int sqlite_webhook_disable(struct store_conn *c, const char *id, int64_t when_us, const char *reason)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_WH_DISABLE);
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, id);
	sqlite3_bind_int64(s, 2, when_us);
	store_bind_text(s, 3, reason);
	int rc = store_step_done(c, s, "cannot disable the webhook endpoint");
	if (rc != 0)
		return rc;
	if (sqlite3_changes(sq_conn(c)->db) == 0)
		return err_set(ERR_NOTFOUND, "no such webhook endpoint");
	return fail_pending(c, id, reason);
}

static int one_int(struct store_conn *c, const char *sql, const char *text, int64_t *out, const char *what)
{
	sqlite3_stmt *s = store_stmt_sql(c, sql);
	if (s == NULL)
		return err_code();
	if (text != NULL)
		store_bind_text(s, 1, text);
	int rc = sqlite3_step(s), ret = 0;
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(s, 0);
	else
		ret = store_db_error(sq_conn(c)->db, rc, what);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return ret;
}

int sqlite_webhook_subscribers(struct store_conn *c, const char *type, int64_t *n)
{
	return one_int(c, SQL_WH_SUBSCRIBERS, type, n, "cannot count the webhook subscribers");
}

int sqlite_outbox_next_version(struct store_conn *c, const char *contact_id, int64_t *version)
{
	return one_int(c, SQL_OUTBOX_VERSION, contact_id, version, "cannot read the contact's event version");
}

int sqlite_outbox_forget_personal(struct store_conn *c, const char *contact_id)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_OUTBOX_FORGET);
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, contact_id);
	return store_step_done(c, s, "cannot drop the outbox's personal values");
}

int sqlite_outbox_add(struct store_conn *c, const char *type, const char *contact_id, int64_t version,
		      const char *body, const uint8_t *personal, size_t personal_len, int64_t created_us,
		      int64_t *queued)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_OUTBOX_INSERT);
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, type);
	store_bind_text(s, 2, contact_id);
	sqlite3_bind_int64(s, 3, version);
	store_bind_text(s, 4, body);
	sqlite3_bind_int64(s, 5, created_us);
	store_bind_blob_or_null(s, 6, personal, personal_len);
	int rc = store_step_done(c, s, "cannot append to the outbox");
	if (rc != 0)
		return rc;
	int64_t seq = sqlite3_last_insert_rowid(sq_conn(c)->db);
	if ((s = store_stmt_sql(c, SQL_OUTBOX_FANOUT)) == NULL)
		return err_code();
	sqlite3_bind_int64(s, 1, seq);
	store_bind_text(s, 2, type);
	sqlite3_bind_int64(s, 3, created_us);
	if ((rc = store_step_done(c, s, "cannot queue the webhook deliveries")) != 0)
		return rc;
	if (queued != NULL)
		*queued = sqlite3_changes(sq_conn(c)->db);
	return 0;
}

static int each_delivery(struct store_conn *c, sqlite3_stmt *s, store_delivery_cb cb, void *ctx)
{
	struct store_delivery d;
	int rc, ret = 0;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		memset(&d, 0, sizeof d);
		store_col_text(s, 0, d.id, sizeof d.id);
		store_col_text(s, 1, d.endpoint_id, sizeof d.endpoint_id);
		store_col_text(s, 2, d.type, sizeof d.type);
		store_col_text(s, 3, d.state, sizeof d.state);
		d.attempts = sqlite3_column_int64(s, 4);
		d.created_us = sqlite3_column_int64(s, 5);
		d.next_us = sqlite3_column_int64(s, 6);
		d.last_us = sqlite3_column_int64(s, 7);
		d.last_status = sqlite3_column_int64(s, 8);
		store_col_text(s, 9, d.last_error, sizeof d.last_error);
		d.body = (const char *)sqlite3_column_text(s, 10);
		store_col_text(s, 11, d.contact_id, sizeof d.contact_id);
		d.personal = sqlite3_column_blob(s, 12);
		d.personal_len = (size_t)sqlite3_column_bytes(s, 12);
		if ((ret = cb(ctx, &d)) != 0)
			break;
	}
	if (ret == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
		ret = store_db_error(sq_conn(c)->db, rc, "cannot list the deliveries");
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return ret;
}

int sqlite_deliveries_each(struct store_conn *c, const char *endpoint_id, int limit, store_delivery_cb cb,
			   void *ctx)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_DELIVERIES_EACH);
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, endpoint_id);
	sqlite3_bind_int(s, 2, limit);
	return each_delivery(c, s, cb, ctx);
}

int sqlite_deliveries_due(struct store_conn *c, int64_t now_us, int limit, store_delivery_cb cb, void *ctx)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_DELIVERIES_DUE);
	if (s == NULL)
		return err_code();
	sqlite3_bind_int64(s, 1, now_us);
	sqlite3_bind_int(s, 2, limit);
	return each_delivery(c, s, cb, ctx);
}

int sqlite_delivery_record(struct store_conn *c, const struct store_delivery *d)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_DELIVERY_RECORD);
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, d->id);
	store_bind_text(s, 2, d->state);
	sqlite3_bind_int64(s, 3, d->attempts);
	sqlite3_bind_int64(s, 4, d->next_us);
	sqlite3_bind_int64(s, 5, d->last_us);
	sqlite3_bind_int64(s, 6, d->last_status);
	store_bind_text(s, 7, d->last_error);
	return store_step_done(c, s, "cannot record the delivery attempt");
}

int sqlite_delivery_retry(struct store_conn *c, const char *endpoint_id, const char *id, int64_t now_us)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_DELIVERY_RETRY);
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, endpoint_id);
	store_bind_text(s, 2, id);
	sqlite3_bind_int64(s, 3, now_us);
	int rc = store_step_done(c, s, "cannot queue the delivery again");
	if (rc == 0 && sqlite3_changes(sq_conn(c)->db) == 0)
		rc = err_set(ERR_NOTFOUND, "this endpoint has no such delivery");
	return rc;
}

int sqlite_outbox_stats(struct store_conn *c, int64_t *pending, int64_t *oldest_us)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_OUTBOX_STATS);
	if (s == NULL)
		return err_code();
	int rc = sqlite3_step(s), ret = 0;
	if (rc == SQLITE_ROW) {
		*pending = sqlite3_column_int64(s, 0);
		*oldest_us = sqlite3_column_int64(s, 1);
	} else {
		ret = store_db_error(sq_conn(c)->db, rc, "cannot count the pending deliveries");
	}
	sqlite3_reset(s);
	return ret;
}

int sqlite_webhook_claim(struct store_conn *c, const char *endpoint_id, const char *owner, int64_t now_us,
			 int64_t until_us)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_WH_CLAIM);
	int64_t n = 0;
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, endpoint_id);
	store_bind_text(s, 2, owner);
	sqlite3_bind_int64(s, 3, now_us);
	sqlite3_bind_int64(s, 4, until_us);
	int rc = store_step_done(c, s, "cannot claim the webhook endpoint");
	if (rc != 0 || sqlite3_changes(sq_conn(c)->db) == 1)
		return rc;
	if ((rc = one_int(c, SQL_WH_EXISTS, endpoint_id, &n, "cannot read the webhook endpoint")) != 0)
		return rc;
	return n == 0 ? err_set(ERR_NOTFOUND, "no such webhook endpoint")
		      : err_set(ERR_CONFLICT, "another instance is delivering to this endpoint");
}

int sqlite_webhook_release(struct store_conn *c, const char *endpoint_id, const char *owner)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_WH_RELEASE);
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, endpoint_id);
	store_bind_text(s, 2, owner);
	return store_step_done(c, s, "cannot release the webhook endpoint");
}
