/*
 * store: SQLite in WAL mode, one file. The only file that includes sqlite3.h.
 *
 * Invariants:
 * - Every statement is prepared once per connection from the table `sqls`
 *   and reset after use; no SQL is built from input.
 * - Schema changes are numbered migrations applied in one transaction at
 *   open; PRAGMA user_version records the last one applied.
 * - secure_delete is on, so erased sealed values and wrapped keys are
 *   overwritten with zeros in the file rather than left in free pages.
 * - The audit and audit_checkpoint tables are append-only: triggers refuse
 *   UPDATE and DELETE and any insert that is not the next seq; an authorizer
 *   on every connection refuses UPDATE, DELETE, DROP and ALTER on them; and
 *   SQLITE_DBCONFIG_DEFENSIVE forbids writable_schema tricks.
 */
#include "service/store/store.h"
#include "service/store/store_internal.h"

#include "service/base/auditrec.h"
#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/base/limits.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

enum stmt_id {
	S_CONTACT_INSERT,
	S_CONTACT_GET,
	S_CONTACT_UPDATE,
	S_CONTACT_SET_INDEX,
	S_CONTACT_FIND_EMAIL,
	S_CONTACT_ERASE,
	S_CONTACT_COUNT,
	S_FIELDS_ERASE,
	S_EVIDENCE_ERASE_CUR,
	S_EVIDENCE_ERASE_HIST,
	S_FIELD_PUT,
	S_FIELD_DELETE,
	S_FIELDS_EACH,
	S_CONTACTS_LIVE,
	S_KEY_VERSIONS,
	S_CONSENT_PUT,
	S_CONSENT_EVENT,
	S_CONSENT_GET,
	S_CONSENTS_EACH,
	S_CONSENT_HISTORY,
	S_CONSENT_HISTORY_COUNT,
	S_PRINCIPAL_INSERT,
	S_PRINCIPAL_FIND,
	S_PRINCIPAL_REVOKE,
	S_AUDIT_HEAD,
	S_AUDIT_APPEND,
	S_CHECKPOINT_APPEND,
	S_CHECKPOINT_LATEST,
	S_CHECKPOINTS_EACH,
	S_SUPPRESSION_MATCH,
	S_BEGIN,
	S_COMMIT,
	S_ROLLBACK,
	S_SAVEPOINT,
	S_RELEASE,
	S_ROLLBACK_TO,
	S_COUNT
};

#define CONSENT_COLS                                                                                         \
	"contact_id, purpose, channel, status, legal_basis, notice_version, source, method, "                \
	"receipt_id, at_us, granted_us, expires_us, withdrawn_us, recorded_us, evidence"
#define AUDIT_COLS                                                                                           \
	"seq, time_us, actor, role, action, record_id, purpose, channel, decision, reason, "                 \
	"fields, request_id, client, detail, prev_hash, hash"

_Static_assert(S_COUNT <= STORE_BUILTIN_STMTS, "raise STORE_BUILTIN_STMTS");

static const char *const sqls[S_COUNT] = {
	[S_CONTACT_INSERT] =
		"INSERT INTO contact (id, created_us, updated_us, status, collected_for, source, "
		"owner, key_version, wrapped_key, email_bidx, phone_bidx, email_shash, phone_shash) "
		"VALUES (?1, ?2, ?3, 'active', ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
	[S_CONTACT_GET] = "SELECT id, created_us, updated_us, status, collected_for, source, owner, "
			  "key_version, wrapped_key, email_shash, phone_shash FROM contact WHERE id = ?1",
	[S_CONTACT_UPDATE] = "UPDATE contact SET updated_us = ?2, collected_for = ?3, source = ?4, "
			     "owner = ?5, key_version = ?6, wrapped_key = ?7 "
			     "WHERE id = ?1 AND status = 'active'",
	[S_CONTACT_SET_INDEX] = "UPDATE contact SET email_bidx = ?2, phone_bidx = ?3, email_shash = ?4, "
				"phone_shash = ?5 WHERE id = ?1",
	[S_CONTACT_FIND_EMAIL] = "SELECT id FROM contact WHERE email_bidx = ?1",
	[S_CONTACT_ERASE] = "UPDATE contact SET status = 'erased', updated_us = ?2, key_version = NULL, "
			    "wrapped_key = NULL, email_bidx = NULL, phone_bidx = NULL, email_shash = NULL, "
			    "phone_shash = NULL, owner = '' WHERE id = ?1 AND status = 'active'",
	[S_CONTACT_COUNT] = "SELECT count(*) FROM contact WHERE status = 'active'",
	[S_FIELDS_ERASE] = "DELETE FROM contact_field WHERE contact_id = ?1",
	[S_EVIDENCE_ERASE_CUR] = "UPDATE consent SET evidence = NULL WHERE contact_id = ?1",
	[S_EVIDENCE_ERASE_HIST] = "UPDATE consent_event SET evidence = NULL WHERE contact_id = ?1",
	[S_FIELD_PUT] = "INSERT INTO contact_field (contact_id, name, value) VALUES (?1, ?2, ?3) "
			"ON CONFLICT (contact_id, name) DO UPDATE SET value = excluded.value",
	[S_FIELD_DELETE] = "DELETE FROM contact_field WHERE contact_id = ?1 AND name = ?2",
	[S_FIELDS_EACH] = "SELECT name, value FROM contact_field WHERE contact_id = ?1 ORDER BY name",
	[S_CONTACTS_LIVE] =
		"SELECT id, created_us, updated_us, status, collected_for, source, owner, "
		"key_version, wrapped_key, email_shash, phone_shash FROM contact WHERE status = 'active' AND id > ?1 "
		"ORDER BY id LIMIT 1000",
	[S_KEY_VERSIONS] = "SELECT DISTINCT key_version FROM contact WHERE status = 'active'",
	[S_CONSENT_PUT] = "INSERT INTO consent (" CONSENT_COLS ") VALUES "
			  "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) "
			  "ON CONFLICT (contact_id, purpose, channel) DO UPDATE SET "
			  "status = excluded.status, legal_basis = excluded.legal_basis, "
			  "notice_version = excluded.notice_version, source = excluded.source, "
			  "method = excluded.method, receipt_id = excluded.receipt_id, "
			  "at_us = excluded.at_us, granted_us = excluded.granted_us, "
			  "expires_us = excluded.expires_us, withdrawn_us = excluded.withdrawn_us, "
			  /* Run only for an event that consent_supersedes made
			   * current: the ordering rule lives in C, not here. */
			  "recorded_us = excluded.recorded_us, evidence = excluded.evidence",
	[S_CONSENT_EVENT] = "INSERT INTO consent_event (" CONSENT_COLS ") VALUES "
			    "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
	[S_CONSENT_GET] = "SELECT " CONSENT_COLS " FROM consent "
			  "WHERE contact_id = ?1 AND purpose = ?2 AND channel = ?3",
	[S_CONSENTS_EACH] = "SELECT " CONSENT_COLS " FROM consent WHERE contact_id = ?1 "
			    "ORDER BY purpose, channel",
	[S_CONSENT_HISTORY] = "SELECT " CONSENT_COLS " FROM consent_event WHERE contact_id = ?1 "
			      /* Effective time (consent_effective_us), then
			       * recording order: a grant claimed minutes ahead is not
			       * listed after the withdrawal recorded later. */
			      "ORDER BY min(at_us, recorded_us), seq",
	[S_CONSENT_HISTORY_COUNT] = "SELECT count(*) FROM consent_event WHERE contact_id = ?1",
	[S_PRINCIPAL_INSERT] = "INSERT INTO principal (name, role, token_hash, created_us) "
			       "VALUES (?1, ?2, ?3, ?4)",
	[S_PRINCIPAL_FIND] = "SELECT name, role, token_hash FROM principal "
			     "WHERE token_hash = ?1 AND revoked_us IS NULL",
	[S_PRINCIPAL_REVOKE] = "UPDATE principal SET revoked_us = ?2 WHERE name = ?1 AND revoked_us IS NULL",
	[S_AUDIT_HEAD] = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
	[S_AUDIT_APPEND] = "INSERT INTO audit (" AUDIT_COLS ") VALUES "
			   "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
	[S_CHECKPOINT_APPEND] = "INSERT INTO audit_checkpoint (size, root, time_us, key_id, sig) "
				"VALUES (?1, ?2, ?3, ?4, ?5)",
	[S_CHECKPOINT_LATEST] = "SELECT size, root, time_us, key_id, sig FROM audit_checkpoint "
				"ORDER BY size DESC LIMIT 1",
	[S_CHECKPOINTS_EACH] = "SELECT size, root, time_us, key_id, sig FROM audit_checkpoint "
			       "ORDER BY size",
	/* One index probe per hash (an IN list would build a temporary table).
	 * Which scopes cover a use is the caller's (store_scope_keys). */
	[S_SUPPRESSION_MATCH] =
		"SELECT reason FROM suppression WHERE hash = ?1 AND lifted_us IS NULL "
		"AND ((scope = ?3 AND scope_value = ?4) OR (scope = ?5 AND scope_value = ?6) "
		"OR (scope = ?7 AND scope_value = ?8)) "
		"UNION ALL SELECT reason FROM suppression WHERE hash = ?2 AND lifted_us IS NULL "
		"AND ((scope = ?3 AND scope_value = ?4) OR (scope = ?5 AND scope_value = ?6) "
		"OR (scope = ?7 AND scope_value = ?8)) LIMIT 1",
	[S_BEGIN] = "BEGIN IMMEDIATE",
	[S_COMMIT] = "COMMIT",
	[S_ROLLBACK] = "ROLLBACK",
	[S_SAVEPOINT] = "SAVEPOINT job",
	[S_RELEASE] = "RELEASE job",
	[S_ROLLBACK_TO] = "ROLLBACK TO job",
};

