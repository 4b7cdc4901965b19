/*
 * store_internal: what the SQLite backend's own files share (store.c,
 * store_bulk.c, store_links.c). The backend may be split
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

#include "service/store/backend.h"
#include "service/base/limits.h"
#include "service/store/store.h"

#define STORE_POOL_MAX 32
#define STORE_EXTRA_STMTS 64
#define STORE_BUILTIN_STMTS 64

/* A connection of the SQLite backend; base first, so the interface's handle
 * and this struct are the same pointer (sq_conn converts). */
struct sqlite_conn {
	struct store_conn base;
	sqlite3 *db;
	sqlite3_stmt *stmts[STORE_BUILTIN_STMTS];
	struct {
		const char *sql;
		sqlite3_stmt *stmt;
	} extra[STORE_EXTRA_STMTS];
	int n_extra;
	bool bulk; /* a larger page cache until store_conn_put */
};

struct sqlite_store {
	struct store base;
	char *path;
	pthread_mutex_t lock;
	struct store_conn *pool[STORE_POOL_MAX];
	int pool_n;
	atomic_bool fault_audit;
	bool faults_allowed;
	char fault_path[LIMIT_DERIVED_PATH_CAP];
	int schema_version;
	/* the WAL checkpointer (see store.c) */
	pthread_t ckpt_thread;
	pthread_mutex_t ckpt_lock;
	pthread_cond_t ckpt_cond;
	bool ckpt_running, ckpt_wanted, ckpt_stop;
};

static inline struct sqlite_conn *sq_conn(struct store_conn *c)
{
	return (struct sqlite_conn *)c;
}

static inline struct sqlite_store *sq_store(struct store *st)
{
	return (struct sqlite_store *)st;
}

/* The backend's operations (its table store_sqlite_backend is in store.c), one per store_* call of
 * store.h with the same contract; store_bulk.c and store_links.c implement
 * some of them. */
int sqlite_open(struct store **out, const char *path);
void sqlite_close(struct store *st);
int sqlite_schema_version(struct store *st);
int sqlite_conn_get(struct store *st, struct store_conn **out);
void sqlite_conn_put(struct store *st, struct store_conn *c);
int sqlite_conn_bulk_mode(struct store_conn *c);
int sqlite_writer_open(struct store *st, struct store_conn **out);
void sqlite_conn_free(struct store_conn *c);
int sqlite_wal_truncate(struct store_conn *w, int wait_ms);
int sqlite_begin(struct store_conn *c);
int sqlite_commit(struct store_conn *c);
int sqlite_rollback(struct store_conn *c);
int sqlite_savepoint(struct store_conn *c);
int sqlite_release(struct store_conn *c);
int sqlite_rollback_to(struct store_conn *c);
void sqlite_fault_audit(struct store *st, bool fail);
int sqlite_contact_insert(struct store_conn *c, const struct store_contact *ct, const uint8_t *email_bidx,
			  const uint8_t *phone_bidx);
int sqlite_contact_get(struct store_conn *c, const char *id, struct store_contact *out);
int sqlite_contact_update(struct store_conn *c, const struct store_contact *ct);
int sqlite_contact_set_index(struct store_conn *c, const char *id, const uint8_t *email_bidx,
			     const uint8_t *phone_bidx, const uint8_t *email_shash,
			     const uint8_t *phone_shash);
int sqlite_contact_find_email(struct store_conn *c, const uint8_t bidx[32], char id_out[STORE_ID_CAP]);
int sqlite_contact_erase(struct store_conn *c, const char *id, int64_t when_us);
int sqlite_contact_count(struct store_conn *c, int64_t *out);
int sqlite_field_put(struct store_conn *c, const char *id, const char *name, const uint8_t *sealed,
		     size_t len);
