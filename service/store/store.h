/*
 * store: the one narrow interface to persistent state. Callers use these
 * functions only; each dispatches to the backend that opened the store
 * (backend.h says what every backend guarantees). The SQLite backend is
 * store.c, store_bulk.c and store_links.c, the only files that include
 * sqlite3.h; store_open picks it for a file path. A postgresql:// URI
 * opens the PostgreSQL backend (pg.c, libpq) when consentd is built with it.
 *
 * Threading: a `struct store` is shared; a `struct store_conn` is used by one
 * thread at a time. Readers take a connection from the pool (store_conn_get /
 * store_conn_put). Exactly one writer connection exists, owned by the audit
 * writer's commit thread (service/writer.c), which batches every write and every
 * audit entry into group-committed transactions.
 *
 * What is stored is never plaintext personal data: field values and consent
 * evidence arrive sealed by fieldcrypt, emails and phones only as keyed
 * hashes. The audit tables refuse UPDATE and DELETE (triggers, an authorizer
 * on every connection, and SQLite's defensive mode).
 *
 * Strings in the structs below are NUL-terminated copies; blobs returned
 * through callbacks are borrowed for the duration of the call.
 */
#ifndef CONSENTD_STORE_H
#define CONSENTD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "service/base/auditrec.h"
#include "service/base/limits.h"

struct store;
struct store_conn;

#define STORE_ID_CAP (CONTACT_ID_BYTES + 1)
#define STORE_NAME_CAP (LIMIT_NAME_BYTES + 1)
#define STORE_TEXT_CAP 256
#define STORE_LIST_CAP 1024 /* comma-separated names */
#define STORE_WRAPPED_CAP 64

/* Opens the store the `database` setting names: a file path opens (creating
 * if needed) an SQLite database and applies migrations; a postgresql:// URI
 * connects to PostgreSQL and applies its migrations (ERR_UNAVAILABLE when
 * the server does not answer), or is refused with ERR_INVALID ("not built
 * in") in a consentd built without libpq. */
int store_open(struct store **out, const char *location);
void store_close(struct store *st);
int store_schema_version(struct store *st);

/* A reader connection from the pool; give it back with store_conn_put. */
int store_conn_get(struct store *st, struct store_conn **out);
void store_conn_put(struct store *st, struct store_conn *c);
/* A larger page cache for one bulk request's lookups; store_conn_put gives
 * the memory back before the connection returns to the pool. */
int store_conn_bulk_mode(struct store_conn *c);
/* The writer connection: synchronous=FULL, so COMMIT returns after fsync. */
int store_writer_open(struct store *st, struct store_conn **out);
void store_conn_free(struct store_conn *c);
/* On the writer, outside a transaction: copies every WAL frame into the
 * database file and truncates the WAL to zero bytes, so no older version of
 * any page is left in it (an erasure's promise). Readers on an older
 * snapshot, or a checkpoint under way, hold it up: it retries for up to
 * wait_ms and then returns ERR_UNAVAILABLE (0: one try). */
int store_wal_truncate(struct store_conn *w, int wait_ms);

int store_begin(struct store_conn *c); /* BEGIN IMMEDIATE */
int store_commit(struct store_conn *c);
int store_rollback(struct store_conn *c);
int store_savepoint(struct store_conn *c);
int store_release(struct store_conn *c);
int store_rollback_to(struct store_conn *c);

/* Faults for tests: when set, every audit append fails with ERR_IO. Only
 * honoured when the environment variable CONSENTD_TEST_FAULTS=1. */
void store_fault_audit(struct store *st, bool fail);

/* ---- contacts ---------------------------------------------------------- */

struct store_contact {
	char id[STORE_ID_CAP];
	int64_t created_us, updated_us;
	bool erased;
	char collected_for[STORE_LIST_CAP];
	char source[STORE_TEXT_CAP];
	char owner[STORE_TEXT_CAP];
	int key_version;
	uint8_t wrapped_key[STORE_WRAPPED_CAP];
	size_t wrapped_len;
	/* Keyed hashes of the normalised email and phone under the suppression
	 * key: erasure turns them into suppressions without decrypting. */
	bool has_email_shash, has_phone_shash;
	uint8_t email_shash[32], phone_shash[32];
};

/* ERR_CONFLICT when the email blind index already names a contact. */
int store_contact_insert(struct store_conn *c, const struct store_contact *ct, const uint8_t *email_bidx,
			 const uint8_t *phone_bidx);
