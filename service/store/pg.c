/*
 * pg: the PostgreSQL backend of the store interface (backend.h), over libpq.
 * The only file that includes libpq-fe.h. Selected by a `database` setting
 * that is a postgresql:// (or postgres://) URI, which is libpq's conninfo.
 *
 * Invariants:
 * - No SQL is built from input: every value is a parameter. Blobs go in and
 *   come out in binary format, so hashes and sealed values are byte exact;
 *   integers go in as decimal text and come out in binary.
 * - Schema changes are numbered migrations mirroring SQLite's, applied in
 *   one transaction under an advisory lock (several instances may start at
 *   once); consentd_schema records the last one applied.
 * - store_begin takes the chain lock, pg_advisory_xact_lock(PG_CHAIN_LOCK),
 *   in the same READ COMMITTED transaction as everything the batch writes. Every instance's
 *   writer does, so batches from several instances are totally ordered: the
 *   audit head a batch reads under the lock is the head its entries extend,
 *   and a trigger refuses an entry whose seq is not head + 1 (gapless; a
 *   PostgreSQL sequence would leave gaps on rollback).
 * - The writer connection runs with synchronous_commit = on: COMMIT returns
 *   after the WAL is flushed (backend.h guarantee 2).
 * - The audit, checkpoint and consent history tables are append-only:
 *   triggers refuse UPDATE, DELETE and TRUNCATE (history: DELETE).
 * - Error messages name the SQLSTATE and the constraint, never a value
 *   (PostgreSQL's own messages may quote the values of a failed row).
 * - A connection the server dropped is reset before its next use, so an
 *   instance reconnects by itself; while the server is unreachable every
 *   call fails with ERR_UNAVAILABLE (fail closed: the writer answers 503).
 * - The pool is bounded (pool_cap connections in all, the writer's included:
 *   LIMIT_PG_CONNS unless "database_pool" says otherwise): a request that
 *   finds none free waits up to LIMIT_PG_POOL_WAIT_MS for one to come back,
 *   then gets ERR_UNAVAILABLE (503) rather than a new connection.
 * - A COMMIT whose reply is lost (the connection dropped after it was sent)
 *   is not answered as a failure blindly: the writer connection remembers
 *   the last audit entry the transaction appended, reconnects and looks it
 *   up (pg_commit_outcome). Found with its hash: the batch committed, and
 *   is acknowledged. Absent: it did not, and the batch fails (503) with
 *   nothing saved. Only when the database stays unreachable is the outcome
 *   unknown; that is answered 503 too (docs/operations.md says what a
 *   client does then).
 */
#include "service/store/backend.h"
#include "service/store/store.h"

#include "service/base/error.h"
#include "service/base/limits.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

/* Keys of the advisory locks; any constant unique to consentd. */
#define PG_CHAIN_LOCK 0x636f6e73656e7401LL
#define PG_MIGRATE_LOCK 0x636f6e73656e7402LL
#define PG_MAX_PARAMS 20
#define PG_PAGE 1000 /* rows per page of the audit and checkpoint cursors */
#define PG_FILTER_BATCH 4096
#define PG_AUDIT_ROWS 64 /* audit entries per INSERT; more are sent in several */

struct pg_conn {
	struct store_conn base; /* first: the interface's handle */
	PGconn *db;
	bool writer;
	/* The last audit entry appended in the open transaction (seq 0: none),
	 * by which pg_commit learns whether a COMMIT whose reply was lost took
	 * effect. */
	int64_t last_seq;
	uint8_t last_hash[32];
	/* Audit entries appended but not yet sent: they go to the server in
	 * one multi-row INSERT before the next statement of any kind (so the
	 * order of everything the transaction does is kept) or at COMMIT, which
	 * takes a round trip per entry out of the time a batch holds the chain
	 * lock. NULL until the first append; PG_AUDIT_ROWS entries. */
	struct audit_entry *pend;
	int pend_n;
	/* The seq the next append must have, once pg_audit_head has read the
	 * head inside this transaction (0: unknown). Entries are deferred only
	 * then, so an out-of-sequence append still fails at once (backend.h
	 * guarantee 5), and never outside a transaction, where the INSERT is
	 * its own commit. */
	int64_t next_seq;
	/* Bit i set: statement i of pg_stmts is prepared in this session. A
	 * reset opens a new session, which has none. */
	unsigned prepared;
};

/* The statements a check runs on every request, prepared once per session
 * so the server parses and plans them once, not on every check. */
enum pg_stmt { PG_STMT_FILTER_ID, PG_STMT_FILTER_EMAIL };
static const char *const pg_stmt_names[] = { "cd_filter_id", "cd_filter_email" };

struct pg_store {
	struct store base; /* first: the interface's handle */
	char *conninfo;
	pthread_mutex_t lock;
	pthread_cond_t freed; /* a connection came back, or one was closed */
	struct store_conn *pool[LIMIT_PG_POOL_MAX];
	int pool_n, open_n, pool_cap;
	atomic_bool fault_audit;
	bool faults_allowed;
	/* CONSENTD_TEST_PG_FAULT_FILE (with CONSENTD_TEST_FAULTS=1): a file
	 * whose content names a one-shot fault of the next COMMIT. */
	char fault_file[512];
	int schema_version;
};

static inline struct pg_conn *pgc(struct store_conn *c)
{
	return (struct pg_conn *)c;
}
static inline struct pg_store *pgs(struct store *st)
{
	return (struct pg_store *)st;
}

/* ---- parameters and results -------------------------------------------- */

struct pg_args {
	int n;
	const char *v[PG_MAX_PARAMS];
	int len[PG_MAX_PARAMS];
	int fmt[PG_MAX_PARAMS];
	char num[PG_MAX_PARAMS][24];
};

static void a_text(struct pg_args *a, const char *s)
{
	a->v[a->n] = s ? s : "";
	a->len[a->n] = 0;
	a->fmt[a->n++] = 0;
}

static void a_null(struct pg_args *a)
{
	a->v[a->n] = NULL;
	a->len[a->n] = 0;
	a->fmt[a->n++] = 0;
}

static void a_text_or_null(struct pg_args *a, const char *s)
{
	if (s == NULL)
		a_null(a);
	else
		a_text(a, s);
}

static void a_i64(struct pg_args *a, int64_t x)
{
	snprintf(a->num[a->n], sizeof a->num[a->n], "%lld", (long long)x);
	a_text(a, a->num[a->n]);
}

static void a_blob(struct pg_args *a, const uint8_t *b, size_t n)
{
	if (b == NULL) {
		a_null(a);
		return;
	}
	a->v[a->n] = (const char *)b;
	a->len[a->n] = (int)n;
	a->fmt[a->n++] = 1;
}

static void a_keys(struct pg_args *a, const struct store_scope_keys *k)
{
	for (int i = 0; i < STORE_SCOPE_KEYS; i++) {
		a_text_or_null(a, k ? k->scope[i] : NULL);
		a_text_or_null(a, k ? k->value[i] : NULL);
	}
}

/* Maps a failed result (or none) to an ERR_*: a unique or check violation is
 * ERR_CONFLICT; a lost connection, a server shutting down or out of
 * resources, a serialization failure or a read-only standby after a
 * failover is ERR_UNAVAILABLE; the rest ERR_IO. */
/* Durable commits whatever the server's default (backend.h guarantee 2);
 * quiet notices, which could quote values. */
static void pg_session_setup(PGconn *db)
{
	PQclear(PQexec(db, "SET synchronous_commit TO on; SET client_min_messages TO warning"));
}

static int pg_error(struct pg_conn *pc, PGresult *r, const char *what)
{
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	const char *cons = r ? PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME) : NULL;
	int code = ERR_IO;
	if (state == NULL || PQstatus(pc->db) != CONNECTION_OK)
		code = ERR_UNAVAILABLE;
	else if (strncmp(state, "23", 2) == 0)
		code = ERR_CONFLICT;
	else if (strncmp(state, "08", 2) == 0 || strncmp(state, "53", 2) == 0 ||
		 strncmp(state, "57P", 3) == 0 || strcmp(state, "40001") == 0 ||
		 strcmp(state, "40P01") == 0 || strcmp(state, "25006") == 0)
		code = ERR_UNAVAILABLE;
	if (state == NULL) {
		/* Connection messages come from libpq and hold no row values. */
		char msg[160];
		snprintf(msg, sizeof msg, "%s", PQerrorMessage(pc->db));
		msg[strcspn(msg, "\n")] = '\0';
		return err_set(code, "%s: the database is unreachable (%s)", what, msg);
	}
	return err_set(code, "%s: PostgreSQL error %s%s%s", what, state, cons ? " on " : "",
		       cons ? cons : "");
}

/* Reconnects a connection the server dropped (a restart, a failover) and
 * sets the session up again; a transaction it was in is gone, so the
 * caller's next statement fails or starts afresh, never half-applied. */
static void pg_reset(struct pg_conn *pc)
{
	PQreset(pc->db);
	pc->prepared = 0;
	if (PQstatus(pc->db) == CONNECTION_OK)
		pg_session_setup(pc->db);
}

/* Runs sql with the arguments; binary results. *out is the result when it
 * has status want; otherwise it is freed and an ERR_* returned. */
static int pg_audit_flush(struct pg_conn *pc);

static int pg_run(struct store_conn *c, const char *sql, const struct pg_args *a, PGresult **out,
		  const char *what)
{
	struct pg_conn *pc = pgc(c);
	*out = NULL;
	if (PQstatus(pc->db) != CONNECTION_OK)
		pg_reset(pc);
	int rc = pc->pend_n > 0 ? pg_audit_flush(pc) : 0;
	if (rc != 0)
		return rc;
	PGresult *r = PQexecParams(pc->db, sql, a ? a->n : 0, NULL, a ? a->v : NULL, a ? a->len : NULL,
				   a ? a->fmt : NULL, 1);
	ExecStatusType s = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	if (s != PGRES_TUPLES_OK && s != PGRES_COMMAND_OK) {
		rc = pg_error(pc, r, what);
		PQclear(r);
		return rc;
	}
	*out = r;
	return 0;
}

/* As pg_run, for statement id of pg_stmts (sql its text): prepared on the
 * session's first use, then executed by name. */
static int pg_run_prepared(struct store_conn *c, enum pg_stmt id, const char *sql, const struct pg_args *a,
			   PGresult **out, const char *what)
{
	struct pg_conn *pc = pgc(c);
	*out = NULL;
	if (PQstatus(pc->db) != CONNECTION_OK)
		pg_reset(pc);
	int rc = pc->pend_n > 0 ? pg_audit_flush(pc) : 0;
	if (rc != 0)
		return rc;
	if ((pc->prepared & (1u << id)) == 0) {
		PGresult *p = PQprepare(pc->db, pg_stmt_names[id], sql, a->n, NULL);
		/* 42P05: it exists already (a prepare whose reply was lost). */
		const char *state = p != NULL ? PQresultErrorField(p, PG_DIAG_SQLSTATE) : NULL;
		bool exists = state != NULL && strcmp(state, "42P05") == 0;
		if (!exists && (p == NULL || PQresultStatus(p) != PGRES_COMMAND_OK)) {
			rc = pg_error(pc, p, what);
			PQclear(p);
			return rc;
		}
		PQclear(p);
		pc->prepared |= 1u << id;
	}
	PGresult *r = PQexecPrepared(pc->db, pg_stmt_names[id], a->n, a->v, a->len, a->fmt, 1);
	ExecStatusType s = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	if (s != PGRES_TUPLES_OK && s != PGRES_COMMAND_OK) {
		rc = pg_error(pc, r, what);
		PQclear(r);
		return rc;
	}
	*out = r;
	return 0;
}

/* A statement whose rows we do not need; *changed (may be NULL) how many
 * rows it inserted, updated or deleted. */
static int pg_do(struct store_conn *c, const char *sql, const struct pg_args *a, int64_t *changed,
		 const char *what)
{
	PGresult *r = NULL;
	int rc = pg_run(c, sql, a, &r, what);
	if (rc == 0 && changed != NULL)
		*changed = strtoll(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	return rc;
}

static bool r_null(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) != 0;
}

static int64_t r_i64(const PGresult *r, int row, int col)
{
	const unsigned char *p = (const unsigned char *)PQgetvalue(r, row, col);
	int n = PQgetlength(r, row, col);
	uint64_t v = 0;
	if (PQgetisnull(r, row, col) || n > 8)
		return 0;
	for (int i = 0; i < n; i++)
		v = (v << 8) | p[i];
	if (n > 0 && n < 8 && (p[0] & 0x80))
		v |= ~UINT64_C(0) << (8 * n); /* sign-extend int2 and int4 */
	return (int64_t)v;
}

/* Copies a text column; a value longer than the field is refused, never cut
 * (backend.h guarantee 6); *bad is set and the output left empty. */
static void r_text(const PGresult *r, int row, int col, char *out, size_t cap, bool *bad)
{
	size_t n = (size_t)PQgetlength(r, row, col);
	out[0] = '\0';
	if (PQgetisnull(r, row, col))
		return;
	if (n >= cap) {
		*bad = true;
		return;
	}
	memcpy(out, PQgetvalue(r, row, col), n);
	out[n] = '\0';
}

static size_t r_blob(const PGresult *r, int row, int col, uint8_t *out, size_t cap)
{
	size_t n = (size_t)PQgetlength(r, row, col);
	if (PQgetisnull(r, row, col) || n > cap)
		return 0;
	memcpy(out, PQgetvalue(r, row, col), n);
	return n;
}

static int too_long(const char *what)
{
	return err_set(ERR_IO, "%s: a stored value is longer than its field", what);
}

/* ---- schema ------------------------------------------------------------ */

/* Migration n (1-based) is migrations[n - 1], each mirroring SQLite's of the
 * same number. Never edit one that shipped. */
static const char *const migrations[] = {
	/* 1: contacts, sealed fields, consents, principals, audit. */
	"CREATE TABLE contact ("
	" id TEXT PRIMARY KEY, created_us BIGINT NOT NULL, updated_us BIGINT NOT NULL,"
	" status TEXT NOT NULL CHECK (status IN ('active', 'erased')),"
	" collected_for TEXT NOT NULL, source TEXT NOT NULL DEFAULT '', owner TEXT NOT NULL DEFAULT '',"
	" key_version INTEGER, wrapped_key BYTEA, email_bidx BYTEA UNIQUE, phone_bidx BYTEA,"
	" email_shash BYTEA, phone_shash BYTEA);"
	"CREATE INDEX contact_phone ON contact (phone_bidx) WHERE phone_bidx IS NOT NULL;"
	"CREATE TABLE contact_field (contact_id TEXT NOT NULL REFERENCES contact (id),"
	" name TEXT NOT NULL, value BYTEA NOT NULL, PRIMARY KEY (contact_id, name));"
	"CREATE TABLE consent (contact_id TEXT NOT NULL REFERENCES contact (id),"
	" purpose TEXT NOT NULL, channel TEXT NOT NULL,"
	" status TEXT NOT NULL CHECK (status IN ('granted', 'refused', 'withdrawn')),"
	" legal_basis TEXT NOT NULL, notice_version TEXT NOT NULL, source TEXT NOT NULL,"
	" method TEXT NOT NULL, receipt_id TEXT NOT NULL, at_us BIGINT NOT NULL,"
	" granted_us BIGINT NOT NULL, expires_us BIGINT NOT NULL, withdrawn_us BIGINT NOT NULL,"
	" recorded_us BIGINT NOT NULL, evidence BYTEA, PRIMARY KEY (contact_id, purpose, channel));"
	"CREATE TABLE consent_event (seq BIGSERIAL PRIMARY KEY,"
	" contact_id TEXT NOT NULL REFERENCES contact (id),"
	" purpose TEXT NOT NULL, channel TEXT NOT NULL, status TEXT NOT NULL,"
	" legal_basis TEXT NOT NULL, notice_version TEXT NOT NULL, source TEXT NOT NULL,"
	" method TEXT NOT NULL, receipt_id TEXT NOT NULL, at_us BIGINT NOT NULL,"
	" granted_us BIGINT NOT NULL, expires_us BIGINT NOT NULL, withdrawn_us BIGINT NOT NULL,"
	" recorded_us BIGINT NOT NULL, evidence BYTEA);"
	"CREATE INDEX consent_event_contact ON consent_event (contact_id, at_us);"
	"CREATE FUNCTION consentd_append_only() RETURNS trigger LANGUAGE plpgsql AS"
	" $$BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = '23001'; END$$;"
	"CREATE TRIGGER consent_event_no_delete BEFORE DELETE ON consent_event"
	" FOR EACH ROW EXECUTE FUNCTION consentd_append_only();"
	"CREATE TABLE principal (name TEXT PRIMARY KEY, role TEXT NOT NULL,"
	" token_hash BYTEA NOT NULL UNIQUE, created_us BIGINT NOT NULL, revoked_us BIGINT);"
	"CREATE TABLE audit (seq BIGINT PRIMARY KEY, time_us BIGINT NOT NULL,"
	" actor TEXT NOT NULL, role TEXT NOT NULL, action TEXT NOT NULL, record_id TEXT NOT NULL,"
	" purpose TEXT NOT NULL, channel TEXT NOT NULL, decision TEXT NOT NULL,"
	" reason TEXT NOT NULL, fields TEXT NOT NULL, request_id TEXT NOT NULL,"
	" client TEXT NOT NULL, detail TEXT NOT NULL, prev_hash BYTEA NOT NULL, hash BYTEA NOT NULL);"
	"CREATE INDEX audit_record ON audit (record_id, seq) WHERE record_id != '';"
	"CREATE TRIGGER audit_no_update BEFORE UPDATE OR DELETE ON audit"
	" FOR EACH ROW EXECUTE FUNCTION consentd_append_only();"
	"CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit"
	" FOR EACH STATEMENT EXECUTE FUNCTION consentd_append_only();"
	/* Gapless: the chain lock of store_begin makes max(seq) stable for the
	 * batch; this refuses any insert that is not the next entry. */
	"CREATE FUNCTION consentd_audit_next() RETURNS trigger LANGUAGE plpgsql AS"
	" $$BEGIN IF NEW.seq <> coalesce((SELECT max(seq) FROM audit), 0) + 1 THEN"
	" RAISE EXCEPTION 'audit entries are appended in sequence' USING ERRCODE = '23002';"
	" END IF; RETURN NEW; END$$;"
	"CREATE TRIGGER audit_next_seq BEFORE INSERT ON audit"
	" FOR EACH ROW EXECUTE FUNCTION consentd_audit_next();"
	"CREATE TABLE audit_checkpoint (size BIGINT PRIMARY KEY, root BYTEA NOT NULL,"
	" time_us BIGINT NOT NULL, key_id BYTEA NOT NULL, sig BYTEA NOT NULL);"
	"CREATE TRIGGER checkpoint_no_update BEFORE UPDATE OR DELETE ON audit_checkpoint"
	" FOR EACH ROW EXECUTE FUNCTION consentd_append_only();"
	"CREATE TRIGGER checkpoint_no_truncate BEFORE TRUNCATE ON audit_checkpoint"
	" FOR EACH STATEMENT EXECUTE FUNCTION consentd_append_only();"
	"CREATE TABLE suppression (id BIGSERIAL PRIMARY KEY, hash BYTEA NOT NULL,"
	" kind TEXT NOT NULL CHECK (kind IN ('email', 'phone')),"
	" scope TEXT NOT NULL CHECK (scope IN ('all', 'purpose', 'channel')),"
	" scope_value TEXT NOT NULL DEFAULT '',"
	" reason TEXT NOT NULL CHECK (reason IN ('unsubscribe', 'withdrawal', 'bounce',"
	"  'complaint', 'erasure', 'manual', 'gpc')),"
	" source TEXT NOT NULL DEFAULT '', created_us BIGINT NOT NULL, recorded_us BIGINT NOT NULL,"
	" lifted_us BIGINT, lifted_by TEXT);"
	"CREATE INDEX suppression_hash ON suppression (hash) WHERE lifted_us IS NULL;"
	"CREATE TABLE preference_link (id TEXT PRIMARY KEY,"
	" contact_id TEXT NOT NULL REFERENCES contact (id), scope TEXT NOT NULL,"
	" created_us BIGINT NOT NULL, expires_us BIGINT NOT NULL, revoked_us BIGINT,"
	" created_by TEXT NOT NULL);"
	"CREATE INDEX preference_link_contact ON preference_link (contact_id);",
	/* 2: which contacts each outreach filter request released. */
	"CREATE TABLE filter_release (release_id TEXT NOT NULL, chunk BIGINT NOT NULL,"
	" ids BYTEA NOT NULL, PRIMARY KEY (release_id, chunk));",
	/* 3: what a preference link may do. */
	"ALTER TABLE preference_link ADD COLUMN capability TEXT NOT NULL DEFAULT 'optout'"
	" CHECK (capability IN ('optout', 'manage'));",
	/* 4: the auditor's console sessions; ids and tokens only as hashes. */
	"CREATE TABLE console_session (id_hash BYTEA PRIMARY KEY, token_hash BYTEA NOT NULL,"
	" actor TEXT NOT NULL, role TEXT NOT NULL, csrf TEXT NOT NULL,"
	" created_us BIGINT NOT NULL, seen_us BIGINT NOT NULL);",
	/* 5: provider events already taken in; the event id only as a keyed hash. */
	"CREATE TABLE provider_event (provider TEXT NOT NULL, id_hash BYTEA NOT NULL,"
	" received_us BIGINT NOT NULL, PRIMARY KEY (provider, id_hash));",
	/* 6: the per-person release log behind frequency caps (the contact as
	 * its raw 16-byte id) and each filter request's summary. */
	"CREATE TABLE release_log (contact BYTEA NOT NULL, purpose TEXT NOT NULL,"
	" channel TEXT NOT NULL, at_us BIGINT NOT NULL, release_id TEXT NOT NULL,"
	" PRIMARY KEY (contact, purpose, channel, at_us, release_id));"
	"CREATE TABLE release_summary (release_id TEXT PRIMARY KEY, at_us BIGINT NOT NULL,"
	" summary TEXT NOT NULL);",
	/* 7: the person's own frequency choice per (purpose, channel). */
	"CREATE TABLE frequency_choice (contact_id TEXT NOT NULL REFERENCES contact (id),"
	" purpose TEXT NOT NULL, channel TEXT NOT NULL, choice TEXT NOT NULL,"
	" set_us BIGINT NOT NULL, PRIMARY KEY (contact_id, purpose, channel));",
	/* 8: mail to send, queued in the transaction of the change that causes
	 * it; ids and a kind only, never an address or a token. */
	"CREATE TABLE mail_outbox (id TEXT PRIMARY KEY, kind TEXT NOT NULL,"
	" contact_id TEXT NOT NULL, link_id TEXT NOT NULL, created_us BIGINT NOT NULL,"
	" attempts BIGINT NOT NULL DEFAULT 0, sent_us BIGINT);"
	"CREATE INDEX mail_outbox_pending ON mail_outbox (created_us) WHERE sent_us IS NULL;",
	/* 9: outbound webhooks: endpoints with sealed secrets, the transactional
	 * outbox and one delivery row per event and endpoint. */
	"CREATE TABLE webhook_endpoint (id TEXT PRIMARY KEY, url TEXT NOT NULL, events TEXT NOT NULL,"
	" description TEXT NOT NULL, role TEXT NOT NULL, key_version INTEGER NOT NULL,"
	" wrapped_key BYTEA NOT NULL, secret BYTEA NOT NULL, created_us BIGINT NOT NULL,"
	" disabled_us BIGINT, disabled_reason TEXT NOT NULL DEFAULT '', deleted_us BIGINT);"
	"CREATE TABLE outbox_event (seq BIGSERIAL PRIMARY KEY, type TEXT NOT NULL,"
	" contact_id TEXT NOT NULL, version BIGINT NOT NULL, body TEXT NOT NULL, personal BYTEA,"
	" created_us BIGINT NOT NULL);"
	"CREATE INDEX outbox_event_contact ON outbox_event (contact_id, version) WHERE contact_id != '';"
	"CREATE TABLE webhook_delivery (id TEXT PRIMARY KEY,"
	" endpoint_id TEXT NOT NULL REFERENCES webhook_endpoint (id),"
	" event_seq BIGINT NOT NULL REFERENCES outbox_event (seq),"
	" state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),"
	" attempts BIGINT NOT NULL, created_us BIGINT NOT NULL, next_us BIGINT NOT NULL, last_us BIGINT,"
	" last_status BIGINT NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '');"
	"CREATE INDEX webhook_delivery_due ON webhook_delivery (next_us) WHERE state = 'pending';"
	"CREATE INDEX webhook_delivery_endpoint ON webhook_delivery (endpoint_id, event_seq);",
	/* 10: mail through a relay: retry time, permanent failure, language. */
	"ALTER TABLE mail_outbox ADD COLUMN next_us BIGINT NOT NULL DEFAULT 0,"
	" ADD COLUMN failed_us BIGINT, ADD COLUMN lang TEXT NOT NULL DEFAULT '';",
	/* 11: double opt-in: a consent may be pending_confirmation, and the
	 * mailed links that confirm one. */
	"ALTER TABLE consent DROP CONSTRAINT consent_status_check,"
	" ADD CONSTRAINT consent_status_check"
	" CHECK (status IN ('granted', 'refused', 'withdrawn', 'pending_confirmation'));"
	"CREATE TABLE consent_confirmation (id TEXT PRIMARY KEY, contact_id TEXT NOT NULL,"
	" purpose TEXT NOT NULL, channel TEXT NOT NULL, receipt_id TEXT NOT NULL,"
	" created_us BIGINT NOT NULL, expires_us BIGINT NOT NULL, confirmed_us BIGINT);",
	/* 12: key check values (service/keycheck.c), never a key. */
	"CREATE TABLE key_check (name TEXT PRIMARY KEY, kcv BYTEA NOT NULL);",
	/* 13: delivery claims (one instance sends a mail, one posts to an
	 * endpoint at a time) and the spent customer form values. */
	"ALTER TABLE mail_outbox ADD COLUMN claimed_by TEXT NOT NULL DEFAULT '',"
	" ADD COLUMN claim_until BIGINT NOT NULL DEFAULT 0;"
	"ALTER TABLE webhook_endpoint ADD COLUMN claimed_by TEXT NOT NULL DEFAULT '',"
	" ADD COLUMN claim_until BIGINT NOT NULL DEFAULT 0;"
	"CREATE TABLE form_nonce (nonce BYTEA PRIMARY KEY, expires_us BIGINT NOT NULL);"
	"CREATE INDEX form_nonce_expiry ON form_nonce (expires_us);",
	/* 14: data-subject requests and their steps (reasons sealed). */
	"CREATE TABLE dsr_request (id TEXT PRIMARY KEY, contact_id TEXT NOT NULL,"
	" kind TEXT NOT NULL CHECK (kind IN ('access', 'erasure', 'objection')),"
	" jurisdiction TEXT NOT NULL CHECK (jurisdiction IN ('gdpr', 'ccpa')),"
	" state TEXT NOT NULL CHECK (state IN ('received', 'verified', 'in_progress', 'extended',"
	" 'completed', 'denied')),"
	" origin TEXT NOT NULL CHECK (origin IN ('staff', 'page')),"
	" received_day BIGINT NOT NULL, due_day BIGINT NOT NULL, ack_day BIGINT NOT NULL,"
	" extended BIGINT NOT NULL, needs_approval BIGINT NOT NULL,"
	" created_us BIGINT NOT NULL, updated_us BIGINT NOT NULL, steps BIGINT NOT NULL);"
	"CREATE INDEX dsr_request_due ON dsr_request (due_day, id);"
	"CREATE TABLE dsr_step (request_id TEXT NOT NULL, seq BIGINT NOT NULL, from_state TEXT NOT NULL,"
	" to_state TEXT NOT NULL, actor TEXT NOT NULL, at_us BIGINT NOT NULL, reason BYTEA,"
	" PRIMARY KEY (request_id, seq));",
};
#define N_MIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

