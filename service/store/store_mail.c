/*
 * store_mail: the mail outbox (migration 5). A row is queued in the same
 * transaction as the change that causes the message, so a committed change
 * always has its mail and a rolled-back one never does; the mail worker
 * (service/mail.c) sends it after the commit and marks it sent. Rows hold
 * only ids, a kind and times: the address is opened and the link token
 * recomputed when the message is sent.
 */
#include "service/store/store_internal.h"

#include "service/base/error.h"

#include <string.h>

static const char SQL_MAIL_PUT[] =
	"INSERT INTO mail_outbox (id, kind, contact_id, link_id, created_us, lang) "
	"VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
static const char SQL_MAIL_PENDING[] =
	"SELECT id, kind, contact_id, link_id, created_us, attempts, next_us, lang FROM mail_outbox "
	"WHERE sent_us IS NULL AND failed_us IS NULL AND next_us <= ?2 ORDER BY created_us, id LIMIT ?1";
/* The check and the claim in one statement (migration 13). */
static const char SQL_MAIL_CLAIM[] =
	"UPDATE mail_outbox SET claimed_by = ?1, claim_until = ?4 WHERE id IN (SELECT id FROM mail_outbox "
	"WHERE sent_us IS NULL AND failed_us IS NULL AND next_us <= ?3 AND (claim_until < ?3 OR claimed_by = ?1) "
	"ORDER BY created_us, id LIMIT ?2) "
	"RETURNING id, kind, contact_id, link_id, created_us, attempts, next_us, lang";
static const char SQL_MAIL_RELEASE[] = "UPDATE mail_outbox SET claimed_by = '', claim_until = 0 "
				       "WHERE claimed_by = ?1 AND sent_us IS NULL AND failed_us IS NULL";
/* ?2 is the outcome: 0 sent, 1 retry, 2 failed (enum store_mail_outcome). */
static const char SQL_MAIL_MARK[] = "UPDATE mail_outbox SET sent_us = CASE WHEN ?2 = 0 THEN ?3 END, "
				    "next_us = CASE WHEN ?2 = 1 THEN ?3 ELSE next_us END, "
				    "failed_us = CASE WHEN ?2 = 2 THEN ?3 END, "
				    "attempts = attempts + CASE WHEN ?2 = 0 THEN 0 ELSE 1 END, "
				    "claimed_by = '', claim_until = 0 "
				    "WHERE id = ?1 AND sent_us IS NULL AND failed_us IS NULL";

int sqlite_mail_put(struct store_conn *c, const struct store_mail *m)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_MAIL_PUT);
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, m->id);
	store_bind_text(s, 2, m->kind);
	store_bind_text(s, 3, m->contact_id);
	store_bind_text(s, 4, m->link_id);
	sqlite3_bind_int64(s, 5, m->created_us);
	store_bind_text(s, 6, m->lang);
	return store_step_done(c, s, "cannot queue the mail");
}

static int each_mail(struct store_conn *c, sqlite3_stmt *s, store_mail_cb cb, void *ctx);

int sqlite_mail_pending(struct store_conn *c, size_t max, int64_t now_us, store_mail_cb cb, void *ctx)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_MAIL_PENDING);
	if (s == NULL)
		return err_code();
	sqlite3_bind_int64(s, 1, (sqlite3_int64)max);
	sqlite3_bind_int64(s, 2, now_us);
	return each_mail(c, s, cb, ctx);
}

int sqlite_mail_claim(struct store_conn *c, const char *owner, size_t max, int64_t now_us, int64_t until_us,
		      store_mail_cb cb, void *ctx)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_MAIL_CLAIM);
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, owner);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)max);
	sqlite3_bind_int64(s, 3, now_us);
	sqlite3_bind_int64(s, 4, until_us);
	return each_mail(c, s, cb, ctx);
}

int sqlite_mail_release(struct store_conn *c, const char *owner)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_MAIL_RELEASE);
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, owner);
	return store_step_done(c, s, "cannot release the mail claims");
}

/* Calls cb for each row of s (a list, or the rows a claim took); an error
 * from cb stops it and is returned, and a claim's caller then rolls back. */
static int each_mail(struct store_conn *c, sqlite3_stmt *s, store_mail_cb cb, void *ctx)
{
	int rc, ret = 0;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_mail m;
		memset(&m, 0, sizeof m);
		store_col_text(s, 0, m.id, sizeof m.id);
		store_col_text(s, 1, m.kind, sizeof m.kind);
		store_col_text(s, 2, m.contact_id, sizeof m.contact_id);
		store_col_text(s, 3, m.link_id, sizeof m.link_id);
		m.created_us = sqlite3_column_int64(s, 4);
		m.attempts = sqlite3_column_int64(s, 5);
		m.next_us = sqlite3_column_int64(s, 6);
		store_col_text(s, 7, m.lang, sizeof m.lang);
		if ((ret = cb(ctx, &m)) != 0)
			break;
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = store_db_error(sq_conn(c)->db, rc, "cannot read the mail outbox");
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return ret;
}