/* One contact of store_contacts_insert_many. */
struct store_contact_new {
	const struct store_contact *ct;
	const uint8_t *email_bidx, *phone_bidx; /* NULL: none */
	bool duplicate;				/* out: the email blind index already named a contact */
};
/* Inserts rows[0..n) in order, as n store_contact_insert calls would, in
 * one round trip where the backend can: a row whose email blind index
 * already names a contact (stored before, or an earlier row of the same
 * call) is not inserted and gets duplicate set, and the transaction stays
 * usable. Any other failure fails the call (the caller rolls back). */
int store_contacts_insert_many(struct store_conn *c, struct store_contact_new *rows, size_t n);
int store_contact_get(struct store_conn *c, const char *id, struct store_contact *out);
int store_contact_update(struct store_conn *c, const struct store_contact *ct);
/* Replaces the blind indexes and suppression hashes (NULL clears one);
 * ERR_CONFLICT on a duplicate email. */
int store_contact_set_index(struct store_conn *c, const char *id, const uint8_t *email_bidx,
			    const uint8_t *phone_bidx, const uint8_t *email_shash,
			    const uint8_t *phone_shash);
int store_contact_find_email(struct store_conn *c, const uint8_t bidx[32], char id_out[STORE_ID_CAP]);
/* Crypto-shredding: removes the wrapped key, every sealed field and evidence,
 * and the blind indexes; keeps a tombstone row with status erased. */
int store_contact_erase(struct store_conn *c, const char *id, int64_t when_us);
int store_contact_count(struct store_conn *c, int64_t *out);

typedef int (*store_field_cb)(void *ctx, const char *name, const uint8_t *sealed, size_t len);
int store_field_put(struct store_conn *c, const char *id, const char *name, const uint8_t *sealed,
		    size_t len);
/* One sealed field of store_fields_put_many. */
struct store_field_new {
	const char *contact_id, *name;
	const uint8_t *sealed;
	size_t len;
};
/* store_field_put for each row in order (a later row of the same contact
 * and name wins), in one round trip where the backend can. */
int store_fields_put_many(struct store_conn *c, const struct store_field_new *rows, size_t n);
int store_field_delete(struct store_conn *c, const char *id, const char *name);
int store_fields_each(struct store_conn *c, const char *id, store_field_cb cb, void *ctx);

/* Key rotation: calls cb for every live contact; cb rewraps in place. */
typedef int (*store_rewrap_cb)(void *ctx, struct store_contact *ct);
int store_contacts_rewrap(struct store_conn *c, store_rewrap_cb cb, void *ctx, int64_t *count);
int store_key_versions_in_use(struct store_conn *c, int *versions, int cap, int *n);
/* Key check values (service/keycheck.c): get fills kcv and returns 0, or
 * ERR_NOTFOUND when the deployment has none for name; add records one
 * unless the name already has one (which it leaves as it is: the caller
 * reads it back and compares). */
int store_key_check_get(struct store_conn *c, const char *name, uint8_t kcv[32]);
int store_key_check_add(struct store_conn *c, const char *name, const uint8_t kcv[32]);
/* The most connections the store may open (the PostgreSQL pool, the
 * writer's included); n in LIMIT_PG_POOL_MIN..LIMIT_PG_POOL_MAX. A no-op
 * for SQLite. */
int store_set_pool_size(struct store *st, int n);

/* ---- consents ---------------------------------------------------------- */

struct store_consent {
	char contact_id[STORE_ID_CAP];
	char purpose[STORE_NAME_CAP];
	char channel[STORE_NAME_CAP]; /* "" for purposes without channels */
	char status[24];	      /* granted | refused | withdrawn | pending_confirmation */
	char legal_basis[32];
	char notice_version[STORE_NAME_CAP];
	char source[STORE_TEXT_CAP];
	char method[STORE_NAME_CAP];
	char receipt_id[STORE_ID_CAP];
	int64_t at_us;		 /* when this event happened (original time on import) */
	int64_t granted_us;	 /* 0 when never granted */
	int64_t expires_us;	 /* 0 when it never expires */
	int64_t withdrawn_us;	 /* 0 unless withdrawn */
	int64_t recorded_us;	 /* when consentd recorded it */
	const uint8_t *evidence; /* sealed; borrowed */
	size_t evidence_len;
};

/* Appends the event to the immutable history and, when current, makes it
 * the current state of (contact, purpose, channel). Which event is current
 * is the consent domain's rule (service/domain/consent.c), not the store's. */
int store_consent_put(struct store_conn *c, const struct store_consent *cs, bool current);
/* One event of store_consents_put_many. */
struct store_consent_new {
	const struct store_consent *cs;
	bool current;
};
/* store_consent_put for each row in order (history in row order; of the
 * current rows of one contact, purpose and channel the last wins), in one
 * round trip where the backend can. */
int store_consents_put_many(struct store_conn *c, const struct store_consent_new *rows, size_t n);
int store_consent_get(struct store_conn *c, const char *contact_id, const char *purpose, const char *channel,
		      struct store_consent *out);
