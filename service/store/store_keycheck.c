/*
 * store_keycheck: the SQLite side of the key check values (service/keycheck.c
 * says what they are). One row per key name; a row, once written, is never
 * changed by consentd: a second add of the same name leaves the first.
 */
#include "service/store/store_internal.h"

#include "service/base/error.h"

#include <string.h>

static const char SQL_KEY_CHECK_GET[] = "SELECT kcv FROM key_check WHERE name = ?1";
static const char SQL_KEY_CHECK_ADD[] = "INSERT OR IGNORE INTO key_check (name, kcv) VALUES (?1, ?2)";

int sqlite_key_check_get(struct store_conn *c, const char *name, uint8_t kcv[32])
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_KEY_CHECK_GET);
	int rc;
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, name);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		rc = store_col_blob(s, 0, kcv, 32) == 32
			     ? 0
			     : err_set(ERR_IO, "the key check value of %s is not 32 bytes", name);
	} else if (rc == SQLITE_DONE) {
		rc = err_set(ERR_NOTFOUND, "no key check value for %s", name);
	} else {
		rc = store_db_error(sq_conn(c)->db, rc, "cannot read a key check value");
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc;
}

int sqlite_key_check_add(struct store_conn *c, const char *name, const uint8_t kcv[32])
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_KEY_CHECK_ADD);
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, name);
	sqlite3_bind_blob(s, 2, kcv, 32, SQLITE_STATIC);
	return store_step_done(c, s, "cannot record a key check value");
}