/* A migration holds several statements, which only PQexec (the simple
 * query protocol) accepts; migrations take no parameters. */
static int pg_script(struct store_conn *c, const char *sql, const char *what)
{
	PGresult *r = PQexec(pgc(c)->db, sql);
	int rc = 0;
	if (r == NULL || PQresultStatus(r) != PGRES_COMMAND_OK)
		rc = pg_error(pgc(c), r, what);
	PQclear(r);
	return rc;
}

static int pg_migrate(struct store_conn *c, int *version)
{
	PGresult *r = NULL;
	struct pg_args a = { 0 };
	int rc;
	a_i64(&a, PG_MIGRATE_LOCK);
	if ((rc = pg_do(c, "BEGIN ISOLATION LEVEL READ COMMITTED", NULL, NULL,
			"cannot begin the migration")) != 0 ||
	    (rc = pg_do(c, "SELECT pg_advisory_xact_lock($1::bigint)", &a, NULL, "cannot lock the schema")) !=
		    0 ||
	    (rc = pg_run(c, "SELECT to_regclass('consentd_schema') IS NULL", NULL, &r,
			 "cannot read the schema version")) != 0)
		goto fail;
	/* Only when missing: a service role without CREATE on the schema (the
	 * least privilege of docs/operations.md) serves a schema the owner made. */
	bool missing = PQgetlength(r, 0, 0) == 1 && PQgetvalue(r, 0, 0)[0] != 0;
	PQclear(r);
	r = NULL;
	if ((missing && (rc = pg_do(c, "CREATE TABLE consentd_schema (version INTEGER NOT NULL)", NULL, NULL,
				    "cannot create the schema table")) != 0) ||
	    (rc = pg_run(c, "SELECT coalesce(max(version), 0)::bigint FROM consentd_schema", NULL, &r,
			 "cannot read the schema version")) != 0)
		goto fail;
	int v = (int)r_i64(r, 0, 0);
	PQclear(r);
	if (v > N_MIGRATIONS) {
		rc = err_set(ERR_INVALID, "the database has schema %d, newer than this consentd (%d)", v,
			     N_MIGRATIONS);
		goto fail;
	}
	for (v++; v <= N_MIGRATIONS; v++) {
		struct pg_args b = { 0 };
		a_i64(&b, v);
		if ((rc = pg_script(c, migrations[v - 1], "a migration failed")) != 0 ||
		    (rc = pg_do(c, "DELETE FROM consentd_schema", NULL, NULL, "a migration failed")) != 0 ||
		    (rc = pg_do(c, "INSERT INTO consentd_schema (version) VALUES ($1)", &b, NULL,
				"a migration failed")) != 0)
			goto fail;
	}
	if ((rc = pg_do(c, "COMMIT", NULL, NULL, "cannot commit the migration")) != 0)
		goto fail;
	*version = N_MIGRATIONS;
	return 0;
fail:
	PQclear(PQexec(pgc(c)->db, "ROLLBACK"));
	return rc;
}

/* ---- connections --------------------------------------------------------- */

static int pg_connect(struct pg_store *ps, bool writer, struct store_conn **out)
{
	struct pg_conn *pc = calloc(1, sizeof *pc);
	*out = NULL;
	if (pc == NULL)
		return err_set(ERR_NOMEM, "out of memory");
	pc->base.be = &store_pg_backend;
	pc->base.st = &ps->base;
	pc->writer = writer;
	pc->db = PQconnectdb(ps->conninfo);
	if (pc->db == NULL || PQstatus(pc->db) != CONNECTION_OK) {
		int rc = pc->db ? pg_error(pc, NULL, "cannot connect to PostgreSQL")
				: err_set(ERR_NOMEM, "out of memory");
		PQfinish(pc->db);
		free(pc);
		return rc;
	}
	pg_session_setup(pc->db);
	*out = &pc->base;
	return 0;
}

static void pg_conn_free(struct store_conn *c)
{
	if (c == NULL)
		return;
	struct pg_store *ps = pgs(c->st);
	pthread_mutex_lock(&ps->lock);
	ps->open_n--;
	pthread_cond_signal(&ps->freed);
	pthread_mutex_unlock(&ps->lock);
	PQfinish(pgc(c)->db);
	free(pgc(c)->pend);
	free(c);
}

static bool pg_accepts(const char *location)
{
	return strncmp(location, "postgresql://", 13) == 0 || strncmp(location, "postgres://", 11) == 0;
}

static int pg_open(struct store **out, const char *location)
{
	struct pg_store *ps = calloc(1, sizeof *ps);
	struct store_conn *c = NULL;
	int rc;
	*out = NULL;
	if (ps == NULL || (ps->conninfo = strdup(location)) == NULL) {
		free(ps);
		return err_set(ERR_NOMEM, "out of memory");
	}
	ps->base.be = &store_pg_backend;
	pthread_mutex_init(&ps->lock, NULL);
	pthread_cond_init(&ps->freed, NULL);
	ps->pool_cap = LIMIT_PG_CONNS;
	const char *faults = getenv("CONSENTD_TEST_FAULTS");
	ps->faults_allowed = faults != NULL && strcmp(faults, "1") == 0;
	const char *ff = getenv("CONSENTD_TEST_PG_FAULT_FILE");
	if (ps->faults_allowed && ff != NULL)
		snprintf(ps->fault_file, sizeof ps->fault_file, "%s", ff);
	ps->open_n = 1;
	if ((rc = pg_connect(ps, false, &c)) != 0 || (rc = pg_migrate(c, &ps->schema_version)) != 0) {
		if (c == NULL)
			ps->open_n--;
		pg_conn_free(c);
		pthread_mutex_destroy(&ps->lock);
		pthread_cond_destroy(&ps->freed);
		free(ps->conninfo);
		free(ps);
		return rc;
	}
	ps->pool[ps->pool_n++] = c;
	*out = &ps->base;
	return 0;
}

static void pg_close(struct store *st)
{
	struct pg_store *ps = pgs(st);
	while (ps->pool_n > 0)
		pg_conn_free(ps->pool[--ps->pool_n]);
	pthread_mutex_destroy(&ps->lock);
	pthread_cond_destroy(&ps->freed);
	free(ps->conninfo);
	free(ps);
}

static int pg_schema_version(struct store *st)
{
	return pgs(st)->schema_version;
}

static int pg_set_pool_size(struct store *st, int n)
{
	struct pg_store *ps = pgs(st);
	if (n < LIMIT_PG_POOL_MIN || n > LIMIT_PG_POOL_MAX)
		return err_set(ERR_INVALID, "the database pool must hold %d to %d connections",
			       LIMIT_PG_POOL_MIN, LIMIT_PG_POOL_MAX);
	pthread_mutex_lock(&ps->lock);
	ps->pool_cap = n;
	/* Idle connections beyond a smaller size are closed when they come
	 * back (pg_conn_put); those already idle stay until then. */
	pthread_cond_broadcast(&ps->freed);
	pthread_mutex_unlock(&ps->lock);
	return 0;
}

/* Takes an idle connection, opens one while fewer than pool_cap are open,
 * or waits for one to come back, at most LIMIT_PG_POOL_WAIT_MS: a short
 * burst is served late rather than refused, a long one is answered 503
 * instead of queueing without bound. */
static int pg_conn_get(struct store *st, struct store_conn **out)
{
	struct pg_store *ps = pgs(st);
	struct timespec until;
	*out = NULL;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += LIMIT_PG_POOL_WAIT_MS / 1000;
	until.tv_nsec += (long)(LIMIT_PG_POOL_WAIT_MS % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&ps->lock);
	while (ps->pool_n == 0 && ps->open_n >= ps->pool_cap)
		if (pthread_cond_timedwait(&ps->freed, &ps->lock, &until) == ETIMEDOUT)
			break;
	if (ps->pool_n > 0) {
		*out = ps->pool[--ps->pool_n];
		pthread_mutex_unlock(&ps->lock);
		return 0;
	}
	if (ps->open_n >= ps->pool_cap) {
		pthread_mutex_unlock(&ps->lock);
		return err_set(ERR_UNAVAILABLE, "every database connection is in use (%d, waited %d ms)",
			       ps->pool_cap, LIMIT_PG_POOL_WAIT_MS);
	}
	ps->open_n++;
	pthread_mutex_unlock(&ps->lock);
	int rc = pg_connect(ps, false, out);
	if (rc != 0) {
		pthread_mutex_lock(&ps->lock);
		ps->open_n--;
		pthread_mutex_unlock(&ps->lock);
	}
	return rc;
}

static void pg_conn_put(struct store *st, struct store_conn *c)
{
	struct pg_store *ps = pgs(st);
	/* A connection left inside a transaction (a caller's bug or a failed
	 * statement) must not carry it into the next request. */
	if (PQtransactionStatus(pgc(c)->db) != PQTRANS_IDLE)
		PQclear(PQexec(pgc(c)->db, "ROLLBACK"));
	pthread_mutex_lock(&ps->lock);
	if (ps->pool_n < LIMIT_PG_POOL_MAX && ps->open_n <= ps->pool_cap) {
		ps->pool[ps->pool_n++] = c;
		c = NULL;
		pthread_cond_signal(&ps->freed);
	}
	pthread_mutex_unlock(&ps->lock);
	pg_conn_free(c);
}

static int pg_conn_bulk_mode(struct store_conn *c)
{
	(void)c; /* the server's caches serve bulk reads; nothing to change per connection */
	return 0;
}

static int pg_writer_open(struct store *st, struct store_conn **out)
{
	struct pg_store *ps = pgs(st);
	pthread_mutex_lock(&ps->lock);
	ps->open_n++;
	pthread_mutex_unlock(&ps->lock);
	int rc = pg_connect(ps, true, out);
	if (rc != 0) {
		pthread_mutex_lock(&ps->lock);
		ps->open_n--;
		pthread_mutex_unlock(&ps->lock);
	}
	return rc;
}

/* Erasure's "no older version left" step. PostgreSQL keeps dead row
 * versions until VACUUM, which makes their space reusable; the WAL and any
 * base backup keep them longer (docs/security.md says what is promised). */
static int pg_wal_truncate(struct store_conn *w, int wait_ms)
{
	(void)wait_ms;
	return pg_do(w, "VACUUM contact, contact_field, consent, consent_event, outbox_event", NULL, NULL,
		     "cannot vacuum the erased rows");
}

/* ---- transactions ------------------------------------------------------- */

static int pg_begin(struct store_conn *c)
{
	struct pg_args a = { 0 };
	pgc(c)->last_seq = 0;
	pgc(c)->pend_n = 0;
	pgc(c)->next_seq = 0;
	a_i64(&a, PG_CHAIN_LOCK);
	/* READ COMMITTED whatever the database's default: every statement
	 * after the lock then reads what the batches before it committed (the
	 * audit head, and the release log the cap's recount reads). Under
	 * REPEATABLE READ the snapshot would date from the lock request, before
	 * the other instance's batch committed. */
	int rc = pg_do(c, "BEGIN ISOLATION LEVEL READ COMMITTED", NULL, NULL, "cannot begin");
	if (rc == 0 && (rc = pg_do(c, "SELECT pg_advisory_xact_lock($1::bigint)", &a, NULL,
				   "cannot take the chain lock")) != 0)
		PQclear(PQexec(pgc(c)->db, "ROLLBACK"));
	return rc;
}

/* The one-shot test fault named by the fault file, consumed ("" for none):
 * "commit-lost" drops the connection before COMMIT is sent (the server
 * rolls the transaction back), "commit-reply-lost" after the COMMIT took
 * effect but before its reply is read. */
static void pg_fault_take(struct pg_store *ps, char *out, size_t cap)
{
	out[0] = '\0';
	if (ps->fault_file[0] == '\0')
		return;
	FILE *f = fopen(ps->fault_file, "r");
	if (f == NULL)
		return;
	if (fgets(out, (int)cap, f) == NULL)
		out[0] = '\0';
	fclose(f);
	out[strcspn(out, "\r\n")] = '\0';
	unlink(ps->fault_file);
}

/* Cuts the connection under libpq, as a network failure or a server crash
 * would; libpq notices on the next statement. */
static void pg_cut(struct pg_conn *pc)
{
	shutdown(PQsocket(pc->db), SHUT_RDWR);
	PQclear(PQexec(pc->db, "SELECT 1"));
}

/* Called when COMMIT's outcome is unknown: the connection is gone, so the
 * transaction either committed before it died or was rolled back by the
 * server. Reconnects once and looks up the last entry the batch appended;
 * the chain is gapless and append-only, so an entry at that seq with that
 * hash is this batch's own. */
static int pg_commit_outcome(struct pg_conn *pc)
{
	struct pg_args a = { 0 };
	PGresult *r = NULL;
	uint8_t hash[32];
	int64_t seq = pc->last_seq;
	pc->last_seq = 0;
	if (seq == 0)
		return err_set(ERR_UNAVAILABLE, "the connection was lost during COMMIT; the batch held no "
						"audit entry to look up, so its outcome is unknown");
	/* Under the chain lock: the dead session's transaction holds it until
	 * the server has finished it either way, so a COMMIT still being
	 * flushed is waited for rather than read as absent. */
	struct pg_args l = { 0 };
	a_i64(&l, PG_CHAIN_LOCK);
	a_i64(&a, seq);
	const char *what = "the connection was lost during COMMIT and the outcome cannot be learned";
	int rc = pg_do(&pc->base, "BEGIN ISOLATION LEVEL READ COMMITTED", NULL, NULL, what);
	if (rc == 0 &&
	    (rc = pg_do(&pc->base, "SELECT pg_advisory_xact_lock($1::bigint)", &l, NULL, what)) == 0)
		rc = pg_run(&pc->base, "SELECT hash FROM audit WHERE seq = $1", &a, &r, what);
	if (PQstatus(pc->db) == CONNECTION_OK && PQtransactionStatus(pc->db) != PQTRANS_IDLE)
		PQclear(PQexec(pc->db, "ROLLBACK"));
	if (rc != 0)
		return rc;
	bool found = PQntuples(r) == 1 && r_blob(r, 0, 0, hash, 32) == 32;
	PQclear(r);
	if (found && memcmp(hash, pc->last_hash, 32) == 0)
		return 0; /* it committed: the replies may be sent */
	return err_set(ERR_UNAVAILABLE, "the connection was lost during COMMIT; the batch did not commit");
}

static int pg_commit(struct store_conn *c)
{
	struct pg_conn *pc = pgc(c);
	char fault[32] = "";
	int rc = pc->pend_n > 0 ? pg_audit_flush(pc) : 0;
	if (rc != 0)
		return rc; /* the server refused the entries: the transaction is void */
	pg_fault_take(pgs(c->st), fault, sizeof fault);
	if (strcmp(fault, "commit-lost") == 0)
		pg_cut(pc);
	PGresult *r = PQexec(pc->db, "COMMIT");
	ExecStatusType s = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	if (s == PGRES_COMMAND_OK && strcmp(fault, "commit-reply-lost") == 0) {
		PQclear(r);
		r = NULL;
		pg_cut(pc);
		s = PGRES_FATAL_ERROR;
	}
	pc->next_seq = 0;
	if (s == PGRES_COMMAND_OK) {
		PQclear(r);
		pc->last_seq = 0;
		return 0;
	}
	/* A server that answered has decided: the transaction was rolled back.
	 * Only a lost connection leaves the outcome open. */
	if (PQstatus(pc->db) == CONNECTION_OK) {
		rc = pg_error(pc, r, "cannot commit");
		PQclear(r);
		pc->last_seq = 0;
		return rc;
	}
	PQclear(r);
	return pg_commit_outcome(pc);
}