typedef int (*store_consent_cb)(void *ctx, const struct store_consent *cs);
int store_consents_each(struct store_conn *c, const char *contact_id, store_consent_cb cb, void *ctx);
int store_consent_history_each(struct store_conn *c, const char *contact_id, store_consent_cb cb, void *ctx);
int store_consent_history_count(struct store_conn *c, const char *contact_id, int64_t *out);

/* ---- suppressions ----------------------------------------------------- */

struct store_suppression {
	uint8_t hash[32];  /* keyed hash of the normalised address */
	const char *kind;  /* email | phone */
	const char *scope; /* all | purpose | channel */
	const char *scope_value;
	const char *reason; /* unsubscribe | withdrawal | bounce | complaint | erasure | manual | gpc */
	const char *source;
	int64_t created_us; /* original time (imports keep theirs) */
	int64_t recorded_us;
};

/* The (scope, scope_value) pairs of which an unlifted suppression covers
 * one use; the suppression domain decides them (suppression_covering), the
 * store only matches them exactly. An unused slot has scope NULL. */
#define STORE_SCOPE_KEYS 3
struct store_scope_keys {
	const char *scope[STORE_SCOPE_KEYS];
	const char *value[STORE_SCOPE_KEYS];
};

/* 0 (and the reason) when an unlifted suppression of either hash has one of
 * the keys; ERR_NOTFOUND when none has. NULL hashes are skipped. */
int store_suppression_match(struct store_conn *c, const uint8_t *hash_a, const uint8_t *hash_b,
			    const struct store_scope_keys *keys, char reason[STORE_NAME_CAP]);

/* ---- principals (API clients) ------------------------------------------ */

int store_principal_insert(struct store_conn *c, const char *name, const char *role,
			   const uint8_t token_hash[32], int64_t when_us);
/* ERR_NOTFOUND unless an unrevoked principal has this token hash. */
int store_principal_find(struct store_conn *c, const uint8_t token_hash[32], char name[STORE_TEXT_CAP],
			 char role[STORE_NAME_CAP]);

/* Marks the principal revoked (its token stops working); ERR_NOTFOUND when
 * no unrevoked principal has this name. */
int store_principal_revoke(struct store_conn *c, const char *name, int64_t when_us);

/* ---- audit ------------------------------------------------------------- */

/* The last entry's seq and hash; seq 0 and zero hash when empty. */
int store_audit_head(struct store_conn *c, int64_t *seq, uint8_t hash[32]);
int store_audit_append(struct store_conn *c, const struct audit_entry *e);
int store_checkpoint_append(struct store_conn *c, const struct audit_checkpoint *cp);
int store_checkpoint_latest(struct store_conn *c, struct audit_checkpoint *out);

struct store_audit_filter {
	const char *record_id, *actor, *action, *purpose, *decision;
	int64_t since_us, until_us; /* 0 = unbounded */
	int64_t after_seq;	    /* cursor: entries with seq > after_seq */
	int64_t limit;		    /* 0 = unlimited */
};
typedef int (*store_audit_cb)(void *ctx, const struct audit_entry *e);
/* Entries in seq order; cb returning non-zero stops the walk with that code. */
int store_audit_each(struct store_conn *c, const struct store_audit_filter *f, store_audit_cb cb, void *ctx);

/* A pull cursor over the same query, for streaming (export, verify). The
 * cursor holds its own statement; close it before the connection goes back. */
struct store_audit_cursor;
int store_audit_cursor_open(struct store_conn *c, const struct store_audit_filter *f,
			    struct store_audit_cursor **out);
/* 1 and *e filled, 0 at the end, or a negative error. */
int store_audit_cursor_next(struct store_audit_cursor *cur, struct audit_entry *e);
void store_audit_cursor_close(struct store_audit_cursor *cur);

/* The hash of entry seq; ERR_NOTFOUND when there is none. */
int store_audit_hash_at(struct store_conn *c, int64_t seq, uint8_t hash[32]);

/* A pull cursor over the signed checkpoints with size > after_size, in size
 * order, so a verifier holds one at a time whatever their number. */
struct store_checkpoint_cursor;
int store_checkpoint_cursor_open(struct store_conn *c, int64_t after_size,
				 struct store_checkpoint_cursor **out);
/* 1 and *cp filled, 0 at the end, or a negative error. */
int store_checkpoint_cursor_next(struct store_checkpoint_cursor *cur, struct audit_checkpoint *cp);
void store_checkpoint_cursor_close(struct store_checkpoint_cursor *cur);

/* ---- preference links (store_links.c) --------------------------------- */

