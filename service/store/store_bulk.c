/*
 * store_bulk: the queries behind suppression lists, the outreach filter and
 * its release record. See the "bulk" section of store.h.
 *
 * The filter answers each entry with ONE prepared query on the caller's
 * reader connection: the contact (by blind index or id), its consent for
 * (purpose, channel) and both suppression checks come back in one row, so
 * a list of a million entries costs a million point lookups and nothing
 * else. The suppression checks use the partial index suppression_hash
 * (WHERE lifted_us IS NULL), which is why every query repeats that clause.
 */
#include "service/store/store.h"
#include "service/store/store_internal.h"

#include "service/base/error.h"

#include <stdlib.h>
#include <string.h>

/* One index probe per hash: "hash IN (a, b)" would build an ephemeral
 * table for every row, which dominated the consent check's profile. The
 * (scope, value) pairs that cover the use are the caller's (?5 .. ?10). */
#define SUPPRESSION_COVERS(h)                                                                                \
	"EXISTS (SELECT 1 FROM suppression s WHERE s.hash = " h " AND s.lifted_us IS NULL AND "              \
	"((s.scope = ?5 AND s.scope_value = ?6) OR (s.scope = ?7 AND s.scope_value = ?8) "                   \
	"OR (s.scope = ?9 AND s.scope_value = ?10)))"

#define FILTER_COLS                                                                                          \
	"SELECT c.id, c.status, c.collected_for, k.status, k.expires_us, "                                   \
	"CASE WHEN c.id IS NULL THEN 0 ELSE " SUPPRESSION_COVERS("c.email_shash") " OR " SUPPRESSION_COVERS( \
		"c.phone_shash") " END, " SUPPRESSION_COVERS("?4") " FROM (SELECT 1) AS one "

static const char SQL_FILTER_EMAIL[] =
	FILTER_COLS "LEFT JOIN contact c ON c.email_bidx = ?1 "
		    "LEFT JOIN consent k ON k.contact_id = c.id AND k.purpose = ?2 AND k.channel = ?3";
static const char SQL_FILTER_ID[] =
	FILTER_COLS "LEFT JOIN contact c ON c.id = ?1 "
		    "LEFT JOIN consent k ON k.contact_id = c.id AND k.purpose = ?2 AND k.channel = ?3";

static const char SQL_RELEASE_PUT[] =
	"INSERT INTO filter_release (release_id, chunk, ids) VALUES (?1, ?2, ?3)";
static const char SQL_RELEASE_GET[] = "SELECT ids FROM filter_release WHERE release_id = ?1";
static const char SQL_RELEASE_COUNT[] =
	"SELECT coalesce(sum(length(ids)), 0) / 16 FROM filter_release WHERE release_id = ?1";

static const char SQL_SUPPRESSION_ADD_ONCE[] =
	"INSERT INTO suppression (hash, kind, scope, scope_value, reason, source, created_us, recorded_us) "
	"SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8 WHERE NOT EXISTS (SELECT 1 FROM suppression "
	"WHERE hash = ?1 AND lifted_us IS NULL AND scope = ?3 AND scope_value = ?4 AND reason = ?5)";
static const char SQL_SUPPRESSIONS_ACTIVE[] =
	"SELECT id, kind, scope, scope_value, reason, source, created_us, recorded_us FROM suppression "
	"WHERE hash = ?1 AND lifted_us IS NULL ORDER BY created_us, id";
static const char SQL_SUPPRESSIONS_LIFT[] =
	"UPDATE suppression SET lifted_us = ?4, lifted_by = ?5 WHERE hash = ?1 AND lifted_us IS NULL "
	"AND instr(',' || ?6 || ',', ',' || reason || ',') > 0 "
	"AND (?2 IS NULL OR scope = ?2) AND (?3 IS NULL OR scope_value = ?3)";