int sqlite_field_delete(struct store_conn *c, const char *id, const char *name);
int sqlite_fields_each(struct store_conn *c, const char *id, store_field_cb cb, void *ctx);
int sqlite_contacts_rewrap(struct store_conn *c, store_rewrap_cb cb, void *ctx, int64_t *count);
int sqlite_key_versions_in_use(struct store_conn *c, int *versions, int cap, int *n);
int sqlite_key_check_get(struct store_conn *c, const char *name, uint8_t kcv[32]);
int sqlite_key_check_add(struct store_conn *c, const char *name, const uint8_t kcv[32]);
int sqlite_consent_put(struct store_conn *c, const struct store_consent *cs, bool current);
int sqlite_consent_get(struct store_conn *c, const char *contact_id, const char *purpose, const char *channel,
		       struct store_consent *out);
int sqlite_consents_each(struct store_conn *c, const char *contact_id, store_consent_cb cb, void *ctx);
int sqlite_consent_history_each(struct store_conn *c, const char *contact_id, store_consent_cb cb, void *ctx);
int sqlite_consent_history_count(struct store_conn *c, const char *contact_id, int64_t *out);
int sqlite_suppression_match(struct store_conn *c, const uint8_t *hash_a, const uint8_t *hash_b,
			     const struct store_scope_keys *keys, char reason[STORE_NAME_CAP]);
int sqlite_principal_insert(struct store_conn *c, const char *name, const char *role,
			    const uint8_t token_hash[32], int64_t when_us);
int sqlite_principal_find(struct store_conn *c, const uint8_t token_hash[32], char name[STORE_TEXT_CAP],
			  char role[STORE_NAME_CAP]);
int sqlite_principal_revoke(struct store_conn *c, const char *name, int64_t when_us);
int sqlite_audit_head(struct store_conn *c, int64_t *seq, uint8_t hash[32]);
int sqlite_audit_append(struct store_conn *c, const struct audit_entry *e);
int sqlite_checkpoint_append(struct store_conn *c, const struct audit_checkpoint *cp);
int sqlite_checkpoint_latest(struct store_conn *c, struct audit_checkpoint *out);
int sqlite_audit_cursor_open(struct store_conn *c, const struct store_audit_filter *f,
			     struct store_audit_cursor **out);
int sqlite_audit_cursor_next(struct store_audit_cursor *cur, struct audit_entry *e);
void sqlite_audit_cursor_close(struct store_audit_cursor *cur);
int sqlite_audit_hash_at(struct store_conn *c, int64_t seq, uint8_t hash[32]);
int sqlite_checkpoint_cursor_open(struct store_conn *c, int64_t after_size,
				  struct store_checkpoint_cursor **out);
int sqlite_checkpoint_cursor_next(struct store_checkpoint_cursor *cur, struct audit_checkpoint *cp);
void sqlite_checkpoint_cursor_close(struct store_checkpoint_cursor *cur);
int sqlite_link_insert(struct store_conn *c, const struct store_link *l);
int sqlite_link_get(struct store_conn *c, const char *id, struct store_link *out);
int sqlite_link_revoke(struct store_conn *c, const char *contact_id, const char *id, int64_t when_us);
int sqlite_links_revoke_contact(struct store_conn *c, const char *contact_id, int64_t when_us,
				int64_t *count);
int sqlite_links_revoke_mintable(struct store_conn *c, const char *contact_id, bool may_manage,
				 const char *purposes, int64_t when_us, int64_t *count);
int sqlite_console_session_insert(struct store_conn *c, const struct store_console_session *cs);
int sqlite_console_session_get(struct store_conn *c, const uint8_t id_hash[32],
			       struct store_console_session *out);
int sqlite_console_session_touch(struct store_conn *c, const uint8_t id_hash[32], int64_t seen_us);
int sqlite_console_session_delete(struct store_conn *c, const uint8_t id_hash[32]);
int sqlite_console_sessions_expire(struct store_conn *c, int64_t idle_before_us, int64_t created_before_us,
				   int64_t *count);
int sqlite_console_stats(struct store_conn *c, enum store_console_stat which, int64_t since_us,
			 store_console_stat_cb cb, void *ctx);
int sqlite_console_find_phone(struct store_conn *c, const uint8_t bidx[32], char (*ids)[STORE_ID_CAP],
			      size_t cap, size_t *n, bool *more);
int sqlite_principal_role(struct store_conn *c, const char *name, char role[STORE_NAME_CAP]);
int sqlite_subject_suppressions_each(struct store_conn *c, const uint8_t *hash_a, const uint8_t *hash_b,
				     store_subject_suppression_cb cb, void *ctx);
