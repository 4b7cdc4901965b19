/*
 * store_release: the per-person release log behind frequency caps and the
 * summary of each outreach filter request. See the "release log" section
 * of store.h.
 *
 * The log has one row per (contact, purpose, channel, time, release) with
 * the contact as its raw 16-byte id, so a cap check is one range probe of
 * the primary key that reads at most the cap's max rows (newest first).
 * The summary holds counts and the keyed list digest only: no personal data.
 */
#include "service/store/store.h"
#include "service/store/store_internal.h"

#include "service/base/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char SQL_LOG_PUT[] =
	"INSERT OR IGNORE INTO release_log (contact, purpose, channel, at_us, release_id) "
	"VALUES (?1, ?2, ?3, ?4, ?5)";
static const char SQL_LOG_RECENT[] =
	"SELECT at_us FROM release_log WHERE contact = ?1 AND purpose = ?2 AND channel = ?3 "
	"AND at_us > ?4 ORDER BY at_us DESC LIMIT ?5";
static const char SQL_LOG_EACH[] =
	"SELECT release_id, purpose, channel, at_us FROM release_log WHERE contact = ?1 "
	"ORDER BY at_us DESC LIMIT ?2";
static const char SQL_SUMMARY_PUT[] =
	"INSERT INTO release_summary (release_id, at_us, summary) VALUES (?1, ?2, ?3)";
static const char SQL_SUMMARY_GET[] = "SELECT at_us, summary FROM release_summary WHERE release_id = ?1";

int sqlite_release_log_put(struct store_conn *c, const char *release_id, const char *purpose,
			   const char *channel, int64_t at_us, const uint8_t *ids, size_t n_ids)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_LOG_PUT);
	int rc = 0;
	if (s == NULL)
		return err_code();
	for (size_t i = 0; i < n_ids && rc == 0; i++) {
		sqlite3_bind_blob(s, 1, ids + i * 16, 16, SQLITE_STATIC);
		store_bind_text(s, 2, purpose);
		store_bind_text(s, 3, channel);
		sqlite3_bind_int64(s, 4, at_us);
		store_bind_text(s, 5, release_id);
		rc = store_step_done(c, s, "cannot record the release log");
	}
	return rc;
}

int sqlite_release_recent(struct store_conn *c, const uint8_t id_raw[16], const char *purpose,
			  const char *channel, int64_t after_us, int64_t limit, int64_t *count,
			  int64_t *last_us)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_LOG_RECENT);
	int rc, ret = 0;
	*count = 0;
	*last_us = 0;
	if (s == NULL)
		return err_code();
	sqlite3_bind_blob(s, 1, id_raw, 16, SQLITE_STATIC);
	store_bind_text(s, 2, purpose);
	store_bind_text(s, 3, channel);
	sqlite3_bind_int64(s, 4, after_us);
	sqlite3_bind_int64(s, 5, limit);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		(*count)++;
		*last_us = sqlite3_column_int64(s, 0);
	}
	if (rc != SQLITE_DONE)
		ret = store_db_error(sq_conn(c)->db, rc, "cannot read the release log");
	sqlite3_reset(s);
	return ret;
}

/* The batch in one read transaction (one snapshot and one shared lock),
 * or inside the caller's (the writer's recheck). */
int sqlite_release_recent_many(struct store_conn *c, size_t n, const uint8_t (*ids)[16], const char *purpose,
			       const char *channel, int64_t after_us, int64_t limit, int64_t *count,
			       int64_t *last_us)
{
	sqlite3 *db = sq_conn(c)->db;
	bool own = sqlite3_get_autocommit(db) != 0;
	int rc = 0;
	if (own && sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		return store_db_error(db, sqlite3_errcode(db), "cannot read the release log");
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = sqlite_release_recent(c, ids[i], purpose, channel, after_us, limit, &count[i],
					   &last_us[i]);
	if (own && sqlite3_exec(db, rc == 0 ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK &&
	    rc == 0)
		rc = store_db_error(db, sqlite3_errcode(db), "cannot read the release log");
	return rc;
}

int sqlite_release_log_each(struct store_conn *c, const uint8_t id_raw[16], int64_t limit,
			    store_release_log_cb cb, void *ctx)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_LOG_EACH);
	int rc, ret = 0;
	if (s == NULL)
		return err_code();
	sqlite3_bind_blob(s, 1, id_raw, 16, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, limit);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_release_entry e;
		memset(&e, 0, sizeof e);
		snprintf(e.release_id, sizeof e.release_id, "%s", (const char *)sqlite3_column_text(s, 0));
		snprintf(e.purpose, sizeof e.purpose, "%s", (const char *)sqlite3_column_text(s, 1));
		snprintf(e.channel, sizeof e.channel, "%s", (const char *)sqlite3_column_text(s, 2));
		e.at_us = sqlite3_column_int64(s, 3);
		if ((ret = cb(ctx, &e)) != 0)
			break;
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = store_db_error(sq_conn(c)->db, rc, "cannot read the release log");
	sqlite3_reset(s);
	return ret;
}

