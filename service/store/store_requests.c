/*
 * store_requests: data-subject requests and their steps (migration 13), for
 * the SQLite backend. The rows hold ids, names, days and the sealed reason
 * of each step: never a personal value in the clear. A transition writes
 * the request only if nobody else moved it since it was read (the steps
 * count is the row's version), so two staff members acting at once cannot
 * both win.
 */
#include "service/store/store_internal.h"

#include "service/base/error.h"

#include <string.h>

#define REQUEST_COLS                                                                                         \
	"id, contact_id, kind, jurisdiction, state, origin, received_day, due_day, ack_day, extended, "      \
	"needs_approval, created_us, updated_us, steps"

static const char SQL_REQUEST_PUT[] = "INSERT INTO dsr_request (" REQUEST_COLS ") "
				      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";
static const char SQL_REQUEST_UPDATE[] =
	"UPDATE dsr_request SET state = ?2, due_day = ?3, extended = ?4, needs_approval = ?5, "
	"updated_us = ?6, steps = ?7 WHERE id = ?1 AND steps = ?8";
static const char SQL_REQUEST_EXISTS[] = "SELECT 1 FROM dsr_request WHERE id = ?1";
static const char SQL_REQUEST_GET[] = "SELECT " REQUEST_COLS " FROM dsr_request WHERE id = ?1";
/* ?1 the state ('' any), ?2 due before (0 any), ?3 the limit. */
static const char SQL_REQUESTS_EACH[] = "SELECT " REQUEST_COLS " FROM dsr_request "
					"WHERE (?1 = '' OR state = ?1) AND (?2 = 0 OR due_day < ?2) "
					"ORDER BY due_day, id LIMIT ?3";
static const char SQL_STEP_PUT[] =
	"INSERT INTO dsr_step (request_id, seq, from_state, to_state, actor, at_us, reason) "
	"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
static const char SQL_STEPS_EACH[] = "SELECT request_id, seq, from_state, to_state, actor, at_us, reason "
				     "FROM dsr_step WHERE request_id = ?1 ORDER BY seq";
static const char SQL_DUE_COUNTS[] =
	"SELECT coalesce(sum(due_day < ?1), 0), coalesce(sum(due_day >= ?1 AND due_day <= ?2), 0) "
	"FROM dsr_request WHERE state NOT IN ('completed', 'denied')";

static void request_row(sqlite3_stmt *s, struct store_request *r)
{
	memset(r, 0, sizeof *r);
	store_col_text(s, 0, r->id, sizeof r->id);
	store_col_text(s, 1, r->contact_id, sizeof r->contact_id);
	store_col_text(s, 2, r->kind, sizeof r->kind);
	store_col_text(s, 3, r->jurisdiction, sizeof r->jurisdiction);
	store_col_text(s, 4, r->state, sizeof r->state);
	store_col_text(s, 5, r->origin, sizeof r->origin);
	r->received_day = sqlite3_column_int64(s, 6);
	r->due_day = sqlite3_column_int64(s, 7);
	r->ack_day = sqlite3_column_int64(s, 8);
	r->extended = sqlite3_column_int(s, 9) != 0;
	r->needs_approval = sqlite3_column_int(s, 10) != 0;
	r->created_us = sqlite3_column_int64(s, 11);
	r->updated_us = sqlite3_column_int64(s, 12);
	r->steps = sqlite3_column_int64(s, 13);
}

int sqlite_request_put(struct store_conn *c, const struct store_request *r)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_REQUEST_PUT);
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, r->id);
	store_bind_text(s, 2, r->contact_id);
	store_bind_text(s, 3, r->kind);
	store_bind_text(s, 4, r->jurisdiction);
	store_bind_text(s, 5, r->state);
	store_bind_text(s, 6, r->origin);
	sqlite3_bind_int64(s, 7, r->received_day);
	sqlite3_bind_int64(s, 8, r->due_day);
	sqlite3_bind_int64(s, 9, r->ack_day);
	sqlite3_bind_int(s, 10, r->extended);
	sqlite3_bind_int(s, 11, r->needs_approval);
	sqlite3_bind_int64(s, 12, r->created_us);
	sqlite3_bind_int64(s, 13, r->updated_us);
	sqlite3_bind_int64(s, 14, r->steps);
	return store_step_done(c, s, "cannot record the request");
}