static int pg_rollback(struct store_conn *c)
{
	pgc(c)->pend_n = 0; /* never sent: nothing to undo */
	pgc(c)->next_seq = 0;
	if (PQtransactionStatus(pgc(c)->db) == PQTRANS_IDLE)
		return 0;
	return pg_do(c, "ROLLBACK", NULL, NULL, "cannot roll back");
}

static int pg_savepoint(struct store_conn *c)
{
	return pg_do(c, "SAVEPOINT job", NULL, NULL, "savepoint");
}
static int pg_release(struct store_conn *c)
{
	return pg_do(c, "RELEASE SAVEPOINT job", NULL, NULL, "release");
}
static int pg_rollback_to(struct store_conn *c)
{
	return pg_do(c, "ROLLBACK TO SAVEPOINT job", NULL, NULL, "rollback to");
}

static void pg_fault_audit(struct store *st, bool fail)
{
	if (pgs(st)->faults_allowed)
		atomic_store(&pgs(st)->fault_audit, fail);
}

/* ---- contacts ------------------------------------------------------------ */

#define CONTACT_COLS                                                                                         \
	"id, created_us, updated_us, status, collected_for, source, owner, "                                 \
	"coalesce(key_version, 0)::bigint, wrapped_key, email_shash, phone_shash"

static int read_contact(const PGresult *r, int i, struct store_contact *out)
{
	bool bad = false;
	char st[16];
	memset(out, 0, sizeof *out);
	r_text(r, i, 0, out->id, sizeof out->id, &bad);
	out->created_us = r_i64(r, i, 1);
	out->updated_us = r_i64(r, i, 2);
	r_text(r, i, 3, st, sizeof st, &bad);
	out->erased = strcmp(st, "erased") == 0;
	r_text(r, i, 4, out->collected_for, sizeof out->collected_for, &bad);
	r_text(r, i, 5, out->source, sizeof out->source, &bad);
	r_text(r, i, 6, out->owner, sizeof out->owner, &bad);
	out->key_version = (int)r_i64(r, i, 7);
	out->wrapped_len = r_blob(r, i, 8, out->wrapped_key, sizeof out->wrapped_key);
	out->has_email_shash = r_blob(r, i, 9, out->email_shash, 32) == 32;
	out->has_phone_shash = r_blob(r, i, 10, out->phone_shash, 32) == 32;
	return bad ? too_long("cannot read the contact") : 0;
}

static int pg_contact_insert(struct store_conn *c, const struct store_contact *ct, const uint8_t *email_bidx,
			     const uint8_t *phone_bidx)
{
	struct pg_args a = { 0 };
	int64_t n = 0;
	a_text(&a, ct->id);
	a_i64(&a, ct->created_us);
	a_i64(&a, ct->updated_us);
	a_text(&a, ct->collected_for);
	a_text(&a, ct->source);
	a_text(&a, ct->owner);
	a_i64(&a, ct->key_version);
	a_blob(&a, ct->wrapped_key, ct->wrapped_len);
	a_blob(&a, email_bidx, 32);
	a_blob(&a, phone_bidx, 32);
	a_blob(&a, ct->has_email_shash ? ct->email_shash : NULL, 32);
	a_blob(&a, ct->has_phone_shash ? ct->phone_shash : NULL, 32);
	/* ON CONFLICT DO NOTHING: a duplicate is an answer, not an error that
	 * would abort the writer's whole transaction. */
	int rc = pg_do(c,
		       "INSERT INTO contact (id, created_us, updated_us, status, collected_for, source, "
		       "owner, key_version, wrapped_key, email_bidx, phone_bidx, email_shash, phone_shash) "
		       "VALUES ($1, $2, $3, 'active', $4, $5, $6, $7, $8, $9, $10, $11, $12) "
		       "ON CONFLICT DO NOTHING",
		       &a, &n, "cannot insert the contact");
	if (rc == 0 && n != 1)
		return err_set(ERR_CONFLICT, "a contact with this email already exists");
	return rc;
}

static int pg_contact_get(struct store_conn *c, const char *id, struct store_contact *out)
{
	struct pg_args a = { 0 };
	PGresult *r = NULL;
	a_text(&a, id);
	int rc = pg_run(c, "SELECT " CONTACT_COLS " FROM contact WHERE id = $1", &a, &r,
			"cannot read the contact");
	if (rc == 0)
		rc = PQntuples(r) == 1 ? read_contact(r, 0, out)
				       : err_set(ERR_NOTFOUND, "no contact with this id");
	PQclear(r);
	return rc;
}

static int pg_contact_update(struct store_conn *c, const struct store_contact *ct)
{
	struct pg_args a = { 0 };
	int64_t n = 0;
	a_text(&a, ct->id);
	a_i64(&a, ct->updated_us);
	a_text(&a, ct->collected_for);
	a_text(&a, ct->source);
	a_text(&a, ct->owner);
	a_i64(&a, ct->key_version);
	a_blob(&a, ct->wrapped_key, ct->wrapped_len);
	int rc = pg_do(c,
		       "UPDATE contact SET updated_us = $2, collected_for = $3, source = $4, owner = $5, "
		       "key_version = $6, wrapped_key = $7 WHERE id = $1 AND status = 'active'",
		       &a, &n, "cannot update the contact");
	if (rc == 0 && n != 1)
		return err_set(ERR_NOTFOUND, "no active contact with this id");
	return rc;
}

static int pg_contact_set_index(struct store_conn *c, const char *id, const uint8_t *email_bidx,
				const uint8_t *phone_bidx, const uint8_t *email_shash,
				const uint8_t *phone_shash)
{
	struct pg_args a = { 0 };
	PGresult *r = NULL;
	a_text(&a, id);
	a_blob(&a, email_bidx, 32);
	a_blob(&a, phone_bidx, 32);
	a_blob(&a, email_shash, 32);
	a_blob(&a, phone_shash, 32);
	/* The duplicate check runs first, in the same statement, so a conflict
	 * does not abort the transaction (the writer holds the chain lock, so no
	 * other writer can slip a contact in between). */
	int rc = pg_run(c,
			"WITH dup AS (SELECT 1 FROM contact WHERE $2::bytea IS NOT NULL AND "
			"email_bidx = $2::bytea AND id <> $1), "
			"upd AS (UPDATE contact SET email_bidx = $2, phone_bidx = $3, email_shash = $4, "
			"phone_shash = $5 WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM dup) RETURNING 1) "
			"SELECT EXISTS (SELECT 1 FROM dup)",
			&a, &r, "cannot update the blind index");
	if (rc == 0 && PQntuples(r) == 1 && r_i64(r, 0, 0) != 0)
		rc = err_set(ERR_CONFLICT, "a contact with this email already exists");
	PQclear(r);
	return rc;
}

static int pg_contact_find_email(struct store_conn *c, const uint8_t bidx[32], char id_out[STORE_ID_CAP])
{
	struct pg_args a = { 0 };
	PGresult *r = NULL;
	bool bad = false;
	a_blob(&a, bidx, 32);
	int rc =
		pg_run(c, "SELECT id FROM contact WHERE email_bidx = $1", &a, &r, "cannot look up the email");
	if (rc == 0 && PQntuples(r) == 0)
		rc = err_set(ERR_NOTFOUND, "no contact with this email");
	else if (rc == 0)
		r_text(r, 0, 0, id_out, STORE_ID_CAP, &bad);
	if (rc == 0 && bad)
		rc = too_long("cannot look up the email");
	PQclear(r);
	return rc;
}

static int pg_contact_erase(struct store_conn *c, const char *id, int64_t when_us)
{
	struct pg_args a = { 0 };
	int64_t n = 0;
	a_text(&a, id);
	a_i64(&a, when_us);
	int rc = pg_do(c,
		       "UPDATE contact SET status = 'erased', updated_us = $2, key_version = NULL, "
		       "wrapped_key = NULL, email_bidx = NULL, phone_bidx = NULL, email_shash = NULL, "
		       "phone_shash = NULL, owner = '' WHERE id = $1 AND status = 'active'",
		       &a, &n, "cannot erase the contact");
	if (rc != 0)
		return rc;
	if (n != 1)
		return err_set(ERR_NOTFOUND, "no active contact with this id");
	static const char *const wipes[] = {
		"DELETE FROM contact_field WHERE contact_id = $1",
		"UPDATE consent SET evidence = NULL WHERE contact_id = $1",
		"UPDATE consent_event SET evidence = NULL WHERE contact_id = $1",
	};
	a.n = 1;
	for (size_t i = 0; i < sizeof wipes / sizeof wipes[0] && rc == 0; i++)
		rc = pg_do(c, wipes[i], &a, NULL, "cannot erase the contact's values");
	return rc;
}

static int pg_count(struct store_conn *c, const char *sql, const struct pg_args *a, int64_t *out,
		    const char *what)
{
	PGresult *r = NULL;
	int rc = pg_run(c, sql, a, &r, what);
	if (rc == 0)
		*out = PQntuples(r) == 1 ? r_i64(r, 0, 0) : 0;
	PQclear(r);
	return rc;
}

static int pg_contact_count(struct store_conn *c, int64_t *out)
{
	return pg_count(c, "SELECT count(*) FROM contact WHERE status = 'active'", NULL, out,
			"cannot count contacts");
}

static int pg_field_put(struct store_conn *c, const char *id, const char *name, const uint8_t *sealed,
			size_t len)
{
	struct pg_args a = { 0 };
	a_text(&a, id);
	a_text(&a, name);
	a_blob(&a, sealed, len);
	return pg_do(c,
		     "INSERT INTO contact_field (contact_id, name, value) VALUES ($1, $2, $3) "
		     "ON CONFLICT (contact_id, name) DO UPDATE SET value = excluded.value",
		     &a, NULL, "cannot store a field");
}

static int pg_field_delete(struct store_conn *c, const char *id, const char *name)
{
	struct pg_args a = { 0 };
	a_text(&a, id);
	a_text(&a, name);
	return pg_do(c, "DELETE FROM contact_field WHERE contact_id = $1 AND name = $2", &a, NULL,
		     "cannot delete a field");
}

static int pg_fields_each(struct store_conn *c, const char *id, store_field_cb cb, void *ctx)
{
	struct pg_args a = { 0 };
	PGresult *r = NULL;
	a_text(&a, id);
	int rc = pg_run(c, "SELECT name, value FROM contact_field WHERE contact_id = $1 ORDER BY name", &a,
			&r, "cannot read fields");
	for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
		char name[STORE_TEXT_CAP];
		bool bad = false;
		r_text(r, i, 0, name, sizeof name, &bad);
		rc = bad ? too_long("cannot read fields")
			 : cb(ctx, name, (const uint8_t *)PQgetvalue(r, i, 1), (size_t)PQgetlength(r, i, 1));
	}
	PQclear(r);
	return rc;
}

static int pg_contacts_rewrap(struct store_conn *c, store_rewrap_cb cb, void *ctx, int64_t *count)
{
	char after[STORE_ID_CAP] = "";
	int rc = 0;
	*count = 0;
	for (;;) {
		/* Pages of 1000 ids, so that updates never run under an open result. */
		struct pg_args a = { 0 };
		PGresult *r = NULL;
		a_text(&a, after);
		if ((rc = pg_run(c,
				 "SELECT " CONTACT_COLS " FROM contact WHERE status = 'active' "
				 "AND id > $1 ORDER BY id LIMIT 1000",
				 &a, &r, "cannot list contacts")) != 0)
			return rc;
		int n = PQntuples(r);
		for (int i = 0; i < n && rc == 0; i++) {
			struct store_contact ct;
			if ((rc = read_contact(r, i, &ct)) == 0 && (rc = cb(ctx, &ct)) == 0)
				rc = pg_contact_update(c, &ct);
			(*count)++;
			memcpy(after, ct.id, sizeof after);
		}
		PQclear(r);
		if (rc != 0 || n < 1000)
			return rc;
	}
}

static int pg_key_check_get(struct store_conn *c, const char *name, uint8_t kcv[32])
{
	struct pg_args a = { 0 };
	PGresult *r = NULL;
	a_text(&a, name);
	int rc = pg_run(c, "SELECT kcv FROM key_check WHERE name = $1", &a, &r,
			"cannot read a key check value");
	if (rc == 0 && PQntuples(r) != 1)
		rc = err_set(ERR_NOTFOUND, "no key check value for %s", name);
	else if (rc == 0 && r_blob(r, 0, 0, kcv, 32) != 32)
		rc = err_set(ERR_IO, "the key check value of %s is not 32 bytes", name);
	PQclear(r);
	return rc;
}

static int pg_key_check_add(struct store_conn *c, const char *name, const uint8_t kcv[32])
{
	struct pg_args a = { 0 };
	a_text(&a, name);
	a_blob(&a, kcv, 32);
	return pg_do(c, "INSERT INTO key_check (name, kcv) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING", &a,
		     NULL, "cannot record a key check value");
}

static int pg_key_versions_in_use(struct store_conn *c, int *versions, int cap, int *n)
{
	PGresult *r = NULL;
	*n = 0;
	int rc = pg_run(c, "SELECT DISTINCT key_version::bigint FROM contact WHERE status = 'active'", NULL,
			&r, "cannot list key versions");
	for (int i = 0; rc == 0 && i < PQntuples(r) && *n < cap; i++)
		versions[(*n)++] = (int)r_i64(r, i, 0);
	PQclear(r);
	return rc;
}

/* ---- consents ------------------------------------------------------------ */

#define CONSENT_COLS                                                                                         \
	"contact_id, purpose, channel, status, legal_basis, notice_version, source, method, "                \
	"receipt_id, at_us, granted_us, expires_us, withdrawn_us, recorded_us, evidence"

static void args_consent(struct pg_args *a, const struct store_consent *cs)
{
	a_text(a, cs->contact_id);
	a_text(a, cs->purpose);
	a_text(a, cs->channel);
	a_text(a, cs->status);
	a_text(a, cs->legal_basis);
	a_text(a, cs->notice_version);
	a_text(a, cs->source);
	a_text(a, cs->method);
	a_text(a, cs->receipt_id);
	a_i64(a, cs->at_us);
	a_i64(a, cs->granted_us);
	a_i64(a, cs->expires_us);
	a_i64(a, cs->withdrawn_us);
	a_i64(a, cs->recorded_us);
	a_blob(a, cs->evidence, cs->evidence_len);
}

static int read_consent(const PGresult *r, int i, struct store_consent *cs)
{
	bool bad = false;
	memset(cs, 0, sizeof *cs);
	r_text(r, i, 0, cs->contact_id, sizeof cs->contact_id, &bad);
	r_text(r, i, 1, cs->purpose, sizeof cs->purpose, &bad);
	r_text(r, i, 2, cs->channel, sizeof cs->channel, &bad);
	r_text(r, i, 3, cs->status, sizeof cs->status, &bad);
	r_text(r, i, 4, cs->legal_basis, sizeof cs->legal_basis, &bad);
	r_text(r, i, 5, cs->notice_version, sizeof cs->notice_version, &bad);
	r_text(r, i, 6, cs->source, sizeof cs->source, &bad);
	r_text(r, i, 7, cs->method, sizeof cs->method, &bad);
	r_text(r, i, 8, cs->receipt_id, sizeof cs->receipt_id, &bad);
	cs->at_us = r_i64(r, i, 9);
	cs->granted_us = r_i64(r, i, 10);
	cs->expires_us = r_i64(r, i, 11);
	cs->withdrawn_us = r_i64(r, i, 12);
	cs->recorded_us = r_i64(r, i, 13);
	if (!r_null(r, i, 14)) {
		cs->evidence = (const uint8_t *)PQgetvalue(r, i, 14);
		cs->evidence_len = (size_t)PQgetlength(r, i, 14);
	}
	return bad ? too_long("cannot read the consent") : 0;
}

static int pg_consent_put(struct store_conn *c, const struct store_consent *cs, bool current)
{
	struct pg_args a = { 0 };
	int rc = 0;
	args_consent(&a, cs);
	if (current)
		rc = pg_do(c,
			   "INSERT INTO consent (" CONSENT_COLS ") VALUES "
			   "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) "
			   "ON CONFLICT (contact_id, purpose, channel) DO UPDATE SET "
			   "status = excluded.status, legal_basis = excluded.legal_basis, "
			   "notice_version = excluded.notice_version, source = excluded.source, "
			   "method = excluded.method, receipt_id = excluded.receipt_id, "
			   "at_us = excluded.at_us, granted_us = excluded.granted_us, "
			   "expires_us = excluded.expires_us, withdrawn_us = excluded.withdrawn_us, "
			   "recorded_us = excluded.recorded_us, evidence = excluded.evidence",
			   &a, NULL, "cannot record the consent");
	if (rc == 0)
		rc = pg_do(c,
			   "INSERT INTO consent_event (" CONSENT_COLS ") VALUES "
			   "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
			   &a, NULL, "cannot record the consent");
	return rc;
}

static int pg_consent_get(struct store_conn *c, const char *contact_id, const char *purpose,
			  const char *channel, struct store_consent *out)
{
	struct pg_args a = { 0 };
	PGresult *r = NULL;
	a_text(&a, contact_id);
	a_text(&a, purpose);
	a_text(&a, channel);
	int rc = pg_run(c,
			"SELECT " CONSENT_COLS " FROM consent WHERE contact_id = $1 AND "
			"purpose = $2 AND channel = $3",
			&a, &r, "cannot read the consent");
	if (rc == 0 && PQntuples(r) == 0)
		rc = ERR_NOTFOUND;
	else if (rc == 0 && (rc = read_consent(r, 0, out)) == 0) {
		out->evidence = NULL; /* borrowed memory would not outlive the result */
		out->evidence_len = 0;
	}
	PQclear(r);
	return rc;
}

static int consent_walk(struct store_conn *c, const char *sql, const char *contact_id, store_consent_cb cb,
			void *ctx)
{
	struct pg_args a = { 0 };
	PGresult *r = NULL;
	struct store_consent cs;
	a_text(&a, contact_id);
	int rc = pg_run(c, sql, &a, &r, "cannot read consents");
	for (int i = 0; rc == 0 && i < PQntuples(r); i++)
		if ((rc = read_consent(r, i, &cs)) == 0)
			rc = cb(ctx, &cs);
	PQclear(r);
	return rc;
}

static int pg_consents_each(struct store_conn *c, const char *contact_id, store_consent_cb cb, void *ctx)
{
	return consent_walk(c,
			    "SELECT " CONSENT_COLS " FROM consent WHERE contact_id = $1 "
			    "ORDER BY purpose, channel",
			    contact_id, cb, ctx);
}

static int pg_consent_history_each(struct store_conn *c, const char *contact_id, store_consent_cb cb,
				   void *ctx)
{
	/* Effective time, then recording order, as the SQLite backend. */
	return consent_walk(c,
			    "SELECT " CONSENT_COLS " FROM consent_event WHERE contact_id = $1 "
			    "ORDER BY least(at_us, recorded_us), seq",
			    contact_id, cb, ctx);
}

static int pg_consent_history_count(struct store_conn *c, const char *contact_id, int64_t *out)
{
	struct pg_args a = { 0 };
	a_text(&a, contact_id);
	return pg_count(c, "SELECT count(*) FROM consent_event WHERE contact_id = $1", &a, out,
			"cannot count consent events");
}

/* ---- principals ---------------------------------------------------------- */

static int pg_principal_insert(struct store_conn *c, const char *name, const char *role,
			       const uint8_t token_hash[32], int64_t when_us)
{
	struct pg_args a = { 0 };
	int64_t n = 0;
	a_text(&a, name);
	a_text(&a, role);
	a_blob(&a, token_hash, 32);
	a_i64(&a, when_us);
	int rc = pg_do(c,
		       "INSERT INTO principal (name, role, token_hash, created_us) "
		       "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
		       &a, &n, "cannot store the principal");
	if (rc == 0 && n != 1)
		return err_set(ERR_CONFLICT, "a principal named %s already exists", name);
	return rc;
}

static int pg_principal_find(struct store_conn *c, const uint8_t token_hash[32], char name[STORE_TEXT_CAP],
			     char role[STORE_NAME_CAP])
{
	struct pg_args a = { 0 };
	PGresult *r = NULL;
	bool bad = false;
	a_blob(&a, token_hash, 32);
	int rc = pg_run(c, "SELECT name, role FROM principal WHERE token_hash = $1 AND revoked_us IS NULL",
			&a, &r, "cannot look up the token");
	if (rc == 0 && PQntuples(r) == 0)
		rc = err_set(ERR_NOTFOUND, "unknown token");
	else if (rc == 0) {
		r_text(r, 0, 0, name, STORE_TEXT_CAP, &bad);
		r_text(r, 0, 1, role, STORE_NAME_CAP, &bad);
		if (bad)
			rc = too_long("cannot look up the token");
	}
	PQclear(r);
	return rc;
}

static int pg_principal_revoke(struct store_conn *c, const char *name, int64_t when_us)
{
	struct pg_args a = { 0 };
	int64_t n = 0;
	a_text(&a, name);
	a_i64(&a, when_us);
	int rc = pg_do(c, "UPDATE principal SET revoked_us = $2 WHERE name = $1 AND revoked_us IS NULL", &a,
		       &n, "cannot revoke the principal");
	if (rc == 0 && n != 1)
		return err_set(ERR_NOTFOUND, "no active principal named %s", name);
	return rc;
}