int sqlite_filter_by_email(struct store_conn *c, const uint8_t bidx[32], const uint8_t list_hash[32],
			   const char *purpose, const char *channel, const struct store_scope_keys *keys,
			   struct store_filter_row *out);
int sqlite_filter_by_email_many(struct store_conn *c, size_t n, const uint8_t (*bidx)[32],
				const uint8_t (*list_hash)[32], const char *purpose, const char *channel,
				const struct store_scope_keys *keys, struct store_filter_row *out);
int sqlite_filter_by_id(struct store_conn *c, const char *id, const char *purpose, const char *channel,
			const struct store_scope_keys *keys, struct store_filter_row *out);
int sqlite_release_put(struct store_conn *c, const char *release_id, int64_t chunk, const uint8_t *ids,
		       size_t n_ids);
int sqlite_release_find(struct store_conn *c, const char *release_id, const uint8_t id_raw[16]);
int sqlite_release_count(struct store_conn *c, const char *release_id, int64_t *out);
int sqlite_release_log_put(struct store_conn *c, const char *release_id, const char *purpose,
			   const char *channel, int64_t at_us, const uint8_t *ids, size_t n_ids);
int sqlite_release_recent_many(struct store_conn *c, size_t n, const uint8_t (*ids)[16], const char *purpose,
			       const char *channel, int64_t after_us, int64_t limit, int64_t *count,
			       int64_t *last_us);
int sqlite_release_recent(struct store_conn *c, const uint8_t id_raw[16], const char *purpose,
			  const char *channel, int64_t after_us, int64_t limit, int64_t *count,
			  int64_t *last_us);
int sqlite_release_log_each(struct store_conn *c, const uint8_t id_raw[16], int64_t limit,
			    store_release_log_cb cb, void *ctx);
int sqlite_release_summary_put(struct store_conn *c, const char *release_id, int64_t at_us,
			       const char *summary);
int sqlite_release_summary_get(struct store_conn *c, const char *release_id, int64_t *at_us, char **summary);
int sqlite_frequency_put(struct store_conn *c, const char *contact_id, const struct store_frequency *fq);
int sqlite_frequency_get(struct store_conn *c, const char *contact_id, const char *purpose,
			 const char *channel, struct store_frequency *out);
int sqlite_frequency_each(struct store_conn *c, const char *contact_id, store_frequency_cb cb, void *ctx);
int sqlite_release_times_many(struct store_conn *c, size_t n, const uint8_t *ids, const char *purpose,
			      const char *channel, int64_t after_us, int64_t limit, int64_t *times,
			      int64_t *counts);
int sqlite_suppression_add(struct store_conn *c, const struct store_suppression *sp);
int sqlite_suppressions_active(struct store_conn *c, const uint8_t hash[32], store_suppression_cb cb,
			       void *ctx);
int sqlite_suppressions_lift(struct store_conn *c, const uint8_t hash[32], const char *scope,
			     const char *scope_value, const char *reasons, int64_t when_us, const char *by,
			     int64_t *lifted);
int sqlite_provider_event_once(struct store_conn *c, const char *provider, const uint8_t id_hash[32],
			       int64_t received_us);
int sqlite_mail_put(struct store_conn *c, const struct store_mail *m);
int sqlite_mail_pending(struct store_conn *c, size_t max, int64_t now_us, store_mail_cb cb, void *ctx);
int sqlite_mail_mark(struct store_conn *c, const char *id, enum store_mail_outcome outcome, int64_t when_us);
int sqlite_mail_claim(struct store_conn *c, const char *owner, size_t max, int64_t now_us, int64_t until_us,
		      store_mail_cb cb, void *ctx);
int sqlite_mail_release(struct store_conn *c, const char *owner);
int sqlite_form_nonce_spend(struct store_conn *c, const uint8_t *nonce, size_t len, int64_t now_us,
			    int64_t expires_us);
int sqlite_form_nonce_spent(struct store_conn *c, const uint8_t *nonce, size_t len, int64_t now_us,
			    bool *spent);