/* A customer's signed preference link. The token itself is never stored:
 * it is derived from id and expiry and a MAC (service/linktoken.h). */
struct store_link {
	char id[STORE_ID_CAP]; /* base64url of 16 random bytes */
	char contact_id[STORE_ID_CAP];
	char scope[STORE_NAME_CAP]; /* "all" or a purpose */
	int64_t created_us, expires_us;
	int64_t revoked_us; /* 0 unless revoked */
	char created_by[STORE_TEXT_CAP];
	char capability[16]; /* "optout" (withdraw only) or "manage" */
};

int store_link_insert(struct store_conn *c, const struct store_link *l);
/* ERR_NOTFOUND when no link has this id. */
int store_link_get(struct store_conn *c, const char *id, struct store_link *out);
/* Revokes one unrevoked link of contact_id; ERR_NOTFOUND when none. */
int store_link_revoke(struct store_conn *c, const char *contact_id, const char *id, int64_t when_us);
/* Revokes every unrevoked link of contact_id; *count (may be NULL) how many. */
int store_links_revoke_contact(struct store_conn *c, const char *contact_id, int64_t when_us, int64_t *count);
/* Revokes the unrevoked links of contact_id that a role could have minted:
 * "manage" ones only when may_manage, and only those whose scope is "all"
 * or one of the comma-separated purposes. */
int store_links_revoke_mintable(struct store_conn *c, const char *contact_id, bool may_manage,
				const char *purposes, int64_t when_us, int64_t *count);
/* The role of the principal with this name, revoked or not (names are
 * never reused: they are the table's key); ERR_NOTFOUND when none. */
int store_principal_role(struct store_conn *c, const char *name, char role[STORE_NAME_CAP]);

/* Every suppression (lifted or not) of either hash, oldest first, for a
 * person's own data export. lifted_us is 0 while in force. */
typedef int (*store_subject_suppression_cb)(void *ctx, const struct store_suppression *sp, int64_t lifted_us);
int store_subject_suppressions_each(struct store_conn *c, const uint8_t *hash_a, const uint8_t *hash_b,
				    store_subject_suppression_cb cb, void *ctx);

/* ---- bulk: suppression lists, outreach filter, imports (store_bulk.c) -- */

/* Everything the outreach filter needs about one entry, in one query: the
 * contact (by email blind index or by id), its consent for exactly
 * (purpose, channel), whether its own suppression hashes have an unlifted
 * suppression with one of the keys, and whether the entry's own suppression
 * hash (list_hash) has. */
struct store_filter_row {
	bool found, erased;
	char id[STORE_ID_CAP];
	char collected_for[STORE_LIST_CAP];
	bool has_consent;
	char status[24];
	int64_t expires_us;
	bool own_suppressed;  /* the contact's email/phone hash is suppressed */
	bool list_suppressed; /* list_hash is suppressed */
};
int store_filter_by_email(struct store_conn *c, const uint8_t bidx[32], const uint8_t list_hash[32],
			  const char *purpose, const char *channel, const struct store_scope_keys *keys,
			  struct store_filter_row *out);
/* The same for n entries at once: out[i] answers bidx[i] and list_hash[i].
 * A backend may answer the whole batch in one query (backend.h). */
int store_filter_by_email_many(struct store_conn *c, size_t n, const uint8_t (*bidx)[32],
			       const uint8_t (*list_hash)[32], const char *purpose, const char *channel,
			       const struct store_scope_keys *keys, struct store_filter_row *out);
int store_filter_by_id(struct store_conn *c, const char *id, const char *purpose, const char *channel,
		       const struct store_scope_keys *keys, struct store_filter_row *out);

/* Which contacts one filter request released: sorted chunks of raw 16-byte
 * contact ids under a release id named in the request's audit entry. */
int store_release_put(struct store_conn *c, const char *release_id, int64_t chunk, const uint8_t *ids,
		      size_t n_ids);
/* 0 when id_raw was released by release_id, ERR_NOTFOUND when not. */
int store_release_find(struct store_conn *c, const char *release_id, const uint8_t id_raw[16]);
int store_release_count(struct store_conn *c, const char *release_id, int64_t *out);

/* ---- release log: who each filter reached, for frequency caps ---- */

struct store_release_entry {
	char release_id[STORE_ID_CAP];
	char purpose[STORE_NAME_CAP], channel[STORE_NAME_CAP];
	int64_t at_us;
};
typedef int (*store_release_log_cb)(void *ctx, const struct store_release_entry *e);

/* On the writer: one row per raw 16-byte id (n_ids of them) released by
 * release_id for (purpose, channel) at at_us. */
int store_release_log_put(struct store_conn *c, const char *release_id, const char *purpose,
			  const char *channel, int64_t at_us, const uint8_t *ids, size_t n_ids);