static int pg_principal_role(struct store_conn *c, const char *name, char role[STORE_NAME_CAP])
{
	struct pg_args a = { 0 };
	PGresult *r = NULL;
	bool bad = false;
	a_text(&a, name);
	int rc = pg_run(c, "SELECT role FROM principal WHERE name = $1", &a, &r, "cannot read the principal");
	if (rc == 0 && PQntuples(r) == 0)
		rc = err_set(ERR_NOTFOUND, "no principal named %s", name);
	else if (rc == 0) {
		r_text(r, 0, 0, role, STORE_NAME_CAP, &bad);
		if (bad)
			rc = too_long("cannot read the principal");
	}
	PQclear(r);
	return rc;
}

/* ---- audit --------------------------------------------------------------- */

#define AUDIT_COLS                                                                                           \
	"seq, time_us, actor, role, action, record_id, purpose, channel, decision, reason, "                 \
	"fields, request_id, client, detail, prev_hash, hash"
#define CHECKPOINT_COLS "size, root, time_us, key_id, sig"

static int pg_audit_head(struct store_conn *c, int64_t *seq, uint8_t hash[32])
{
	PGresult *r = NULL;
	*seq = 0;
	memset(hash, 0, 32);
	int rc = pg_run(c, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", NULL, &r,
			"cannot read the audit head");
	if (rc == 0 && PQntuples(r) == 1) {
		*seq = r_i64(r, 0, 0);
		r_blob(r, 0, 1, hash, 32);
	}
	PQclear(r);
	/* Under the chain lock (store_begin) the head cannot move until COMMIT. */
	if (rc == 0 && PQtransactionStatus(pgc(c)->db) == PQTRANS_INTRANS)
		pgc(c)->next_seq = *seq + 1;
	return rc;
}

/* Sends the pending entries, PG_AUDIT_ROWS to an INSERT. The trigger checks
 * each row's seq against the rows before it, those of the same statement
 * included (a BEFORE ROW trigger sees the rows its statement inserted
 * earlier), so the chain stays gapless exactly as with one row a statement. */
static int pg_audit_flush(struct pg_conn *pc)
{
	enum { COLS = 16 };
	/* At most "$NNNN," a parameter, "(),", and the column list: about 5,300
	 * bytes for 64 rows. */
	char sql[PG_AUDIT_ROWS * COLS * 7 + 512];
	const char *v[PG_AUDIT_ROWS * COLS];
	int len[PG_AUDIT_ROWS * COLS], fmt[PG_AUDIT_ROWS * COLS];
	char num[PG_AUDIT_ROWS][2][24];
	int n = pc->pend_n, rc = 0;
	pc->pend_n = 0; /* pg_run below must not flush again */
	for (int done = 0; done < n && rc == 0;) {
		int k = n - done < PG_AUDIT_ROWS ? n - done : PG_AUDIT_ROWS, p = 0;
		size_t o = (size_t)snprintf(sql, sizeof sql, "INSERT INTO audit (" AUDIT_COLS ") VALUES ");
		for (int i = 0; i < k; i++) {
			const struct audit_entry *e = &pc->pend[done + i];
			const char *text[] = { e->actor,   e->role,	  e->action,   e->record_id,
					       e->purpose, e->channel,	  e->decision, e->reason,
					       e->fields,  e->request_id, e->client,   e->detail };
			snprintf(num[i][0], sizeof num[i][0], "%lld", (long long)e->seq);
			snprintf(num[i][1], sizeof num[i][1], "%lld", (long long)e->time_us);
			o += (size_t)snprintf(sql + o, sizeof sql - o, "%s(", i ? "," : "");
			for (int col = 0; col < COLS; col++)
				o += (size_t)snprintf(sql + o, sizeof sql - o, "%s$%d", col ? "," : "",
						      p + col + 1);
			o += (size_t)snprintf(sql + o, sizeof sql - o, ")");
			v[p] = num[i][0], len[p] = 0, fmt[p++] = 0;
			v[p] = num[i][1], len[p] = 0, fmt[p++] = 0;
			for (size_t t = 0; t < sizeof text / sizeof text[0]; t++)
				v[p] = text[t], len[p] = 0, fmt[p++] = 0;
			v[p] = (const char *)e->prev_hash, len[p] = 32, fmt[p++] = 1;
			v[p] = (const char *)e->hash, len[p] = 32, fmt[p++] = 1;
		}
		PGresult *r = PQexecParams(pc->db, sql, p, NULL, v, len, fmt, 1);
		if (r == NULL || PQresultStatus(r) != PGRES_COMMAND_OK) {
			rc = pg_error(pc, r, "cannot append to the audit trail");
			rc = rc == ERR_CONFLICT ? ERR_UNAVAILABLE : rc;
		}
		PQclear(r);
		done += k;
	}
	return rc;
}

static int pg_audit_append(struct store_conn *c, const struct audit_entry *e)
{
	struct pg_conn *pc = pgc(c);
	if (atomic_load(&pgs(c->st)->fault_audit))
		return err_set(ERR_UNAVAILABLE, "audit write failed (injected fault)");
	if (pc->pend == NULL && (pc->pend = malloc(PG_AUDIT_ROWS * sizeof *pc->pend)) == NULL)
		return err_set(ERR_NOMEM, "out of memory");
	if (pc->pend_n == PG_AUDIT_ROWS) {
		int rc = pg_audit_flush(pc);
		if (rc != 0)
			return rc;
	}
	bool defer = pc->next_seq != 0 && PQtransactionStatus(pc->db) == PQTRANS_INTRANS;
	if (defer && e->seq != pc->next_seq)
		return err_set(ERR_UNAVAILABLE,
			       "cannot append to the audit trail: seq %lld is not the head + 1",
			       (long long)e->seq);
	pc->pend[pc->pend_n++] = *e;
	int rc = defer ? 0 : pg_audit_flush(pc);
	if (rc != 0)
		return rc;
	pc->last_seq = e->seq;
	memcpy(pc->last_hash, e->hash, 32);
	if (defer)
		pc->next_seq++;
	return 0;
}

static int pg_checkpoint_append(struct store_conn *c, const struct audit_checkpoint *cp)
{
	struct pg_args a = { 0 };
	a_i64(&a, cp->size);
	a_blob(&a, cp->root, sizeof cp->root);
	a_i64(&a, cp->time_us);
	a_blob(&a, cp->key_id, sizeof cp->key_id);
	a_blob(&a, cp->sig, sizeof cp->sig);
	return pg_do(c, "INSERT INTO audit_checkpoint (" CHECKPOINT_COLS ") VALUES ($1, $2, $3, $4, $5)", &a,
		     NULL, "cannot store the checkpoint");
}

static void read_checkpoint(const PGresult *r, int i, struct audit_checkpoint *cp)
{
	memset(cp, 0, sizeof *cp);
	cp->size = r_i64(r, i, 0);
	r_blob(r, i, 1, cp->root, sizeof cp->root);
	cp->time_us = r_i64(r, i, 2);
	r_blob(r, i, 3, cp->key_id, sizeof cp->key_id);
	r_blob(r, i, 4, cp->sig, sizeof cp->sig);
}

static int pg_checkpoint_latest(struct store_conn *c, struct audit_checkpoint *out)
{
	PGresult *r = NULL;
	int rc = pg_run(c, "SELECT " CHECKPOINT_COLS " FROM audit_checkpoint ORDER BY size DESC LIMIT 1",
			NULL, &r, "cannot read the checkpoint");
	if (rc == 0 && PQntuples(r) == 0)
		rc = err_set(ERR_NOTFOUND, "no checkpoint has been signed yet");
	else if (rc == 0)
		read_checkpoint(r, 0, out);
	PQclear(r);
	return rc;
}

/* Both cursors page by key (seq > last, size > last) rather than holding a
 * server-side cursor, so the connection stays free for other statements
 * between pages and a verifier's memory is one page whatever the trail. */
struct pg_audit_cursor {
	struct store_audit_cursor base; /* first: the interface's handle */
	struct store_audit_filter f;
	char *strs[5];
	PGresult *page;
	int row;
	int64_t last, left; /* left: entries still allowed by f.limit, or -1 */
	bool started, done;
};

static int audit_page(struct pg_audit_cursor *cur)
{
	char sql[900];
	struct pg_args a = { 0 };
	const struct store_audit_filter *f = &cur->f;
	size_t n = (size_t)snprintf(sql, sizeof sql, "SELECT " AUDIT_COLS " FROM audit WHERE seq > $1");
	a_i64(&a, cur->last);
	/* Fixed fragments only; every value is a parameter. */
	static const char *const cols[] = { "record_id", "actor", "action", "purpose", "decision" };
	for (int i = 0; i < 5; i++)
		if (cur->strs[i] != NULL) {
			n += (size_t)snprintf(sql + n, sizeof sql - n, " AND %s = $%d%s", cols[i], a.n + 1,
					      i == 0 ? " AND record_id != ''" : "");
			a_text(&a, cur->strs[i]);
		}
	if (f->since_us != 0) {
		n += (size_t)snprintf(sql + n, sizeof sql - n, " AND time_us >= $%d", a.n + 1);
		a_i64(&a, f->since_us);
	}
	if (f->until_us != 0) {
		n += (size_t)snprintf(sql + n, sizeof sql - n, " AND time_us < $%d", a.n + 1);
		a_i64(&a, f->until_us);
	}
	int64_t lim = cur->left >= 0 && cur->left < PG_PAGE ? cur->left : PG_PAGE;
	snprintf(sql + n, sizeof sql - n, " ORDER BY seq LIMIT $%d", a.n + 1);
	a_i64(&a, lim);
	PQclear(cur->page);
	cur->page = NULL;
	cur->row = 0;
	return pg_run(cur->base.c, sql, &a, &cur->page, "cannot read the audit trail");
}

static void pg_audit_cursor_close(struct store_audit_cursor *base)
{
	struct pg_audit_cursor *cur = (struct pg_audit_cursor *)base;
	if (cur == NULL)
		return;
	PQclear(cur->page);
	for (int i = 0; i < 5; i++)
		free(cur->strs[i]);
	free(cur);
}

static int pg_audit_cursor_open(struct store_conn *c, const struct store_audit_filter *f,
				struct store_audit_cursor **out)
{
	struct pg_audit_cursor *cur = calloc(1, sizeof *cur);
	const char *s[5] = { f->record_id, f->actor, f->action, f->purpose, f->decision };
	*out = NULL;
	if (cur == NULL)
		return err_set(ERR_NOMEM, "out of memory");
	cur->base.c = c;
	cur->f = *f;
	cur->last = f->after_seq;
	cur->left = f->limit > 0 ? f->limit : -1;
	for (int i = 0; i < 5; i++)
		if (s[i] != NULL && (cur->strs[i] = strdup(s[i])) == NULL) {
			pg_audit_cursor_close(&cur->base);
			return err_set(ERR_NOMEM, "out of memory");
		}
	/* The first page is read by the first next, as SQLite first steps its
	 * statement there: a caller that opens the cursor and then commits
	 * (the console's export and its own entry) finds that commit in it. */
	*out = &cur->base;
	return 0;
}

static int pg_audit_cursor_next(struct store_audit_cursor *base, struct audit_entry *e)
{
	struct pg_audit_cursor *cur = (struct pg_audit_cursor *)base;
	int rc;
	if (cur->done || cur->left == 0)
		return 0;
	if (!cur->started) {
		cur->started = true;
		if ((rc = audit_page(cur)) != 0) {
			cur->done = true;
			return rc;
		}
	}
	if (cur->row >= PQntuples(cur->page)) {
		if (PQntuples(cur->page) < PG_PAGE || (rc = audit_page(cur)) != 0 ||
		    PQntuples(cur->page) == 0) {
			cur->done = true;
			return cur->page == NULL ? err_code() : 0;
		}
	}
	const PGresult *r = cur->page;
	int i = cur->row++;
	bool bad = false;
	e->seq = r_i64(r, i, 0);
	e->time_us = r_i64(r, i, 1);
	r_text(r, i, 2, e->actor, sizeof e->actor, &bad);
	r_text(r, i, 3, e->role, sizeof e->role, &bad);
	r_text(r, i, 4, e->action, sizeof e->action, &bad);
	r_text(r, i, 5, e->record_id, sizeof e->record_id, &bad);
	r_text(r, i, 6, e->purpose, sizeof e->purpose, &bad);
	r_text(r, i, 7, e->channel, sizeof e->channel, &bad);
	r_text(r, i, 8, e->decision, sizeof e->decision, &bad);
	r_text(r, i, 9, e->reason, sizeof e->reason, &bad);
	r_text(r, i, 10, e->fields, sizeof e->fields, &bad);
	r_text(r, i, 11, e->request_id, sizeof e->request_id, &bad);
	r_text(r, i, 12, e->client, sizeof e->client, &bad);
	r_text(r, i, 13, e->detail, sizeof e->detail, &bad);
	memset(e->prev_hash, 0, sizeof e->prev_hash);
	memset(e->hash, 0, sizeof e->hash);
	r_blob(r, i, 14, e->prev_hash, sizeof e->prev_hash);
	r_blob(r, i, 15, e->hash, sizeof e->hash);
	cur->last = e->seq;
	if (cur->left > 0)
		cur->left--;
	if (bad) {
		/* A field that does not fit would change the entry's hash input:
		 * an error, never a shortened entry. */
		cur->done = true;
		return too_long("cannot read the audit trail");
	}
	return 1;
}

static int pg_audit_hash_at(struct store_conn *c, int64_t seq, uint8_t hash[32])
{
	struct pg_args a = { 0 };
	PGresult *r = NULL;
	a_i64(&a, seq);
	int rc = pg_run(c, "SELECT hash FROM audit WHERE seq = $1", &a, &r, "cannot read the audit trail");
	if (rc == 0 && (PQntuples(r) != 1 || r_blob(r, 0, 0, hash, 32) != 32))
		rc = err_set(ERR_NOTFOUND, "the audit trail holds no entry %lld", (long long)seq);
	PQclear(r);
	return rc;
}

struct pg_checkpoint_cursor {
	struct store_checkpoint_cursor base; /* first: the interface's handle */
	PGresult *page;
	int row;
	int64_t last;
	bool started, done;
};

static int checkpoint_page(struct pg_checkpoint_cursor *cur)
{
	struct pg_args a = { 0 };
	a_i64(&a, cur->last);
	a_i64(&a, PG_PAGE);
	PQclear(cur->page);
	cur->page = NULL;
	cur->row = 0;
	return pg_run(cur->base.c,
		      "SELECT " CHECKPOINT_COLS " FROM audit_checkpoint WHERE size > $1 "
		      "ORDER BY size LIMIT $2",
		      &a, &cur->page, "cannot read checkpoints");
}

static void pg_checkpoint_cursor_close(struct store_checkpoint_cursor *base)
{
	struct pg_checkpoint_cursor *cur = (struct pg_checkpoint_cursor *)base;
	if (cur == NULL)
		return;
	PQclear(cur->page);
	free(cur);
}

static int pg_checkpoint_cursor_open(struct store_conn *c, int64_t after_size,
				     struct store_checkpoint_cursor **out)
{
	struct pg_checkpoint_cursor *cur = calloc(1, sizeof *cur);
	*out = NULL;
	if (cur == NULL)
		return err_set(ERR_NOMEM, "out of memory");
	cur->base.c = c;
	cur->last = after_size;
	/* Read from the first next, like the audit cursor. */
	*out = &cur->base;
	return 0;
}

static int pg_checkpoint_cursor_next(struct store_checkpoint_cursor *base, struct audit_checkpoint *cp)
{
	struct pg_checkpoint_cursor *cur = (struct pg_checkpoint_cursor *)base;
	if (cur->done)
		return 0;
	if (!cur->started) {
		cur->started = true;
		int rc = checkpoint_page(cur);
		if (rc != 0) {
			cur->done = true;
			return rc;
		}
	}
	if (cur->row >= PQntuples(cur->page)) {
		if (PQntuples(cur->page) < PG_PAGE || checkpoint_page(cur) != 0 ||
		    PQntuples(cur->page) == 0) {
			cur->done = true;
			return cur->page == NULL ? err_code() : 0;
		}
	}
	read_checkpoint(cur->page, cur->row++, cp);
	cur->last = cp->size;
	return 1;
}

/* ---- suppressions ---------------------------------------------------------- */

static int pg_suppression_match(struct store_conn *c, const uint8_t *hash_a, const uint8_t *hash_b,
				const struct store_scope_keys *keys, char reason[STORE_NAME_CAP])
{
	struct pg_args a = { 0 };
	PGresult *r = NULL;
	bool bad = false;
	if (hash_a == NULL && hash_b == NULL)
		return ERR_NOTFOUND;
	a_blob(&a, hash_a, 32);
	a_blob(&a, hash_b, 32);
	a_keys(&a, keys);
	int rc = pg_run(c,
			"SELECT reason FROM suppression WHERE hash IN ($1, $2) AND lifted_us IS NULL "
			"AND ((scope = $3 AND scope_value = $4) OR (scope = $5 AND scope_value = $6) "
			"OR (scope = $7 AND scope_value = $8)) LIMIT 1",
			&a, &r, "cannot check suppressions");
	if (rc == 0 && PQntuples(r) == 0)
		rc = ERR_NOTFOUND;
	else if (rc == 0 && reason != NULL) {
		r_text(r, 0, 0, reason, STORE_NAME_CAP, &bad);
		if (bad)
			rc = too_long("cannot check suppressions");
	}
	PQclear(r);
	return rc;
}

static int pg_suppression_add(struct store_conn *c, const struct store_suppression *sp)
{
	struct pg_args a = { 0 };
	int64_t n = 0;
	a_blob(&a, sp->hash, 32);
	a_text(&a, sp->kind);
	a_text(&a, sp->scope);
	a_text(&a, sp->scope_value);
	a_text(&a, sp->reason);
	a_text(&a, sp->source);
	a_i64(&a, sp->created_us);
	a_i64(&a, sp->recorded_us);
	int rc = pg_do(c,
		       "INSERT INTO suppression (hash, kind, scope, scope_value, reason, source, created_us, "
		       "recorded_us) SELECT $1, $2, $3, $4, $5, $6, $7, $8 WHERE NOT EXISTS (SELECT 1 FROM "
		       "suppression WHERE hash = $1 AND lifted_us IS NULL AND scope = $3 AND "
		       "scope_value = $4 AND reason = $5)",
		       &a, &n, "cannot add the suppression");
	return rc != 0 ? rc : (int)n;
}

static int pg_suppressions_active(struct store_conn *c, const uint8_t hash[32], store_suppression_cb cb,
				  void *ctx)
{
	struct pg_args a = { 0 };
	PGresult *r = NULL;
	a_blob(&a, hash, 32);
	int rc = pg_run(c,
			"SELECT id, kind, scope, scope_value, reason, source, created_us, recorded_us FROM "
			"suppression WHERE hash = $1 AND lifted_us IS NULL ORDER BY created_us, id",
			&a, &r, "cannot read suppressions");
	for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
		struct store_suppression_row row;
		bool bad = false;
		memset(&row, 0, sizeof row);
		row.id = r_i64(r, i, 0);
		r_text(r, i, 1, row.kind, sizeof row.kind, &bad);
		r_text(r, i, 2, row.scope, sizeof row.scope, &bad);
		r_text(r, i, 3, row.scope_value, sizeof row.scope_value, &bad);
		r_text(r, i, 4, row.reason, sizeof row.reason, &bad);
		r_text(r, i, 5, row.source, sizeof row.source, &bad);
		row.created_us = r_i64(r, i, 6);
		row.recorded_us = r_i64(r, i, 7);
		rc = bad ? too_long("cannot read suppressions") : cb(ctx, &row);
	}
	PQclear(r);
	return rc;
}

static int pg_suppressions_lift(struct store_conn *c, const uint8_t hash[32], const char *scope,
				const char *scope_value, const char *reasons, int64_t when_us, const char *by,
				int64_t *lifted)
{
	struct pg_args a = { 0 };
	int64_t n = 0;
	a_blob(&a, hash, 32);
	a_text_or_null(&a, scope);
	a_text_or_null(&a, scope_value);
	a_i64(&a, when_us);
	a_text(&a, by);
	a_text(&a, reasons);
	int rc = pg_do(c,
		       "UPDATE suppression SET lifted_us = $4, lifted_by = $5 WHERE hash = $1 AND "
		       "lifted_us IS NULL AND reason = ANY (string_to_array($6, ',')) AND "
		       "($2::text IS NULL OR scope = $2) AND ($3::text IS NULL OR scope_value = $3)",
		       &a, &n, "cannot lift suppressions");
	if (rc == 0 && lifted != NULL)
		*lifted = n;
	return rc;
}

static int pg_subject_suppressions_each(struct store_conn *c, const uint8_t *hash_a, const uint8_t *hash_b,
					store_subject_suppression_cb cb, void *ctx)
{
	struct pg_args a = { 0 };
	PGresult *r = NULL;
	a_blob(&a, hash_a, 32);
	a_blob(&a, hash_b, 32);
	int rc = pg_run(
		c,
		"SELECT hash, kind, scope, scope_value, reason, source, created_us, recorded_us, "
		"coalesce(lifted_us, 0) FROM suppression WHERE hash IN ($1, $2) ORDER BY created_us, id",
		&a, &r, "cannot read suppressions");
	for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
		struct store_suppression sp;
		memset(&sp, 0, sizeof sp);
		r_blob(r, i, 0, sp.hash, 32);
		sp.kind = PQgetvalue(r, i, 1);
		sp.scope = PQgetvalue(r, i, 2);
		sp.scope_value = PQgetvalue(r, i, 3);
		sp.reason = PQgetvalue(r, i, 4);
		sp.source = PQgetvalue(r, i, 5);
		sp.created_us = r_i64(r, i, 6);
		sp.recorded_us = r_i64(r, i, 7);
		rc = cb(ctx, &sp, r_i64(r, i, 8));
	}
	PQclear(r);
	return rc;
}