/* Migration n (1-based) is migrations[n - 1]. Never edit one that shipped. */
static const char *const migrations[] = {
	/* 1: contacts, sealed fields, consents, principals, audit. */
	"CREATE TABLE contact ("
	" id TEXT PRIMARY KEY,"
	" created_us INTEGER NOT NULL,"
	" updated_us INTEGER NOT NULL,"
	" status TEXT NOT NULL CHECK (status IN ('active', 'erased')),"
	" collected_for TEXT NOT NULL,"
	" source TEXT NOT NULL DEFAULT '',"
	" owner TEXT NOT NULL DEFAULT '',"
	" key_version INTEGER,"
	" wrapped_key BLOB,"
	" email_bidx BLOB UNIQUE,"
	" phone_bidx BLOB,"
	" email_shash BLOB,"
	" phone_shash BLOB"
	") WITHOUT ROWID;"
	"CREATE INDEX contact_phone ON contact (phone_bidx) WHERE phone_bidx IS NOT NULL;"
	"CREATE TABLE contact_field ("
	" contact_id TEXT NOT NULL REFERENCES contact (id),"
	" name TEXT NOT NULL,"
	" value BLOB NOT NULL,"
	" PRIMARY KEY (contact_id, name)"
	") WITHOUT ROWID;"
	"CREATE TABLE consent ("
	" contact_id TEXT NOT NULL REFERENCES contact (id),"
	" purpose TEXT NOT NULL, channel TEXT NOT NULL,"
	" status TEXT NOT NULL CHECK (status IN ('granted', 'refused', 'withdrawn')),"
	" legal_basis TEXT NOT NULL, notice_version TEXT NOT NULL, source TEXT NOT NULL,"
	" method TEXT NOT NULL, receipt_id TEXT NOT NULL,"
	" at_us INTEGER NOT NULL, granted_us INTEGER NOT NULL, expires_us INTEGER NOT NULL,"
	" withdrawn_us INTEGER NOT NULL, recorded_us INTEGER NOT NULL, evidence BLOB,"
	" PRIMARY KEY (contact_id, purpose, channel)"
	") WITHOUT ROWID;"
	"CREATE TABLE consent_event ("
	" seq INTEGER PRIMARY KEY,"
	" contact_id TEXT NOT NULL REFERENCES contact (id),"
	" purpose TEXT NOT NULL, channel TEXT NOT NULL, status TEXT NOT NULL,"
	" legal_basis TEXT NOT NULL, notice_version TEXT NOT NULL, source TEXT NOT NULL,"
	" method TEXT NOT NULL, receipt_id TEXT NOT NULL,"
	" at_us INTEGER NOT NULL, granted_us INTEGER NOT NULL, expires_us INTEGER NOT NULL,"
	" withdrawn_us INTEGER NOT NULL, recorded_us INTEGER NOT NULL, evidence BLOB"
	");"
	"CREATE INDEX consent_event_contact ON consent_event (contact_id, at_us);"
	"CREATE TRIGGER consent_event_no_delete BEFORE DELETE ON consent_event"
	" BEGIN SELECT RAISE(ABORT, 'consent history is append-only'); END;"
	"CREATE TABLE principal ("
	" name TEXT PRIMARY KEY, role TEXT NOT NULL, token_hash BLOB NOT NULL UNIQUE,"
	" created_us INTEGER NOT NULL, revoked_us INTEGER"
	");"
	"CREATE TABLE audit ("
	" seq INTEGER PRIMARY KEY, time_us INTEGER NOT NULL,"
	" actor TEXT NOT NULL, role TEXT NOT NULL, action TEXT NOT NULL, record_id TEXT NOT NULL,"
	" purpose TEXT NOT NULL, channel TEXT NOT NULL, decision TEXT NOT NULL,"
	" reason TEXT NOT NULL, fields TEXT NOT NULL, request_id TEXT NOT NULL,"
	" client TEXT NOT NULL, detail TEXT NOT NULL, prev_hash BLOB NOT NULL, hash BLOB NOT NULL"
	");"
	/* One secondary index only: every entry pays for each index on the hot
	 * path. "Who touched this record" is the auditor's main question;
	 * actor and time filters scan in seq order (time grows with seq). */
	"CREATE INDEX audit_record ON audit (record_id, seq) WHERE record_id != '';"
	"CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit"
	" BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;"
	"CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit"
	" BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;"
	"CREATE TRIGGER audit_next_seq BEFORE INSERT ON audit"
	" WHEN NEW.seq != coalesce((SELECT max(seq) FROM audit), 0) + 1"
	" BEGIN SELECT RAISE(ABORT, 'audit entries are appended in sequence'); END;"
	"CREATE TABLE audit_checkpoint ("
	" size INTEGER PRIMARY KEY, root BLOB NOT NULL, time_us INTEGER NOT NULL,"
	" key_id BLOB NOT NULL, sig BLOB NOT NULL"
	");"
	"CREATE TRIGGER checkpoint_no_update BEFORE UPDATE ON audit_checkpoint"
	" BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;"
	"CREATE TRIGGER checkpoint_no_delete BEFORE DELETE ON audit_checkpoint"
	" BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;"
	"CREATE TABLE suppression ("
	" id INTEGER PRIMARY KEY,"
	" hash BLOB NOT NULL,"
	" kind TEXT NOT NULL CHECK (kind IN ('email', 'phone')),"
	" scope TEXT NOT NULL CHECK (scope IN ('all', 'purpose', 'channel')),"
	" scope_value TEXT NOT NULL DEFAULT '',"
	" reason TEXT NOT NULL CHECK (reason IN ('unsubscribe', 'withdrawal', 'bounce',"
	"  'complaint', 'erasure', 'manual', 'gpc')),"
	" source TEXT NOT NULL DEFAULT '',"
	" created_us INTEGER NOT NULL,"
	" recorded_us INTEGER NOT NULL,"
	" lifted_us INTEGER,"
	" lifted_by TEXT"
	");"
	"CREATE INDEX suppression_hash ON suppression (hash) WHERE lifted_us IS NULL;"
	"CREATE TABLE preference_link ("
	" id TEXT PRIMARY KEY,"
	" contact_id TEXT NOT NULL REFERENCES contact (id),"
	" scope TEXT NOT NULL,"
	" created_us INTEGER NOT NULL,"
	" expires_us INTEGER NOT NULL,"
	" revoked_us INTEGER,"
	" created_by TEXT NOT NULL"
	") WITHOUT ROWID;"
	"CREATE INDEX preference_link_contact ON preference_link (contact_id);",
	/* 2: which contacts each outreach filter request released (h_outreach.c). */
	"CREATE TABLE filter_release ("
	" release_id TEXT NOT NULL,"
	" chunk INTEGER NOT NULL,"
	" ids BLOB NOT NULL,"
	" PRIMARY KEY (release_id, chunk)"
	") WITHOUT ROWID;",
	/* 3: what a preference link may do. Links made before it may only opt
	 * out: the safe reading of a link whose creator was never checked. */
	"ALTER TABLE preference_link ADD COLUMN capability TEXT NOT NULL DEFAULT 'optout' CHECK (capability IN ('optout', 'manage'));",
	/* 4: the auditor's console sessions (store_console.c). The session id
	 * and the principal's token are stored only as SHA-256 hashes. */
	"CREATE TABLE console_session ("
	" id_hash BLOB PRIMARY KEY,"
	" token_hash BLOB NOT NULL,"
	" actor TEXT NOT NULL,"
	" role TEXT NOT NULL,"
	" csrf TEXT NOT NULL,"
	" created_us INTEGER NOT NULL,"
	" seen_us INTEGER NOT NULL"
	") WITHOUT ROWID;",
	/* 5: provider events already taken in (store_events.c), so a replayed
	 * event changes nothing. The provider's event id is kept only as a
	 * keyed hash. */
	"CREATE TABLE provider_event ("
	" provider TEXT NOT NULL,"
	" id_hash BLOB NOT NULL,"
	" received_us INTEGER NOT NULL,"
	" PRIMARY KEY (provider, id_hash)"
	") WITHOUT ROWID;",
	/* 6: the per-person release log behind frequency caps, and each filter
	 * request's summary for the auditor (store_release.c). The contact is
	 * its raw 16-byte id; the summary holds counts and the keyed digest. */
	"CREATE TABLE release_log ("
	" contact BLOB NOT NULL,"
	" purpose TEXT NOT NULL,"
	" channel TEXT NOT NULL,"
	" at_us INTEGER NOT NULL,"
	" release_id TEXT NOT NULL,"
	" PRIMARY KEY (contact, purpose, channel, at_us, release_id)"
	") WITHOUT ROWID;"
	"CREATE TABLE release_summary ("
	" release_id TEXT PRIMARY KEY,"
	" at_us INTEGER NOT NULL,"
	" summary TEXT NOT NULL"
	") WITHOUT ROWID;",
	/* 7: the person's own frequency choice per (purpose, channel), from the
	 * preference page (store_release.c). A name, no personal data. */
	"CREATE TABLE frequency_choice ("
	" contact_id TEXT NOT NULL REFERENCES contact (id),"
	" purpose TEXT NOT NULL,"
	" channel TEXT NOT NULL,"
	" choice TEXT NOT NULL,"
	" set_us INTEGER NOT NULL,"
	" PRIMARY KEY (contact_id, purpose, channel)"
	") WITHOUT ROWID;",
	/* 8: mail to send, queued in the transaction of the change that causes
	 * it (store_mail.c) and sent by the mail worker after the commit. A row
	 * names what to send (kind, contact, link), never an address or a
	 * token: both are recomputed when it is sent. */
	"CREATE TABLE mail_outbox ("
	" id TEXT PRIMARY KEY,"
	" kind TEXT NOT NULL,"
	" contact_id TEXT NOT NULL,"
	" link_id TEXT NOT NULL,"
	" created_us INTEGER NOT NULL,"
	" attempts INTEGER NOT NULL DEFAULT 0,"
	" sent_us INTEGER"
	") WITHOUT ROWID;"
	"CREATE INDEX mail_outbox_pending ON mail_outbox (created_us) WHERE sent_us IS NULL;",
	/* 9: outbound webhooks (store_webhooks.c): endpoints with sealed
	 * secrets, the transactional outbox and one delivery row per event and
	 * endpoint. */
	"CREATE TABLE webhook_endpoint ("
	" id TEXT PRIMARY KEY, url TEXT NOT NULL, events TEXT NOT NULL, description TEXT NOT NULL,"
	" role TEXT NOT NULL, key_version INTEGER NOT NULL, wrapped_key BLOB NOT NULL, secret BLOB NOT NULL,"
	" created_us INTEGER NOT NULL, disabled_us INTEGER, disabled_reason TEXT NOT NULL DEFAULT '',"
	" deleted_us INTEGER"
	") WITHOUT ROWID;"
	"CREATE TABLE outbox_event ("
	" seq INTEGER PRIMARY KEY, type TEXT NOT NULL, contact_id TEXT NOT NULL, version INTEGER NOT NULL,"
	" body TEXT NOT NULL, personal BLOB, created_us INTEGER NOT NULL"
	");"
	"CREATE INDEX outbox_event_contact ON outbox_event (contact_id, version) WHERE contact_id != '';"
	"CREATE TABLE webhook_delivery ("
	" id TEXT PRIMARY KEY, endpoint_id TEXT NOT NULL REFERENCES webhook_endpoint (id),"
	" event_seq INTEGER NOT NULL REFERENCES outbox_event (seq),"
	" state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),"
	" attempts INTEGER NOT NULL, created_us INTEGER NOT NULL, next_us INTEGER NOT NULL, last_us INTEGER,"
	" last_status INTEGER NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT ''"
	") WITHOUT ROWID;"
	"CREATE INDEX webhook_delivery_due ON webhook_delivery (next_us) WHERE state = 'pending';"
	"CREATE INDEX webhook_delivery_endpoint ON webhook_delivery (endpoint_id, event_seq);",
	/* 10: mail through a relay (store_mail.c): a failed delivery waits
	 * until next_us, a permanent refusal is failed_us (never sent again),
	 * and each message carries the person's language. */
	"ALTER TABLE mail_outbox ADD COLUMN next_us INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE mail_outbox ADD COLUMN failed_us INTEGER;"
	"ALTER TABLE mail_outbox ADD COLUMN lang TEXT NOT NULL DEFAULT '';",
	/* 11: double opt-in. A consent may be pending_confirmation (SQLite
	 * cannot alter a CHECK: the table is rebuilt with the same columns),
	 * and consent_confirmation holds the mailed links that confirm one. */
	"CREATE TABLE consent_v11 ("
	" contact_id TEXT NOT NULL REFERENCES contact (id),"
	" purpose TEXT NOT NULL, channel TEXT NOT NULL,"
	" status TEXT NOT NULL CHECK (status IN ('granted', 'refused', 'withdrawn', 'pending_confirmation')),"
	" legal_basis TEXT NOT NULL, notice_version TEXT NOT NULL, source TEXT NOT NULL,"
	" method TEXT NOT NULL, receipt_id TEXT NOT NULL,"
	" at_us INTEGER NOT NULL, granted_us INTEGER NOT NULL, expires_us INTEGER NOT NULL,"
	" withdrawn_us INTEGER NOT NULL, recorded_us INTEGER NOT NULL, evidence BLOB,"
	" PRIMARY KEY (contact_id, purpose, channel)"
	") WITHOUT ROWID;"
	"INSERT INTO consent_v11 (contact_id, purpose, channel, status, legal_basis, notice_version, source,"
	" method, receipt_id, at_us, granted_us, expires_us, withdrawn_us, recorded_us, evidence)"
	" SELECT contact_id, purpose, channel, status, legal_basis, notice_version, source, method,"
	" receipt_id, at_us, granted_us, expires_us, withdrawn_us, recorded_us, evidence FROM consent;"
	"DROP TABLE consent;"
	"ALTER TABLE consent_v11 RENAME TO consent;"
	"CREATE TABLE consent_confirmation ("
	" id TEXT PRIMARY KEY, contact_id TEXT NOT NULL, purpose TEXT NOT NULL, channel TEXT NOT NULL,"
	" receipt_id TEXT NOT NULL, created_us INTEGER NOT NULL, expires_us INTEGER NOT NULL,"
	" confirmed_us INTEGER"
	") WITHOUT ROWID;",
	/* 12: key check values (store_keycheck.c): which keys the deployment's
	 * data was written with, so a data folder with other keys is refused. */
	"CREATE TABLE key_check (name TEXT PRIMARY KEY, kcv BLOB NOT NULL) WITHOUT ROWID;",
	/* 13: delivery claims, so that instances on one database never send
	 * one mail or post to one endpoint at once (service/mail.c,
	 * service/outbound.c), and the spent customer form values (nonces,
	 * random bytes: no personal data), so a form is accepted once. */
	"ALTER TABLE mail_outbox ADD COLUMN claimed_by TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE mail_outbox ADD COLUMN claim_until INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE webhook_endpoint ADD COLUMN claimed_by TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE webhook_endpoint ADD COLUMN claim_until INTEGER NOT NULL DEFAULT 0;"
	"CREATE TABLE form_nonce (nonce BLOB PRIMARY KEY, expires_us INTEGER NOT NULL) WITHOUT ROWID;"
	"CREATE INDEX form_nonce_expiry ON form_nonce (expires_us);",
	/* 14: data-subject requests (store_requests.c) and their steps, the
	 * reason of each sealed under the person's data key. */
	"CREATE TABLE dsr_request ("
	" id TEXT PRIMARY KEY, contact_id TEXT NOT NULL,"
	" kind TEXT NOT NULL CHECK (kind IN ('access', 'erasure', 'objection')),"
	" jurisdiction TEXT NOT NULL CHECK (jurisdiction IN ('gdpr', 'ccpa')),"
	" state TEXT NOT NULL CHECK (state IN ('received', 'verified', 'in_progress', 'extended',"
	" 'completed', 'denied')),"
	" origin TEXT NOT NULL CHECK (origin IN ('staff', 'page')),"
	" received_day INTEGER NOT NULL, due_day INTEGER NOT NULL, ack_day INTEGER NOT NULL,"
	" extended INTEGER NOT NULL, needs_approval INTEGER NOT NULL,"
	" created_us INTEGER NOT NULL, updated_us INTEGER NOT NULL, steps INTEGER NOT NULL"
	") WITHOUT ROWID;"
	"CREATE INDEX dsr_request_due ON dsr_request (due_day, id);"
	"CREATE TABLE dsr_step ("
	" request_id TEXT NOT NULL, seq INTEGER NOT NULL, from_state TEXT NOT NULL, to_state TEXT NOT NULL,"
	" actor TEXT NOT NULL, at_us INTEGER NOT NULL, reason BLOB,"
	" PRIMARY KEY (request_id, seq)"
	") WITHOUT ROWID;",
};
#define N_MIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