/* The contact's releases for (purpose, channel) after after_us, newest
 * first, at most limit of them: *count of them, *last_us the time of the
 * last one counted (the limit-th newest when *count == limit). */
int store_release_recent(struct store_conn *c, const uint8_t id_raw[16], const char *purpose,
			 const char *channel, int64_t after_us, int64_t limit, int64_t *count,
			 int64_t *last_us);
/* The same for n contacts at once: count[i] and last_us[i] answer ids[i].
 * A backend may answer the whole batch in one query (backend.h 8). */
int store_release_recent_many(struct store_conn *c, size_t n, const uint8_t (*ids)[16], const char *purpose,
			      const char *channel, int64_t after_us, int64_t limit, int64_t *count,
			      int64_t *last_us);
/* The contact's releases, newest first, at most limit. */
int store_release_log_each(struct store_conn *c, const uint8_t id_raw[16], int64_t limit,
			   store_release_log_cb cb, void *ctx);
/* A filter request's summary (JSON text without personal data); get gives
 * the caller a copy to free, or ERR_NOTFOUND. */
int store_release_summary_put(struct store_conn *c, const char *release_id, int64_t at_us,
			      const char *summary);
int store_release_summary_get(struct store_conn *c, const char *release_id, int64_t *at_us, char **summary);

/* The person's own frequency choice for (purpose, channel): put replaces
 * it; get is ERR_NOTFOUND when there is none. */
struct store_frequency {
	char purpose[STORE_NAME_CAP], channel[STORE_NAME_CAP], choice[16];
	int64_t set_us;
};
typedef int (*store_frequency_cb)(void *ctx, const struct store_frequency *fq);
int store_frequency_put(struct store_conn *c, const char *contact_id, const struct store_frequency *fq);
int store_frequency_get(struct store_conn *c, const char *contact_id, const char *purpose,
			const char *channel, struct store_frequency *out);
int store_frequency_each(struct store_conn *c, const char *contact_id, store_frequency_cb cb, void *ctx);

/* The times of each contact's releases for (purpose, channel) after
 * after_us, newest first, at most limit each, for n contacts at once (ids:
 * n raw ids, 16 bytes each): those of ids[i] in times[i * limit ...],
 * counts[i] of them. One query on PostgreSQL. A cap shared by several
 * purposes merges these. */
int store_release_times_many(struct store_conn *c, size_t n, const uint8_t *ids, const char *purpose,
			     const char *channel, int64_t after_us, int64_t limit, int64_t *times,
			     int64_t *counts);

/* Adds sp unless an unlifted suppression of the same hash, scope, value and
 * reason exists: 1 when added, 0 when it was already there. */
int store_suppression_add(struct store_conn *c, const struct store_suppression *sp);
/* store_suppression_add for sp[0..n) in order, in one round trip where the
 * backend can: added[i] is whether sp[i] was added (false when an unlifted
 * equal one was there, stored before or an earlier entry of the call). */
int store_suppressions_add_many(struct store_conn *c, const struct store_suppression *sp, size_t n,
				bool *added);

/* Active (unlifted) suppressions of one hash, oldest first. */
struct store_suppression_row {
	int64_t id;
	char kind[8], scope[16], scope_value[STORE_NAME_CAP], reason[16];
	char source[STORE_TEXT_CAP];
	int64_t created_us, recorded_us;
};
typedef int (*store_suppression_cb)(void *ctx, const struct store_suppression_row *row);
int store_suppressions_active(struct store_conn *c, const uint8_t hash[32], store_suppression_cb cb,
			      void *ctx);
/* Lifts the active suppressions of hash that match scope (NULL: any) and
 * scope_value (NULL: any) and whose reason is one of the comma-separated
 * reasons; which reasons a lifter may lift ("erasure is never lifted") is
 * the suppression domain's rule. *lifted (may be NULL) is how many were. */
int store_suppressions_lift(struct store_conn *c, const uint8_t hash[32], const char *scope,
			    const char *scope_value, const char *reasons, int64_t when_us, const char *by,
			    int64_t *lifted);

/* Records that provider's event (by keyed hash of its id) was taken in:
 * 1 the first time, 0 when it already was (a replay), within the caller's
 * transaction so a rolled-back batch forgets its events too. */
int store_provider_event_once(struct store_conn *c, const char *provider, const uint8_t id_hash[32],
			      int64_t received_us);

/* ---- console sessions (store_console.c) -------------------------------- */

/* One signed-in auditor. The cookie's session id and the principal's token
 * are held only as SHA-256 hashes; csrf is the session's form value. */