/* ---- preference links -------------------------------------------------------- */

static int pg_link_insert(struct store_conn *c, const struct store_link *l)
{
	struct pg_args a = { 0 };
	a_text(&a, l->id);
	a_text(&a, l->contact_id);
	a_text(&a, l->scope);
	a_i64(&a, l->created_us);
	a_i64(&a, l->expires_us);
	a_text(&a, l->created_by);
	a_text(&a, l->capability[0] ? l->capability : "optout");
	return pg_do(
		c,
		"INSERT INTO preference_link (id, contact_id, scope, created_us, expires_us, revoked_us, "
		"created_by, capability) VALUES ($1, $2, $3, $4, $5, NULL, $6, $7)",
		&a, NULL, "cannot store the link");
}

static int pg_link_get(struct store_conn *c, const char *id, struct store_link *out)
{
	struct pg_args a = { 0 };
	PGresult *r = NULL;
	bool bad = false;
	a_text(&a, id);
	int rc = pg_run(c,
			"SELECT id, contact_id, scope, created_us, expires_us, coalesce(revoked_us, 0), "
			"created_by, capability FROM preference_link WHERE id = $1",
			&a, &r, "cannot read the link");
	if (rc == 0 && PQntuples(r) == 0)
		rc = err_set(ERR_NOTFOUND, "no link with this id");
	else if (rc == 0) {
		memset(out, 0, sizeof *out);
		r_text(r, 0, 0, out->id, sizeof out->id, &bad);
		r_text(r, 0, 1, out->contact_id, sizeof out->contact_id, &bad);
		r_text(r, 0, 2, out->scope, sizeof out->scope, &bad);
		out->created_us = r_i64(r, 0, 3);
		out->expires_us = r_i64(r, 0, 4);
		out->revoked_us = r_i64(r, 0, 5);
		r_text(r, 0, 6, out->created_by, sizeof out->created_by, &bad);
		r_text(r, 0, 7, out->capability, sizeof out->capability, &bad);
		if (bad)
			rc = too_long("cannot read the link");
	}
	PQclear(r);
	return rc;
}

static int pg_link_revoke(struct store_conn *c, const char *contact_id, const char *id, int64_t when_us)
{
	struct pg_args a = { 0 };
	int64_t n = 0;
	a_text(&a, contact_id);
	a_text(&a, id);
	a_i64(&a, when_us);
	int rc = pg_do(c,
		       "UPDATE preference_link SET revoked_us = $3 WHERE contact_id = $1 AND id = $2 "
		       "AND revoked_us IS NULL",
		       &a, &n, "cannot revoke the link");
	if (rc == 0 && n != 1)
		return err_set(ERR_NOTFOUND, "no unrevoked link with this id");
	return rc;
}

static int pg_links_revoke_contact(struct store_conn *c, const char *contact_id, int64_t when_us,
				   int64_t *count)
{
	struct pg_args a = { 0 };
	int64_t n = 0;
	a_text(&a, contact_id);
	a_i64(&a, when_us);
	int rc = pg_do(c,
		       "UPDATE preference_link SET revoked_us = $2 WHERE contact_id = $1 AND "
		       "revoked_us IS NULL",
		       &a, &n, "cannot revoke the links");
	if (rc == 0 && count != NULL)
		*count = n;
	return rc;
}

static int pg_links_revoke_mintable(struct store_conn *c, const char *contact_id, bool may_manage,
				    const char *purposes, int64_t when_us, int64_t *count)
{
	struct pg_args a = { 0 };
	int64_t n = 0;
	a_text(&a, contact_id);
	a_i64(&a, when_us);
	a_text(&a, may_manage ? "true" : "false");
	a_text(&a, purposes);
	int rc = pg_do(
		c,
		"UPDATE preference_link SET revoked_us = $2 WHERE contact_id = $1 AND revoked_us IS NULL "
		"AND ($3::boolean OR capability = 'optout') "
		"AND (scope = 'all' OR scope = ANY (string_to_array($4, ',')))",
		&a, &n, "cannot revoke the links");
	if (rc == 0 && count != NULL)
		*count = n;
	return rc;
}

/* ---- bulk: outreach filter, release records ---------------------------------- */

/* One probe of the suppression index per hash, for the keys $5 .. $10. */
#define SUPPRESSION_COVERS(h)                                                                                \
	"EXISTS (SELECT 1 FROM suppression s WHERE s.hash = " h " AND s.lifted_us IS NULL AND "              \
	"((s.scope = $5 AND s.scope_value = $6) OR (s.scope = $7 AND s.scope_value = $8) "                   \
	"OR (s.scope = $9 AND s.scope_value = $10)))"
#define FILTER_COLS                                                                                          \
	"c.id, c.status, c.collected_for, k.status, k.expires_us, "                                          \
	"CASE WHEN c.id IS NULL THEN false ELSE " SUPPRESSION_COVERS(                                        \
		"c.email_shash") " OR " SUPPRESSION_COVERS("c.phone_shash") " END"

static int read_filter_row(const PGresult *r, int i, int col, struct store_filter_row *out)
{
	bool bad = false;
	memset(out, 0, sizeof *out);
	if (!r_null(r, i, col)) {
		char st[16];
		out->found = true;
		r_text(r, i, col, out->id, sizeof out->id, &bad);
		r_text(r, i, col + 1, st, sizeof st, &bad);
		out->erased = strcmp(st, "active") != 0;
		r_text(r, i, col + 2, out->collected_for, sizeof out->collected_for, &bad);
		if (!r_null(r, i, col + 3)) {
			out->has_consent = true;
			r_text(r, i, col + 3, out->status, sizeof out->status, &bad);
			out->expires_us = r_i64(r, i, col + 4);
		}
		out->own_suppressed = r_i64(r, i, col + 5) != 0;
	}
	out->list_suppressed = r_i64(r, i, col + 6) != 0;
	return bad ? too_long("cannot look up the entry") : 0;
}

static int filter_one(struct store_conn *c, enum pg_stmt stmt, const char *join, const uint8_t *bidx,
		      const char *id, const uint8_t *list_hash, const char *purpose, const char *channel,
		      const struct store_scope_keys *keys, struct store_filter_row *out)
{
	char sql[2048];
	struct pg_args a = { 0 };
	PGresult *r = NULL;
	if (bidx != NULL)
		a_blob(&a, bidx, 32);
	else
		a_text(&a, id);
	a_text(&a, purpose);
	a_text(&a, channel ? channel : "");
	a_blob(&a, list_hash, 32);
	a_keys(&a, keys);
	snprintf(
		sql, sizeof sql,
		"SELECT " FILTER_COLS ", " SUPPRESSION_COVERS(
			"$4::bytea") " FROM (SELECT 1) AS one "
				     "LEFT JOIN contact c ON %s LEFT JOIN consent k ON k.contact_id = c.id AND "
				     "k.purpose = $2 AND k.channel = $3",
		join);
	int rc = pg_run_prepared(c, stmt, sql, &a, &r, "cannot look up the entry");
	if (rc == 0)
		rc = PQntuples(r) == 1 ? read_filter_row(r, 0, 0, out)
				       : err_set(ERR_IO, "cannot look up the entry");
	PQclear(r);
	return rc;
}

static int pg_filter_by_email(struct store_conn *c, const uint8_t bidx[32], const uint8_t list_hash[32],
			      const char *purpose, const char *channel, const struct store_scope_keys *keys,
			      struct store_filter_row *out)
{
	return filter_one(c, PG_STMT_FILTER_EMAIL, "c.email_bidx = $1::bytea", bidx, NULL, list_hash, purpose,
			  channel, keys, out);
}

static int pg_filter_by_id(struct store_conn *c, const char *id, const char *purpose, const char *channel,
			   const struct store_scope_keys *keys, struct store_filter_row *out)
{
	return filter_one(c, PG_STMT_FILTER_ID, "c.id = $1::text", NULL, id, NULL, purpose, channel, keys,
			  out);
}

/* A one-dimensional bytea[] of n values of size bytes in PostgreSQL's binary
 * array format (array_recv): ndim, has-null flag, element type (bytea,
 * oid 17), length and lower bound, then each element as length + bytes. */
static uint8_t *bytea_array(const uint8_t *v, size_t size, size_t n, size_t *len)
{
	uint8_t *buf = malloc(20 + n * (4 + size)), *p = buf;
	const uint32_t head[5] = { htonl(1), htonl(0), htonl(17), htonl((uint32_t)n), htonl(1) };
	if (buf == NULL)
		return NULL;
	memcpy(p, head, sizeof head);
	p += sizeof head;
	for (size_t i = 0; i < n; i++) {
		uint32_t l = htonl((uint32_t)size);
		memcpy(p, &l, 4);
		memcpy(p + 4, v + i * size, size);
		p += 4 + size;
	}
	*len = 20 + n * (4 + size);
	return buf;
}

/* The whole batch in one round trip per PG_FILTER_BATCH entries (backend.h
 * guarantee 8): the blind indexes and list hashes travel as two binary
 * bytea[] arrays, unnested side by side. Cutting one long bytea apart with
 * substring() instead copied the whole parameter for every entry (cost
 * quadratic in the batch: 4096 entries took three times as long as four
 * batches of 1024). The contact and its consent are LATERAL subqueries so
 * the plan is one index probe per entry whatever the planner estimates. */
static int pg_filter_by_email_many(struct store_conn *c, size_t n, const uint8_t (*bidx)[32],
				   const uint8_t (*list_hash)[32], const char *purpose, const char *channel,
				   const struct store_scope_keys *keys, struct store_filter_row *out)
{
	for (size_t done = 0; done < n;) {
		size_t k = n - done < PG_FILTER_BATCH ? n - done : PG_FILTER_BATCH;
		size_t blen = 0, llen = 0;
		uint8_t *barr = bytea_array(bidx[done], 32, k, &blen);
		uint8_t *larr = bytea_array(list_hash[done], 32, k, &llen);
		struct pg_args a = { 0 };
		PGresult *r = NULL;
		int rc = barr && larr ? 0 : err_set(ERR_NOMEM, "out of memory");
		a_blob(&a, barr, blen);
		a_text(&a, purpose);
		a_text(&a, channel ? channel : "");
		a_blob(&a, larr, llen);
		a_keys(&a, keys);
		if (rc == 0)
			rc = pg_run(
				c,
				"SELECT e.i, " FILTER_COLS ", " SUPPRESSION_COVERS(
					"e.lh") " "
						"FROM unnest($1::bytea[], $4::bytea[]) WITH ORDINALITY AS e(b, lh, i) "
						"LEFT JOIN LATERAL (SELECT c.id, c.status, c.collected_for, c.email_shash, "
						"c.phone_shash FROM contact c WHERE c.email_bidx = e.b) AS c ON true "
						"LEFT JOIN LATERAL (SELECT k.status, k.expires_us FROM consent k "
						"WHERE k.contact_id = c.id AND k.purpose = $2 AND k.channel = $3) AS k ON true "
						"ORDER BY e.i",
				&a, &r, "cannot look up the entries");
		free(barr);
		free(larr);
		if (rc == 0 && (size_t)PQntuples(r) != k)
			rc = err_set(ERR_IO, "cannot look up the entries: %d rows for %zu", PQntuples(r), k);
		for (size_t i = 0; rc == 0 && i < k; i++)
			rc = read_filter_row(r, (int)i, 1, &out[done + i]);
		PQclear(r);
		if (rc != 0)
			return rc;
		done += k;
	}
	return 0;
}

static int pg_release_put(struct store_conn *c, const char *release_id, int64_t chunk, const uint8_t *ids,
			  size_t n_ids)
{
	struct pg_args a = { 0 };
	a_text(&a, release_id);
	a_i64(&a, chunk);
	a_blob(&a, ids, n_ids * 16);
	return pg_do(c, "INSERT INTO filter_release (release_id, chunk, ids) VALUES ($1, $2, $3)", &a, NULL,
		     "cannot record the released contacts");
}

static int pg_release_find(struct store_conn *c, const char *release_id, const uint8_t id_raw[16])
{
	struct pg_args a = { 0 };
	PGresult *r = NULL;
	a_text(&a, release_id);
	int rc = pg_run(c, "SELECT ids FROM filter_release WHERE release_id = $1", &a, &r,
			"cannot read the release record");
	if (rc != 0)
		return rc;
	rc = ERR_NOTFOUND;
	for (int i = 0; rc == ERR_NOTFOUND && i < PQntuples(r); i++) {
		/* Each chunk is sorted: binary search. */
		const uint8_t *ids = (const uint8_t *)PQgetvalue(r, i, 0);
		size_t lo = 0, hi = (size_t)PQgetlength(r, i, 0) / 16;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			int cmp = memcmp(ids + mid * 16, id_raw, 16);
			if (cmp == 0) {
				rc = 0;
				break;
			}
			if (cmp < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
	}
	PQclear(r);
	return rc;
}

static int pg_release_count(struct store_conn *c, const char *release_id, int64_t *out)
{
	struct pg_args a = { 0 };
	a_text(&a, release_id);
	return pg_count(c,
			"SELECT (coalesce(sum(length(ids)), 0) / 16)::bigint FROM filter_release "
			"WHERE release_id = $1",
			&a, out, "cannot count the released contacts");
}

/* ---- console ------------------------------------------------------------------ */

static int pg_console_session_insert(struct store_conn *c, const struct store_console_session *cs)
{
	struct pg_args a = { 0 };
	a_blob(&a, cs->id_hash, 32);
	a_blob(&a, cs->token_hash, 32);
	a_text(&a, cs->actor);
	a_text(&a, cs->role);
	a_text(&a, cs->csrf);
	a_i64(&a, cs->created_us);
	a_i64(&a, cs->seen_us);
	return pg_do(c,
		     "INSERT INTO console_session (id_hash, token_hash, actor, role, csrf, created_us, "
		     "seen_us) VALUES ($1, $2, $3, $4, $5, $6, $7)",
		     &a, NULL, "cannot store the console session");
}

static int pg_console_session_get(struct store_conn *c, const uint8_t id_hash[32],
				  struct store_console_session *out)
{
	struct pg_args a = { 0 };
	PGresult *r = NULL;
	bool bad = false;
	a_blob(&a, id_hash, 32);
	int rc = pg_run(c,
			"SELECT token_hash, actor, role, csrf, created_us, seen_us FROM console_session "
			"WHERE id_hash = $1",
			&a, &r, "cannot read the console session");
	if (rc == 0 && PQntuples(r) == 0)
		rc = err_set(ERR_NOTFOUND, "no such console session");
	else if (rc == 0) {
		memset(out, 0, sizeof *out);
		memcpy(out->id_hash, id_hash, 32);
		r_blob(r, 0, 0, out->token_hash, 32);
		r_text(r, 0, 1, out->actor, sizeof out->actor, &bad);
		r_text(r, 0, 2, out->role, sizeof out->role, &bad);
		r_text(r, 0, 3, out->csrf, sizeof out->csrf, &bad);
		out->created_us = r_i64(r, 0, 4);
		out->seen_us = r_i64(r, 0, 5);
		if (bad)
			rc = too_long("cannot read the console session");
	}
	PQclear(r);
	return rc;
}

static int pg_console_session_touch(struct store_conn *c, const uint8_t id_hash[32], int64_t seen_us)
{
	struct pg_args a = { 0 };
	a_blob(&a, id_hash, 32);
	a_i64(&a, seen_us);
	return pg_do(c, "UPDATE console_session SET seen_us = greatest(seen_us, $2) WHERE id_hash = $1", &a,
		     NULL, "cannot touch the console session");
}

static int pg_console_session_delete(struct store_conn *c, const uint8_t id_hash[32])
{
	struct pg_args a = { 0 };
	a_blob(&a, id_hash, 32);
	return pg_do(c, "DELETE FROM console_session WHERE id_hash = $1", &a, NULL,
		     "cannot delete the console session");
}

static int pg_console_sessions_expire(struct store_conn *c, int64_t idle_before_us, int64_t created_before_us,
				      int64_t *count)
{
	struct pg_args a = { 0 };
	int64_t n = 0;
	a_i64(&a, idle_before_us);
	a_i64(&a, created_before_us);
	int rc = pg_do(c, "DELETE FROM console_session WHERE seen_us < $1 OR created_us < $2", &a, &n,
		       "cannot expire console sessions");
	if (rc == 0 && count != NULL)
		*count = n;
	return rc;
}

static int pg_console_stats(struct store_conn *c, enum store_console_stat which, int64_t since_us,
			    store_console_stat_cb cb, void *ctx)
{
	static const char *const sqls[] = {
		[STORE_STAT_PER_DAY] = "SELECT time_us / 86400000000, '', count(*) FROM audit "
				       "WHERE time_us >= $1 GROUP BY 1 ORDER BY 1",
		[STORE_STAT_DENIALS_BY_REASON] = "SELECT time_us / 86400000000, reason, count(*) FROM audit "
						 "WHERE time_us >= $1 AND decision = 'deny' "
						 "GROUP BY 1, 2 ORDER BY 1, 2",
		[STORE_STAT_BY_ROLE] = "SELECT 0::bigint, role, count(*) FROM audit WHERE time_us >= $1 "
				       "GROUP BY 2 ORDER BY 3 DESC, 2",
	};
	struct pg_args a = { 0 };
	PGresult *r = NULL;
	if ((unsigned)which >= sizeof sqls / sizeof sqls[0])
		return err_set(ERR_INVALID, "no such statistic");
	a_i64(&a, since_us);
	int rc = pg_run(c, sqls[which], &a, &r, "cannot compute the statistics");
	for (int i = 0; rc == 0 && i < PQntuples(r); i++)
		rc = cb(ctx, r_i64(r, i, 0), PQgetvalue(r, i, 1), r_i64(r, i, 2));
	PQclear(r);
	return rc;
}

static int pg_console_find_phone(struct store_conn *c, const uint8_t bidx[32], char (*ids)[STORE_ID_CAP],
				 size_t cap, size_t *n, bool *more)
{
	struct pg_args a = { 0 };
	PGresult *r = NULL;
	bool bad = false;
	*n = 0;
	*more = false;
	a_blob(&a, bidx, 32);
	a_i64(&a, (int64_t)cap + 1); /* one more, to know there are others */
	int rc = pg_run(c,
			"SELECT id FROM contact WHERE phone_bidx = $1 AND status = 'active' "
			"ORDER BY id LIMIT $2",
			&a, &r, "cannot look up the phone");
	for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
		if (*n == cap) {
			*more = true;
			break;
		}
		r_text(r, i, 0, ids[(*n)++], STORE_ID_CAP, &bad);
	}
	if (rc == 0 && bad)
		rc = too_long("cannot look up the phone");
	PQclear(r);
	return rc;
}

/* ---- provider events ------------------------------------------------------------ */

/* 1 when the event is new, 0 when this provider's event was taken in before. */
static int pg_provider_event_once(struct store_conn *c, const char *provider, const uint8_t id_hash[32],
				  int64_t received_us)
{
	struct pg_args a = { 0 };
	int64_t n = 0;
	a_text(&a, provider);
	a_blob(&a, id_hash, 32);
	a_i64(&a, received_us);
	int rc = pg_do(c,
		       "INSERT INTO provider_event (provider, id_hash, received_us) VALUES ($1, $2, $3) "
		       "ON CONFLICT (provider, id_hash) DO NOTHING",
		       &a, &n, "cannot record the provider event");
	return rc != 0 ? rc : n > 0 ? 1 : 0;
}

/* ---- release log, release summary, frequency choice ------------------------------ */

/* The ids travel as one binary bytea[] array: one round trip per
 * PG_FILTER_BATCH ids, not one per id (and not substring() over one long
 * string, which copies it once per id). */
static int pg_release_log_put(struct store_conn *c, const char *release_id, const char *purpose,
			      const char *channel, int64_t at_us, const uint8_t *ids, size_t n_ids)
{
	int rc = 0;
	for (size_t done = 0; done < n_ids && rc == 0;) {
		size_t k = n_ids - done < PG_FILTER_BATCH ? n_ids - done : PG_FILTER_BATCH;
		size_t len = 0;
		uint8_t *arr = bytea_array(ids + done * 16, 16, k, &len);
		struct pg_args a = { 0 };
		if (arr == NULL)
			return err_set(ERR_NOMEM, "out of memory");
		a_blob(&a, arr, len);
		a_text(&a, purpose);
		a_text(&a, channel);
		a_i64(&a, at_us);
		a_text(&a, release_id);
		rc = pg_do(c,
			   "INSERT INTO release_log (contact, purpose, channel, at_us, release_id) "
			   "SELECT e.contact, $2, $3, $4, $5 FROM unnest($1::bytea[]) AS e(contact) "
			   "ON CONFLICT DO NOTHING",
			   &a, NULL, "cannot record the release log");
		free(arr);
		done += k;
	}
	return rc;
}

/* The recent releases of a batch of contacts in one round trip per
 * PG_FILTER_BATCH ids: the same probe as pg_release_recent, per id, as a
 * LATERAL subquery. */