int store_db_error(sqlite3 *db, int rc, const char *what)
{
	int code = ERR_IO;
	int prim = rc & 0xff;
	if (prim == SQLITE_CONSTRAINT)
		code = ERR_CONFLICT;
	else if (prim == SQLITE_FULL || prim == SQLITE_IOERR || prim == SQLITE_BUSY ||
		 prim == SQLITE_LOCKED || prim == SQLITE_READONLY || prim == SQLITE_CANTOPEN)
		code = ERR_UNAVAILABLE;
	else if (prim == SQLITE_NOMEM)
		code = ERR_NOMEM;
	return err_set(code, "%s: %s", what, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

/* Refuses every change to the audit tables other than INSERT. */
static int authorizer(void *ctx, int action, const char *a1, const char *a2, const char *db,
		      const char *trigger)
{
	(void)ctx;
	(void)a2;
	(void)db;
	(void)trigger;
	bool audit_table = a1 != NULL && (strcmp(a1, "audit") == 0 || strcmp(a1, "audit_checkpoint") == 0);
	switch (action) {
	case SQLITE_UPDATE:
	case SQLITE_DELETE:
	case SQLITE_DROP_TABLE:
	case SQLITE_ALTER_TABLE: return audit_table ? SQLITE_DENY : SQLITE_OK;
	case SQLITE_DROP_TRIGGER:
		return a1 != NULL && (strncmp(a1, "audit_", 6) == 0 || strncmp(a1, "checkpoint_", 11) == 0)
			       ? SQLITE_DENY
			       : SQLITE_OK;
	default: return SQLITE_OK;
	}
}

static int exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK) {
		int code = err_set(ERR_IO, "%s", msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		return code;
	}
	return 0;
}

static int conn_new(struct store *st, bool writer, struct store_conn **out)
{
	struct sqlite_conn *sc = calloc(1, sizeof *sc);
	struct store_conn *c = sc == NULL ? NULL : &sc->base;
	int rc;
	if (c == NULL)
		return err_set(ERR_NOMEM, "out of memory");
	c->be = &store_sqlite_backend;
	c->st = st;
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
	rc = sqlite3_open_v2(sq_store(st)->path, &sq_conn(c)->db, flags, NULL);
	if (rc != SQLITE_OK) {
		rc = store_db_error(sq_conn(c)->db, rc, "cannot open the database");
		goto fail;
	}
	sqlite3_extended_result_codes(sq_conn(c)->db, 1);
	sqlite3_db_config(sq_conn(c)->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(sq_conn(c)->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
	sqlite3_busy_timeout(sq_conn(c)->db, STORE_BUSY_TIMEOUT_MS);
	if ((rc = exec(sq_conn(c)->db,
		       "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON; PRAGMA secure_delete=ON;")) != 0)
		goto fail;
	/* SQLite reuses a WAL from its start after a checkpoint and leaves the
	 * older frames past the new end in the file; the limit cuts them off at
	 * each reset, so stale page copies do not linger there indefinitely. */
	char limit[64];
	snprintf(limit, sizeof limit, "PRAGMA journal_size_limit=%d", STORE_WAL_KEEP_BYTES);
	if ((rc = exec(sq_conn(c)->db, limit)) != 0)
		goto fail;
	/* The single writer gets a larger page cache: a batch of imported
	 * contacts dirties thousands of random pages, and a small cache spills
	 * them to the WAL in the middle of the transaction. At a million
	 * contacts the email blind index alone outgrows 32 MiB, hence
	 * STORE_WRITER_CACHE_KIB (docs/suppression.md has the measurements). */
	/* temp_store=MEMORY keeps the writer's sub-journals (the copies of
	 * pages first changed inside a job's SAVEPOINT) in memory: SQLite
	 * spills them to a temporary file past 64 KiB, and a batch of imported
	 * contacts wrote and deleted such a file for every job. */
	char wpragma[128];
	snprintf(wpragma, sizeof wpragma,
		 "PRAGMA synchronous=FULL; PRAGMA temp_store=MEMORY; PRAGMA cache_size=-%d",
		 STORE_WRITER_CACHE_KIB);
	if ((rc = exec(sq_conn(c)->db, writer ? wpragma : "PRAGMA synchronous=NORMAL")) != 0)
		goto fail;
	*out = c;
	return 0;
fail:
	sqlite_conn_free(c);
	return rc;
}

static int conn_ready(struct store_conn *c)
{
	sqlite3_set_authorizer(sq_conn(c)->db, authorizer, NULL);
	return 0;
}

static sqlite3_stmt *stmt(struct store_conn *c, enum stmt_id id)
{
	if (sq_conn(c)->stmts[id] == NULL) {
		int rc = sqlite3_prepare_v3(sq_conn(c)->db, sqls[id], -1, SQLITE_PREPARE_PERSISTENT,
					    &sq_conn(c)->stmts[id], NULL);
		if (rc != SQLITE_OK) {
			store_db_error(sq_conn(c)->db, rc, "cannot prepare a statement");
			return NULL;
		}
	}
	return sq_conn(c)->stmts[id];
}

sqlite3_stmt *store_stmt_sql(struct store_conn *c, const char *sql)
{
	for (int i = 0; i < sq_conn(c)->n_extra; i++)
		if (sq_conn(c)->extra[i].sql == sql)
			return sq_conn(c)->extra[i].stmt;
	if (sq_conn(c)->n_extra >= STORE_EXTRA_STMTS) {
		err_set(ERR_INTERNAL, "too many statements; raise STORE_EXTRA_STMTS");
		return NULL;
	}
	sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v3(sq_conn(c)->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL);
	if (rc != SQLITE_OK) {
		store_db_error(sq_conn(c)->db, rc, "cannot prepare a statement");
		return NULL;
	}
	sq_conn(c)->extra[sq_conn(c)->n_extra].sql = sql;
	sq_conn(c)->extra[sq_conn(c)->n_extra].stmt = s;
	sq_conn(c)->n_extra++;
	return s;
}

void sqlite_conn_free(struct store_conn *c)
{
	if (c == NULL)
		return;
	for (int i = 0; i < S_COUNT; i++)
		sqlite3_finalize(sq_conn(c)->stmts[i]);
	for (int i = 0; i < sq_conn(c)->n_extra; i++)
		sqlite3_finalize(sq_conn(c)->extra[i].stmt);
	sqlite3_close(sq_conn(c)->db);
	free(c);
}

static int migrate(struct store *st)
{
	struct store_conn *c = NULL;
	int rc = conn_new(st, true, &c);
	if (rc != 0)
		return rc;
	sqlite3_stmt *s = NULL;
	int version = 0;
	if (sqlite3_prepare_v2(sq_conn(c)->db, "PRAGMA user_version", -1, &s, NULL) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW)
		version = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	if (version > N_MIGRATIONS) {
		rc = err_set(ERR_INVALID, "database schema %d is newer than this consentd (%d)", version,
			     N_MIGRATIONS);
		goto out;
	}
	for (int v = version + 1; v <= N_MIGRATIONS; v++) {
		char pragma[64];
		snprintf(pragma, sizeof pragma, "PRAGMA user_version=%d", v);
		if ((rc = exec(sq_conn(c)->db, "BEGIN IMMEDIATE")) != 0)
			goto out;
		if ((rc = exec(sq_conn(c)->db, migrations[v - 1])) != 0 ||
		    (rc = exec(sq_conn(c)->db, pragma)) != 0) {
			exec(sq_conn(c)->db, "ROLLBACK");
			err_set(rc, "migration %d failed: %s", v, err_msg());
			goto out;
		}
		if ((rc = exec(sq_conn(c)->db, "COMMIT")) != 0)
			goto out;
	}
	sq_store(st)->schema_version = N_MIGRATIONS;
out:
	sqlite_conn_free(c);
	return rc;
}

static pthread_once_t sqlite_once = PTHREAD_ONCE_INIT;

static void sqlite_configure(void)
{
	/* Memory statistics take a global mutex on every allocation; we do not
	 * read them, and every worker thread allocates. */
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

/* WAL checkpoints run on their own thread and connection, so that the commit
 * thread (whose latency every audited reply waits on) never does one. The
 * writer's WAL hook wakes it past CHECKPOINT_PAGES. */
#define CHECKPOINT_PAGES 2000

static int wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
	struct store *st = arg;
	(void)db;
	(void)name;
	if (pages >= CHECKPOINT_PAGES) {
		pthread_mutex_lock(&sq_store(st)->ckpt_lock);
		sq_store(st)->ckpt_wanted = true;
		pthread_cond_signal(&sq_store(st)->ckpt_cond);
		pthread_mutex_unlock(&sq_store(st)->ckpt_lock);
	}
	return SQLITE_OK;
}

static void *checkpointer(void *arg)
{
	struct store *st = arg;
	sqlite3 *db = NULL;
	if (sqlite3_open_v2(sq_store(st)->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_busy_timeout(db, STORE_CHECKPOINTER_BUSY_MS);
	pthread_mutex_lock(&sq_store(st)->ckpt_lock);
	while (!sq_store(st)->ckpt_stop) {
		while (!sq_store(st)->ckpt_wanted && !sq_store(st)->ckpt_stop)
			pthread_cond_wait(&sq_store(st)->ckpt_cond, &sq_store(st)->ckpt_lock);
		if (sq_store(st)->ckpt_stop)
			break;
		sq_store(st)->ckpt_wanted = false;
		pthread_mutex_unlock(&sq_store(st)->ckpt_lock);
		sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
		pthread_mutex_lock(&sq_store(st)->ckpt_lock);
	}
	pthread_mutex_unlock(&sq_store(st)->ckpt_lock);
	sqlite3_close(db);
	return NULL;
}

int sqlite_open(struct store **out, const char *path)
{
	pthread_once(&sqlite_once, sqlite_configure);
	struct sqlite_store *sst = calloc(1, sizeof *sst);
	struct store *st = sst == NULL ? NULL : &sst->base;
	int rc;
	*out = NULL;
	if (st == NULL || (sst->path = strdup(path)) == NULL) {
		free(sst);
		return err_set(ERR_NOMEM, "out of memory");
	}
	st->be = &store_sqlite_backend;
	pthread_mutex_init(&sq_store(st)->lock, NULL);
	pthread_mutex_init(&sq_store(st)->ckpt_lock, NULL);
	pthread_cond_init(&sq_store(st)->ckpt_cond, NULL);
	const char *faults = getenv("CONSENTD_TEST_FAULTS");
	sq_store(st)->faults_allowed = faults != NULL && strcmp(faults, "1") == 0;
	snprintf(sq_store(st)->fault_path, sizeof sq_store(st)->fault_path, "%s.fault-audit", path);
	if ((rc = migrate(st)) != 0) {
		sqlite_close(st);
		return rc;
	}
	*out = st;
	return 0;
}

void sqlite_close(struct store *st)
{
	if (st == NULL)
		return;
	if (sq_store(st)->ckpt_running) {
		pthread_mutex_lock(&sq_store(st)->ckpt_lock);
		sq_store(st)->ckpt_stop = true;
		pthread_cond_signal(&sq_store(st)->ckpt_cond);
		pthread_mutex_unlock(&sq_store(st)->ckpt_lock);
		pthread_join(sq_store(st)->ckpt_thread, NULL);
	}
	pthread_mutex_destroy(&sq_store(st)->ckpt_lock);
	pthread_cond_destroy(&sq_store(st)->ckpt_cond);
	for (int i = 0; i < sq_store(st)->pool_n; i++)
		sqlite_conn_free(sq_store(st)->pool[i]);
	pthread_mutex_destroy(&sq_store(st)->lock);
	free(sq_store(st)->path);
	free(st);
}

int sqlite_schema_version(struct store *st)
{
	return sq_store(st)->schema_version;
}

void sqlite_fault_audit(struct store *st, bool fail)
{
	if (sq_store(st)->faults_allowed)
		atomic_store(&sq_store(st)->fault_audit, fail);
}

int sqlite_conn_get(struct store *st, struct store_conn **out)
{
	pthread_mutex_lock(&sq_store(st)->lock);
	if (sq_store(st)->pool_n > 0) {
		*out = sq_store(st)->pool[--sq_store(st)->pool_n];
		pthread_mutex_unlock(&sq_store(st)->lock);
		return 0;
	}
	pthread_mutex_unlock(&sq_store(st)->lock);
	int rc = conn_new(st, false, out);
	if (rc == 0)
		conn_ready(*out);
	return rc;
}

int sqlite_conn_bulk_mode(struct store_conn *c)
{
	/* 16 MiB holds every interior page of the contact, consent and index
	 * B-trees of a million-contact database (a few MiB), so a random lookup
	 * reads one leaf page per tree instead of several pages; leaves are
	 * rarely read twice in one pass, so a larger cache only adds memory. */
	sq_conn(c)->bulk = true;
	return exec(sq_conn(c)->db, "PRAGMA cache_size=-16384");
}

void sqlite_conn_put(struct store *st, struct store_conn *c)
{
	if (c == NULL)
		return;
	if (!sqlite3_get_autocommit(sq_conn(c)->db))
		exec(sq_conn(c)->db, "ROLLBACK");
	if (sq_conn(c)->bulk) {
		exec(sq_conn(c)->db, "PRAGMA cache_size=-2000; PRAGMA shrink_memory");
		sq_conn(c)->bulk = false;
	}
	pthread_mutex_lock(&sq_store(st)->lock);
	if (sq_store(st)->pool_n < STORE_POOL_MAX) {
		sq_store(st)->pool[sq_store(st)->pool_n++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&sq_store(st)->lock);
	sqlite_conn_free(c);
}

int sqlite_writer_open(struct store *st, struct store_conn **out)
{
	int rc = conn_new(st, true, out);
	if (rc != 0)
		return rc;
	conn_ready(*out);
	if (!sq_store(st)->ckpt_running &&
	    pthread_create(&sq_store(st)->ckpt_thread, NULL, checkpointer, st) == 0) {
		sq_store(st)->ckpt_running = true;
		sqlite3_wal_autocheckpoint(sq_conn(*out)->db, 0);
		sqlite3_wal_hook(sq_conn(*out)->db, wal_hook, st);
	}
	return 0;
}

int sqlite_wal_truncate(struct store_conn *w, int wait_ms)
{
	/* The writer's own busy timeout is long; here a reader on an old
	 * snapshot would keep every queued write waiting, so each try waits
	 * briefly and the loop keeps the whole bound. The checkpointer thread's
	 * PASSIVE checkpoint makes a try fail at once with SQLITE_BUSY. */
	int64_t deadline = now_us() + (int64_t)wait_ms * 1000;
	int rc, log_frames = -1, done_frames = -1;
	for (;;) {
		sqlite3_busy_timeout(sq_conn(w)->db, wait_ms > 0 ? ERASE_WAL_TRY_MS : 0);
		rc = sqlite3_wal_checkpoint_v2(sq_conn(w)->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, &log_frames,
					       &done_frames);
		if ((rc == SQLITE_OK && log_frames == 0) || now_us() >= deadline)
			break;
		if (rc != SQLITE_OK && (rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED)
			break;
		usleep(ERASE_WAL_RETRY_US);
	}
	sqlite3_busy_timeout(sq_conn(w)->db, STORE_BUSY_TIMEOUT_MS);
	if (rc == SQLITE_OK && log_frames == 0)
		return 0;
	if (rc == SQLITE_OK)
		return err_set(ERR_UNAVAILABLE, "the write-ahead log still holds %d frames", log_frames);
	store_db_error(sq_conn(w)->db, rc, "cannot truncate the write-ahead log");
	return err_set(ERR_UNAVAILABLE, "%s", err_msg());
}

/* ---- statement helpers ---- */

void store_bind_scope_keys(sqlite3_stmt *s, int first, const struct store_scope_keys *keys)
{
	for (int i = 0; i < STORE_SCOPE_KEYS; i++) {
		/* A NULL scope never equals a stored one: the slot matches nothing. */
		if (keys->scope[i] != NULL) {
			store_bind_text(s, first + 2 * i, keys->scope[i]);
			store_bind_text(s, first + 2 * i + 1, keys->value[i] != NULL ? keys->value[i] : "");
		} else {
			sqlite3_bind_null(s, first + 2 * i);
			sqlite3_bind_null(s, first + 2 * i + 1);
		}
	}
}

int store_step_done(struct store_conn *c, sqlite3_stmt *s, const char *what)
{
	int rc = sqlite3_step(s);
	int ret = 0;
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		ret = store_db_error(sq_conn(c)->db, rc, what);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return ret;
}

static int simple(struct store_conn *c, enum stmt_id id, const char *what)
{
	sqlite3_stmt *s = stmt(c, id);
	if (s == NULL)
		return err_code();
	return store_step_done(c, s, what);
}

int sqlite_begin(struct store_conn *c)
{
	return simple(c, S_BEGIN, "cannot begin");
}
int sqlite_commit(struct store_conn *c)
{
	return simple(c, S_COMMIT, "cannot commit");
}
int sqlite_savepoint(struct store_conn *c)
{
	return simple(c, S_SAVEPOINT, "savepoint");
}
int sqlite_release(struct store_conn *c)
{
	return simple(c, S_RELEASE, "release");
}
int sqlite_rollback_to(struct store_conn *c)
{
	return simple(c, S_ROLLBACK_TO, "rollback to");
}

int sqlite_rollback(struct store_conn *c)
{
	if (sqlite3_get_autocommit(sq_conn(c)->db))
		return 0;
	return simple(c, S_ROLLBACK, "cannot roll back");
}

void store_bind_text(sqlite3_stmt *s, int i, const char *v)
{
	sqlite3_bind_text(s, i, v ? v : "", -1, SQLITE_STATIC);
}

void store_bind_blob_or_null(sqlite3_stmt *s, int i, const uint8_t *v, size_t len)
{
	if (v == NULL)
		sqlite3_bind_null(s, i);
	else
		sqlite3_bind_blob(s, i, v, (int)len, SQLITE_STATIC);
}

void store_col_text(sqlite3_stmt *s, int i, char *out, size_t cap)
{
	/* Hot in audit verification: a bounded copy, no format parsing. */
	const unsigned char *v = sqlite3_column_text(s, i);
	size_t n = v ? (size_t)sqlite3_column_bytes(s, i) : 0;
	if (n >= cap)
		n = cap - 1;
	if (n > 0)
		memcpy(out, v, n);
	out[n] = '\0';
}

size_t store_col_blob(sqlite3_stmt *s, int i, uint8_t *out, size_t cap)
{
	const void *v = sqlite3_column_blob(s, i);
	size_t n = (size_t)sqlite3_column_bytes(s, i);
	if (v == NULL || n > cap)
		return 0;
	memcpy(out, v, n);
	return n;
}

/* ---- contacts ---- */

int sqlite_contact_insert(struct store_conn *c, const struct store_contact *ct, const uint8_t *email_bidx,
			  const uint8_t *phone_bidx)
{
	sqlite3_stmt *s = stmt(c, S_CONTACT_INSERT);
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, ct->id);
	sqlite3_bind_int64(s, 2, ct->created_us);
	sqlite3_bind_int64(s, 3, ct->updated_us);
	store_bind_text(s, 4, ct->collected_for);
	store_bind_text(s, 5, ct->source);
	store_bind_text(s, 6, ct->owner);
	sqlite3_bind_int(s, 7, ct->key_version);
	sqlite3_bind_blob(s, 8, ct->wrapped_key, (int)ct->wrapped_len, SQLITE_STATIC);
	store_bind_blob_or_null(s, 9, email_bidx, 32);
	store_bind_blob_or_null(s, 10, phone_bidx, 32);
	store_bind_blob_or_null(s, 11, ct->has_email_shash ? ct->email_shash : NULL, 32);
	store_bind_blob_or_null(s, 12, ct->has_phone_shash ? ct->phone_shash : NULL, 32);
	int rc = store_step_done(c, s, "cannot insert the contact");
	if (rc == ERR_CONFLICT)
		return err_set(ERR_CONFLICT, "a contact with this email already exists");
	return rc;
}

static void read_contact(sqlite3_stmt *s, struct store_contact *out)
{
	memset(out, 0, sizeof *out);
	store_col_text(s, 0, out->id, sizeof out->id);
	out->created_us = sqlite3_column_int64(s, 1);
	out->updated_us = sqlite3_column_int64(s, 2);
	out->erased = strcmp((const char *)sqlite3_column_text(s, 3), "erased") == 0;
	store_col_text(s, 4, out->collected_for, sizeof out->collected_for);
	store_col_text(s, 5, out->source, sizeof out->source);
	store_col_text(s, 6, out->owner, sizeof out->owner);
	out->key_version = sqlite3_column_int(s, 7);
	out->wrapped_len = store_col_blob(s, 8, out->wrapped_key, sizeof out->wrapped_key);
	out->has_email_shash = store_col_blob(s, 9, out->email_shash, 32) == 32;
	out->has_phone_shash = store_col_blob(s, 10, out->phone_shash, 32) == 32;
}

int sqlite_contact_get(struct store_conn *c, const char *id, struct store_contact *out)
{
	sqlite3_stmt *s = stmt(c, S_CONTACT_GET);
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, id);
	int rc = sqlite3_step(s);
	int ret = 0;
	if (rc == SQLITE_ROW)
		read_contact(s, out);
	else if (rc == SQLITE_DONE)
		ret = err_set(ERR_NOTFOUND, "no contact with this id");
	else
		ret = store_db_error(sq_conn(c)->db, rc, "cannot read the contact");
	sqlite3_reset(s);
	return ret;
}

int sqlite_contact_update(struct store_conn *c, const struct store_contact *ct)
{
	sqlite3_stmt *s = stmt(c, S_CONTACT_UPDATE);
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, ct->id);
	sqlite3_bind_int64(s, 2, ct->updated_us);
	store_bind_text(s, 3, ct->collected_for);
	store_bind_text(s, 4, ct->source);
	store_bind_text(s, 5, ct->owner);
	sqlite3_bind_int(s, 6, ct->key_version);
	sqlite3_bind_blob(s, 7, ct->wrapped_key, (int)ct->wrapped_len, SQLITE_STATIC);
	int rc = store_step_done(c, s, "cannot update the contact");
	if (rc == 0 && sqlite3_changes(sq_conn(c)->db) != 1)
		return err_set(ERR_NOTFOUND, "no active contact with this id");
	return rc;
}

int sqlite_contact_set_index(struct store_conn *c, const char *id, const uint8_t *email_bidx,
			     const uint8_t *phone_bidx, const uint8_t *email_shash,
			     const uint8_t *phone_shash)
{
	sqlite3_stmt *s = stmt(c, S_CONTACT_SET_INDEX);
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, id);
	store_bind_blob_or_null(s, 2, email_bidx, 32);
	store_bind_blob_or_null(s, 3, phone_bidx, 32);
	store_bind_blob_or_null(s, 4, email_shash, 32);
	store_bind_blob_or_null(s, 5, phone_shash, 32);
	int rc = store_step_done(c, s, "cannot update the blind index");
	if (rc == ERR_CONFLICT)
		return err_set(ERR_CONFLICT, "a contact with this email already exists");
	return rc;
}

int sqlite_contact_find_email(struct store_conn *c, const uint8_t bidx[32], char id_out[STORE_ID_CAP])
{
	sqlite3_stmt *s = stmt(c, S_CONTACT_FIND_EMAIL);
	if (s == NULL)
		return err_code();
	sqlite3_bind_blob(s, 1, bidx, 32, SQLITE_STATIC);
	int rc = sqlite3_step(s), ret = 0;
	if (rc == SQLITE_ROW)
		store_col_text(s, 0, id_out, STORE_ID_CAP);
	else if (rc == SQLITE_DONE)
		ret = err_set(ERR_NOTFOUND, "no contact with this email");
	else
		ret = store_db_error(sq_conn(c)->db, rc, "cannot look up the email");
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return ret;
}

int sqlite_contact_erase(struct store_conn *c, const char *id, int64_t when_us)
{
	sqlite3_stmt *s = stmt(c, S_CONTACT_ERASE);
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, id);
	sqlite3_bind_int64(s, 2, when_us);
	int rc = store_step_done(c, s, "cannot erase the contact");
	if (rc != 0)
		return rc;
	if (sqlite3_changes(sq_conn(c)->db) != 1)
		return err_set(ERR_NOTFOUND, "no active contact with this id");
	enum stmt_id wipes[] = { S_FIELDS_ERASE, S_EVIDENCE_ERASE_CUR, S_EVIDENCE_ERASE_HIST };
	for (size_t i = 0; i < sizeof wipes / sizeof wipes[0]; i++) {
		s = stmt(c, wipes[i]);
		if (s == NULL)
			return err_code();
		store_bind_text(s, 1, id);
		if ((rc = store_step_done(c, s, "cannot erase the contact's values")) != 0)
			return rc;
	}
	return 0;
}

int sqlite_contact_count(struct store_conn *c, int64_t *out)
{
	sqlite3_stmt *s = stmt(c, S_CONTACT_COUNT);
	if (s == NULL)
		return err_code();
	int rc = sqlite3_step(s), ret = 0;
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(s, 0);
	else
		ret = store_db_error(sq_conn(c)->db, rc, "cannot count contacts");
	sqlite3_reset(s);
	return ret;
}

int sqlite_field_put(struct store_conn *c, const char *id, const char *name, const uint8_t *sealed,
		     size_t len)
{
	sqlite3_stmt *s = stmt(c, S_FIELD_PUT);
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, id);
	store_bind_text(s, 2, name);
	sqlite3_bind_blob(s, 3, sealed, (int)len, SQLITE_STATIC);
	return store_step_done(c, s, "cannot store a field");
}

int sqlite_field_delete(struct store_conn *c, const char *id, const char *name)
{
	sqlite3_stmt *s = stmt(c, S_FIELD_DELETE);
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, id);
	store_bind_text(s, 2, name);
	return store_step_done(c, s, "cannot delete a field");
}