struct store_console_session {
	uint8_t id_hash[32];
	uint8_t token_hash[32];
	char actor[STORE_TEXT_CAP];
	char role[STORE_NAME_CAP];
	char csrf[64];
	int64_t created_us, seen_us;
};

int store_console_session_insert(struct store_conn *c, const struct store_console_session *s);
/* ERR_NOTFOUND when no session has this id hash. */
int store_console_session_get(struct store_conn *c, const uint8_t id_hash[32],
			      struct store_console_session *out);
int store_console_session_touch(struct store_conn *c, const uint8_t id_hash[32], int64_t seen_us);
int store_console_session_delete(struct store_conn *c, const uint8_t id_hash[32]);
/* Deletes every session seen before idle_before_us or created before
 * created_before_us; *count (may be NULL) how many. */
int store_console_sessions_expire(struct store_conn *c, int64_t idle_before_us, int64_t created_before_us,
				  int64_t *count);
/* Contact ids whose phone blind index is bidx (a phone may be shared), at
 * most cap of them; *n how many, *more whether there were others. */
int store_console_find_phone(struct store_conn *c, const uint8_t bidx[32], char (*ids)[STORE_ID_CAP],
			     size_t cap, size_t *n, bool *more);
/* Trail statistics for the console's charts, over entries at or after
 * since_us: cb gets (day index since 1970, key, count) rows. */
enum store_console_stat { STORE_STAT_PER_DAY, STORE_STAT_DENIALS_BY_REASON, STORE_STAT_BY_ROLE };
typedef int (*store_console_stat_cb)(void *ctx, int64_t day, const char *key, int64_t count);
int store_console_stats(struct store_conn *c, enum store_console_stat which, int64_t since_us,
			store_console_stat_cb cb, void *ctx);

/* The mail outbox: a message to send, queued in the transaction of the change
 * that causes it and sent after the commit by the mail worker. A row names
 * what to send (kind, contact, link), never an address or a token. */
struct store_mail {
	char id[STORE_ID_CAP];
	char kind[STORE_NAME_CAP]; /* "manage_link" */
	char contact_id[STORE_ID_CAP];
	char link_id[STORE_ID_CAP];
	char lang[8]; /* the person's language for this message ("en", "zh-CN"); "" the default */
	int64_t created_us;
	int64_t attempts; /* deliveries tried and failed so far */
	int64_t next_us;  /* not tried again before this */
};

int store_mail_put(struct store_conn *c, const struct store_mail *m);
/* Up to max messages neither sent nor failed and due at now_us, oldest
 * first. */
typedef int (*store_mail_cb)(void *ctx, const struct store_mail *m);
int store_mail_pending(struct store_conn *c, size_t max, int64_t now_us, store_mail_cb cb, void *ctx);
/* What became of one delivery: SENT (or dropped: never again) at when_us;
 * RETRY counts a failed attempt and holds the message until when_us;
 * FAILED counts it and gives the message up for good (a permanent refusal
 * or too many attempts), at when_us. ERR_NOTFOUND when no pending message
 * has this id. */
enum store_mail_outcome { STORE_MAIL_SENT, STORE_MAIL_RETRY, STORE_MAIL_FAILED };
int store_mail_mark(struct store_conn *c, const char *id, enum store_mail_outcome outcome, int64_t when_us);
/* Delivery claims, so that several instances on one database never send
 * one message twice at once. store_mail_claim takes, for owner, up to max
 * of the messages store_mail_pending would list at now_us whose claim has
 * run out (no claim, or one until before now_us) or is owner's own (an
 * instance restarted after a kill takes its claims up again), holds them
 * until until_us and calls cb for each one it took: the statement that
 * checks the claim also sets it, so of two owners only one gets a message.
 * store_mail_mark ends the claim of the message it marks; a killed
 * owner's claims run out at until_us and the messages are claimable again.
 * store_mail_release ends owner's claims on messages it did not mark. */
int store_mail_claim(struct store_conn *c, const char *owner, size_t max, int64_t now_us, int64_t until_us,
		     store_mail_cb cb, void *ctx);
int store_mail_release(struct store_conn *c, const char *owner);

/* Spent form values (store_mail.c): the nonce of a customer form's CSRF
 * value, kept until expires_us so a form is accepted once by the whole
 * fleet. store_form_nonce_spend records it (and drops the expired ones);
 * ERR_CONFLICT when it was spent before. store_form_nonce_spent only
 * reads. At most STORE_NONCE_MAX bytes, no personal data. */
#define STORE_NONCE_MAX 64
int store_form_nonce_spend(struct store_conn *c, const uint8_t *nonce, size_t len, int64_t now_us,
			   int64_t expires_us);
int store_form_nonce_spent(struct store_conn *c, const uint8_t *nonce, size_t len, int64_t now_us,
			   bool *spent);