static int pg_release_recent_many(struct store_conn *c, size_t n, const uint8_t (*ids)[16],
				  const char *purpose, const char *channel, int64_t after_us, int64_t limit,
				  int64_t *count, int64_t *last_us)
{
	for (size_t done = 0; done < n;) {
		size_t k = n - done < PG_FILTER_BATCH ? n - done : PG_FILTER_BATCH;
		size_t len = 0;
		uint8_t *arr = bytea_array(ids[done], 16, k, &len);
		struct pg_args a = { 0 };
		PGresult *r = NULL;
		if (arr == NULL)
			return err_set(ERR_NOMEM, "out of memory");
		a_blob(&a, arr, len);
		a_text(&a, purpose);
		a_text(&a, channel);
		a_i64(&a, after_us);
		a_i64(&a, limit);
		int rc = pg_run(
			c,
			"SELECT e.i, r.n, coalesce(r.last, 0) FROM unnest($1::bytea[]) WITH ORDINALITY "
			"AS e(contact, i) CROSS JOIN LATERAL (SELECT count(*)::bigint AS n, min(x.at_us) "
			"AS last FROM (SELECT l.at_us FROM release_log l WHERE l.contact = e.contact AND "
			"l.purpose = $2 AND l.channel = $3 AND l.at_us > $4 ORDER BY l.at_us DESC "
			"LIMIT $5) AS x) AS r ORDER BY e.i",
			&a, &r, "cannot read the release log");
		free(arr);
		if (rc == 0 && (size_t)PQntuples(r) != k)
			rc = err_set(ERR_IO, "cannot read the release log: %d rows for %zu", PQntuples(r), k);
		for (size_t i = 0; rc == 0 && i < k; i++) {
			count[done + i] = r_i64(r, (int)i, 1);
			last_us[done + i] = r_i64(r, (int)i, 2);
		}
		PQclear(r);
		if (rc != 0)
			return rc;
		done += k;
	}
	return 0;
}

static int pg_release_recent(struct store_conn *c, const uint8_t id_raw[16], const char *purpose,
			     const char *channel, int64_t after_us, int64_t limit, int64_t *count,
			     int64_t *last_us)
{
	struct pg_args a = { 0 };
	PGresult *r = NULL;
	*count = 0;
	*last_us = 0;
	a_blob(&a, id_raw, 16);
	a_text(&a, purpose);
	a_text(&a, channel);
	a_i64(&a, after_us);
	a_i64(&a, limit);
	int rc = pg_run(c,
			"SELECT at_us FROM release_log WHERE contact = $1 AND purpose = $2 AND "
			"channel = $3 AND at_us > $4 ORDER BY at_us DESC LIMIT $5",
			&a, &r, "cannot read the release log");
	if (rc == 0 && PQntuples(r) > 0) {
		*count = PQntuples(r);
		*last_us = r_i64(r, PQntuples(r) - 1, 0);
	}
	PQclear(r);
	return rc;
}

static int pg_release_log_each(struct store_conn *c, const uint8_t id_raw[16], int64_t limit,
			       store_release_log_cb cb, void *ctx)
{
	struct pg_args a = { 0 };
	PGresult *r = NULL;
	a_blob(&a, id_raw, 16);
	a_i64(&a, limit);
	int rc = pg_run(c,
			"SELECT release_id, purpose, channel, at_us FROM release_log WHERE contact = $1 "
			"ORDER BY at_us DESC LIMIT $2",
			&a, &r, "cannot read the release log");
	for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
		struct store_release_entry e;
		bool bad = false;
		memset(&e, 0, sizeof e);
		r_text(r, i, 0, e.release_id, sizeof e.release_id, &bad);
		r_text(r, i, 1, e.purpose, sizeof e.purpose, &bad);
		r_text(r, i, 2, e.channel, sizeof e.channel, &bad);
		e.at_us = r_i64(r, i, 3);
		rc = bad ? too_long("cannot read the release log") : cb(ctx, &e);
	}
	PQclear(r);
	return rc;
}

static int pg_release_summary_put(struct store_conn *c, const char *release_id, int64_t at_us,
				  const char *summary)
{
	struct pg_args a = { 0 };
	int64_t n = 0;
	a_text(&a, release_id);
	a_i64(&a, at_us);
	a_text(&a, summary);
	/* ON CONFLICT DO NOTHING: a duplicate is ERR_CONFLICT as on SQLite,
	 * without aborting the writer's transaction. */
	int rc = pg_do(c,
		       "INSERT INTO release_summary (release_id, at_us, summary) VALUES ($1, $2, $3) "
		       "ON CONFLICT DO NOTHING",
		       &a, &n, "cannot record the release summary");
	if (rc == 0 && n != 1)
		return err_set(ERR_CONFLICT, "cannot record the release summary: the release has one");
	return rc;
}

static int pg_release_summary_get(struct store_conn *c, const char *release_id, int64_t *at_us,
				  char **summary)
{
	struct pg_args a = { 0 };
	PGresult *r = NULL;
	*summary = NULL;
	a_text(&a, release_id);
	int rc = pg_run(c, "SELECT at_us, summary FROM release_summary WHERE release_id = $1", &a, &r,
			"cannot read the release summary");
	if (rc == 0 && PQntuples(r) == 0)
		rc = err_set(ERR_NOTFOUND, "no such release");
	else if (rc == 0) {
		*at_us = r_i64(r, 0, 0);
		if ((*summary = strdup(PQgetvalue(r, 0, 1))) == NULL)
			rc = err_set(ERR_NOMEM, "out of memory");
	}
	PQclear(r);
	return rc;
}

static int pg_frequency_put(struct store_conn *c, const char *contact_id, const struct store_frequency *fq)
{
	struct pg_args a = { 0 };
	a_text(&a, contact_id);
	a_text(&a, fq->purpose);
	a_text(&a, fq->channel);
	a_text(&a, fq->choice);
	a_i64(&a, fq->set_us);
	return pg_do(c,
		     "INSERT INTO frequency_choice (contact_id, purpose, channel, choice, set_us) "
		     "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (contact_id, purpose, channel) DO UPDATE "
		     "SET choice = excluded.choice, set_us = excluded.set_us",
		     &a, NULL, "cannot record the frequency choice");
}

static int read_frequency(const PGresult *r, int i, struct store_frequency *out)
{
	bool bad = false;
	memset(out, 0, sizeof *out);
	r_text(r, i, 0, out->purpose, sizeof out->purpose, &bad);
	r_text(r, i, 1, out->channel, sizeof out->channel, &bad);
	r_text(r, i, 2, out->choice, sizeof out->choice, &bad);
	out->set_us = r_i64(r, i, 3);
	return bad ? too_long("cannot read the frequency choice") : 0;
}

static int pg_frequency_get(struct store_conn *c, const char *contact_id, const char *purpose,
			    const char *channel, struct store_frequency *out)
{
	struct pg_args a = { 0 };
	PGresult *r = NULL;
	a_text(&a, contact_id);
	a_text(&a, purpose);
	a_text(&a, channel);
	int rc = pg_run(c,
			"SELECT purpose, channel, choice, set_us FROM frequency_choice "
			"WHERE contact_id = $1 AND purpose = $2 AND channel = $3",
			&a, &r, "cannot read the frequency choice");
	if (rc == 0)
		rc = PQntuples(r) == 1 ? read_frequency(r, 0, out)
				       : err_set(ERR_NOTFOUND, "no frequency choice");
	PQclear(r);
	return rc;
}

static int pg_frequency_each(struct store_conn *c, const char *contact_id, store_frequency_cb cb, void *ctx)
{
	struct pg_args a = { 0 };
	PGresult *r = NULL;
	a_text(&a, contact_id);
	int rc = pg_run(c,
			"SELECT purpose, channel, choice, set_us FROM frequency_choice "
			"WHERE contact_id = $1 ORDER BY purpose, channel",
			&a, &r, "cannot read the frequency choices");
	for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
		struct store_frequency fq;
		if ((rc = read_frequency(r, i, &fq)) == 0)
			rc = cb(ctx, &fq);
	}
	PQclear(r);
	return rc;
}

/* The whole batch in one round trip: the ids travel as one bytea, cut
 * apart by a series, and a LATERAL probe per id reads at most limit rows
 * of the release log's primary key. */
static int pg_release_times_many(struct store_conn *c, size_t n, const uint8_t *ids, const char *purpose,
				 const char *channel, int64_t after_us, int64_t limit, int64_t *times,
				 int64_t *counts)
{
	struct pg_args a = { 0 };
	PGresult *r = NULL;
	for (size_t i = 0; i < n; i++)
		counts[i] = 0;
	if (n == 0)
		return 0;
	a_blob(&a, ids, n * 16);
	a_text(&a, purpose);
	a_text(&a, channel);
	a_i64(&a, after_us);
	a_i64(&a, limit);
	a_i64(&a, (int64_t)n);
	int rc = pg_run(
		c,
		"SELECT g.i::bigint, l.at_us FROM generate_series(0, $6::int - 1) AS g(i) CROSS JOIN LATERAL "
		"(SELECT at_us FROM release_log WHERE contact = substring($1::bytea FROM g.i * 16 + 1 "
		"FOR 16) AND purpose = $2 AND channel = $3 AND at_us > $4 ORDER BY at_us DESC "
		"LIMIT $5) AS l ORDER BY g.i, l.at_us DESC",
		&a, &r, "cannot read the release log");
	for (int k = 0; rc == 0 && k < PQntuples(r); k++) {
		int64_t i = r_i64(r, k, 0);
		if (i < 0 || (size_t)i >= n || counts[i] >= limit) {
			rc = err_set(ERR_IO, "the release log answered a row that was not asked for");
			break;
		}
		times[i * limit + counts[i]++] = r_i64(r, k, 1);
	}
	PQclear(r);
	return rc;
}

/* ---- the mail outbox ------------------------------------------------------------ */

static int pg_mail_put(struct store_conn *c, const struct store_mail *m)
{
	struct pg_args a = { 0 };
	int64_t n = 0;
	a_text(&a, m->id);
	a_text(&a, m->kind);
	a_text(&a, m->contact_id);
	a_text(&a, m->link_id);
	a_i64(&a, m->created_us);
	a_text(&a, m->lang);
	int rc = pg_do(c,
		       "INSERT INTO mail_outbox (id, kind, contact_id, link_id, created_us, lang) "
		       "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
		       &a, &n, "cannot queue the mail");
	if (rc == 0 && n != 1)
		return err_set(ERR_CONFLICT, "cannot queue the mail: a mail with this id is queued");
	return rc;
}

static int mail_rows(PGresult *r, store_mail_cb cb, void *ctx)
{
	int rc = 0;
	for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
		struct store_mail m;
		bool bad = false;
		memset(&m, 0, sizeof m);
		r_text(r, i, 0, m.id, sizeof m.id, &bad);
		r_text(r, i, 1, m.kind, sizeof m.kind, &bad);
		r_text(r, i, 2, m.contact_id, sizeof m.contact_id, &bad);
		r_text(r, i, 3, m.link_id, sizeof m.link_id, &bad);
		m.created_us = r_i64(r, i, 4);
		m.attempts = r_i64(r, i, 5);
		m.next_us = r_i64(r, i, 6);
		r_text(r, i, 7, m.lang, sizeof m.lang, &bad);
		rc = bad ? too_long("cannot read the mail outbox") : cb(ctx, &m);
	}
	return rc;
}

static int pg_mail_pending(struct store_conn *c, size_t max, int64_t now_us, store_mail_cb cb, void *ctx)
{
	struct pg_args a = { 0 };
	PGresult *r = NULL;
	a_i64(&a, (int64_t)max);
	a_i64(&a, now_us);
	int rc = pg_run(
		c,
		"SELECT id, kind, contact_id, link_id, created_us, attempts, next_us, lang FROM mail_outbox "
		"WHERE sent_us IS NULL AND failed_us IS NULL AND next_us <= $2 "
		"ORDER BY created_us, id LIMIT $1",
		&a, &r, "cannot read the mail outbox");
	if (rc == 0)
		rc = mail_rows(r, cb, ctx);
	PQclear(r);
	return rc;
}

/* SKIP LOCKED passes over rows another transaction is claiming; a row
 * claimed and committed since this statement's snapshot is re-read under
 * its row lock and fails the claim_until test then: the claim is one
 * instance's. */
static int pg_mail_claim(struct store_conn *c, const char *owner, size_t max, int64_t now_us,
			 int64_t until_us, store_mail_cb cb, void *ctx)
{
	struct pg_args a = { 0 };
	PGresult *r = NULL;
	a_text(&a, owner);
	a_i64(&a, (int64_t)max);
	a_i64(&a, now_us);
	a_i64(&a, until_us);
	int rc = pg_run(c,
			"UPDATE mail_outbox SET claimed_by = $1, claim_until = $4::bigint WHERE id IN ("
			"SELECT id FROM mail_outbox WHERE sent_us IS NULL AND failed_us IS NULL "
			"AND next_us <= $3::bigint AND (claim_until < $3::bigint OR claimed_by = $1) "
			"ORDER BY created_us, id LIMIT $2 FOR UPDATE SKIP LOCKED) "
			"AND (claim_until < $3::bigint OR claimed_by = $1) "
			"RETURNING id, kind, contact_id, link_id, created_us, attempts, next_us, lang",
			&a, &r, "cannot claim mail");
	if (rc == 0)
		rc = mail_rows(r, cb, ctx);
	PQclear(r);
	return rc;
}

static int pg_mail_release(struct store_conn *c, const char *owner)
{
	struct pg_args a = { 0 };
	a_text(&a, owner);
	return pg_do(c,
		     "UPDATE mail_outbox SET claimed_by = '', claim_until = 0 "
		     "WHERE claimed_by = $1 AND sent_us IS NULL AND failed_us IS NULL",
		     &a, NULL, "cannot release the mail claims");
}

static int pg_form_nonce_spend(struct store_conn *c, const uint8_t *nonce, size_t len, int64_t now_us,
			       int64_t expires_us)
{
	struct pg_args a = { 0 }, b = { 0 };
	int64_t n = 0;
	if (len == 0 || len > STORE_NONCE_MAX)
		return err_set(ERR_INVALID, "a form value's nonce is 1 to %d bytes", STORE_NONCE_MAX);
	a_i64(&a, now_us);
	int rc = pg_do(c, "DELETE FROM form_nonce WHERE expires_us < $1", &a, NULL,
		       "cannot sweep the spent form values");
	if (rc != 0)
		return rc;
	a_blob(&b, nonce, len);
	a_i64(&b, expires_us);
	rc = pg_do(c, "INSERT INTO form_nonce (nonce, expires_us) VALUES ($1, $2) ON CONFLICT DO NOTHING", &b,
		   &n, "cannot spend the form value");
	if (rc == 0 && n != 1)
		rc = err_set(ERR_CONFLICT, "the form value was used");
	return rc;
}

static int pg_form_nonce_spent(struct store_conn *c, const uint8_t *nonce, size_t len, int64_t now_us,
			       bool *spent)
{
	struct pg_args a = { 0 };
	int64_t n = 0;
	*spent = false;
	if (len == 0 || len > STORE_NONCE_MAX)
		return err_set(ERR_INVALID, "a form value's nonce is 1 to %d bytes", STORE_NONCE_MAX);
	a_blob(&a, nonce, len);
	a_i64(&a, now_us);
	int rc = pg_count(c, "SELECT count(*) FROM form_nonce WHERE nonce = $1 AND expires_us >= $2", &a, &n,
			  "cannot read the spent form values");
	*spent = rc == 0 && n > 0;
	return rc;
}

static int pg_mail_mark(struct store_conn *c, const char *id, enum store_mail_outcome outcome,
			int64_t when_us)
{
	struct pg_args a = { 0 };
	int64_t n = 0;
	a_text(&a, id);
	a_i64(&a, (int64_t)outcome);
	a_i64(&a, when_us);
	int rc = pg_do(c,
		       "UPDATE mail_outbox SET sent_us = CASE WHEN $2::bigint = 0 THEN $3::bigint END, "
		       "next_us = CASE WHEN $2::bigint = 1 THEN $3::bigint ELSE next_us END, "
		       "failed_us = CASE WHEN $2::bigint = 2 THEN $3::bigint END, "
		       "attempts = attempts + CASE WHEN $2::bigint = 0 THEN 0 ELSE 1 END, "
		       "claimed_by = '', claim_until = 0 "
		       "WHERE id = $1 AND sent_us IS NULL AND failed_us IS NULL",
		       &a, &n, "cannot mark the mail");
	if (rc == 0 && n == 0)
		rc = err_set(ERR_NOTFOUND, "no pending mail with this id");
	return rc;
}

/* ---- double opt-in confirmations ------------------------------------------------ */

static int pg_confirmation_put(struct store_conn *c, const struct store_confirmation *cf)
{
	struct pg_args a = { 0 };
	int64_t n = 0;
	a_text(&a, cf->id);
	a_text(&a, cf->contact_id);
	a_text(&a, cf->purpose);
	a_text(&a, cf->channel);
	a_text(&a, cf->receipt_id);
	a_i64(&a, cf->created_us);
	a_i64(&a, cf->expires_us);
	int rc = pg_do(c,
		       "INSERT INTO consent_confirmation (id, contact_id, purpose, channel, receipt_id, "
		       "created_us, expires_us) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
		       &a, &n, "cannot record the confirmation");
	if (rc == 0 && n != 1)
		return err_set(ERR_CONFLICT, "cannot record the confirmation: the id is taken");
	return rc;
}

static int pg_confirmation_get(struct store_conn *c, const char *id, struct store_confirmation *out)
{
	struct pg_args a = { 0 };
	PGresult *r = NULL;
	bool bad = false;
	a_text(&a, id);
	memset(out, 0, sizeof *out);
	int rc = pg_run(c,
			"SELECT id, contact_id, purpose, channel, receipt_id, created_us, expires_us, "
			"coalesce(confirmed_us, 0) FROM consent_confirmation WHERE id = $1",
			&a, &r, "cannot read the confirmation");
	if (rc == 0 && PQntuples(r) == 0)
		rc = err_set(ERR_NOTFOUND, "no confirmation with this id");
	if (rc == 0) {
		r_text(r, 0, 0, out->id, sizeof out->id, &bad);
		r_text(r, 0, 1, out->contact_id, sizeof out->contact_id, &bad);
		r_text(r, 0, 2, out->purpose, sizeof out->purpose, &bad);
		r_text(r, 0, 3, out->channel, sizeof out->channel, &bad);
		r_text(r, 0, 4, out->receipt_id, sizeof out->receipt_id, &bad);
		out->created_us = r_i64(r, 0, 5);
		out->expires_us = r_i64(r, 0, 6);
		out->confirmed_us = r_i64(r, 0, 7);
		if (bad)
			rc = too_long("cannot read the confirmation");
	}
	PQclear(r);
	return rc;
}

static int pg_confirmation_done(struct store_conn *c, const char *id, int64_t when_us)
{
	struct pg_args a = { 0 };
	int64_t n = 0;
	a_text(&a, id);
	a_i64(&a, when_us);
	int rc = pg_do(
		c, "UPDATE consent_confirmation SET confirmed_us = $2 WHERE id = $1 AND confirmed_us IS NULL",
		&a, &n, "cannot confirm");
	if (rc == 0 && n == 0)
		rc = err_set(ERR_NOTFOUND, "no unconfirmed confirmation with this id");
	return rc;
}

/* ---- data-subject requests ------------------------------------------------------ */

#define REQUEST_COLS                                                                                         \
	"id, contact_id, kind, jurisdiction, state, origin, received_day, due_day, ack_day, extended, "      \
	"needs_approval, created_us, updated_us, steps"

static void pg_request_row(const PGresult *r, int i, struct store_request *out, bool *bad)
{
	memset(out, 0, sizeof *out);
	r_text(r, i, 0, out->id, sizeof out->id, bad);
	r_text(r, i, 1, out->contact_id, sizeof out->contact_id, bad);
	r_text(r, i, 2, out->kind, sizeof out->kind, bad);
	r_text(r, i, 3, out->jurisdiction, sizeof out->jurisdiction, bad);
	r_text(r, i, 4, out->state, sizeof out->state, bad);
	r_text(r, i, 5, out->origin, sizeof out->origin, bad);
	out->received_day = r_i64(r, i, 6);
	out->due_day = r_i64(r, i, 7);
	out->ack_day = r_i64(r, i, 8);
	out->extended = r_i64(r, i, 9) != 0;
	out->needs_approval = r_i64(r, i, 10) != 0;
	out->created_us = r_i64(r, i, 11);
	out->updated_us = r_i64(r, i, 12);
	out->steps = r_i64(r, i, 13);
}

static int pg_request_put(struct store_conn *c, const struct store_request *q)
{
	struct pg_args a = { 0 };
	int64_t n = 0;
	a_text(&a, q->id);
	a_text(&a, q->contact_id);
	a_text(&a, q->kind);
	a_text(&a, q->jurisdiction);
	a_text(&a, q->state);
	a_text(&a, q->origin);
	a_i64(&a, q->received_day);
	a_i64(&a, q->due_day);
	a_i64(&a, q->ack_day);
	a_i64(&a, q->extended);
	a_i64(&a, q->needs_approval);
	a_i64(&a, q->created_us);
	a_i64(&a, q->updated_us);
	a_i64(&a, q->steps);
	int rc = pg_do(c,
		       "INSERT INTO dsr_request (" REQUEST_COLS
		       ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, "
		       "$10, $11, $12, $13, $14) ON CONFLICT DO NOTHING",
		       &a, &n, "cannot record the request");
	if (rc == 0 && n != 1)
		return err_set(ERR_CONFLICT, "cannot record the request: the id is taken");
	return rc;
}