int sqlite_fields_each(struct store_conn *c, const char *id, store_field_cb cb, void *ctx)
{
	sqlite3_stmt *s = stmt(c, S_FIELDS_EACH);
	int rc, ret = 0;
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		ret = cb(ctx, (const char *)sqlite3_column_text(s, 0), sqlite3_column_blob(s, 1),
			 (size_t)sqlite3_column_bytes(s, 1));
		if (ret != 0)
			break;
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = store_db_error(sq_conn(c)->db, rc, "cannot read fields");
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return ret;
}

int sqlite_contacts_rewrap(struct store_conn *c, store_rewrap_cb cb, void *ctx, int64_t *count)
{
	char after[STORE_ID_CAP] = "";
	int rc = 0;
	*count = 0;
	for (;;) {
		/* Pages of 1000 ids, so that updates never run under an open cursor. */
		struct store_contact *page = calloc(1000, sizeof *page);
		int n = 0, step;
		if (page == NULL)
			return err_set(ERR_NOMEM, "out of memory");
		sqlite3_stmt *s = stmt(c, S_CONTACTS_LIVE);
		if (s == NULL) {
			free(page);
			return err_code();
		}
		store_bind_text(s, 1, after);
		while ((step = sqlite3_step(s)) == SQLITE_ROW && n < 1000)
			read_contact(s, &page[n++]);
		sqlite3_reset(s);
		if (step != SQLITE_DONE && step != SQLITE_ROW) {
			free(page);
			return store_db_error(sq_conn(c)->db, step, "cannot list contacts");
		}
		for (int i = 0; i < n && rc == 0; i++) {
			rc = cb(ctx, &page[i]);
			if (rc == 0)
				rc = sqlite_contact_update(c, &page[i]);
			(*count)++;
		}
		if (n > 0)
			memcpy(after, page[n - 1].id, sizeof after);
		free(page);
		if (rc != 0 || n < 1000)
			return rc;
	}
}