int sqlite_confirmation_put(struct store_conn *c, const struct store_confirmation *cf);
int sqlite_confirmation_get(struct store_conn *c, const char *id, struct store_confirmation *out);
int sqlite_confirmation_done(struct store_conn *c, const char *id, int64_t when_us);
/* store_requests.c */
int sqlite_request_put(struct store_conn *c, const struct store_request *r);
int sqlite_request_update(struct store_conn *c, const struct store_request *r, int64_t prev_steps);
int sqlite_request_get(struct store_conn *c, const char *id, struct store_request *out);
int sqlite_requests_each(struct store_conn *c, const char *state, int64_t due_before_day, size_t max,
			 store_request_cb cb, void *ctx, bool *more);
int sqlite_request_step_put(struct store_conn *c, const struct store_request_step *st);
int sqlite_request_steps_each(struct store_conn *c, const char *request_id, store_request_step_cb cb,
			      void *ctx);
int sqlite_requests_due_counts(struct store_conn *c, int64_t today_day, int64_t soon_day, int64_t *overdue,
			       int64_t *due_soon);
int sqlite_webhook_insert(struct store_conn *c, const struct store_webhook *w);
int sqlite_webhook_get(struct store_conn *c, const char *id, struct store_webhook *out);
int sqlite_webhooks_each(struct store_conn *c, store_webhook_cb cb, void *ctx, int64_t *n);
int sqlite_webhook_delete(struct store_conn *c, const char *id, int64_t when_us);
int sqlite_webhook_disable(struct store_conn *c, const char *id, int64_t when_us, const char *reason);
int sqlite_webhook_subscribers(struct store_conn *c, const char *type, int64_t *n);
int sqlite_outbox_next_version(struct store_conn *c, const char *contact_id, int64_t *version);
int sqlite_outbox_add(struct store_conn *c, const char *type, const char *contact_id, int64_t version,
		      const char *body, const uint8_t *personal, size_t personal_len, int64_t created_us,
		      int64_t *queued);
int sqlite_outbox_forget_personal(struct store_conn *c, const char *contact_id);
int sqlite_deliveries_each(struct store_conn *c, const char *endpoint_id, int limit, store_delivery_cb cb,
			   void *ctx);
int sqlite_deliveries_due(struct store_conn *c, int64_t now_us, int limit, store_delivery_cb cb, void *ctx);
int sqlite_webhook_claim(struct store_conn *c, const char *endpoint_id, const char *owner, int64_t now_us,
			 int64_t until_us);
int sqlite_webhook_release(struct store_conn *c, const char *endpoint_id, const char *owner);
int sqlite_delivery_record(struct store_conn *c, const struct store_delivery *d);
int sqlite_delivery_retry(struct store_conn *c, const char *endpoint_id, const char *id, int64_t now_us);
int sqlite_outbox_stats(struct store_conn *c, int64_t *pending, int64_t *oldest_us);

/* A prepared statement for sql (a string with static storage), cached per
 * connection; NULL with err_set() on failure. */
sqlite3_stmt *store_stmt_sql(struct store_conn *c, const char *sql);

/* Maps an SQLite result code to an ERR_* (constraint -> ERR_CONFLICT, full
 * disk or I/O -> ERR_UNAVAILABLE) and sets the message. */
int store_db_error(sqlite3 *db, int rc, const char *what);
/* Steps a statement that returns no rows we need, then resets it. */
int store_step_done(struct store_conn *c, sqlite3_stmt *s, const char *what);
void store_bind_text(sqlite3_stmt *s, int i, const char *v); /* SQLITE_STATIC */
/* Binds the STORE_SCOPE_KEYS pairs of keys to ?first .. ?(first + 5). */
void store_bind_scope_keys(sqlite3_stmt *s, int first, const struct store_scope_keys *keys);
void store_bind_blob_or_null(sqlite3_stmt *s, int i, const uint8_t *v, size_t len);
void store_col_text(sqlite3_stmt *s, int i, char *out, size_t cap);
size_t store_col_blob(sqlite3_stmt *s, int i, uint8_t *out, size_t cap);

#endif