static int pg_request_get(struct store_conn *c, const char *id, struct store_request *out)
{
	struct pg_args a = { 0 };
	PGresult *r = NULL;
	bool bad = false;
	a_text(&a, id);
	int rc = pg_run(c, "SELECT " REQUEST_COLS " FROM dsr_request WHERE id = $1", &a, &r,
			"cannot read the request");
	if (rc == 0 && PQntuples(r) == 0)
		rc = err_set(ERR_NOTFOUND, "no request with this id");
	if (rc == 0) {
		pg_request_row(r, 0, out, &bad);
		if (bad)
			rc = too_long("cannot read the request");
	}
	PQclear(r);
	return rc;
}

static int pg_request_update(struct store_conn *c, const struct store_request *q, int64_t prev_steps)
{
	struct pg_args a = { 0 };
	int64_t n = 0;
	struct store_request cur;
	a_text(&a, q->id);
	a_text(&a, q->state);
	a_i64(&a, q->due_day);
	a_i64(&a, q->extended);
	a_i64(&a, q->needs_approval);
	a_i64(&a, q->updated_us);
	a_i64(&a, q->steps);
	a_i64(&a, prev_steps);
	int rc = pg_do(c,
		       "UPDATE dsr_request SET state = $2, due_day = $3, extended = $4, needs_approval = $5, "
		       "updated_us = $6, steps = $7 WHERE id = $1 AND steps = $8",
		       &a, &n, "cannot update the request");
	if (rc == 0 && n == 0) {
		rc = pg_request_get(c, q->id, &cur);
		if (rc == 0)
			rc = err_set(ERR_CONFLICT, "the request was changed by another transition");
	}
	return rc;
}

static int pg_requests_each(struct store_conn *c, const char *state, int64_t due_before_day, size_t max,
			    store_request_cb cb, void *ctx, bool *more)
{
	struct pg_args a = { 0 };
	PGresult *r = NULL;
	*more = false;
	a_text(&a, state != NULL ? state : "");
	a_i64(&a, due_before_day);
	a_i64(&a, (int64_t)max + 1); /* one more than asked: are there more? */
	int rc = pg_run(c,
			"SELECT " REQUEST_COLS " FROM dsr_request WHERE ($1 = '' OR state = $1) "
			"AND ($2::bigint = 0 OR due_day < $2::bigint) ORDER BY due_day, id LIMIT $3",
			&a, &r, "cannot list the requests");
	for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
		struct store_request q;
		bool bad = false;
		if ((size_t)i == max) {
			*more = true;
			break;
		}
		pg_request_row(r, i, &q, &bad);
		rc = bad ? too_long("cannot list the requests") : cb(ctx, &q);
	}
	PQclear(r);
	return rc;
}

static int pg_request_step_put(struct store_conn *c, const struct store_request_step *st)
{
	struct pg_args a = { 0 };
	int64_t n = 0;
	a_text(&a, st->request_id);
	a_i64(&a, st->seq);
	a_text(&a, st->from_state);
	a_text(&a, st->to_state);
	a_text(&a, st->actor);
	a_i64(&a, st->at_us);
	a_blob(&a, st->reason_len > 0 ? st->reason : NULL, st->reason_len);
	int rc = pg_do(c,
		       "INSERT INTO dsr_step (request_id, seq, from_state, to_state, actor, at_us, reason) "
		       "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
		       &a, &n, "cannot record the request's step");
	if (rc == 0 && n != 1)
		return err_set(ERR_CONFLICT, "cannot record the request's step: it exists");
	return rc;
}

static int pg_request_steps_each(struct store_conn *c, const char *request_id, store_request_step_cb cb,
				 void *ctx)
{
	struct pg_args a = { 0 };
	PGresult *r = NULL;
	a_text(&a, request_id);
	int rc = pg_run(c,
			"SELECT request_id, seq, from_state, to_state, actor, at_us, reason FROM dsr_step "
			"WHERE request_id = $1 ORDER BY seq",
			&a, &r, "cannot read the request's steps");
	for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
		struct store_request_step st;
		bool bad = false;
		memset(&st, 0, sizeof st);
		r_text(r, i, 0, st.request_id, sizeof st.request_id, &bad);
		st.seq = r_i64(r, i, 1);
		r_text(r, i, 2, st.from_state, sizeof st.from_state, &bad);
		r_text(r, i, 3, st.to_state, sizeof st.to_state, &bad);
		r_text(r, i, 4, st.actor, sizeof st.actor, &bad);
		st.at_us = r_i64(r, i, 5);
		if (!r_null(r, i, 6) && (size_t)PQgetlength(r, i, 6) > sizeof st.reason)
			bad = true;
		else
			st.reason_len = r_blob(r, i, 6, st.reason, sizeof st.reason);
		rc = bad ? too_long("cannot read the request's steps") : cb(ctx, &st);
	}
	PQclear(r);
	return rc;
}

static int pg_requests_due_counts(struct store_conn *c, int64_t today_day, int64_t soon_day, int64_t *overdue,
				  int64_t *due_soon)
{
	struct pg_args a = { 0 };
	PGresult *r = NULL;
	a_i64(&a, today_day);
	a_i64(&a, soon_day);
	int rc = pg_run(c,
			"SELECT count(*) FILTER (WHERE due_day < $1::bigint), "
			"count(*) FILTER (WHERE due_day >= $1::bigint AND due_day <= $2::bigint) "
			"FROM dsr_request WHERE state NOT IN ('completed', 'denied')",
			&a, &r, "cannot count the open requests");
	if (rc == 0) {
		*overdue = r_i64(r, 0, 0);
		*due_soon = r_i64(r, 0, 1);
	}
	PQclear(r);
	return rc;
}

/* ---- outbound webhooks ---------------------------------------------------------- */

#define WEBHOOK_COLS                                                                                         \
	"id, url, events, description, role, key_version, wrapped_key, secret, created_us, "                 \
	"coalesce(disabled_us, 0), disabled_reason"
/* Whole event names only: "consent" does not subscribe to "consent.changed". */
#define WEBHOOK_SUBSCRIBES(t) "strpos(',' || events || ',', ',' || " t " || ',') > 0"

static int pg_webhook_insert(struct store_conn *c, const struct store_webhook *w)
{
	struct pg_args a = { 0 };
	int64_t n = 0;
	a_text(&a, w->id);
	a_text(&a, w->url);
	a_text(&a, w->events);
	a_text(&a, w->description);
	a_text(&a, w->role);
	a_i64(&a, w->key_version);
	a_blob(&a, w->wrapped_key, w->wrapped_len);
	a_blob(&a, w->secret, w->secret_len);
	a_i64(&a, w->created_us);
	int rc = pg_do(c,
		       "INSERT INTO webhook_endpoint (id, url, events, description, role, key_version, "
		       "wrapped_key, secret, created_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
		       "ON CONFLICT DO NOTHING",
		       &a, &n, "cannot store the webhook endpoint");
	if (rc == 0 && n != 1)
		return err_set(ERR_CONFLICT, "a webhook endpoint with this id exists");
	return rc;
}

static int read_webhook(const PGresult *r, int i, struct store_webhook *w)
{
	bool bad = false;
	memset(w, 0, sizeof *w);
	r_text(r, i, 0, w->id, sizeof w->id, &bad);
	r_text(r, i, 1, w->url, sizeof w->url, &bad);
	r_text(r, i, 2, w->events, sizeof w->events, &bad);
	r_text(r, i, 3, w->description, sizeof w->description, &bad);
	r_text(r, i, 4, w->role, sizeof w->role, &bad);
	w->key_version = (int)r_i64(r, i, 5);
	w->wrapped_len = r_blob(r, i, 6, w->wrapped_key, sizeof w->wrapped_key);
	w->secret_len = r_blob(r, i, 7, w->secret, sizeof w->secret);
	w->created_us = r_i64(r, i, 8);
	w->disabled_us = r_i64(r, i, 9);
	r_text(r, i, 10, w->disabled_reason, sizeof w->disabled_reason, &bad);
	return bad ? too_long("cannot read the webhook endpoint") : 0;
}

static int pg_webhook_get(struct store_conn *c, const char *id, struct store_webhook *out)
{
	struct pg_args a = { 0 };
	PGresult *r = NULL;
	a_text(&a, id);
	int rc = pg_run(c,
			"SELECT " WEBHOOK_COLS " FROM webhook_endpoint WHERE deleted_us IS NULL AND id = $1",
			&a, &r, "cannot read the webhook endpoint");
	if (rc == 0)
		rc = PQntuples(r) == 1 ? read_webhook(r, 0, out)
				       : err_set(ERR_NOTFOUND, "no such webhook endpoint");
	PQclear(r);
	return rc;
}

static int pg_webhooks_each(struct store_conn *c, store_webhook_cb cb, void *ctx, int64_t *n)
{
	struct store_webhook w;
	PGresult *r = NULL;
	int64_t count = 0;
	int rc = pg_run(c,
			"SELECT " WEBHOOK_COLS " FROM webhook_endpoint WHERE deleted_us IS NULL "
			"ORDER BY created_us, id",
			NULL, &r, "cannot list the webhook endpoints");
	for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
		count++;
		if (cb != NULL && (rc = read_webhook(r, i, &w)) == 0)
			rc = cb(ctx, &w);
	}
	PQclear(r);
	/* The copy held a sealed secret and its wrapped key. */
	memset(&w, 0, sizeof w);
	if (n != NULL)
		*n = count;
	return rc;
}

/* Marks the endpoint (not deleted) deleted or disabled, then fails its
 * pending deliveries with the reason; ERR_NOTFOUND when there is no such
 * endpoint. */
static int webhook_stop(struct store_conn *c, const char *sql, const char *id, int64_t when_us, bool disable,
			const char *reason, const char *what)
{
	struct pg_args a = { 0 }, b = { 0 };
	int64_t n = 0;
	a_text(&a, id);
	a_i64(&a, when_us);
	if (disable)
		a_text(&a, reason);
	int rc = pg_do(c, sql, &a, &n, what);
	if (rc != 0)
		return rc;
	if (n == 0)
		return err_set(ERR_NOTFOUND, "no such webhook endpoint");
	a_text(&b, id);
	a_text(&b, disable ? reason : "endpoint deleted");
	return pg_do(c,
		     "UPDATE webhook_delivery SET state = 'failed', last_error = $2 "
		     "WHERE endpoint_id = $1 AND state = 'pending'",
		     &b, NULL, "cannot fail the pending deliveries");
}

static int pg_webhook_delete(struct store_conn *c, const char *id, int64_t when_us)
{
	return webhook_stop(
		c, "UPDATE webhook_endpoint SET deleted_us = $2 WHERE id = $1 AND deleted_us IS NULL", id,
		when_us, false, NULL, "cannot delete the webhook endpoint");
}

static int pg_webhook_disable(struct store_conn *c, const char *id, int64_t when_us, const char *reason)
{
	return webhook_stop(c,
			    "UPDATE webhook_endpoint SET disabled_us = $2, disabled_reason = $3 "
			    "WHERE id = $1 AND deleted_us IS NULL",
			    id, when_us, true, reason, "cannot disable the webhook endpoint");
}

static int pg_webhook_subscribers(struct store_conn *c, const char *type, int64_t *n)
{
	struct pg_args a = { 0 };
	a_text(&a, type);
	return pg_count(c,
			"SELECT count(*) FROM webhook_endpoint WHERE deleted_us IS NULL AND "
			"disabled_us IS NULL AND " WEBHOOK_SUBSCRIBES("$1"),
			&a, n, "cannot count the webhook subscribers");
}

static int pg_outbox_next_version(struct store_conn *c, const char *contact_id, int64_t *version)
{
	struct pg_args a = { 0 };
	a_text(&a, contact_id);
	return pg_count(c, "SELECT coalesce(max(version), 0) + 1 FROM outbox_event WHERE contact_id = $1", &a,
			version, "cannot read the contact's event version");
}

static int pg_outbox_forget_personal(struct store_conn *c, const char *contact_id)
{
	struct pg_args a = { 0 };
	a_text(&a, contact_id);
	return pg_do(c,
		     "UPDATE outbox_event SET personal = NULL WHERE contact_id = $1 AND personal IS NOT NULL",
		     &a, NULL, "cannot drop the outbox's personal values");
}

static int pg_outbox_add(struct store_conn *c, const char *type, const char *contact_id, int64_t version,
			 const char *body, const uint8_t *personal, size_t personal_len, int64_t created_us,
			 int64_t *queued)
{
	struct pg_args a = { 0 }, b = { 0 };
	PGresult *r = NULL;
	a_text(&a, type);
	a_text(&a, contact_id);
	a_i64(&a, version);
	a_text(&a, body);
	a_i64(&a, created_us);
	a_blob(&a, personal_len > 0 ? personal : NULL, personal_len);
	int rc = pg_run(c,
			"INSERT INTO outbox_event (type, contact_id, version, body, personal, created_us) "
			"VALUES ($1, $2, $3, $4, $6, $5) RETURNING seq",
			&a, &r, "cannot append to the outbox");
	if (rc != 0)
		return rc;
	int64_t seq = PQntuples(r) == 1 ? r_i64(r, 0, 0) : 0;
	PQclear(r);
	if (seq == 0)
		return err_set(ERR_IO, "cannot append to the outbox: no sequence number");
	/* The delivery id is the webhook-id header, the same on every attempt:
	 * "msg_" and 24 hex digits, as on SQLite, from the server's random
	 * UUID (gen_random_uuid is built in, no extension needed). */
	int64_t n = 0;
	a_i64(&b, seq);
	a_text(&b, type);
	a_i64(&b, created_us);
	rc = pg_do(c,
		   "INSERT INTO webhook_delivery (id, endpoint_id, event_seq, state, attempts, created_us, "
		   "next_us) SELECT 'msg_' || substr(md5(gen_random_uuid()::text), 1, 24), id, $1, "
		   "'pending', 0, $3, $3 FROM webhook_endpoint WHERE deleted_us IS NULL AND "
		   "disabled_us IS NULL AND " WEBHOOK_SUBSCRIBES("$2::text"),
		   &b, &n, "cannot queue the webhook deliveries");
	if (rc == 0 && queued != NULL)
		*queued = n;
	return rc;
}

#define DELIVERY_COLS                                                                                        \
	"d.id, d.endpoint_id, e.type, d.state, d.attempts, d.created_us, d.next_us, "                        \
	"coalesce(d.last_us, 0), d.last_status, d.last_error, e.body, e.contact_id"

/* d->body and d->personal borrow the result, so they live for the callback. */
static int each_delivery(PGresult *r, bool due, store_delivery_cb cb, void *ctx)
{
	struct store_delivery d;
	int rc = 0;
	for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
		bool bad = false;
		memset(&d, 0, sizeof d);
		r_text(r, i, 0, d.id, sizeof d.id, &bad);
		r_text(r, i, 1, d.endpoint_id, sizeof d.endpoint_id, &bad);
		r_text(r, i, 2, d.type, sizeof d.type, &bad);
		r_text(r, i, 3, d.state, sizeof d.state, &bad);
		d.attempts = r_i64(r, i, 4);
		d.created_us = r_i64(r, i, 5);
		d.next_us = r_i64(r, i, 6);
		d.last_us = r_i64(r, i, 7);
		d.last_status = r_i64(r, i, 8);
		r_text(r, i, 9, d.last_error, sizeof d.last_error, &bad);
		d.body = PQgetvalue(r, i, 10);
		r_text(r, i, 11, d.contact_id, sizeof d.contact_id, &bad);
		if (due && !r_null(r, i, 12)) {
			d.personal = (const uint8_t *)PQgetvalue(r, i, 12);
			d.personal_len = (size_t)PQgetlength(r, i, 12);
		}
		rc = bad ? too_long("cannot list the deliveries") : cb(ctx, &d);
	}
	return rc;
}

static int pg_deliveries_each(struct store_conn *c, const char *endpoint_id, int limit, store_delivery_cb cb,
			      void *ctx)
{
	struct pg_args a = { 0 };
	PGresult *r = NULL;
	a_text(&a, endpoint_id);
	a_i64(&a, limit);
	int rc = pg_run(c,
			"SELECT " DELIVERY_COLS " FROM webhook_delivery d JOIN outbox_event e "
			"ON e.seq = d.event_seq WHERE d.endpoint_id = $1 ORDER BY d.event_seq DESC LIMIT $2",
			&a, &r, "cannot list the deliveries");
	if (rc == 0)
		rc = each_delivery(r, false, cb, ctx);
	PQclear(r);
	return rc;
}

static int pg_deliveries_due(struct store_conn *c, int64_t now_us, int limit, store_delivery_cb cb, void *ctx)
{
	struct pg_args a = { 0 };
	PGresult *r = NULL;
	a_i64(&a, now_us);
	a_i64(&a, limit);
	int rc = pg_run(
		c,
		"SELECT " DELIVERY_COLS ", e.personal FROM webhook_delivery d "
		"JOIN outbox_event e ON e.seq = d.event_seq JOIN webhook_endpoint w ON w.id = d.endpoint_id "
		"WHERE d.state = 'pending' AND d.next_us <= $1 AND w.deleted_us IS NULL AND "
		"w.disabled_us IS NULL ORDER BY row_number() OVER (PARTITION BY d.endpoint_id ORDER BY "
		"d.event_seq), d.event_seq LIMIT $2",
		&a, &r, "cannot list the deliveries");
	if (rc == 0)
		rc = each_delivery(r, true, cb, ctx);
	PQclear(r);
	return rc;
}

static int pg_webhook_claim(struct store_conn *c, const char *endpoint_id, const char *owner, int64_t now_us,
			    int64_t until_us)
{
	struct pg_args a = { 0 };
	int64_t n = 0;
	a_text(&a, endpoint_id);
	a_text(&a, owner);
	a_i64(&a, now_us);
	a_i64(&a, until_us);
	/* A concurrent claim holds the row lock; this UPDATE waits for it and
	 * then tests the committed claim, so two instances never both win. */
	int rc = pg_do(
		c,
		"UPDATE webhook_endpoint SET claimed_by = $2, claim_until = $4::bigint "
		"WHERE id = $1 AND deleted_us IS NULL AND (claim_until < $3::bigint OR claimed_by = $2)",
		&a, &n, "cannot claim the webhook endpoint");
	if (rc != 0 || n == 1)
		return rc;
	struct pg_args b = { 0 };
	a_text(&b, endpoint_id);
	if ((rc = pg_count(c, "SELECT count(*) FROM webhook_endpoint WHERE id = $1 AND deleted_us IS NULL",
			   &b, &n, "cannot read the webhook endpoint")) != 0)
		return rc;
	return n == 0 ? err_set(ERR_NOTFOUND, "no such webhook endpoint")
		      : err_set(ERR_CONFLICT, "another instance is delivering to this endpoint");
}

static int pg_webhook_release(struct store_conn *c, const char *endpoint_id, const char *owner)
{
	struct pg_args a = { 0 };
	a_text(&a, endpoint_id);
	a_text(&a, owner);
	return pg_do(c,
		     "UPDATE webhook_endpoint SET claimed_by = '', claim_until = 0 "
		     "WHERE id = $1 AND claimed_by = $2",
		     &a, NULL, "cannot release the webhook endpoint");
}

static int pg_delivery_record(struct store_conn *c, const struct store_delivery *d)
{
	struct pg_args a = { 0 };
	a_text(&a, d->id);
	a_text(&a, d->state);
	a_i64(&a, d->attempts);
	a_i64(&a, d->next_us);
	a_i64(&a, d->last_us);
	a_i64(&a, d->last_status);
	a_text(&a, d->last_error);
	return pg_do(c,
		     "UPDATE webhook_delivery SET state = $2, attempts = $3, next_us = $4, last_us = $5, "
		     "last_status = $6, last_error = $7 WHERE id = $1",
		     &a, NULL, "cannot record the delivery attempt");
}

static int pg_delivery_retry(struct store_conn *c, const char *endpoint_id, const char *id, int64_t now_us)
{
	struct pg_args a = { 0 };
	int64_t n = 0;
	a_text(&a, endpoint_id);
	a_text(&a, id);
	a_i64(&a, now_us);
	int rc = pg_do(c,
		       "UPDATE webhook_delivery SET state = 'pending', next_us = $3 "
		       "WHERE endpoint_id = $1 AND id = $2",
		       &a, &n, "cannot queue the delivery again");
	if (rc == 0 && n == 0)
		rc = err_set(ERR_NOTFOUND, "this endpoint has no such delivery");
	return rc;
}

static int pg_outbox_stats(struct store_conn *c, int64_t *pending, int64_t *oldest_us)
{
	PGresult *r = NULL;
	int rc = pg_run(c,
			"SELECT count(*), coalesce(min(created_us), 0) FROM webhook_delivery "
			"WHERE state = 'pending'",
			NULL, &r, "cannot count the pending deliveries");
	if (rc == 0 && PQntuples(r) == 1) {
		*pending = r_i64(r, 0, 0);
		*oldest_us = r_i64(r, 0, 1);
	} else if (rc == 0) {
		rc = err_set(ERR_IO, "cannot count the pending deliveries");
	}
	PQclear(r);
	return rc;
}

/* ---- batched writes (backend.h guarantee 9) -------------------------------
 *
 * A batch goes to the server as one statement whose parameters are arrays,
 * one per column, taken apart by unnest(...) WITH ORDINALITY, so the row
 * order survives and decides what a loop of single-row calls would have
 * decided (which duplicate is the first, which current state is the last).
 * The arrays are sent in PostgreSQL's binary array format: the values,
 * sealed bytes and hashes included, travel byte for byte with no quoting to
 * get wrong. */