int sqlite_key_versions_in_use(struct store_conn *c, int *versions, int cap, int *n)
{
	sqlite3_stmt *s = stmt(c, S_KEY_VERSIONS);
	int rc;
	if (s == NULL)
		return err_code();
	*n = 0;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		if (*n < cap)
			versions[(*n)++] = sqlite3_column_int(s, 0);
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : store_db_error(sq_conn(c)->db, rc, "cannot list key versions");
}

/* ---- consents ---- */

static void bind_consent(sqlite3_stmt *s, const struct store_consent *cs)
{
	store_bind_text(s, 1, cs->contact_id);
	store_bind_text(s, 2, cs->purpose);
	store_bind_text(s, 3, cs->channel);
	store_bind_text(s, 4, cs->status);
	store_bind_text(s, 5, cs->legal_basis);
	store_bind_text(s, 6, cs->notice_version);
	store_bind_text(s, 7, cs->source);
	store_bind_text(s, 8, cs->method);
	store_bind_text(s, 9, cs->receipt_id);
	sqlite3_bind_int64(s, 10, cs->at_us);
	sqlite3_bind_int64(s, 11, cs->granted_us);
	sqlite3_bind_int64(s, 12, cs->expires_us);
	sqlite3_bind_int64(s, 13, cs->withdrawn_us);
	sqlite3_bind_int64(s, 14, cs->recorded_us);
	store_bind_blob_or_null(s, 15, cs->evidence, cs->evidence_len);
}