/* Double opt-in (store_mail.c): a grant waiting for the person to confirm
 * it from a mailed link. The row names the pending consent event (its
 * receipt id) and the link's lifetime; the token is recomputed from the
 * id, never stored. */
struct store_confirmation {
	char id[STORE_ID_CAP]; /* base64url of 16 random bytes: the token's link id */
	char contact_id[STORE_ID_CAP];
	char purpose[STORE_NAME_CAP];
	char channel[STORE_NAME_CAP];
	char receipt_id[STORE_ID_CAP]; /* the pending_confirmation event */
	int64_t created_us, expires_us;
	int64_t confirmed_us; /* 0 until confirmed */
};

int store_confirmation_put(struct store_conn *c, const struct store_confirmation *cf);
/* ERR_NOTFOUND when no confirmation has this id. */
int store_confirmation_get(struct store_conn *c, const char *id, struct store_confirmation *out);
/* Marks it confirmed at when_us; ERR_NOTFOUND when it is unknown or was
 * confirmed already (a link confirms once). */
int store_confirmation_done(struct store_conn *c, const char *id, int64_t when_us);

/* ---- data-subject requests (store_requests.c) --------------------------- */

/* One access, erasure or objection request. Dates are whole days since
 * 1970-01-01 (UTC): the deadlines are days, not instants. The store keeps
 * what the domain decided (service/domain/request.h); it checks nothing
 * about states or deadlines. */
struct store_request {
	char id[STORE_ID_CAP];
	char contact_id[STORE_ID_CAP];
	char kind[16];	      /* access | erasure | objection */
	char jurisdiction[8]; /* gdpr | ccpa */
	char state[16];	      /* received | verified | in_progress | extended | completed | denied */
	char origin[8];	      /* staff | page */
	int64_t received_day, due_day;
	int64_t ack_day; /* CCPA's acknowledgement deadline; 0 for GDPR */
	bool extended;
	bool needs_approval; /* an erasure from the page, waiting for staff */
	int64_t created_us, updated_us;
	int64_t steps; /* transitions so far: the next step's number */
};

/* One transition, with the staff member's reason sealed under the
 * person's data key (the reason is free text and may name them). */
struct store_request_step {
	char request_id[STORE_ID_CAP];
	int64_t seq; /* 1, 2, ... */
	char from_state[16], to_state[16];
	char actor[STORE_NAME_CAP];
	int64_t at_us;
	uint8_t reason[LIMIT_REQUEST_REASON_BYTES + 128];
	size_t reason_len;
};

int store_request_put(struct store_conn *c, const struct store_request *r);
/* Writes r's state, due_day, extended, needs_approval, steps and
 * updated_us, if the stored row still has steps == prev_steps;
 * ERR_CONFLICT when another transition came first, ERR_NOTFOUND when no
 * request has this id. */
int store_request_update(struct store_conn *c, const struct store_request *r, int64_t prev_steps);
/* ERR_NOTFOUND when no request has this id. */
int store_request_get(struct store_conn *c, const char *id, struct store_request *out);
/* Up to max requests, in the state named (NULL: any) and due before
 * due_before_day (0: any), earliest due first; *more whether others
 * matched. */
typedef int (*store_request_cb)(void *ctx, const struct store_request *r);
int store_requests_each(struct store_conn *c, const char *state, int64_t due_before_day, size_t max,
			store_request_cb cb, void *ctx, bool *more);
int store_request_step_put(struct store_conn *c, const struct store_request_step *st);
/* The steps of one request, oldest first. */
typedef int (*store_request_step_cb)(void *ctx, const struct store_request_step *st);
int store_request_steps_each(struct store_conn *c, const char *request_id, store_request_step_cb cb,
			     void *ctx);
/* Open requests (neither completed nor denied) due before today_day
 * (*overdue) and due from today_day to soon_day inclusive (*due_soon). */
int store_requests_due_counts(struct store_conn *c, int64_t today_day, int64_t soon_day, int64_t *overdue,
			      int64_t *due_soon);

/* ---- outbound webhooks (store_webhooks.c) ------------------------------ */

#define STORE_URL_CAP (LIMIT_WEBHOOK_URL_BYTES + 1)
#define STORE_DELIVERY_ID_CAP 48
#define STORE_EVENT_TYPE_CAP 32

/* One endpoint. Its signing secret is sealed under its own data key, which
 * the keyring wraps (like a contact's); deleted endpoints are never read. */
