/*
 * store_links: preference links (the rows behind a customer's signed
 * token) and the suppression queries the customer pages need.
 *
 * A link row is never deleted: revocation sets revoked_us, so an auditor can
 * still see which links existed. Only ids, scopes and times are stored; the
 * token is recomputed from them and a MAC key that lives outside the DB.
 */
#include "service/store/store_internal.h"

#include "service/base/error.h"

#include <string.h>

static const char SQL_LINK_INSERT[] =
	"INSERT INTO preference_link (id, contact_id, scope, created_us, expires_us, revoked_us, "
	"created_by, capability) VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6, ?7)";
static const char SQL_LINK_GET[] =
	"SELECT id, contact_id, scope, created_us, expires_us, coalesce(revoked_us, 0), created_by, "
	"capability FROM preference_link WHERE id = ?1";
static const char SQL_LINK_REVOKE[] =
	"UPDATE preference_link SET revoked_us = ?3 WHERE contact_id = ?1 AND id = ?2 "
	"AND revoked_us IS NULL";
static const char SQL_LINKS_REVOKE_CONTACT[] =
	"UPDATE preference_link SET revoked_us = ?2 WHERE contact_id = ?1 AND revoked_us IS NULL";
static const char SQL_LINKS_REVOKE_MINTABLE[] =
	"UPDATE preference_link SET revoked_us = ?2 WHERE contact_id = ?1 AND revoked_us IS NULL "
	"AND (?3 OR capability = 'optout') "
	"AND (scope = 'all' OR instr(',' || ?4 || ',', ',' || scope || ',') > 0)";
static const char SQL_PRINCIPAL_ROLE[] = "SELECT role FROM principal WHERE name = ?1";
static const char SQL_SUBJECT_SUPPRESSIONS[] =
	"SELECT hash, kind, scope, scope_value, reason, source, created_us, recorded_us, "
	"coalesce(lifted_us, 0) FROM suppression WHERE hash IN (?1, ?2) ORDER BY created_us, id";

int sqlite_link_insert(struct store_conn *c, const struct store_link *l)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_LINK_INSERT);
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, l->id);
	store_bind_text(s, 2, l->contact_id);
	store_bind_text(s, 3, l->scope);
	sqlite3_bind_int64(s, 4, l->created_us);
	sqlite3_bind_int64(s, 5, l->expires_us);
	store_bind_text(s, 6, l->created_by);
	store_bind_text(s, 7, l->capability[0] ? l->capability : "optout");
	return store_step_done(c, s, "cannot store the preference link");
}

int sqlite_link_get(struct store_conn *c, const char *id, struct store_link *out)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_LINK_GET);
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, id);
	int rc = sqlite3_step(s), ret = 0;
	if (rc == SQLITE_ROW) {
		memset(out, 0, sizeof *out);
		store_col_text(s, 0, out->id, sizeof out->id);
		store_col_text(s, 1, out->contact_id, sizeof out->contact_id);
		store_col_text(s, 2, out->scope, sizeof out->scope);
		out->created_us = sqlite3_column_int64(s, 3);
		out->expires_us = sqlite3_column_int64(s, 4);
		out->revoked_us = sqlite3_column_int64(s, 5);
		store_col_text(s, 6, out->created_by, sizeof out->created_by);
		store_col_text(s, 7, out->capability, sizeof out->capability);
	} else if (rc == SQLITE_DONE) {
		ret = err_set(ERR_NOTFOUND, "no such preference link");
	} else {
		ret = store_db_error(sq_conn(c)->db, rc, "cannot read the preference link");
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return ret;
}

int sqlite_link_revoke(struct store_conn *c, const char *contact_id, const char *id, int64_t when_us)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_LINK_REVOKE);
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, contact_id);
	store_bind_text(s, 2, id);
	sqlite3_bind_int64(s, 3, when_us);
	int rc = store_step_done(c, s, "cannot revoke the preference link");
	if (rc == 0 && sqlite3_changes(sq_conn(c)->db) != 1)
		return err_set(ERR_NOTFOUND, "no active preference link with this id for this contact");
	return rc;
}

int sqlite_links_revoke_contact(struct store_conn *c, const char *contact_id, int64_t when_us, int64_t *count)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_LINKS_REVOKE_CONTACT);
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, contact_id);
	sqlite3_bind_int64(s, 2, when_us);
	int rc = store_step_done(c, s, "cannot revoke the preference links");
	if (rc == 0 && count != NULL)
		*count = sqlite3_changes(sq_conn(c)->db);
	return rc;
}

int sqlite_links_revoke_mintable(struct store_conn *c, const char *contact_id, bool may_manage,
				 const char *purposes, int64_t when_us, int64_t *count)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_LINKS_REVOKE_MINTABLE);
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, contact_id);
	sqlite3_bind_int64(s, 2, when_us);
	sqlite3_bind_int(s, 3, may_manage ? 1 : 0);
	store_bind_text(s, 4, purposes);
	int rc = store_step_done(c, s, "cannot revoke the preference links");
	if (rc == 0 && count != NULL)
		*count = sqlite3_changes(sq_conn(c)->db);
	return rc;
}

int sqlite_principal_role(struct store_conn *c, const char *name, char role[STORE_NAME_CAP])
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_PRINCIPAL_ROLE);
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, name);
	int rc = sqlite3_step(s), ret = 0;
	if (rc == SQLITE_ROW)
		store_col_text(s, 0, role, STORE_NAME_CAP);
	else if (rc == SQLITE_DONE)
		ret = err_set(ERR_NOTFOUND, "no principal named %s", name);
	else
		ret = store_db_error(sq_conn(c)->db, rc, "cannot look up the principal");
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return ret;
}

int sqlite_subject_suppressions_each(struct store_conn *c, const uint8_t *hash_a, const uint8_t *hash_b,
				     store_subject_suppression_cb cb, void *ctx)
{
	if (hash_a == NULL && hash_b == NULL)
		return 0;
	sqlite3_stmt *s = store_stmt_sql(c, SQL_SUBJECT_SUPPRESSIONS);
	if (s == NULL)
		return err_code();
	store_bind_blob_or_null(s, 1, hash_a, 32);
	store_bind_blob_or_null(s, 2, hash_b, 32);
	int rc, ret = 0;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_suppression sp;
		char kind[16], scope[16], value[STORE_NAME_CAP], reason[STORE_NAME_CAP],
			source[STORE_TEXT_CAP];
		memset(&sp, 0, sizeof sp);
		store_col_blob(s, 0, sp.hash, sizeof sp.hash);
		store_col_text(s, 1, kind, sizeof kind);
		store_col_text(s, 2, scope, sizeof scope);
		store_col_text(s, 3, value, sizeof value);
		store_col_text(s, 4, reason, sizeof reason);
		store_col_text(s, 5, source, sizeof source);
		sp.kind = kind;
		sp.scope = scope;
		sp.scope_value = value;
		sp.reason = reason;
		sp.source = source;
		sp.created_us = sqlite3_column_int64(s, 6);
		sp.recorded_us = sqlite3_column_int64(s, 7);
		if ((ret = cb(ctx, &sp, sqlite3_column_int64(s, 8))) != 0)
			break;
	}
	if (ret == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
		ret = store_db_error(sq_conn(c)->db, rc, "cannot read suppressions");
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return ret;
}