static void read_consent(sqlite3_stmt *s, struct store_consent *cs)
{
	memset(cs, 0, sizeof *cs);
	store_col_text(s, 0, cs->contact_id, sizeof cs->contact_id);
	store_col_text(s, 1, cs->purpose, sizeof cs->purpose);
	store_col_text(s, 2, cs->channel, sizeof cs->channel);
	store_col_text(s, 3, cs->status, sizeof cs->status);
	store_col_text(s, 4, cs->legal_basis, sizeof cs->legal_basis);
	store_col_text(s, 5, cs->notice_version, sizeof cs->notice_version);
	store_col_text(s, 6, cs->source, sizeof cs->source);
	store_col_text(s, 7, cs->method, sizeof cs->method);
	store_col_text(s, 8, cs->receipt_id, sizeof cs->receipt_id);
	cs->at_us = sqlite3_column_int64(s, 9);
	cs->granted_us = sqlite3_column_int64(s, 10);
	cs->expires_us = sqlite3_column_int64(s, 11);
	cs->withdrawn_us = sqlite3_column_int64(s, 12);
	cs->recorded_us = sqlite3_column_int64(s, 13);
	cs->evidence = sqlite3_column_blob(s, 14);
	cs->evidence_len = (size_t)sqlite3_column_bytes(s, 14);
}

int sqlite_consent_put(struct store_conn *c, const struct store_consent *cs, bool current)
{
	int rc;
	enum stmt_id ids[] = { S_CONSENT_PUT, S_CONSENT_EVENT };
	for (int i = current ? 0 : 1; i < 2; i++) {
		sqlite3_stmt *s = stmt(c, ids[i]);
		if (s == NULL)
			return err_code();
		bind_consent(s, cs);
		rc = store_step_done(c, s, "cannot record the consent");
		if (rc != 0)
			return rc;
	}
	return 0;
}

int sqlite_consent_get(struct store_conn *c, const char *contact_id, const char *purpose, const char *channel,
		       struct store_consent *out)
{
	sqlite3_stmt *s = stmt(c, S_CONSENT_GET);
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, contact_id);
	store_bind_text(s, 2, purpose);
	store_bind_text(s, 3, channel);
	int rc = sqlite3_step(s), ret = 0;
	if (rc == SQLITE_ROW) {
		read_consent(s, out);
		out->evidence = NULL; /* borrowed memory would not outlive the reset */
		out->evidence_len = 0;
	} else if (rc == SQLITE_DONE) {
		ret = ERR_NOTFOUND;
	} else {
		ret = store_db_error(sq_conn(c)->db, rc, "cannot read the consent");
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return ret;
}

static int consent_walk(struct store_conn *c, enum stmt_id id, const char *contact_id, store_consent_cb cb,
			void *ctx)
{
	sqlite3_stmt *s = stmt(c, id);
	struct store_consent cs;
	int rc, ret = 0;
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, contact_id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		read_consent(s, &cs);
		if ((ret = cb(ctx, &cs)) != 0)
			break;
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = store_db_error(sq_conn(c)->db, rc, "cannot read consents");
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return ret;
}

int sqlite_consents_each(struct store_conn *c, const char *contact_id, store_consent_cb cb, void *ctx)
{
	return consent_walk(c, S_CONSENTS_EACH, contact_id, cb, ctx);
}

int sqlite_consent_history_each(struct store_conn *c, const char *contact_id, store_consent_cb cb, void *ctx)
{
	return consent_walk(c, S_CONSENT_HISTORY, contact_id, cb, ctx);
}

int sqlite_consent_history_count(struct store_conn *c, const char *contact_id, int64_t *out)
{
	sqlite3_stmt *s = stmt(c, S_CONSENT_HISTORY_COUNT);
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, contact_id);
	int rc = sqlite3_step(s), ret = 0;
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(s, 0);
	else
		ret = store_db_error(sq_conn(c)->db, rc, "cannot count consent events");
	sqlite3_reset(s);
	return ret;
}

/* ---- principals ---- */

int sqlite_principal_insert(struct store_conn *c, const char *name, const char *role,
			    const uint8_t token_hash[32], int64_t when_us)
{
	sqlite3_stmt *s = stmt(c, S_PRINCIPAL_INSERT);
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, name);
	store_bind_text(s, 2, role);
	sqlite3_bind_blob(s, 3, token_hash, 32, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, when_us);
	int rc = store_step_done(c, s, "cannot store the principal");
	if (rc == ERR_CONFLICT)
		return err_set(ERR_CONFLICT, "a principal named %s already exists", name);
	return rc;
}