struct store_webhook {
	char id[STORE_ID_CAP];
	char url[STORE_URL_CAP];
	char events[STORE_TEXT_CAP]; /* comma-separated event types */
	char description[STORE_TEXT_CAP];
	char role[STORE_NAME_CAP];
	int key_version;
	uint8_t wrapped_key[96];
	size_t wrapped_len;
	uint8_t secret[128]; /* sealed */
	size_t secret_len;
	int64_t created_us;
	int64_t disabled_us; /* 0 while enabled */
	char disabled_reason[64];
};

int store_webhook_insert(struct store_conn *c, const struct store_webhook *w);
/* ERR_NOTFOUND for an unknown or deleted endpoint. */
int store_webhook_get(struct store_conn *c, const char *id, struct store_webhook *out);
typedef int (*store_webhook_cb)(void *ctx, const struct store_webhook *w);
/* Endpoints not deleted, oldest first; *n (may be NULL) how many. */
int store_webhooks_each(struct store_conn *c, store_webhook_cb cb, void *ctx, int64_t *n);
/* Marks the endpoint deleted and its pending deliveries failed. */
int store_webhook_delete(struct store_conn *c, const char *id, int64_t when_us);
/* Disables an endpoint: nothing more is delivered to it; pending deliveries
 * are marked failed with the reason. */
int store_webhook_disable(struct store_conn *c, const char *id, int64_t when_us, const char *reason);

/* The contact's next event number (1, 2, ...), from the outbox. */
int store_outbox_next_version(struct store_conn *c, const char *contact_id, int64_t *version);
/* Appends an event (its JSON body, built by the caller, and optionally
 * the personal values some subscribers may see, sealed by the caller) to
 * the outbox and queues one delivery for each enabled endpoint subscribed
 * to its type, in the caller's transaction; *queued how many. */
int store_outbox_add(struct store_conn *c, const char *type, const char *contact_id, int64_t version,
		     const char *body, const uint8_t *personal, size_t personal_len, int64_t created_us,
		     int64_t *queued);
/* Drops the sealed personal values of every outbox event of a contact (its
 * erasure): undelivered events then go out without them. */
int store_outbox_forget_personal(struct store_conn *c, const char *contact_id);
/* How many enabled endpoints subscribe to type. */
int store_webhook_subscribers(struct store_conn *c, const char *type, int64_t *n);

struct store_delivery {
	char id[STORE_DELIVERY_ID_CAP]; /* the webhook-id header */
	char endpoint_id[STORE_ID_CAP];
	char type[STORE_EVENT_TYPE_CAP];
	char state[16]; /* pending | delivered | failed */
	int64_t attempts;
	int64_t created_us, next_us, last_us;
	int64_t last_status; /* HTTP status of the last attempt, 0 when none */
	char last_error[STORE_TEXT_CAP];
	const char *body;	       /* the event body, borrowed for the callback (due only) */
	char contact_id[STORE_ID_CAP]; /* the event's contact, "" for none (due only) */
	const uint8_t *personal;       /* sealed personal values, borrowed (due only) */
	size_t personal_len;
};
typedef int (*store_delivery_cb)(void *ctx, const struct store_delivery *d);
/* An endpoint's deliveries, newest first, at most limit. */
int store_deliveries_each(struct store_conn *c, const char *endpoint_id, int limit, store_delivery_cb cb,
			  void *ctx);
/* Pending deliveries due at now_us, to enabled endpoints, at most limit;
 * d->body is set. Round robin over the endpoints: every endpoint's oldest
 * event first (oldest first among them), then every endpoint's second, and
 * so on, so that one endpoint's backlog cannot fill the batch. */
int store_deliveries_due(struct store_conn *c, int64_t now_us, int limit, store_delivery_cb cb, void *ctx);
/* Claims the deliveries of one endpoint for owner until until_us, so that
 * of several instances one posts to it at a time, in order: 0 when taken
 * (or already owner's: then extended), ERR_CONFLICT while another owner's
 * claim runs (until at or after now_us), ERR_NOTFOUND for no such endpoint.
 * The check and the claim are one statement. store_webhook_release ends
 * owner's claim; a killed owner's claim runs out at until_us. */
int store_webhook_claim(struct store_conn *c, const char *endpoint_id, const char *owner, int64_t now_us,
			int64_t until_us);
int store_webhook_release(struct store_conn *c, const char *endpoint_id, const char *owner);
/* Records an attempt's outcome: state, attempts, next_us, status, error. */
int store_delivery_record(struct store_conn *c, const struct store_delivery *d);
/* Makes a delivery of endpoint_id pending again, due at now_us.
 * ERR_NOTFOUND when the endpoint has no such delivery. */
int store_delivery_retry(struct store_conn *c, const char *endpoint_id, const char *id, int64_t now_us);
/* Pending deliveries and the creation time of the oldest (0 when none). */
int store_outbox_stats(struct store_conn *c, int64_t *pending, int64_t *oldest_us);

#endif
