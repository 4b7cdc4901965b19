/*
 * backend: what a store backend implements, and what it must guarantee.
 *
 * The rest of consentd calls the store_* functions of store.h; each one
 * dispatches through the function table of the backend that opened the
 * store (libgit2's refdb and odb backends work the same way). The SQLite
 * backend (store.c, store_bulk.c, store_links.c; store_internal.h) is the
 * first, the PostgreSQL backend (pg.c) the second; store_open picks the
 * backend from the `database` setting: a file path is SQLite, a
 * postgresql:// URI is PostgreSQL (refused when built without libpq). An
 * entry a backend leaves NULL fails with ERR_UNSUPPORTED naming it. Nothing here names a type of any database
 * library, so a libpq backend implements this header as it is.
 *
 * A backend embeds `struct store` and `struct store_conn` (and the cursor
 * bases) as the FIRST member of its own structs, sets `be` to its table,
 * and converts the pointers it is given back to its own structs.
 *
 * Every backend must guarantee, and tests/store/conformance.c checks:
 *
 * 1. Transactions. store_begin opens a transaction that takes the write lock
 *    at once (no other writer can start until it ends); store_commit makes
 *    all of its writes visible together, store_rollback none of them.
 *    Savepoints nest inside it: store_rollback_to undoes the writes since
 *    the last store_savepoint and keeps the transaction; store_release ends
 *    the savepoint keeping them. A failed write inside a transaction leaves
 *    the transaction usable for rollback.
 * 2. Durability at commit. When store_commit returns 0 on the writer
 *    connection (store_writer_open) the transaction survives a crash or a
 *    power cut. The writer answers a request only after that, so a backend
 *    that acknowledges a commit early breaks the audit promise.
 * 3. One writer. Exactly one writer connection exists; every write goes
 *    through it (service/writer.c). Reader connections (store_conn_get) see
 *    committed data only, each read statement one consistent snapshot, and
 *    may run while the writer works.
 * 4. Ordering. Lists come back in the order each store.h function states:
 *    audit entries by seq, checkpoints by size, suppressions and history
 *    oldest first (ties by insertion order).
 * 5. The audit append. The audit and checkpoint tables are append-only:
 *    store_audit_append and store_checkpoint_append insert, nothing updates
 *    or deletes their rows, also not through any other call, and the backend
 *    refuses it at the database level where it can (SQLite: triggers and an
 *    authorizer). Entries are stored byte for byte as given (strings, the 32
 *    byte hashes) and come back identical, since their hash covers them; seq
 *    is the caller's and must be contiguous: an append whose seq is not
 *    head + 1 fails. store_audit_head and store_audit_hash_at read inside
 *    the caller's transaction.
 * 6. Errors. Every operation returns 0 or an ERR_* code with a message
 *    (err_set) that names no personal data: ERR_CONFLICT for a unique key
 *    (a second contact with the same email blind index), ERR_NOTFOUND for a
 *    missing row, ERR_UNAVAILABLE for a full disk or an unreachable server,
 *    ERR_IO for other failures. Nothing is cut to fit: a value longer than
 *    its field in store.h is refused, never truncated.
 * 7. Nothing plaintext. The store only ever receives sealed values and
 *    keyed hashes; a backend must not log the values it is given.
 * 8. Batched lookups. filter_by_email_many and release_recent_many may be
 *    NULL; store.h then loops over filter_by_email and release_recent. A
 *    backend with a round trip per query (libpq) should implement them
 *    with one query for the whole batch.
 * 9. Batched writes. contacts_insert_many, fields_put_many,
 *    consents_put_many and suppressions_add_many may be NULL; backend.c then
 *    loops over the single-row call. Each must leave exactly what that loop
 *    leaves (rows, their order, which were duplicates); a backend with a
 *    round trip per statement implements them as one statement per batch.
 *
 * Each operation's own contract is the comment at its store_* function in
 * store.h.
 */
#ifndef CONSENTD_STORE_BACKEND_H
#define CONSENTD_STORE_BACKEND_H

#include "service/store/store.h"

struct store_backend;

/* The bases a backend's own structs start with. */
struct store {
	const struct store_backend *be;
};

struct store_conn {
	const struct store_backend *be;
	struct store *st;
};

struct store_audit_cursor {
	struct store_conn *c;
};

struct store_checkpoint_cursor {
	struct store_conn *c;
};