int sqlite_release_summary_put(struct store_conn *c, const char *release_id, int64_t at_us,
			       const char *summary)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_SUMMARY_PUT);
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, release_id);
	sqlite3_bind_int64(s, 2, at_us);
	store_bind_text(s, 3, summary);
	return store_step_done(c, s, "cannot record the release summary");
}

int sqlite_release_summary_get(struct store_conn *c, const char *release_id, int64_t *at_us, char **summary)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_SUMMARY_GET);
	int rc, ret = 0;
	*summary = NULL;
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, release_id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*at_us = sqlite3_column_int64(s, 0);
		*summary = strdup((const char *)sqlite3_column_text(s, 1));
		if (*summary == NULL)
			ret = err_set(ERR_NOMEM, "out of memory");
	} else if (rc == SQLITE_DONE) {
		ret = err_set(ERR_NOTFOUND, "no such release");
	} else {
		ret = store_db_error(sq_conn(c)->db, rc, "cannot read the release summary");
	}
	sqlite3_reset(s);
	return ret;
}

/* ---- the person's frequency choice ---- */

static const char SQL_FREQ_PUT[] =
	"INSERT OR REPLACE INTO frequency_choice (contact_id, purpose, channel, choice, set_us) "
	"VALUES (?1, ?2, ?3, ?4, ?5)";
static const char SQL_FREQ_GET[] = "SELECT purpose, channel, choice, set_us FROM frequency_choice "
				   "WHERE contact_id = ?1 AND purpose = ?2 AND channel = ?3";
static const char SQL_FREQ_EACH[] =
	"SELECT purpose, channel, choice, set_us FROM frequency_choice WHERE contact_id = ?1 "
	"ORDER BY purpose, channel";

int sqlite_frequency_put(struct store_conn *c, const char *contact_id, const struct store_frequency *fq)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_FREQ_PUT);
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, contact_id);
	store_bind_text(s, 2, fq->purpose);
	store_bind_text(s, 3, fq->channel);
	store_bind_text(s, 4, fq->choice);
	sqlite3_bind_int64(s, 5, fq->set_us);
	return store_step_done(c, s, "cannot record the frequency choice");
}

static void freq_row(sqlite3_stmt *s, struct store_frequency *out)
{
	memset(out, 0, sizeof *out);
	snprintf(out->purpose, sizeof out->purpose, "%s", (const char *)sqlite3_column_text(s, 0));
	snprintf(out->channel, sizeof out->channel, "%s", (const char *)sqlite3_column_text(s, 1));
	snprintf(out->choice, sizeof out->choice, "%s", (const char *)sqlite3_column_text(s, 2));
	out->set_us = sqlite3_column_int64(s, 3);
}

int sqlite_frequency_get(struct store_conn *c, const char *contact_id, const char *purpose,
			 const char *channel, struct store_frequency *out)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_FREQ_GET);
	int rc, ret = 0;
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, contact_id);
	store_bind_text(s, 2, purpose);
	store_bind_text(s, 3, channel);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		freq_row(s, out);
	else if (rc == SQLITE_DONE)
		ret = err_set(ERR_NOTFOUND, "no frequency choice");
	else
		ret = store_db_error(sq_conn(c)->db, rc, "cannot read the frequency choice");
	sqlite3_reset(s);
	return ret;
}

int sqlite_frequency_each(struct store_conn *c, const char *contact_id, store_frequency_cb cb, void *ctx)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_FREQ_EACH);
	int rc, ret = 0;
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, contact_id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_frequency fq;
		freq_row(s, &fq);
		if ((ret = cb(ctx, &fq)) != 0)
			break;
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = store_db_error(sq_conn(c)->db, rc, "cannot read the frequency choices");
	sqlite3_reset(s);
	return ret;
}

static int sqlite_release_times(struct store_conn *c, const uint8_t id_raw[16], const char *purpose,
				const char *channel, int64_t after_us, int64_t limit, int64_t *times,
				int64_t *n)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_LOG_RECENT);
	int rc, ret = 0;
	*n = 0;
	if (s == NULL)
		return err_code();
	sqlite3_bind_blob(s, 1, id_raw, 16, SQLITE_STATIC);
	store_bind_text(s, 2, purpose);
	store_bind_text(s, 3, channel);
	sqlite3_bind_int64(s, 4, after_us);
	sqlite3_bind_int64(s, 5, limit);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW && *n < limit)
		times[(*n)++] = sqlite3_column_int64(s, 0);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		ret = store_db_error(sq_conn(c)->db, rc, "cannot read the release log");
	sqlite3_reset(s);
	return ret;
}

/* SQLite answers in-process: one prepared probe per id is the batch. */
int sqlite_release_times_many(struct store_conn *c, size_t n, const uint8_t *ids, const char *purpose,
			      const char *channel, int64_t after_us, int64_t limit, int64_t *times,
			      int64_t *counts)
{
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = sqlite_release_times(c, ids + i * 16, purpose, channel, after_us, limit,
					  times + i * (size_t)limit, &counts[i]);
	return rc;
}