#define PG_OID_BOOL 16
#define PG_OID_BYTEA 17
#define PG_OID_INT8 20
#define PG_OID_TEXT 25
#define PG_BULK_ROWS 4096 /* rows per statement; an import batch is one */

struct pg_arr {
	uint8_t *p;
	size_t len, cap;
	int n;
	bool nulls, oom;
};

static void arr_put(struct pg_arr *a, const void *b, size_t n)
{
	if (a->oom)
		return;
	if (a->len + n > a->cap) {
		size_t cap = a->cap ? a->cap : 4096;
		while (cap < a->len + n)
			cap *= 2;
		uint8_t *p = realloc(a->p, cap);
		if (p == NULL) {
			a->oom = true;
			return;
		}
		a->p = p;
		a->cap = cap;
	}
	memcpy(a->p + a->len, b, n);
	a->len += n;
}

static void arr_u32(struct pg_arr *a, uint32_t x)
{
	uint8_t b[4] = { (uint8_t)(x >> 24), (uint8_t)(x >> 16), (uint8_t)(x >> 8), (uint8_t)x };
	arr_put(a, b, 4);
}

/* The header of a one-dimensional array of element type oid; the count and
 * the null flag are filled in by arr_done. */
static void arr_begin(struct pg_arr *a, uint32_t oid)
{
	memset(a, 0, sizeof *a);
	arr_u32(a, 1);	 /* dimensions */
	arr_u32(a, 0);	 /* has nulls: arr_done */
	arr_u32(a, oid); /* element type */
	arr_u32(a, 0);	 /* length: arr_done */
	arr_u32(a, 1);	 /* lower bound */
}

static void arr_blob(struct pg_arr *a, const void *b, size_t n)
{
	a->n++;
	if (b == NULL) {
		a->nulls = true;
		arr_u32(a, UINT32_MAX); /* -1: NULL */
		return;
	}
	arr_u32(a, (uint32_t)n);
	arr_put(a, b, n);
}

static void arr_text(struct pg_arr *a, const char *s)
{
	arr_blob(a, s ? s : "", s ? strlen(s) : 0);
}

static void arr_i64(struct pg_arr *a, int64_t x)
{
	uint8_t b[8];
	for (int i = 7; i >= 0; i--) {
		b[i] = (uint8_t)((uint64_t)x & 0xff);
		x = (int64_t)((uint64_t)x >> 8);
	}
	arr_blob(a, b, 8);
}

static void arr_bool(struct pg_arr *a, bool x)
{
	uint8_t b = x ? 1 : 0;
	arr_blob(a, &b, 1);
}

/* Finishes the arrays and adds them to args as binary parameters. */
static int arr_done(struct pg_arr *arrs, int k, struct pg_args *args)
{
	for (int i = 0; i < k; i++) {
		struct pg_arr *a = &arrs[i];
		if (a->oom || a->len > INT32_MAX)
			return err_set(ERR_NOMEM, "out of memory for a batch");
		a->p[7] = a->nulls ? 1 : 0;
		a->p[12] = (uint8_t)(a->n >> 24);
		a->p[13] = (uint8_t)(a->n >> 16);
		a->p[14] = (uint8_t)(a->n >> 8);
		a->p[15] = (uint8_t)a->n;
		a_blob(args, a->p, a->len);
	}
	return 0;
}

static void arr_free(struct pg_arr *arrs, int k)
{
	for (int i = 0; i < k; i++)
		free(arrs[i].p);
}

static int cmp_id(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* One statement per PG_BULK_ROWS contacts; ON CONFLICT DO NOTHING answers a
 * duplicate without aborting the writer's transaction (an earlier row of the
 * same statement counts, the rows go in in their order), and RETURNING
 * names the rows that went in: every other row was a duplicate. */
static int pg_contacts_insert_chunk(struct store_conn *c, struct store_contact_new *rows, size_t n)
{
	enum { K = 12 };
	static const uint32_t oids[K] = { PG_OID_TEXT,	PG_OID_INT8,  PG_OID_INT8,  PG_OID_TEXT,
					  PG_OID_TEXT,	PG_OID_TEXT,  PG_OID_INT8,  PG_OID_BYTEA,
					  PG_OID_BYTEA, PG_OID_BYTEA, PG_OID_BYTEA, PG_OID_BYTEA };
	struct pg_arr arrs[K];
	struct pg_args a = { 0 };
	PGresult *r = NULL;
	char **in = NULL;
	int rc;
	for (int i = 0; i < K; i++)
		arr_begin(&arrs[i], oids[i]);
	for (size_t i = 0; i < n; i++) {
		const struct store_contact *ct = rows[i].ct;
		arr_text(&arrs[0], ct->id);
		arr_i64(&arrs[1], ct->created_us);
		arr_i64(&arrs[2], ct->updated_us);
		arr_text(&arrs[3], ct->collected_for);
		arr_text(&arrs[4], ct->source);
		arr_text(&arrs[5], ct->owner);
		arr_i64(&arrs[6], ct->key_version);
		arr_blob(&arrs[7], ct->wrapped_key, ct->wrapped_len);
		arr_blob(&arrs[8], rows[i].email_bidx, 32);
		arr_blob(&arrs[9], rows[i].phone_bidx, 32);
		arr_blob(&arrs[10], ct->has_email_shash ? ct->email_shash : NULL, 32);
		arr_blob(&arrs[11], ct->has_phone_shash ? ct->phone_shash : NULL, 32);
		rows[i].duplicate = true; /* until RETURNING names it */
	}
	if ((rc = arr_done(arrs, K, &a)) != 0)
		goto out;
	rc = pg_run(c,
		    "INSERT INTO contact (id, created_us, updated_us, status, collected_for, source, "
		    "owner, key_version, wrapped_key, email_bidx, phone_bidx, email_shash, phone_shash) "
		    "SELECT u.id, u.cu, u.uu, 'active', u.cf, u.src, u.own, u.kv, u.wk, u.eb, u.pb, u.es, "
		    "u.ps FROM unnest($1::text[], $2::int8[], $3::int8[], $4::text[], $5::text[], "
		    "$6::text[], $7::int8[], $8::bytea[], $9::bytea[], $10::bytea[], $11::bytea[], "
		    "$12::bytea[]) WITH ORDINALITY AS u(id, cu, uu, cf, src, own, kv, wk, eb, pb, es, ps, "
		    "ord) ORDER BY u.ord ON CONFLICT DO NOTHING RETURNING id",
		    &a, &r, "cannot insert the contacts");
	if (rc != 0)
		goto out;
	int got = PQntuples(r);
	if ((size_t)got > n) {
		rc = err_set(ERR_IO, "cannot insert the contacts: %d rows back for %zu", got, n);
		goto out;
	}
	if ((in = calloc((size_t)got + 1, sizeof *in)) == NULL) {
		rc = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	for (int i = 0; i < got; i++)
		in[i] = PQgetvalue(r, i, 0); /* text in binary format: the bytes, NUL-terminated */
	qsort(in, (size_t)got, sizeof *in, cmp_id);
	size_t matched = 0;
	for (size_t i = 0; i < n; i++) {
		const char *id = rows[i].ct->id;
		if (bsearch(&id, in, (size_t)got, sizeof *in, cmp_id) != NULL) {
			rows[i].duplicate = false;
			matched++;
		}
	}
	if (matched != (size_t)got)
		rc = err_set(ERR_IO, "cannot insert the contacts: the ids back do not match");
out:
	free(in);
	PQclear(r);
	arr_free(arrs, K);
	return rc;
}

static int pg_contacts_insert_many(struct store_conn *c, struct store_contact_new *rows, size_t n)
{
	for (size_t done = 0; done < n; done += PG_BULK_ROWS) {
		size_t k = n - done < PG_BULK_ROWS ? n - done : PG_BULK_ROWS;
		int rc = pg_contacts_insert_chunk(c, rows + done, k);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* DISTINCT ON keeps the last row of a (contact, name): ON CONFLICT DO
 * UPDATE may not touch one row twice in a statement, and the last is what a
 * loop of store_field_put leaves. */
static int pg_fields_put_many(struct store_conn *c, const struct store_field_new *rows, size_t n)
{
	for (size_t done = 0; done < n; done += PG_BULK_ROWS) {
		size_t k = n - done < PG_BULK_ROWS ? n - done : PG_BULK_ROWS;
		struct pg_arr arrs[3];
		struct pg_args a = { 0 };
		arr_begin(&arrs[0], PG_OID_TEXT);
		arr_begin(&arrs[1], PG_OID_TEXT);
		arr_begin(&arrs[2], PG_OID_BYTEA);
		for (size_t i = done; i < done + k; i++) {
			arr_text(&arrs[0], rows[i].contact_id);
			arr_text(&arrs[1], rows[i].name);
			arr_blob(&arrs[2], rows[i].sealed ? rows[i].sealed : (const uint8_t *)"",
				 rows[i].len);
		}
		int rc = arr_done(arrs, 3, &a);
		if (rc == 0)
			rc = pg_do(c,
				   "INSERT INTO contact_field (contact_id, name, value) "
				   "SELECT DISTINCT ON (u.cid, u.name) u.cid, u.name, u.v "
				   "FROM unnest($1::text[], $2::text[], $3::bytea[]) WITH ORDINALITY "
				   "AS u(cid, name, v, ord) ORDER BY u.cid, u.name, u.ord DESC "
				   "ON CONFLICT (contact_id, name) DO UPDATE SET value = excluded.value",
				   &a, NULL, "cannot store the fields");
		arr_free(arrs, 3);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* The current rows (the last of each contact, purpose and channel, as in
 * pg_fields_put_many) replace the state, and every row joins the history in
 * row order; one statement for both. */
static int pg_consents_put_many(struct store_conn *c, const struct store_consent_new *rows, size_t n)
{
	enum { K = 16 };
	for (size_t done = 0; done < n; done += PG_BULK_ROWS) {
		size_t k = n - done < PG_BULK_ROWS ? n - done : PG_BULK_ROWS;
		struct pg_arr arrs[K];
		struct pg_args a = { 0 };
		for (int i = 0; i < K; i++)
			arr_begin(&arrs[i], i < 9     ? PG_OID_TEXT
					    : i < 14  ? PG_OID_INT8
					    : i == 14 ? PG_OID_BYTEA
						      : PG_OID_BOOL);
		for (size_t i = done; i < done + k; i++) {
			const struct store_consent *cs = rows[i].cs;
			arr_text(&arrs[0], cs->contact_id);
			arr_text(&arrs[1], cs->purpose);
			arr_text(&arrs[2], cs->channel);
			arr_text(&arrs[3], cs->status);
			arr_text(&arrs[4], cs->legal_basis);
			arr_text(&arrs[5], cs->notice_version);
			arr_text(&arrs[6], cs->source);
			arr_text(&arrs[7], cs->method);
			arr_text(&arrs[8], cs->receipt_id);
			arr_i64(&arrs[9], cs->at_us);
			arr_i64(&arrs[10], cs->granted_us);
			arr_i64(&arrs[11], cs->expires_us);
			arr_i64(&arrs[12], cs->withdrawn_us);
			arr_i64(&arrs[13], cs->recorded_us);
			arr_blob(&arrs[14], cs->evidence, cs->evidence_len);
			arr_bool(&arrs[15], rows[i].current);
		}
		int rc = arr_done(arrs, K, &a);
		if (rc == 0)
			rc = pg_do(c,
				   "WITH u AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], "
				   "$4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], "
				   "$10::int8[], $11::int8[], $12::int8[], $13::int8[], $14::int8[], "
				   "$15::bytea[], $16::bool[]) WITH ORDINALITY AS u(" CONSENT_COLS
				   ", cur, ord)), "
				   "state AS (INSERT INTO consent (" CONSENT_COLS ") "
				   "SELECT DISTINCT ON (contact_id, purpose, channel) " CONSENT_COLS
				   " FROM u "
				   "WHERE cur ORDER BY contact_id, purpose, channel, ord DESC "
				   "ON CONFLICT (contact_id, purpose, channel) DO UPDATE SET "
				   "status = excluded.status, legal_basis = excluded.legal_basis, "
				   "notice_version = excluded.notice_version, source = excluded.source, "
				   "method = excluded.method, receipt_id = excluded.receipt_id, "
				   "at_us = excluded.at_us, granted_us = excluded.granted_us, "
				   "expires_us = excluded.expires_us, withdrawn_us = excluded.withdrawn_us, "
				   "recorded_us = excluded.recorded_us, evidence = excluded.evidence) "
				   "INSERT INTO consent_event (" CONSENT_COLS ") SELECT " CONSENT_COLS
				   " FROM u ORDER BY ord",
				   &a, NULL, "cannot record the consents");
		arr_free(arrs, K);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* `fresh` is the first entry of each (hash, scope, value, reason) that no
 * unlifted suppression covers yet: the ones a loop of pg_suppression_add
 * would add. The statement inserts them in entry order and answers their
 * positions; the CTE runs once however often it is read. */
static int pg_suppressions_add_many(struct store_conn *c, const struct store_suppression *sp, size_t n,
				    bool *added)
{
	enum { K = 8 };
	for (size_t done = 0; done < n; done += PG_BULK_ROWS) {
		size_t k = n - done < PG_BULK_ROWS ? n - done : PG_BULK_ROWS;
		struct pg_arr arrs[K];
		struct pg_args a = { 0 };
		PGresult *r = NULL;
		for (int i = 0; i < K; i++)
			arr_begin(&arrs[i], i == 0 ? PG_OID_BYTEA : i < 6 ? PG_OID_TEXT : PG_OID_INT8);
		for (size_t i = done; i < done + k; i++) {
			arr_blob(&arrs[0], sp[i].hash, 32);
			arr_text(&arrs[1], sp[i].kind);
			arr_text(&arrs[2], sp[i].scope);
			arr_text(&arrs[3], sp[i].scope_value);
			arr_text(&arrs[4], sp[i].reason);
			arr_text(&arrs[5], sp[i].source);
			arr_i64(&arrs[6], sp[i].created_us);
			arr_i64(&arrs[7], sp[i].recorded_us);
			added[i] = false;
		}
		int rc = arr_done(arrs, K, &a);
		if (rc == 0)
			rc = pg_run(
				c,
				"WITH u AS (SELECT * FROM unnest($1::bytea[], $2::text[], $3::text[], "
				"$4::text[], $5::text[], $6::text[], $7::int8[], $8::int8[]) WITH ORDINALITY "
				"AS u(hash, kind, scope, scope_value, reason, source, created_us, "
				"recorded_us, ord)), "
				"fresh AS MATERIALIZED (SELECT DISTINCT ON (hash, scope, scope_value, reason) * "
				"FROM u WHERE NOT EXISTS (SELECT 1 FROM suppression s WHERE s.hash = u.hash "
				"AND s.lifted_us IS NULL AND s.scope = u.scope AND "
				"s.scope_value = u.scope_value AND s.reason = u.reason) "
				"ORDER BY hash, scope, scope_value, reason, ord), "
				"ins AS (INSERT INTO suppression (hash, kind, scope, scope_value, reason, "
				"source, created_us, recorded_us) SELECT hash, kind, scope, scope_value, "
				"reason, source, created_us, recorded_us FROM fresh ORDER BY ord) "
				"SELECT ord FROM fresh",
				&a, &r, "cannot add the suppressions");
		for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
			int64_t ord = r_i64(r, i, 0);
			if (ord < 1 || (size_t)ord > k)
				rc = err_set(ERR_IO, "cannot add the suppressions: an entry out of range");
			else
				added[done + (size_t)ord - 1] = true;
		}
		PQclear(r);
		arr_free(arrs, K);
		if (rc != 0)
			return rc;
	}
	return 0;
}

const struct store_backend store_pg_backend = {
	.name = "postgresql",
	.accepts = pg_accepts,
	.open = pg_open,
	.close = pg_close,
	.schema_version = pg_schema_version,
	.conn_get = pg_conn_get,
	.conn_put = pg_conn_put,
	.conn_bulk_mode = pg_conn_bulk_mode,
	.writer_open = pg_writer_open,
	.conn_free = pg_conn_free,
	.wal_truncate = pg_wal_truncate,
	.begin = pg_begin,
	.commit = pg_commit,
	.rollback = pg_rollback,
	.savepoint = pg_savepoint,
	.release = pg_release,
	.rollback_to = pg_rollback_to,
	.fault_audit = pg_fault_audit,
	.contact_insert = pg_contact_insert,
	.contacts_insert_many = pg_contacts_insert_many,
	.contact_get = pg_contact_get,
	.contact_update = pg_contact_update,
	.contact_set_index = pg_contact_set_index,
	.contact_find_email = pg_contact_find_email,
	.contact_erase = pg_contact_erase,
	.contact_count = pg_contact_count,
	.field_put = pg_field_put,
	.fields_put_many = pg_fields_put_many,
	.field_delete = pg_field_delete,
	.fields_each = pg_fields_each,
	.contacts_rewrap = pg_contacts_rewrap,
	.key_versions_in_use = pg_key_versions_in_use,
	.key_check_get = pg_key_check_get,
	.key_check_add = pg_key_check_add,
	.set_pool_size = pg_set_pool_size,
	.consent_put = pg_consent_put,
	.consents_put_many = pg_consents_put_many,
	.consent_get = pg_consent_get,
	.consents_each = pg_consents_each,
	.consent_history_each = pg_consent_history_each,
	.consent_history_count = pg_consent_history_count,
	.suppression_match = pg_suppression_match,
	.principal_insert = pg_principal_insert,
	.principal_find = pg_principal_find,
	.principal_revoke = pg_principal_revoke,
	.audit_head = pg_audit_head,
	.audit_append = pg_audit_append,
	.checkpoint_append = pg_checkpoint_append,
	.checkpoint_latest = pg_checkpoint_latest,
	.audit_cursor_open = pg_audit_cursor_open,
	.audit_cursor_next = pg_audit_cursor_next,
	.audit_cursor_close = pg_audit_cursor_close,
	.audit_hash_at = pg_audit_hash_at,
	.checkpoint_cursor_open = pg_checkpoint_cursor_open,
	.checkpoint_cursor_next = pg_checkpoint_cursor_next,
	.checkpoint_cursor_close = pg_checkpoint_cursor_close,
	.link_insert = pg_link_insert,
	.link_get = pg_link_get,
	.link_revoke = pg_link_revoke,
	.links_revoke_contact = pg_links_revoke_contact,
	.links_revoke_mintable = pg_links_revoke_mintable,
	.console_session_insert = pg_console_session_insert,
	.console_session_get = pg_console_session_get,
	.console_session_touch = pg_console_session_touch,
	.console_session_delete = pg_console_session_delete,
	.console_sessions_expire = pg_console_sessions_expire,
	.console_stats = pg_console_stats,
	.console_find_phone = pg_console_find_phone,
	.principal_role = pg_principal_role,
	.subject_suppressions_each = pg_subject_suppressions_each,
	.filter_by_email = pg_filter_by_email,
	.filter_by_email_many = pg_filter_by_email_many,
	.filter_by_id = pg_filter_by_id,
	.release_put = pg_release_put,
	.release_find = pg_release_find,
	.release_count = pg_release_count,
	.suppression_add = pg_suppression_add,
	.suppressions_add_many = pg_suppressions_add_many,
	.suppressions_active = pg_suppressions_active,
	.suppressions_lift = pg_suppressions_lift,
	.provider_event_once = pg_provider_event_once,
	.release_log_put = pg_release_log_put,
	.release_recent = pg_release_recent,
	.release_recent_many = pg_release_recent_many,
	.release_log_each = pg_release_log_each,
	.release_summary_put = pg_release_summary_put,
	.release_summary_get = pg_release_summary_get,
	.frequency_put = pg_frequency_put,
	.frequency_get = pg_frequency_get,
	.frequency_each = pg_frequency_each,
	.release_times_many = pg_release_times_many,
	.mail_put = pg_mail_put,
	.mail_pending = pg_mail_pending,
	.mail_mark = pg_mail_mark,
	.mail_claim = pg_mail_claim,
	.mail_release = pg_mail_release,
	.form_nonce_spend = pg_form_nonce_spend,
	.form_nonce_spent = pg_form_nonce_spent,
	.confirmation_put = pg_confirmation_put,
	.confirmation_get = pg_confirmation_get,
	.confirmation_done = pg_confirmation_done,
	.request_put = pg_request_put,
	.request_update = pg_request_update,
	.request_get = pg_request_get,
	.requests_each = pg_requests_each,
	.request_step_put = pg_request_step_put,
	.request_steps_each = pg_request_steps_each,
	.requests_due_counts = pg_requests_due_counts,
	.webhook_insert = pg_webhook_insert,
	.webhook_get = pg_webhook_get,
	.webhooks_each = pg_webhooks_each,
	.webhook_delete = pg_webhook_delete,
	.webhook_disable = pg_webhook_disable,
	.webhook_subscribers = pg_webhook_subscribers,
	.outbox_next_version = pg_outbox_next_version,
	.outbox_add = pg_outbox_add,
	.outbox_forget_personal = pg_outbox_forget_personal,
	.deliveries_each = pg_deliveries_each,
	.deliveries_due = pg_deliveries_due,
	.webhook_claim = pg_webhook_claim,
	.webhook_release = pg_webhook_release,
	.delivery_record = pg_delivery_record,
	.delivery_retry = pg_delivery_retry,
	.outbox_stats = pg_outbox_stats,
};