struct store_backend {
	const char *name;
	/* Whether this backend serves a `database` setting. */
	bool (*accepts)(const char *location);
	int (*open)(struct store **out, const char *path);
	void (*close)(struct store *st);
	int (*schema_version)(struct store *st);
	int (*conn_get)(struct store *st, struct store_conn **out);
	void (*conn_put)(struct store *st, struct store_conn *c);
	int (*conn_bulk_mode)(struct store_conn *c);
	int (*writer_open)(struct store *st, struct store_conn **out);
	void (*conn_free)(struct store_conn *c);
	int (*wal_truncate)(struct store_conn *w, int wait_ms);
	int (*begin)(struct store_conn *c);
	int (*commit)(struct store_conn *c);
	int (*rollback)(struct store_conn *c);
	int (*savepoint)(struct store_conn *c);
	int (*release)(struct store_conn *c);
	int (*rollback_to)(struct store_conn *c);
	void (*fault_audit)(struct store *st, bool fail);
	int (*contact_insert)(struct store_conn *c, const struct store_contact *ct, const uint8_t *email_bidx,
			      const uint8_t *phone_bidx);
	/* May be NULL (see guarantee 9). */
	int (*contacts_insert_many)(struct store_conn *c, struct store_contact_new *rows, size_t n);
	int (*contact_get)(struct store_conn *c, const char *id, struct store_contact *out);
	int (*contact_update)(struct store_conn *c, const struct store_contact *ct);
	int (*contact_set_index)(struct store_conn *c, const char *id, const uint8_t *email_bidx,
				 const uint8_t *phone_bidx, const uint8_t *email_shash,
				 const uint8_t *phone_shash);
	int (*contact_find_email)(struct store_conn *c, const uint8_t bidx[32], char id_out[STORE_ID_CAP]);
	int (*contact_erase)(struct store_conn *c, const char *id, int64_t when_us);
	int (*contact_count)(struct store_conn *c, int64_t *out);
	int (*field_put)(struct store_conn *c, const char *id, const char *name, const uint8_t *sealed,
			 size_t len);
	int (*fields_put_many)(struct store_conn *c, const struct store_field_new *rows, size_t n);
	int (*field_delete)(struct store_conn *c, const char *id, const char *name);
	int (*fields_each)(struct store_conn *c, const char *id, store_field_cb cb, void *ctx);
	int (*contacts_rewrap)(struct store_conn *c, store_rewrap_cb cb, void *ctx, int64_t *count);
	int (*key_versions_in_use)(struct store_conn *c, int *versions, int cap, int *n);
	int (*key_check_get)(struct store_conn *c, const char *name, uint8_t kcv[32]);
	int (*key_check_add)(struct store_conn *c, const char *name, const uint8_t kcv[32]);
	/* Optional (NULL: nothing to size): the most connections the store may
	 * open, the writer's included. */
	int (*set_pool_size)(struct store *st, int n);
	int (*consent_put)(struct store_conn *c, const struct store_consent *cs, bool current);
	int (*consents_put_many)(struct store_conn *c, const struct store_consent_new *rows, size_t n);
	int (*consent_get)(struct store_conn *c, const char *contact_id, const char *purpose,
			   const char *channel, struct store_consent *out);
	int (*consents_each)(struct store_conn *c, const char *contact_id, store_consent_cb cb, void *ctx);
	int (*consent_history_each)(struct store_conn *c, const char *contact_id, store_consent_cb cb,
				    void *ctx);
	int (*consent_history_count)(struct store_conn *c, const char *contact_id, int64_t *out);
	int (*suppression_match)(struct store_conn *c, const uint8_t *hash_a, const uint8_t *hash_b,
				 const struct store_scope_keys *keys, char reason[STORE_NAME_CAP]);
	int (*principal_insert)(struct store_conn *c, const char *name, const char *role,
				const uint8_t token_hash[32], int64_t when_us);
	int (*principal_find)(struct store_conn *c, const uint8_t token_hash[32], char name[STORE_TEXT_CAP],
			      char role[STORE_NAME_CAP]);
	int (*principal_revoke)(struct store_conn *c, const char *name, int64_t when_us);
	int (*audit_head)(struct store_conn *c, int64_t *seq, uint8_t hash[32]);
	int (*audit_append)(struct store_conn *c, const struct audit_entry *e);
	int (*checkpoint_append)(struct store_conn *c, const struct audit_checkpoint *cp);
	int (*checkpoint_latest)(struct store_conn *c, struct audit_checkpoint *out);
	int (*audit_cursor_open)(struct store_conn *c, const struct store_audit_filter *f,
				 struct store_audit_cursor **out);
	int (*audit_cursor_next)(struct store_audit_cursor *cur, struct audit_entry *e);
	void (*audit_cursor_close)(struct store_audit_cursor *cur);
	int (*audit_hash_at)(struct store_conn *c, int64_t seq, uint8_t hash[32]);
	int (*checkpoint_cursor_open)(struct store_conn *c, int64_t after_size,
				      struct store_checkpoint_cursor **out);
	int (*checkpoint_cursor_next)(struct store_checkpoint_cursor *cur, struct audit_checkpoint *cp);
	void (*checkpoint_cursor_close)(struct store_checkpoint_cursor *cur);
	int (*link_insert)(struct store_conn *c, const struct store_link *l);
	int (*link_get)(struct store_conn *c, const char *id, struct store_link *out);
	int (*link_revoke)(struct store_conn *c, const char *contact_id, const char *id, int64_t when_us);
	int (*links_revoke_contact)(struct store_conn *c, const char *contact_id, int64_t when_us,
				    int64_t *count);
	int (*links_revoke_mintable)(struct store_conn *c, const char *contact_id, bool may_manage,
				     const char *purposes, int64_t when_us, int64_t *count);
	/* auditor console (store_console.c) */
	int (*console_session_insert)(struct store_conn *c, const struct store_console_session *cs);
	int (*console_session_get)(struct store_conn *c, const uint8_t id_hash[32],
				   struct store_console_session *out);
	int (*console_session_touch)(struct store_conn *c, const uint8_t id_hash[32], int64_t seen_us);
	int (*console_session_delete)(struct store_conn *c, const uint8_t id_hash[32]);
	int (*console_sessions_expire)(struct store_conn *c, int64_t idle_before_us,
				       int64_t created_before_us, int64_t *count);
	int (*console_stats)(struct store_conn *c, enum store_console_stat which, int64_t since_us,
			     store_console_stat_cb cb, void *ctx);
	int (*console_find_phone)(struct store_conn *c, const uint8_t bidx[32], char (*ids)[STORE_ID_CAP],
				  size_t cap, size_t *n, bool *more);
	int (*principal_role)(struct store_conn *c, const char *name, char role[STORE_NAME_CAP]);
	int (*subject_suppressions_each)(struct store_conn *c, const uint8_t *hash_a, const uint8_t *hash_b,
					 store_subject_suppression_cb cb, void *ctx);
	int (*filter_by_email)(struct store_conn *c, const uint8_t bidx[32], const uint8_t list_hash[32],
			       const char *purpose, const char *channel, const struct store_scope_keys *keys,
			       struct store_filter_row *out);
	/* May be NULL (see guarantee 8). */
	int (*filter_by_email_many)(struct store_conn *c, size_t n, const uint8_t (*bidx)[32],
				    const uint8_t (*list_hash)[32], const char *purpose, const char *channel,
				    const struct store_scope_keys *keys, struct store_filter_row *out);
	int (*filter_by_id)(struct store_conn *c, const char *id, const char *purpose, const char *channel,
			    const struct store_scope_keys *keys, struct store_filter_row *out);
	int (*release_put)(struct store_conn *c, const char *release_id, int64_t chunk, const uint8_t *ids,
			   size_t n_ids);
	int (*release_find)(struct store_conn *c, const char *release_id, const uint8_t id_raw[16]);
	int (*release_count)(struct store_conn *c, const char *release_id, int64_t *out);
	int (*release_log_put)(struct store_conn *c, const char *release_id, const char *purpose,
			       const char *channel, int64_t at_us, const uint8_t *ids, size_t n_ids);
	int (*release_recent)(struct store_conn *c, const uint8_t id_raw[16], const char *purpose,
			      const char *channel, int64_t after_us, int64_t limit, int64_t *count,
			      int64_t *last_us);
	/* May be NULL (see guarantee 8). */
	int (*release_recent_many)(struct store_conn *c, size_t n, const uint8_t (*ids)[16],
				   const char *purpose, const char *channel, int64_t after_us, int64_t limit,
				   int64_t *count, int64_t *last_us);
	int (*release_log_each)(struct store_conn *c, const uint8_t id_raw[16], int64_t limit,
				store_release_log_cb cb, void *ctx);
	int (*release_summary_put)(struct store_conn *c, const char *release_id, int64_t at_us,
				   const char *summary);
	int (*release_summary_get)(struct store_conn *c, const char *release_id, int64_t *at_us,
				   char **summary);
	int (*frequency_put)(struct store_conn *c, const char *contact_id, const struct store_frequency *fq);
	int (*frequency_get)(struct store_conn *c, const char *contact_id, const char *purpose,
			     const char *channel, struct store_frequency *out);
	int (*frequency_each)(struct store_conn *c, const char *contact_id, store_frequency_cb cb, void *ctx);
	int (*release_times_many)(struct store_conn *c, size_t n, const uint8_t *ids, const char *purpose,
				  const char *channel, int64_t after_us, int64_t limit, int64_t *times,
				  int64_t *counts);
	int (*suppression_add)(struct store_conn *c, const struct store_suppression *sp);
	int (*suppressions_add_many)(struct store_conn *c, const struct store_suppression *sp, size_t n,
				     bool *added);
	int (*suppressions_active)(struct store_conn *c, const uint8_t hash[32], store_suppression_cb cb,
				   void *ctx);
	int (*suppressions_lift)(struct store_conn *c, const uint8_t hash[32], const char *scope,
				 const char *scope_value, const char *reasons, int64_t when_us,
				 const char *by, int64_t *lifted);
	int (*provider_event_once)(struct store_conn *c, const char *provider, const uint8_t id_hash[32],
				   int64_t received_us);
	/* the mail outbox (store_mail.c) */
	int (*mail_put)(struct store_conn *c, const struct store_mail *m);
	int (*mail_pending)(struct store_conn *c, size_t max, int64_t now_us, store_mail_cb cb, void *ctx);
	int (*mail_mark)(struct store_conn *c, const char *id, enum store_mail_outcome outcome,
			 int64_t when_us);
	int (*mail_claim)(struct store_conn *c, const char *owner, size_t max, int64_t now_us,
			  int64_t until_us, store_mail_cb cb, void *ctx);
	int (*mail_release)(struct store_conn *c, const char *owner);
	int (*form_nonce_spend)(struct store_conn *c, const uint8_t *nonce, size_t len, int64_t now_us,
				int64_t expires_us);
	int (*form_nonce_spent)(struct store_conn *c, const uint8_t *nonce, size_t len, int64_t now_us,
				bool *spent);
	/* double opt-in confirmations (store_mail.c) */
	int (*confirmation_put)(struct store_conn *c, const struct store_confirmation *cf);
	int (*confirmation_get)(struct store_conn *c, const char *id, struct store_confirmation *out);
	int (*confirmation_done)(struct store_conn *c, const char *id, int64_t when_us);
	/* data-subject requests (store_requests.c) */
	int (*request_put)(struct store_conn *c, const struct store_request *r);
	int (*request_update)(struct store_conn *c, const struct store_request *r, int64_t prev_steps);
	int (*request_get)(struct store_conn *c, const char *id, struct store_request *out);
	int (*requests_each)(struct store_conn *c, const char *state, int64_t due_before_day, size_t max,
			     store_request_cb cb, void *ctx, bool *more);
	int (*request_step_put)(struct store_conn *c, const struct store_request_step *st);
	int (*request_steps_each)(struct store_conn *c, const char *request_id, store_request_step_cb cb,
				  void *ctx);
	int (*requests_due_counts)(struct store_conn *c, int64_t today_day, int64_t soon_day,
				   int64_t *overdue, int64_t *due_soon);
	/* outbound webhooks (store_webhooks.c) */
	int (*webhook_insert)(struct store_conn *c, const struct store_webhook *w);
	int (*webhook_get)(struct store_conn *c, const char *id, struct store_webhook *out);
	int (*webhooks_each)(struct store_conn *c, store_webhook_cb cb, void *ctx, int64_t *n);
	int (*webhook_delete)(struct store_conn *c, const char *id, int64_t when_us);
	int (*webhook_disable)(struct store_conn *c, const char *id, int64_t when_us, const char *reason);
	int (*webhook_subscribers)(struct store_conn *c, const char *type, int64_t *n);
	int (*outbox_next_version)(struct store_conn *c, const char *contact_id, int64_t *version);
	int (*outbox_add)(struct store_conn *c, const char *type, const char *contact_id, int64_t version,
			  const char *body, const uint8_t *personal, size_t personal_len, int64_t created_us,
			  int64_t *queued);
	int (*outbox_forget_personal)(struct store_conn *c, const char *contact_id);
	int (*deliveries_each)(struct store_conn *c, const char *endpoint_id, int limit, store_delivery_cb cb,
			       void *ctx);
	int (*deliveries_due)(struct store_conn *c, int64_t now_us, int limit, store_delivery_cb cb,
			      void *ctx);
	int (*webhook_claim)(struct store_conn *c, const char *endpoint_id, const char *owner, int64_t now_us,
			     int64_t until_us);
	int (*webhook_release)(struct store_conn *c, const char *endpoint_id, const char *owner);
	int (*delivery_record)(struct store_conn *c, const struct store_delivery *d);
	int (*delivery_retry)(struct store_conn *c, const char *endpoint_id, const char *id, int64_t now_us);
	int (*outbox_stats)(struct store_conn *c, int64_t *pending, int64_t *oldest_us);
};

/* The backends built into this binary. */
extern const struct store_backend store_sqlite_backend;
#ifdef CONSENTD_WITH_POSTGRES
extern const struct store_backend store_pg_backend; /* pg.c */
#endif

#endif