int sqlite_principal_find(struct store_conn *c, const uint8_t token_hash[32], char name[STORE_TEXT_CAP],
			  char role[STORE_NAME_CAP])
{
	if (sq_store(c->st)->faults_allowed) {
		/* Tests: DB.fault-read makes the lookup fail as a broken disk would. */
		char fault[LIMIT_DERIVED_PATH_CAP];
		snprintf(fault, sizeof fault, "%s.fault-read", sq_store(c->st)->path);
		if (access(fault, F_OK) == 0)
			return err_set(ERR_IO, "cannot look up the token: disk I/O error (injected fault)");
	}
	sqlite3_stmt *s = stmt(c, S_PRINCIPAL_FIND);
	if (s == NULL)
		return err_code();
	sqlite3_bind_blob(s, 1, token_hash, 32, SQLITE_STATIC);
	int rc = sqlite3_step(s), ret = 0;
	if (rc == SQLITE_ROW) {
		store_col_text(s, 0, name, STORE_TEXT_CAP);
		store_col_text(s, 1, role, STORE_NAME_CAP);
	} else if (rc == SQLITE_DONE) {
		ret = err_set(ERR_NOTFOUND, "unknown token");
	} else {
		ret = store_db_error(sq_conn(c)->db, rc, "cannot look up the token");
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return ret;
}

int sqlite_principal_revoke(struct store_conn *c, const char *name, int64_t when_us)
{
	sqlite3_stmt *s = stmt(c, S_PRINCIPAL_REVOKE);
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, name);
	sqlite3_bind_int64(s, 2, when_us);
	int rc = store_step_done(c, s, "cannot revoke the principal");
	if (rc == 0 && sqlite3_changes(sq_conn(c)->db) != 1)
		return err_set(ERR_NOTFOUND, "no active principal named %s", name);
	return rc;
}

/* ---- audit ---- */

int sqlite_audit_head(struct store_conn *c, int64_t *seq, uint8_t hash[32])
{
	sqlite3_stmt *s = stmt(c, S_AUDIT_HEAD);
	if (s == NULL)
		return err_code();
	int rc = sqlite3_step(s), ret = 0;
	*seq = 0;
	memset(hash, 0, 32);
	if (rc == SQLITE_ROW) {
		*seq = sqlite3_column_int64(s, 0);
		store_col_blob(s, 1, hash, 32);
	} else if (rc != SQLITE_DONE) {
		ret = store_db_error(sq_conn(c)->db, rc, "cannot read the audit head");
	}
	sqlite3_reset(s);
	return ret;
}

int sqlite_audit_append(struct store_conn *c, const struct audit_entry *e)
{
	if (atomic_load(&sq_store(c->st)->fault_audit) ||
	    (sq_store(c->st)->faults_allowed && access(sq_store(c->st)->fault_path, F_OK) == 0))
		return err_set(ERR_UNAVAILABLE, "audit write failed (injected fault)");
	sqlite3_stmt *s = stmt(c, S_AUDIT_APPEND);
	if (s == NULL)
		return err_code();
	sqlite3_bind_int64(s, 1, e->seq);
	sqlite3_bind_int64(s, 2, e->time_us);
	store_bind_text(s, 3, e->actor);
	store_bind_text(s, 4, e->role);
	store_bind_text(s, 5, e->action);
	store_bind_text(s, 6, e->record_id);
	store_bind_text(s, 7, e->purpose);
	store_bind_text(s, 8, e->channel);
	store_bind_text(s, 9, e->decision);
	store_bind_text(s, 10, e->reason);
	store_bind_text(s, 11, e->fields);
	store_bind_text(s, 12, e->request_id);
	store_bind_text(s, 13, e->client);
	store_bind_text(s, 14, e->detail);
	sqlite3_bind_blob(s, 15, e->prev_hash, 32, SQLITE_STATIC);
	sqlite3_bind_blob(s, 16, e->hash, 32, SQLITE_STATIC);
	int rc = store_step_done(c, s, "cannot append to the audit trail");
	return rc == ERR_CONFLICT ? ERR_UNAVAILABLE : rc;
}

int sqlite_checkpoint_append(struct store_conn *c, const struct audit_checkpoint *cp)
{
	sqlite3_stmt *s = stmt(c, S_CHECKPOINT_APPEND);
	if (s == NULL)
		return err_code();
	sqlite3_bind_int64(s, 1, cp->size);
	sqlite3_bind_blob(s, 2, cp->root, sizeof cp->root, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, cp->time_us);
	sqlite3_bind_blob(s, 4, cp->key_id, sizeof cp->key_id, SQLITE_STATIC);
	sqlite3_bind_blob(s, 5, cp->sig, sizeof cp->sig, SQLITE_STATIC);
	return store_step_done(c, s, "cannot store the checkpoint");
}

static void read_checkpoint(sqlite3_stmt *s, struct audit_checkpoint *cp)
{
	memset(cp, 0, sizeof *cp);
	cp->size = sqlite3_column_int64(s, 0);
	store_col_blob(s, 1, cp->root, sizeof cp->root);
	cp->time_us = sqlite3_column_int64(s, 2);
	store_col_blob(s, 3, cp->key_id, sizeof cp->key_id);
	store_col_blob(s, 4, cp->sig, sizeof cp->sig);
}

int sqlite_checkpoint_latest(struct store_conn *c, struct audit_checkpoint *out)
{
	sqlite3_stmt *s = stmt(c, S_CHECKPOINT_LATEST);
	if (s == NULL)
		return err_code();
	int rc = sqlite3_step(s), ret = 0;
	if (rc == SQLITE_ROW)
		read_checkpoint(s, out);
	else if (rc == SQLITE_DONE)
		ret = err_set(ERR_NOTFOUND, "no checkpoint has been signed yet");
	else
		ret = store_db_error(sq_conn(c)->db, rc, "cannot read the checkpoint");
	sqlite3_reset(s);
	return ret;
}

static void read_audit(sqlite3_stmt *s, struct audit_entry *e)
{
	e->seq = sqlite3_column_int64(s, 0);
	e->time_us = sqlite3_column_int64(s, 1);
	store_col_text(s, 2, e->actor, sizeof e->actor);
	store_col_text(s, 3, e->role, sizeof e->role);
	store_col_text(s, 4, e->action, sizeof e->action);
	store_col_text(s, 5, e->record_id, sizeof e->record_id);
	store_col_text(s, 6, e->purpose, sizeof e->purpose);
	store_col_text(s, 7, e->channel, sizeof e->channel);
	store_col_text(s, 8, e->decision, sizeof e->decision);
	store_col_text(s, 9, e->reason, sizeof e->reason);
	store_col_text(s, 10, e->fields, sizeof e->fields);
	store_col_text(s, 11, e->request_id, sizeof e->request_id);
	store_col_text(s, 12, e->client, sizeof e->client);
	store_col_text(s, 13, e->detail, sizeof e->detail);
	memset(e->prev_hash, 0, sizeof e->prev_hash);
	memset(e->hash, 0, sizeof e->hash);
	store_col_blob(s, 14, e->prev_hash, sizeof e->prev_hash);
	store_col_blob(s, 15, e->hash, sizeof e->hash);
}

struct sqlite_audit_cursor {
	struct store_audit_cursor base; /* first: the interface's handle */
	sqlite3_stmt *s;
	bool done;
};

int sqlite_audit_cursor_open(struct store_conn *c, const struct store_audit_filter *f,
			     struct store_audit_cursor **out)
{
	/* The filter shape varies, so this statement is built per call from fixed
	 * fragments only; every value is bound. */
	char sql[768];
	size_t n = (size_t)snprintf(sql, sizeof sql, "SELECT " AUDIT_COLS " FROM audit WHERE seq > ?1");
	static const char *const parts[] = { " AND record_id = ?2 AND record_id != ''",
					     " AND actor = ?3",
					     " AND action = ?4",
					     " AND purpose = ?5",
					     " AND decision = ?6",
					     " AND time_us >= ?7",
					     " AND time_us < ?8" };
	const bool on[] = { f->record_id != NULL, f->actor != NULL, f->action != NULL, f->purpose != NULL,
			    f->decision != NULL,  f->since_us != 0, f->until_us != 0 };
	for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
		if (on[i])
			n += (size_t)snprintf(sql + n, sizeof sql - n, "%s", parts[i]);
	n += (size_t)snprintf(sql + n, sizeof sql - n, " ORDER BY seq");
	if (f->limit > 0)
		snprintf(sql + n, sizeof sql - n, " LIMIT ?9");

	struct sqlite_audit_cursor *cur = calloc(1, sizeof *cur);
	if (cur == NULL)
		return err_set(ERR_NOMEM, "out of memory");
	cur->base.c = c;
	int rc = sqlite3_prepare_v2(sq_conn(c)->db, sql, -1, &cur->s, NULL);
	if (rc != SQLITE_OK) {
		free(cur);
		return store_db_error(sq_conn(c)->db, rc, "cannot query the audit trail");
	}
	sqlite3_stmt *s = cur->s;
	sqlite3_bind_int64(s, 1, f->after_seq);
	if (f->record_id)
		sqlite3_bind_text(s, 2, f->record_id, -1, SQLITE_TRANSIENT);
	if (f->actor)
		sqlite3_bind_text(s, 3, f->actor, -1, SQLITE_TRANSIENT);
	if (f->action)
		sqlite3_bind_text(s, 4, f->action, -1, SQLITE_TRANSIENT);
	if (f->purpose)
		sqlite3_bind_text(s, 5, f->purpose, -1, SQLITE_TRANSIENT);
	if (f->decision)
		sqlite3_bind_text(s, 6, f->decision, -1, SQLITE_TRANSIENT);
	if (f->since_us)
		sqlite3_bind_int64(s, 7, f->since_us);
	if (f->until_us)
		sqlite3_bind_int64(s, 8, f->until_us);
	if (f->limit > 0)
		sqlite3_bind_int64(s, 9, f->limit);
	*out = &cur->base;
	return 0;
}

int sqlite_audit_cursor_next(struct store_audit_cursor *base, struct audit_entry *e)
{
	struct sqlite_audit_cursor *cur = (struct sqlite_audit_cursor *)base;
	if (cur->done)
		return 0;
	int rc = sqlite3_step(cur->s);
	if (rc == SQLITE_ROW) {
		read_audit(cur->s, e);
		return 1;
	}
	cur->done = true;
	if (rc == SQLITE_DONE)
		return 0;
	return store_db_error(sq_conn(cur->base.c)->db, rc, "cannot read the audit trail");
}

void sqlite_audit_cursor_close(struct store_audit_cursor *base)
{
	struct sqlite_audit_cursor *cur = (struct sqlite_audit_cursor *)base;
	if (cur == NULL)
		return;
	sqlite3_finalize(cur->s);
	free(cur);
}