int sqlite_mail_mark(struct store_conn *c, const char *id, enum store_mail_outcome outcome, int64_t when_us)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_MAIL_MARK);
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, id);
	sqlite3_bind_int(s, 2, (int)outcome);
	sqlite3_bind_int64(s, 3, when_us);
	int rc = store_step_done(c, s, "cannot mark the mail");
	if (rc == 0 && sqlite3_changes(sq_conn(c)->db) == 0)
		rc = err_set(ERR_NOTFOUND, "no pending mail with this id");
	return rc;
}

/* ---- double opt-in confirmations ---- */

static const char SQL_CONFIRM_PUT[] =
	"INSERT INTO consent_confirmation (id, contact_id, purpose, channel, receipt_id, created_us, "
	"expires_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
static const char SQL_CONFIRM_GET[] = "SELECT id, contact_id, purpose, channel, receipt_id, created_us, "
				      "expires_us, coalesce(confirmed_us, 0) FROM consent_confirmation "
				      "WHERE id = ?1";
static const char SQL_CONFIRM_DONE[] =
	"UPDATE consent_confirmation SET confirmed_us = ?2 WHERE id = ?1 AND confirmed_us IS NULL";

int sqlite_confirmation_put(struct store_conn *c, const struct store_confirmation *cf)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_CONFIRM_PUT);
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, cf->id);
	store_bind_text(s, 2, cf->contact_id);
	store_bind_text(s, 3, cf->purpose);
	store_bind_text(s, 4, cf->channel);
	store_bind_text(s, 5, cf->receipt_id);
	sqlite3_bind_int64(s, 6, cf->created_us);
	sqlite3_bind_int64(s, 7, cf->expires_us);
	return store_step_done(c, s, "cannot record the confirmation");
}

int sqlite_confirmation_get(struct store_conn *c, const char *id, struct store_confirmation *out)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_CONFIRM_GET);
	int rc, ret = 0;
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, id);
	memset(out, 0, sizeof *out);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		store_col_text(s, 0, out->id, sizeof out->id);
		store_col_text(s, 1, out->contact_id, sizeof out->contact_id);
		store_col_text(s, 2, out->purpose, sizeof out->purpose);
		store_col_text(s, 3, out->channel, sizeof out->channel);
		store_col_text(s, 4, out->receipt_id, sizeof out->receipt_id);
		out->created_us = sqlite3_column_int64(s, 5);
		out->expires_us = sqlite3_column_int64(s, 6);
		out->confirmed_us = sqlite3_column_int64(s, 7);
	} else if (rc == SQLITE_DONE) {
		ret = err_set(ERR_NOTFOUND, "no confirmation with this id");
	} else {
		ret = store_db_error(sq_conn(c)->db, rc, "cannot read the confirmation");
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return ret;
}

int sqlite_confirmation_done(struct store_conn *c, const char *id, int64_t when_us)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_CONFIRM_DONE);
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, id);
	sqlite3_bind_int64(s, 2, when_us);
	int rc = store_step_done(c, s, "cannot confirm");
	if (rc == 0 && sqlite3_changes(sq_conn(c)->db) == 0)
		rc = err_set(ERR_NOTFOUND, "no unconfirmed confirmation with this id");
	return rc;
}

/* ---- spent form values (migration 13) ---- */

static const char SQL_NONCE_SWEEP[] = "DELETE FROM form_nonce WHERE expires_us < ?1";
static const char SQL_NONCE_SPEND[] =
	"INSERT INTO form_nonce (nonce, expires_us) VALUES (?1, ?2) ON CONFLICT (nonce) DO NOTHING";
static const char SQL_NONCE_SPENT[] = "SELECT count(*) FROM form_nonce WHERE nonce = ?1 AND expires_us >= ?2";

int sqlite_form_nonce_spend(struct store_conn *c, const uint8_t *nonce, size_t len, int64_t now_us,
			    int64_t expires_us)
{
	if (len == 0 || len > STORE_NONCE_MAX)
		return err_set(ERR_INVALID, "a form value's nonce is 1 to %d bytes", STORE_NONCE_MAX);
	sqlite3_stmt *s = store_stmt_sql(c, SQL_NONCE_SWEEP);
	if (s == NULL)
		return err_code();
	sqlite3_bind_int64(s, 1, now_us);
	int rc = store_step_done(c, s, "cannot sweep the spent form values");
	if (rc != 0)
		return rc;
	if ((s = store_stmt_sql(c, SQL_NONCE_SPEND)) == NULL)
		return err_code();
	sqlite3_bind_blob(s, 1, nonce, (int)len, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, expires_us);
	if ((rc = store_step_done(c, s, "cannot spend the form value")) != 0)
		return rc;
	return sqlite3_changes(sq_conn(c)->db) == 1 ? 0 : err_set(ERR_CONFLICT, "the form value was used");
}

int sqlite_form_nonce_spent(struct store_conn *c, const uint8_t *nonce, size_t len, int64_t now_us,
			    bool *spent)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_NONCE_SPENT);
	int ret = 0;
	*spent = false;
	if (len == 0 || len > STORE_NONCE_MAX)
		return err_set(ERR_INVALID, "a form value's nonce is 1 to %d bytes", STORE_NONCE_MAX);
	if (s == NULL)
		return err_code();
	sqlite3_bind_blob(s, 1, nonce, (int)len, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, now_us);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*spent = sqlite3_column_int64(s, 0) > 0;
	else
		ret = store_db_error(sq_conn(c)->db, rc, "cannot read the spent form values");
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return ret;
}
