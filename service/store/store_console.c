/*
 * store_console: the auditor's console sessions and the few read-only
 * queries its pages need (a phone blind index lookup, chart counts).
 *
 * Invariants:
 * - A session row holds hashes, a principal name, a role, a CSRF value and
 *   two times: never a session id or a token in the clear, so a copy of the
 *   database cannot be used to sign in or to ride a session.
 * - Unlike the audit tables, sessions may be deleted: sign-out and expiry
 *   remove the row, and a session that is gone cannot be used again.
 * - The chart queries only count; they never return an entry's content.
 */
#include "service/store/store_internal.h"

#include "service/base/error.h"

#include <string.h>

/* A reason or a role: at most AUDIT_REASON_MAX (256) bytes, so it always fits. */
#define STAT_KEY_CAP 257

static const char SQL_SESSION_INSERT[] =
	"INSERT INTO console_session (id_hash, token_hash, actor, role, csrf, created_us, seen_us) "
	"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
static const char SQL_SESSION_GET[] =
	"SELECT token_hash, actor, role, csrf, created_us, seen_us FROM console_session WHERE id_hash = ?1";
static const char SQL_SESSION_TOUCH[] =
	"UPDATE console_session SET seen_us = max(seen_us, ?2) WHERE id_hash = ?1";
static const char SQL_SESSION_DELETE[] = "DELETE FROM console_session WHERE id_hash = ?1";
static const char SQL_SESSIONS_EXPIRE[] = "DELETE FROM console_session WHERE seen_us < ?1 OR created_us < ?2";
static const char SQL_FIND_PHONE[] =
	"SELECT id FROM contact WHERE phone_bidx = ?1 AND status = 'active' ORDER BY id LIMIT ?2";
/* Days are counted in UTC: time_us / 86400e6. */
static const char SQL_STAT_PER_DAY[] =
	"SELECT time_us / 86400000000, '', count(*) FROM audit WHERE time_us >= ?1 GROUP BY 1 ORDER BY 1";
static const char SQL_STAT_DENIALS[] =
	"SELECT time_us / 86400000000, reason, count(*) FROM audit WHERE time_us >= ?1 AND decision = 'deny' "
	"GROUP BY 1, 2 ORDER BY 1, 2";
static const char SQL_STAT_ROLES[] =
	"SELECT 0, role, count(*) FROM audit WHERE time_us >= ?1 GROUP BY 2 ORDER BY 3 DESC, 2";

int sqlite_console_session_insert(struct store_conn *c, const struct store_console_session *cs)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_SESSION_INSERT);
	if (s == NULL)
		return err_code();
	sqlite3_bind_blob(s, 1, cs->id_hash, 32, SQLITE_STATIC);
	sqlite3_bind_blob(s, 2, cs->token_hash, 32, SQLITE_STATIC);
	store_bind_text(s, 3, cs->actor);
	store_bind_text(s, 4, cs->role);
	store_bind_text(s, 5, cs->csrf);
	sqlite3_bind_int64(s, 6, cs->created_us);
	sqlite3_bind_int64(s, 7, cs->seen_us);
	return store_step_done(c, s, "cannot store the console session");
}

int sqlite_console_session_get(struct store_conn *c, const uint8_t id_hash[32],
			       struct store_console_session *out)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_SESSION_GET);
	int rc, ret = 0;
	if (s == NULL)
		return err_code();
	sqlite3_bind_blob(s, 1, id_hash, 32, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		uint8_t id[32];
		memcpy(id, id_hash, sizeof id); /* id_hash may be out->id_hash itself */
		memset(out, 0, sizeof *out);
		memcpy(out->id_hash, id, sizeof id);
		if (store_col_blob(s, 0, out->token_hash, sizeof out->token_hash) != 32)
			ret = err_set(ERR_INTERNAL, "a console session without its token hash");
		store_col_text(s, 1, out->actor, sizeof out->actor);
		store_col_text(s, 2, out->role, sizeof out->role);
		store_col_text(s, 3, out->csrf, sizeof out->csrf);
		out->created_us = sqlite3_column_int64(s, 4);
		out->seen_us = sqlite3_column_int64(s, 5);
	} else if (rc == SQLITE_DONE) {
		ret = err_set(ERR_NOTFOUND, "no such console session");
	} else {
		ret = store_db_error(sq_conn(c)->db, rc, "cannot read the console session");
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return ret;
}

int sqlite_console_session_touch(struct store_conn *c, const uint8_t id_hash[32], int64_t seen_us)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_SESSION_TOUCH);
	if (s == NULL)
		return err_code();
	sqlite3_bind_blob(s, 1, id_hash, 32, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, seen_us);
	return store_step_done(c, s, "cannot update the console session");
}

int sqlite_console_session_delete(struct store_conn *c, const uint8_t id_hash[32])
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_SESSION_DELETE);
	if (s == NULL)
		return err_code();
	sqlite3_bind_blob(s, 1, id_hash, 32, SQLITE_STATIC);
	return store_step_done(c, s, "cannot delete the console session");
}

int sqlite_console_sessions_expire(struct store_conn *c, int64_t idle_before_us, int64_t created_before_us,
				   int64_t *count)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_SESSIONS_EXPIRE);
	if (s == NULL)
		return err_code();
	sqlite3_bind_int64(s, 1, idle_before_us);
	sqlite3_bind_int64(s, 2, created_before_us);
	int rc = store_step_done(c, s, "cannot expire console sessions");
	if (rc == 0 && count != NULL)
		*count = sqlite3_changes(sq_conn(c)->db);
	return rc;
}

int sqlite_console_find_phone(struct store_conn *c, const uint8_t bidx[32], char (*ids)[STORE_ID_CAP],
			      size_t cap, size_t *n, bool *more)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_FIND_PHONE);
	int rc, ret = 0;
	*n = 0;
	*more = false;
	if (s == NULL)
		return err_code();
	sqlite3_bind_blob(s, 1, bidx, 32, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)cap + 1); /* one more, to know there are others */
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (*n == cap) {
			*more = true;
			break;
		}
		store_col_text(s, 0, ids[*n], STORE_ID_CAP);
		(*n)++;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = store_db_error(sq_conn(c)->db, rc, "cannot look up the phone number");
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return ret;
}

int sqlite_console_stats(struct store_conn *c, enum store_console_stat which, int64_t since_us,
			 store_console_stat_cb cb, void *ctx)
{
	const char *sql = which == STORE_STAT_PER_DAY		  ? SQL_STAT_PER_DAY
			  : which == STORE_STAT_DENIALS_BY_REASON ? SQL_STAT_DENIALS
								  : SQL_STAT_ROLES;
	sqlite3_stmt *s = store_stmt_sql(c, sql);
	int rc, ret = 0;
	char key[STAT_KEY_CAP];
	if (s == NULL)
		return err_code();
	sqlite3_bind_int64(s, 1, since_us);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		store_col_text(s, 1, key, sizeof key);
		ret = cb(ctx, sqlite3_column_int64(s, 0), key, sqlite3_column_int64(s, 2));
		if (ret != 0)
			break;
	}
	if (ret == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = store_db_error(sq_conn(c)->db, rc, "cannot count the audit trail");
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return ret;
}