static int filter_row(struct store_conn *c, sqlite3_stmt *s, struct store_filter_row *out)
{
	memset(out, 0, sizeof *out);
	int rc = sqlite3_step(s), ret = 0;
	if (rc == SQLITE_ROW) {
		if (sqlite3_column_type(s, 0) != SQLITE_NULL) {
			out->found = true;
			store_col_text(s, 0, out->id, sizeof out->id);
			char st[16];
			store_col_text(s, 1, st, sizeof st);
			out->erased = strcmp(st, "active") != 0;
			store_col_text(s, 2, out->collected_for, sizeof out->collected_for);
			if (sqlite3_column_type(s, 3) != SQLITE_NULL) {
				out->has_consent = true;
				store_col_text(s, 3, out->status, sizeof out->status);
				out->expires_us = sqlite3_column_int64(s, 4);
			}
			out->own_suppressed = sqlite3_column_int(s, 5) != 0;
		}
		out->list_suppressed = sqlite3_column_int(s, 6) != 0;
	} else {
		ret = store_db_error(sq_conn(c)->db, rc, "cannot look up the entry");
	}
	sqlite3_reset(s);
	return ret;
}

int sqlite_filter_by_email(struct store_conn *c, const uint8_t bidx[32], const uint8_t list_hash[32],
			   const char *purpose, const char *channel, const struct store_scope_keys *keys,
			   struct store_filter_row *out)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_FILTER_EMAIL);
	if (s == NULL)
		return err_code();
	sqlite3_bind_blob(s, 1, bidx, 32, SQLITE_STATIC);
	store_bind_text(s, 2, purpose);
	store_bind_text(s, 3, channel);
	store_bind_blob_or_null(s, 4, list_hash, 32);
	store_bind_scope_keys(s, 5, keys);
	return filter_row(c, s, out);
}

/* A batch of lookups in ONE read transaction: one WAL snapshot and one
 * shared lock for the whole batch instead of one per statement (the lock's
 * fcntl calls and the snapshot setup were a tenth of the filter's profile).
 * Inside a caller's transaction the statements simply join it. */
int sqlite_filter_by_email_many(struct store_conn *c, size_t n, const uint8_t (*bidx)[32],
				const uint8_t (*list_hash)[32], const char *purpose, const char *channel,
				const struct store_scope_keys *keys, struct store_filter_row *out)
{
	sqlite3 *db = sq_conn(c)->db;
	bool own = sqlite3_get_autocommit(db) != 0;
	int rc = 0;
	if (own && sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		return store_db_error(db, sqlite3_errcode(db), "cannot look up the entries");
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = sqlite_filter_by_email(c, bidx[i], list_hash[i], purpose, channel, keys, &out[i]);
	if (own && sqlite3_exec(db, rc == 0 ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK &&
	    rc == 0)
		rc = store_db_error(db, sqlite3_errcode(db), "cannot look up the entries");
	return rc;
}

int sqlite_filter_by_id(struct store_conn *c, const char *id, const char *purpose, const char *channel,
			const struct store_scope_keys *keys, struct store_filter_row *out)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_FILTER_ID);
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, id);
	store_bind_text(s, 2, purpose);
	store_bind_text(s, 3, channel);
	sqlite3_bind_null(s, 4);
	store_bind_scope_keys(s, 5, keys);
	return filter_row(c, s, out);
}

int sqlite_release_put(struct store_conn *c, const char *release_id, int64_t chunk, const uint8_t *ids,
		       size_t n_ids)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_RELEASE_PUT);
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, release_id);
	sqlite3_bind_int64(s, 2, chunk);
	sqlite3_bind_blob64(s, 3, ids, (sqlite3_uint64)n_ids * 16, SQLITE_STATIC);
	return store_step_done(c, s, "cannot record the released contacts");
}