static int request_exists(struct store_conn *c, const char *id)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_REQUEST_EXISTS);
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, id);
	int rc = sqlite3_step(s), ret = 0;
	if (rc == SQLITE_DONE)
		ret = err_set(ERR_NOTFOUND, "no request with this id");
	else if (rc != SQLITE_ROW)
		ret = store_db_error(sq_conn(c)->db, rc, "cannot read the request");
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return ret;
}

int sqlite_request_update(struct store_conn *c, const struct store_request *r, int64_t prev_steps)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_REQUEST_UPDATE);
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, r->id);
	store_bind_text(s, 2, r->state);
	sqlite3_bind_int64(s, 3, r->due_day);
	sqlite3_bind_int(s, 4, r->extended);
	sqlite3_bind_int(s, 5, r->needs_approval);
	sqlite3_bind_int64(s, 6, r->updated_us);
	sqlite3_bind_int64(s, 7, r->steps);
	sqlite3_bind_int64(s, 8, prev_steps);
	int rc = store_step_done(c, s, "cannot update the request");
	if (rc == 0 && sqlite3_changes(sq_conn(c)->db) == 0) {
		rc = request_exists(c, r->id);
		if (rc == 0)
			rc = err_set(ERR_CONFLICT, "the request was changed by another transition");
	}
	return rc;
}

int sqlite_request_get(struct store_conn *c, const char *id, struct store_request *out)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_REQUEST_GET);
	int rc, ret = 0;
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		request_row(s, out);
	else if (rc == SQLITE_DONE)
		ret = err_set(ERR_NOTFOUND, "no request with this id");
	else
		ret = store_db_error(sq_conn(c)->db, rc, "cannot read the request");
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return ret;
}

int sqlite_requests_each(struct store_conn *c, const char *state, int64_t due_before_day, size_t max,
			 store_request_cb cb, void *ctx, bool *more)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_REQUESTS_EACH);
	int rc, ret = 0;
	size_t n = 0;
	*more = false;
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, state != NULL ? state : "");
	sqlite3_bind_int64(s, 2, due_before_day);
	/* One more than asked, to say whether there are more. */
	sqlite3_bind_int64(s, 3, (sqlite3_int64)max + 1);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_request r;
		if (n++ == max) {
			*more = true;
			continue;
		}
		request_row(s, &r);
		if ((ret = cb(ctx, &r)) != 0)
			break;
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = store_db_error(sq_conn(c)->db, rc, "cannot list the requests");
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return ret;
}

int sqlite_request_step_put(struct store_conn *c, const struct store_request_step *st)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_STEP_PUT);
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, st->request_id);
	sqlite3_bind_int64(s, 2, st->seq);
	store_bind_text(s, 3, st->from_state);
	store_bind_text(s, 4, st->to_state);
	store_bind_text(s, 5, st->actor);
	sqlite3_bind_int64(s, 6, st->at_us);
	store_bind_blob_or_null(s, 7, st->reason, st->reason_len);
	return store_step_done(c, s, "cannot record the request's step");
}

int sqlite_request_steps_each(struct store_conn *c, const char *request_id, store_request_step_cb cb,
			      void *ctx)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_STEPS_EACH);
	int rc, ret = 0;
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, request_id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_request_step st;
		memset(&st, 0, sizeof st);
		store_col_text(s, 0, st.request_id, sizeof st.request_id);
		st.seq = sqlite3_column_int64(s, 1);
		store_col_text(s, 2, st.from_state, sizeof st.from_state);
		store_col_text(s, 3, st.to_state, sizeof st.to_state);
		store_col_text(s, 4, st.actor, sizeof st.actor);
		st.at_us = sqlite3_column_int64(s, 5);
		st.reason_len = store_col_blob(s, 6, st.reason, sizeof st.reason);
		if ((ret = cb(ctx, &st)) != 0)
			break;
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = store_db_error(sq_conn(c)->db, rc, "cannot read the request's steps");
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return ret;
}

int sqlite_requests_due_counts(struct store_conn *c, int64_t today_day, int64_t soon_day, int64_t *overdue,
			       int64_t *due_soon)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_DUE_COUNTS);
	int rc, ret = 0;
	if (s == NULL)
		return err_code();
	sqlite3_bind_int64(s, 1, today_day);
	sqlite3_bind_int64(s, 2, soon_day);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*overdue = sqlite3_column_int64(s, 0);
		*due_soon = sqlite3_column_int64(s, 1);
	} else {
		ret = store_db_error(sq_conn(c)->db, rc, "cannot count the open requests");
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return ret;
}
