/*
 * store_internal: what the store's own files share. The store may be split
 * into several files (store.c, store_<topic>.c), all in service/store/ and
 * the only ones that include sqlite3.h. An extension file keeps its SQL in
 * `static const char SQL_X[] = "..."` and gets a prepared, cached statement
 * with store_stmt_sql(c, SQL_X) (cached by the string's address), then binds,
 * steps and resets it like store.c does.
 */
#ifndef CONSENTD_STORE_INTERNAL_H
#define CONSENTD_STORE_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <pthread.h>
#include <sqlite3.h>

#include "service/store/store.h"

#define STORE_POOL_MAX 32
#define STORE_EXTRA_STMTS 64
#define STORE_BUILTIN_STMTS 64

struct store_conn {
	sqlite3 *db;
	sqlite3_stmt *stmts[STORE_BUILTIN_STMTS];
	struct {
		const char *sql;
		sqlite3_stmt *stmt;
	} extra[STORE_EXTRA_STMTS];
	int n_extra;
	bool bulk; /* a larger page cache until store_conn_put */
	struct store *st;
};

struct store {
	char *path;
	pthread_mutex_t lock;
	struct store_conn *pool[STORE_POOL_MAX];
	int pool_n;
	atomic_bool fault_audit;
	bool faults_allowed;
	char fault_path[4200];
	int schema_version;
	/* the WAL checkpointer (see store.c) */
	pthread_t ckpt_thread;
	pthread_mutex_t ckpt_lock;
	pthread_cond_t ckpt_cond;
	bool ckpt_running, ckpt_wanted, ckpt_stop;
};

/* A prepared statement for sql (a string with static storage), cached per
 * connection; NULL with err_set() on failure. */
sqlite3_stmt *store_stmt_sql(struct store_conn *c, const char *sql);

/* Maps an SQLite result code to an ERR_* (constraint -> ERR_CONFLICT, full
 * disk or I/O -> ERR_UNAVAILABLE) and sets the message. */
int store_db_error(sqlite3 *db, int rc, const char *what);
/* Steps a statement that returns no rows we need, then resets it. */
int store_step_done(struct store_conn *c, sqlite3_stmt *s, const char *what);
void store_bind_text(sqlite3_stmt *s, int i, const char *v); /* SQLITE_STATIC */
void store_bind_blob_or_null(sqlite3_stmt *s, int i, const uint8_t *v, size_t len);
void store_col_text(sqlite3_stmt *s, int i, char *out, size_t cap);
size_t store_col_blob(sqlite3_stmt *s, int i, uint8_t *out, size_t cap);

#endif