int sqlite_release_find(struct store_conn *c, const char *release_id, const uint8_t id_raw[16])
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_RELEASE_GET);
	int rc, ret = ERR_NOTFOUND;
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, release_id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const uint8_t *ids = sqlite3_column_blob(s, 0);
		size_t n = (size_t)sqlite3_column_bytes(s, 0) / 16;
		/* Each chunk is sorted: binary search. */
		size_t lo = 0, hi = n;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			int cmp = memcmp(ids + mid * 16, id_raw, 16);
			if (cmp == 0) {
				ret = 0;
				break;
			}
			if (cmp < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (ret == 0)
			break;
	}
	if (ret != 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
		ret = store_db_error(sq_conn(c)->db, rc, "cannot read the release record");
	sqlite3_reset(s);
	return ret;
}

int sqlite_release_count(struct store_conn *c, const char *release_id, int64_t *out)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_RELEASE_COUNT);
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, release_id);
	int rc = sqlite3_step(s), ret = 0;
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(s, 0);
	else
		ret = store_db_error(sq_conn(c)->db, rc, "cannot count released contacts");
	sqlite3_reset(s);
	return ret;
}

int sqlite_suppression_add(struct store_conn *c, const struct store_suppression *sp)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_SUPPRESSION_ADD_ONCE);
	if (s == NULL)
		return err_code();
	sqlite3_bind_blob(s, 1, sp->hash, 32, SQLITE_STATIC);
	store_bind_text(s, 2, sp->kind);
	store_bind_text(s, 3, sp->scope);
	store_bind_text(s, 4, sp->scope_value);
	store_bind_text(s, 5, sp->reason);
	store_bind_text(s, 6, sp->source);
	sqlite3_bind_int64(s, 7, sp->created_us);
	sqlite3_bind_int64(s, 8, sp->recorded_us);
	int rc = store_step_done(c, s, "cannot store the suppression");
	if (rc != 0)
		return rc;
	return sqlite3_changes(sq_conn(c)->db) > 0 ? 1 : 0;
}

int sqlite_suppressions_active(struct store_conn *c, const uint8_t hash[32], store_suppression_cb cb,
			       void *ctx)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_SUPPRESSIONS_ACTIVE);
	struct store_suppression_row row;
	int rc, ret = 0;
	if (s == NULL)
		return err_code();
	sqlite3_bind_blob(s, 1, hash, 32, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		memset(&row, 0, sizeof row);
		row.id = sqlite3_column_int64(s, 0);
		store_col_text(s, 1, row.kind, sizeof row.kind);
		store_col_text(s, 2, row.scope, sizeof row.scope);
		store_col_text(s, 3, row.scope_value, sizeof row.scope_value);
		store_col_text(s, 4, row.reason, sizeof row.reason);
		store_col_text(s, 5, row.source, sizeof row.source);
		row.created_us = sqlite3_column_int64(s, 6);
		row.recorded_us = sqlite3_column_int64(s, 7);
		if ((ret = cb(ctx, &row)) != 0)
			break;
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = store_db_error(sq_conn(c)->db, rc, "cannot read suppressions");
	sqlite3_reset(s);
	return ret;
}

int sqlite_suppressions_lift(struct store_conn *c, const uint8_t hash[32], const char *scope,
			     const char *scope_value, const char *reasons, int64_t when_us, const char *by,
			     int64_t *lifted)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_SUPPRESSIONS_LIFT);
	if (s == NULL)
		return err_code();
	sqlite3_bind_blob(s, 1, hash, 32, SQLITE_STATIC);
	if (scope != NULL)
		store_bind_text(s, 2, scope);
	else
		sqlite3_bind_null(s, 2);
	if (scope_value != NULL)
		store_bind_text(s, 3, scope_value);
	else
		sqlite3_bind_null(s, 3);
	sqlite3_bind_int64(s, 4, when_us);
	store_bind_text(s, 5, by);
	store_bind_text(s, 6, reasons);
	int rc = store_step_done(c, s, "cannot lift suppressions");
	if (rc == 0 && lifted != NULL)
		*lifted = sqlite3_changes(sq_conn(c)->db);
	return rc;
}