static const char SQL_AUDIT_HASH_AT[] = "SELECT hash FROM audit WHERE seq = ?1";

int sqlite_audit_hash_at(struct store_conn *c, int64_t seq, uint8_t hash[32])
{
	/* Cached: the writer asks before every batch (writer.c, reconcile). */
	sqlite3_stmt *s = store_stmt_sql(c, SQL_AUDIT_HASH_AT);
	if (s == NULL)
		return err_code();
	sqlite3_bind_int64(s, 1, seq);
	int rc = sqlite3_step(s);
	int ret = 0;
	if (rc == SQLITE_ROW && sqlite3_column_bytes(s, 0) == 32)
		memcpy(hash, sqlite3_column_blob(s, 0), 32);
	else if (rc == SQLITE_ROW || rc == SQLITE_DONE)
		ret = err_set(ERR_NOTFOUND, "the audit trail holds no entry %lld", (long long)seq);
	else
		ret = store_db_error(sq_conn(c)->db, rc, "cannot read the audit trail");
	sqlite3_reset(s);
	return ret;
}

struct sqlite_checkpoint_cursor {
	struct store_checkpoint_cursor base; /* first: the interface's handle */
	sqlite3_stmt *s;
	bool done;
};

int sqlite_checkpoint_cursor_open(struct store_conn *c, int64_t after_size,
				  struct store_checkpoint_cursor **out)
{
	struct sqlite_checkpoint_cursor *cur = calloc(1, sizeof *cur);
	*out = NULL;
	if (cur == NULL)
		return err_set(ERR_NOMEM, "out of memory");
	cur->base.c = c;
	int rc = sqlite3_prepare_v2(sq_conn(c)->db,
				    "SELECT size, root, time_us, key_id, sig FROM audit_checkpoint "
				    "WHERE size > ?1 ORDER BY size",
				    -1, &cur->s, NULL);
	if (rc != SQLITE_OK) {
		free(cur);
		return store_db_error(sq_conn(c)->db, rc, "cannot read checkpoints");
	}
	sqlite3_bind_int64(cur->s, 1, after_size);
	*out = &cur->base;
	return 0;
}

int sqlite_checkpoint_cursor_next(struct store_checkpoint_cursor *base, struct audit_checkpoint *cp)
{
	struct sqlite_checkpoint_cursor *cur = (struct sqlite_checkpoint_cursor *)base;
	if (cur->done)
		return 0;
	int rc = sqlite3_step(cur->s);
	if (rc == SQLITE_ROW) {
		read_checkpoint(cur->s, cp);
		return 1;
	}
	cur->done = true;
	if (rc == SQLITE_DONE)
		return 0;
	return store_db_error(sq_conn(cur->base.c)->db, rc, "cannot read checkpoints");
}

void sqlite_checkpoint_cursor_close(struct store_checkpoint_cursor *base)
{
	struct sqlite_checkpoint_cursor *cur = (struct sqlite_checkpoint_cursor *)base;
	if (cur == NULL)
		return;
	sqlite3_finalize(cur->s);
	free(cur);
}

/* ---- suppressions ---- */

int sqlite_suppression_match(struct store_conn *c, const uint8_t *hash_a, const uint8_t *hash_b,
			     const struct store_scope_keys *keys, char reason[STORE_NAME_CAP])
{
	sqlite3_stmt *s = stmt(c, S_SUPPRESSION_MATCH);
	if (s == NULL)
		return err_code();
	if (hash_a == NULL && hash_b == NULL)
		return ERR_NOTFOUND;
	store_bind_blob_or_null(s, 1, hash_a, 32);
	store_bind_blob_or_null(s, 2, hash_b, 32);
	store_bind_scope_keys(s, 3, keys);
	int rc = sqlite3_step(s), ret = 0;
	if (rc == SQLITE_ROW) {
		if (reason != NULL)
			store_col_text(s, 0, reason, STORE_NAME_CAP);
	} else if (rc == SQLITE_DONE) {
		ret = ERR_NOTFOUND;
	} else {
		ret = store_db_error(sq_conn(c)->db, rc, "cannot check suppressions");
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return ret;
}

static bool sqlite_accepts(const char *location)
{
	return strstr(location, "://") == NULL;
}

const struct store_backend store_sqlite_backend = {
	.name = "sqlite",
	.accepts = sqlite_accepts,
	.open = sqlite_open,
	.close = sqlite_close,
	.schema_version = sqlite_schema_version,
	.conn_get = sqlite_conn_get,
	.conn_put = sqlite_conn_put,
	.conn_bulk_mode = sqlite_conn_bulk_mode,
	.writer_open = sqlite_writer_open,
	.conn_free = sqlite_conn_free,
	.wal_truncate = sqlite_wal_truncate,
	.begin = sqlite_begin,
	.commit = sqlite_commit,
	.rollback = sqlite_rollback,
	.savepoint = sqlite_savepoint,
	.release = sqlite_release,
	.rollback_to = sqlite_rollback_to,
	.fault_audit = sqlite_fault_audit,
	.contact_insert = sqlite_contact_insert,
	.contact_get = sqlite_contact_get,
	.contact_update = sqlite_contact_update,
	.contact_set_index = sqlite_contact_set_index,
	.contact_find_email = sqlite_contact_find_email,
	.contact_erase = sqlite_contact_erase,
	.contact_count = sqlite_contact_count,
	.field_put = sqlite_field_put,
	.field_delete = sqlite_field_delete,
	.fields_each = sqlite_fields_each,
	.contacts_rewrap = sqlite_contacts_rewrap,
	.key_versions_in_use = sqlite_key_versions_in_use,
	.key_check_get = sqlite_key_check_get,
	.key_check_add = sqlite_key_check_add,
	.consent_put = sqlite_consent_put,
	.consent_get = sqlite_consent_get,
	.consents_each = sqlite_consents_each,
	.consent_history_each = sqlite_consent_history_each,
	.consent_history_count = sqlite_consent_history_count,
	.suppression_match = sqlite_suppression_match,
	.principal_insert = sqlite_principal_insert,
	.principal_find = sqlite_principal_find,
	.principal_revoke = sqlite_principal_revoke,
	.audit_head = sqlite_audit_head,
	.audit_append = sqlite_audit_append,
	.checkpoint_append = sqlite_checkpoint_append,
	.checkpoint_latest = sqlite_checkpoint_latest,
	.audit_cursor_open = sqlite_audit_cursor_open,
	.audit_cursor_next = sqlite_audit_cursor_next,
	.audit_cursor_close = sqlite_audit_cursor_close,
	.audit_hash_at = sqlite_audit_hash_at,
	.checkpoint_cursor_open = sqlite_checkpoint_cursor_open,
	.checkpoint_cursor_next = sqlite_checkpoint_cursor_next,
	.checkpoint_cursor_close = sqlite_checkpoint_cursor_close,
	.link_insert = sqlite_link_insert,
	.link_get = sqlite_link_get,
	.link_revoke = sqlite_link_revoke,
	.links_revoke_contact = sqlite_links_revoke_contact,
	.links_revoke_mintable = sqlite_links_revoke_mintable,
	.console_session_insert = sqlite_console_session_insert,
	.console_session_get = sqlite_console_session_get,
	.console_session_touch = sqlite_console_session_touch,
	.console_session_delete = sqlite_console_session_delete,
	.console_sessions_expire = sqlite_console_sessions_expire,
	.console_stats = sqlite_console_stats,
	.console_find_phone = sqlite_console_find_phone,
	.principal_role = sqlite_principal_role,
	.subject_suppressions_each = sqlite_subject_suppressions_each,
	.filter_by_email = sqlite_filter_by_email,
	.filter_by_email_many = sqlite_filter_by_email_many,
	.filter_by_id = sqlite_filter_by_id,
	.release_put = sqlite_release_put,
	.release_find = sqlite_release_find,
	.release_count = sqlite_release_count,
	.release_log_put = sqlite_release_log_put,
	.release_recent = sqlite_release_recent,
	.release_recent_many = sqlite_release_recent_many,
	.release_log_each = sqlite_release_log_each,
	.release_summary_put = sqlite_release_summary_put,
	.release_summary_get = sqlite_release_summary_get,
	.frequency_put = sqlite_frequency_put,
	.frequency_get = sqlite_frequency_get,
	.frequency_each = sqlite_frequency_each,
	.release_times_many = sqlite_release_times_many,
	.suppression_add = sqlite_suppression_add,
	.suppressions_active = sqlite_suppressions_active,
	.suppressions_lift = sqlite_suppressions_lift,
	.provider_event_once = sqlite_provider_event_once,
	.mail_put = sqlite_mail_put,
	.mail_pending = sqlite_mail_pending,
	.mail_mark = sqlite_mail_mark,
	.mail_claim = sqlite_mail_claim,
	.mail_release = sqlite_mail_release,
	.form_nonce_spend = sqlite_form_nonce_spend,
	.form_nonce_spent = sqlite_form_nonce_spent,
	.confirmation_put = sqlite_confirmation_put,
	.confirmation_get = sqlite_confirmation_get,
	.confirmation_done = sqlite_confirmation_done,
	.request_put = sqlite_request_put,
	.request_update = sqlite_request_update,
	.request_get = sqlite_request_get,
	.requests_each = sqlite_requests_each,
	.request_step_put = sqlite_request_step_put,
	.request_steps_each = sqlite_request_steps_each,
	.requests_due_counts = sqlite_requests_due_counts,
	.webhook_insert = sqlite_webhook_insert,
	.webhook_get = sqlite_webhook_get,
	.webhooks_each = sqlite_webhooks_each,
	.webhook_delete = sqlite_webhook_delete,
	.webhook_disable = sqlite_webhook_disable,
	.webhook_subscribers = sqlite_webhook_subscribers,
	.outbox_next_version = sqlite_outbox_next_version,
	.outbox_add = sqlite_outbox_add,
	.deliveries_each = sqlite_deliveries_each,
	.deliveries_due = sqlite_deliveries_due,
	.webhook_claim = sqlite_webhook_claim,
	.webhook_release = sqlite_webhook_release,
	.delivery_record = sqlite_delivery_record,
	.delivery_retry = sqlite_delivery_retry,
	.outbox_stats = sqlite_outbox_stats,
	.outbox_forget_personal = sqlite_outbox_forget_personal,
};
