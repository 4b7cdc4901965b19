/*
 * h_audit: the auditor's view of the audit trail.
 *
 *   GET /v1/audit                     entries matching filters, one page at a time
 *   GET /v1/audit/export              every matching entry, streamed as NDJSON or CSV
 *   GET /v1/audit/verify              the stored chain checked against signed checkpoints
 *   GET /v1/audit/checkpoints/latest  the newest signed checkpoint and the public key
 *
 * Invariants:
 * - Every route needs the policy action audit.read, and every answered
 *   request is itself audited (audit.read, audit.export, audit.verify) with
 *   its validated filters in the entry's detail. Replies leave only after
 *   that entry is durable (app_commit); a refused request is audited as a
 *   denial by app_require.
 * - Query strings are strict: unknown, repeated or empty keys and bad values
 *   are answered 400 problem+json before anything is read, and not audited
 *   (like every other validation error).
 * - Everything is bounded: a page holds at most AUDIT_PAGE_MAX entries; an
 *   export holds one entry and one rendered line in memory at a time, on its
 *   own reader connection, which the stream's free function gives back.
 * - Nothing here writes a value from the trail into the trail: the detail
 *   holds only the filters the auditor sent (ids, names, times, numbers).
 */
#include "service/app.h"

#include "audit/audit.h"
#include "audit/checkpoint.h"
#include "audit/verify.h"
#include "service/auditq.h"
#include "service/auditwatch.h"
#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/base/limits.h"
#include "service/domain/trail.h"
#include "service/router.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define AUDIT_PAGE_DEFAULT 100

/* Which query keys a route accepts. */
enum {
	Q_CONTACT = 1 << 0,
	Q_ACTOR = 1 << 1,
	Q_ACTION = 1 << 2,
	Q_PURPOSE = 1 << 3,
	Q_DECISION = 1 << 4,
	Q_SINCE = 1 << 5,
	Q_UNTIL = 1 << 6,
	Q_AFTER = 1 << 7,
	Q_LIMIT = 1 << 8,
	Q_FORMAT = 1 << 9,
	Q_FILTERS = Q_CONTACT | Q_ACTOR | Q_ACTION | Q_PURPOSE | Q_DECISION | Q_SINCE | Q_UNTIL,
};

static const struct {
	const char *name;
	unsigned bit;
} query_keys[] = {
	{ "contact", Q_CONTACT },   { "actor", Q_ACTOR },   { "action", Q_ACTION }, { "purpose", Q_PURPOSE },
	{ "decision", Q_DECISION }, { "since", Q_SINCE },   { "until", Q_UNTIL },   { "after", Q_AFTER },
	{ "limit", Q_LIMIT },	    { "format", Q_FORMAT },
};

/* The validated query of one request. Strings are copies, bounded by the
 * audit format's own limits, so they can go into the detail as they are. */
struct audit_query {
	unsigned allowed, seen;
	char contact[AUDIT_RECORD_ID_MAX + 1];
	char actor[AUDIT_ACTOR_MAX + 1];
	char action[AUDIT_NAME_MAX + 1];
	char purpose[AUDIT_NAME_MAX + 1];
	char decision[AUDIT_DECISION_MAX + 1];
	char since[AUDIT_TIME_BYTES], until[AUDIT_TIME_BYTES];
	int64_t since_us, until_us, after, limit;
	bool csv;
	bool empty; /* the range cannot match anything (until at or before 1970) */
};

static bool record_id_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > AUDIT_RECORD_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.' || c == ':'))
			return false;
	}
	return true;
}

/* Action names: dotted lower-case words, e.g. "contacts.read", "auth.failure". */
static bool action_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > AUDIT_NAME_MAX || s[0] < 'a' || s[0] > 'z')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.'))
			return false;
	}
	return true;
}

/* A non-negative decimal integer without sign, spaces or leading junk. */
static bool parse_count(const char *s, int64_t max, int64_t *out)
{
	size_t n = strlen(s);
	int64_t v = 0;
	if (n == 0 || n > 19)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		int d = s[i] - '0';
		if (v > (max - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

static int parse_when(const char *name, const char *v, int64_t *us, char out[AUDIT_TIME_BYTES])
{
	if (parse_time(v, us) != 0 || *us < 0 || *us > AUDIT_TIME_MAX_US)
		return err_set(ERR_INVALID,
			       "%s must be an RFC 3339 time after 1970, e.g. 2026-01-31T12:00:00Z", name);
	audit_time_format(*us, out);
	return 0;
}

static int query_one(void *arg, const char *name, const char *v)
{
	struct audit_query *q = arg;
	unsigned bit = 0;
	for (size_t i = 0; i < sizeof query_keys / sizeof query_keys[0]; i++)
		if (strcmp(query_keys[i].name, name) == 0)
			bit = query_keys[i].bit;
	if (bit == 0 || !(q->allowed & bit))
		return err_set(ERR_INVALID, "unknown query parameter \"%.64s\"", name);
	if (q->seen & bit)
		return err_set(ERR_INVALID, "query parameter %s is given more than once", name);
	q->seen |= bit;
	if (v == NULL || v[0] == '\0')
		return err_set(ERR_INVALID, "query parameter %s needs a value", name);
	if (strlen(v) > LIMIT_QUERY_VALUE_BYTES)
		return err_set(ERR_TOOBIG, "query parameter %s is longer than %d bytes", name,
			       LIMIT_QUERY_VALUE_BYTES);
	switch (bit) {
	case Q_CONTACT:
		if (!record_id_ok(v))
			return err_set(ERR_INVALID, "contact must be a record id");
		snprintf(q->contact, sizeof q->contact, "%s", v);
		return 0;
	case Q_ACTOR:
		if (!is_actor_name(v))
			return err_set(ERR_INVALID, "actor must be a principal name of 1 to %d characters",
				       LIMIT_PRINCIPAL_CHARS);
		snprintf(q->actor, sizeof q->actor, "%s", v);
		return 0;
	case Q_ACTION:
		if (!action_ok(v))
			return err_set(ERR_INVALID, "action must be an action name such as contacts.read");
		snprintf(q->action, sizeof q->action, "%s", v);
		return 0;
	case Q_PURPOSE:
		if (!is_name(v))
			return err_set(ERR_INVALID, "purpose must be a purpose name");
		snprintf(q->purpose, sizeof q->purpose, "%s", v);
		return 0;
	case Q_DECISION:
		if (strcmp(v, "allow") != 0 && strcmp(v, "deny") != 0 && strcmp(v, "error") != 0 &&
		    strcmp(v, "none") != 0)
			return err_set(ERR_INVALID, "decision must be allow, deny, error or none");
		snprintf(q->decision, sizeof q->decision, "%s", v);
		return 0;
	case Q_SINCE: return parse_when("since", v, &q->since_us, q->since);
	case Q_UNTIL: return parse_when("until", v, &q->until_us, q->until);
	case Q_AFTER:
		if (!parse_count(v, INT64_MAX, &q->after))
			return err_set(ERR_INVALID,
				       "after must be a cursor: the sequence number from \"next\"");
		return 0;
	case Q_LIMIT:
		if (!parse_count(v, AUDIT_PAGE_MAX, &q->limit) || q->limit == 0)
			return err_set(ERR_INVALID, "limit must be an integer from 1 to %d", AUDIT_PAGE_MAX);
		return 0;
	case Q_FORMAT:
		if (strcmp(v, "ndjson") != 0 && strcmp(v, "csv") != 0)
			return err_set(ERR_INVALID, "format must be ndjson or csv");
		q->csv = strcmp(v, "csv") == 0;
		return 0;
	default: return err_set(ERR_INTERNAL, "query key without a parser");
	}
}

/* Parses and validates the query; ERR_INVALID (or ERR_TOOBIG) with the
 * message set when it is not one this route takes. */
static int parse_query(struct reqctx *ctx, unsigned allowed, struct audit_query *q)
{
	memset(q, 0, sizeof *q);
	q->allowed = allowed;
	q->limit = AUDIT_PAGE_DEFAULT;
	int rc = http_query_each(ctx->http, query_one, q);
	if (rc == 0 && (q->seen & Q_SINCE) && (q->seen & Q_UNTIL) && q->since_us >= q->until_us)
		rc = err_set(ERR_INVALID, "since must be before until");
	if (rc != 0)
		return rc;
	/* The store reads until_us == 0 as "no bound"; an until at the epoch
	 * matches nothing instead. */
	q->empty = (q->seen & Q_UNTIL) && q->until_us == 0;
	return 0;
}

static void query_filter(const struct audit_query *q, struct store_audit_filter *f)
{
	memset(f, 0, sizeof *f);
	f->record_id = (q->seen & Q_CONTACT) ? q->contact : NULL;
	f->actor = (q->seen & Q_ACTOR) ? q->actor : NULL;
	f->action = (q->seen & Q_ACTION) ? q->action : NULL;
	f->purpose = (q->seen & Q_PURPOSE) ? q->purpose : NULL;
	f->decision = (q->seen & Q_DECISION) ? q->decision : NULL;
	f->since_us = q->since_us;
	f->until_us = q->until_us;
	f->after_seq = q->after;
}

/* The filters as a flat JSON object for the audit entry's detail. */
static json_t *query_detail(const struct audit_query *q, const char *resource)
{
	json_t *d = json_object();
	json_object_set_new(d, "resource", json_string(resource));
	if (q->seen & Q_CONTACT)
		json_object_set_new(d, "contact", json_string(q->contact));
	if (q->seen & Q_ACTOR)
		json_object_set_new(d, "actor", json_string(q->actor));
	if (q->seen & Q_ACTION)
		json_object_set_new(d, "action", json_string(q->action));
	if (q->seen & Q_PURPOSE)
		json_object_set_new(d, "purpose", json_string(q->purpose));
	if (q->seen & Q_DECISION)
		json_object_set_new(d, "decision", json_string(q->decision));
	if (q->seen & Q_SINCE)
		json_object_set_new(d, "since", json_string(q->since));
	if (q->seen & Q_UNTIL)
		json_object_set_new(d, "until", json_string(q->until));
	if (q->seen & Q_AFTER)
		json_object_set_new(d, "after", json_integer(q->after));
	if (q->allowed & Q_LIMIT)
		json_object_set_new(d, "limit", json_integer(q->limit));
	if (q->allowed & Q_FORMAT)
		json_object_set_new(d, "format", json_string(q->csv ? "csv" : "ndjson"));
	return d;
}

/* Audits an auditor's request; a contact filter also goes into record_id, so
 * "who looked at this contact's trail" is itself a contact query. */
static void audit_auditor(struct reqctx *ctx, const char *action, const struct audit_query *q, json_t *detail)
{
	audit_begin(ctx, action, (q->seen & Q_CONTACT) ? q->contact : NULL, NULL, NULL);
	audit_decide(ctx, true, "allowed");
	if (detail != NULL)
		audit_detail(ctx, detail);
}

/* A read failed before anything was revealed: audit the error; returns rc
 * for the dispatcher to answer. */
static int fail_audited(struct reqctx *ctx, int rc)
{
	snprintf(ctx->job.entry.decision, sizeof ctx->job.entry.decision, "error");
	snprintf(ctx->job.entry.reason, sizeof ctx->job.entry.reason, "error");
	return rc;
}

/* ---- GET /v1/audit ---- */

struct page {
	json_t *entries;
	int64_t n, limit, last_seq;
	bool more;
};

static int page_add(void *arg, const struct audit_entry *e)
{
	struct page *p = arg;
	json_t *o = NULL;
	if (p->n == p->limit) {
		p->more = true; /* the one extra row fetched to know */
		return 1;
	}
	int rc = audit_entry_to_json(e, &o);
	if (rc != 0)
		return rc;
	json_array_append_new(p->entries, o);
	p->n++;
	p->last_seq = e->seq;
	return 0;
}

static int h_audit_list(struct reqctx *ctx)
{
	struct audit_query q;
	struct store_audit_filter f;
	struct page p = { 0 };
	int rc;
	if ((rc = parse_query(ctx, Q_FILTERS | Q_AFTER | Q_LIMIT, &q)) != 0)
		return rc;
	if (!app_require(ctx, POLICY_ACT_AUDIT_READ, NULL, NULL))
		return 0;
	json_t *detail = query_detail(&q, "entries");
	audit_auditor(ctx, "audit.read", &q, NULL);
	query_filter(&q, &f);
	f.limit = q.limit + 1;
	p.entries = json_array();
	p.limit = q.limit;
	struct txn t = app_txn(ctx, ctx->rd);
	rc = q.empty ? 0 : trail_each(&t, &f, page_add, &p);
	if (rc < 0) {
		json_decref(p.entries);
		audit_detail(ctx, detail);
		return fail_audited(ctx, rc);
	}
	json_object_set_new(detail, "count", json_integer(p.n));
	audit_detail(ctx, detail);
	json_t *next = json_null();
	if (p.more) {
		char cursor[24];
		snprintf(cursor, sizeof cursor, "%lld", (long long)p.last_seq);
		json_decref(next);
		next = json_string(cursor);
	}
	reply_json(ctx, 200, json_pack("{s:o, s:o}", "entries", p.entries, "next", next));
	app_commit(ctx);
	return 0;
}

/* ---- GET /v1/audit/export ---- */

static int h_audit_export(struct reqctx *ctx)
{
	struct audit_query q;
	struct store_audit_filter f;
	struct trail_lines *x = NULL;
	int rc;
	if ((rc = parse_query(ctx, Q_FILTERS | Q_AFTER | Q_FORMAT, &q)) != 0)
		return rc;
	if (!app_require(ctx, POLICY_ACT_AUDIT_READ, NULL, NULL))
		return 0;
	audit_auditor(ctx, "audit.export", &q, query_detail(&q, "entries"));
	query_filter(&q, &f);
	if (q.empty)
		f.after_seq = INT64_MAX; /* nothing matches */
	if ((rc = trail_lines_open(ctx->app->store, &f, q.csv ? TRAIL_CSV : TRAIL_NDJSON, NULL, &x)) != 0)
		return fail_audited(ctx, rc);
	/* Prepared, not sent: app_commit delivers the stream after the entry is
	 * durable, or drops it (trail_lines_free) and answers 503. */
	ctx->status = 200;
	ctx->content_type = q.csv ? "text/csv; charset=utf-8" : "application/x-ndjson";
	ctx->stream_read = trail_lines_read;
	ctx->stream_ctx = x;
	ctx->stream_free = trail_lines_free;
	http_add_header(ctx->http, "Content-Disposition",
			q.csv ? "attachment; filename=\"audit.csv\""
			      : "attachment; filename=\"audit.ndjson\"");
	app_commit(ctx);
	return 0;
}

/* ---- GET /v1/audit/verify ---- */

/* The schedule's state: when the server last verified, and the first
 * failure it found (the alarm), so an auditor sees it even if the trail was
 * put back since. */
static json_t *schedule_json(struct app *app)
{
	struct auditwatch_status ws;
	char tbuf[AUDIT_TIME_BYTES];
	auditwatch_status(app->watch, &ws);
	json_t *o = json_pack("{s:b, s:b, s:I, s:I, s:I}", "ran", ws.ran, "intact", ws.intact, "runs",
			      (json_int_t)ws.runs, "failures", (json_int_t)ws.failures, "verified_size",
			      (json_int_t)ws.verified_size);
	if (o == NULL)
		return NULL;
	json_object_set_new(o, "last_at",
			    ws.ran && audit_time_format(ws.last_us, tbuf) == 0 ? json_string(tbuf)
									       : json_null());
	if (!ws.intact && audit_time_format(ws.first_failure_us, tbuf) == 0)
		json_object_set_new(o, "alarm",
				    json_pack("{s:s, s:s, s:s}", "at", tbuf, "fault",
					      audit_fault_name(ws.first_failure.fault), "reason",
					      ws.first_failure.reason));
	else
		json_object_set_new(o, "alarm", json_null());
	return o;
}

/* On the watch thread: the request is suspended; prepare the reply and the
 * entry, then commit (the reply leaves after its entry is durable). */
static void verify_done(void *arg, int rc, const struct audit_verify_result *res)
{
	struct reqctx *ctx = arg;
	char head[2 * AUDIT_HASH_BYTES + 1];
	if (rc != 0 || res == NULL) {
		audit_decide(ctx, false, "error");
		app_fail_deferred(ctx, rc != 0 ? rc : ERR_INTERNAL);
		return;
	}
	/* The request was allowed whatever the verdict; the verdict is in the
	 * reason and the detail, so a failed verification is on the record. */
	audit_decide(ctx, true, res->ok ? "intact" : audit_fault_name(res->fault));
	audit_detail(ctx, json_pack("{s:b, s:I, s:I}", "ok", res->ok, "entries", (json_int_t)res->entries,
				    "first_bad_seq", (json_int_t)res->first_bad_seq));
	audit_hex_encode(res->head, sizeof res->head, head);
	json_t *out = json_pack("{s:b, s:I, s:I, s:I, s:o, s:s, s:s, s:s, s:o*}", "ok", res->ok, "entries",
				(json_int_t)res->entries, "checkpoints", (json_int_t)res->checkpoints,
				"anchored", (json_int_t)res->anchored, "first_bad_seq",
				res->first_bad_seq > 0 ? json_integer(res->first_bad_seq) : json_null(),
				"fault", audit_fault_name(res->fault), "reason", res->reason, "head",
				res->entries > 0 ? head : "", "schedule", schedule_json(ctx->app));
	reply_json(ctx, 200, out);
	app_commit_deferred(ctx);
}

static int h_audit_verify(struct reqctx *ctx)
{
	struct audit_query q;
	int rc;
	if ((rc = parse_query(ctx, 0, &q)) != 0)
		return rc;
	if (!app_require(ctx, POLICY_ACT_AUDIT_READ, NULL, NULL))
		return 0;
	audit_begin(ctx, "audit.verify", NULL, NULL, NULL);
	/* A walk over the whole trail runs on the watch thread, never on an
	 * HTTP worker (auditwatch.h). */
	app_defer(ctx);
	rc = auditwatch_request(ctx->app->watch, verify_done, ctx);
	if (rc != 0)
		verify_done(ctx, rc, NULL);
	return 0;
}

/* ---- GET /v1/audit/checkpoints/latest ---- */

static int read_public_pem(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_set(ERR_IO, "cannot open the audit public key: %s", strerror(errno));
	ssize_t n = read(fd, buf, cap - 1);
	close(fd);
	if (n <= 0 || (size_t)n >= cap - 1)
		return err_set(ERR_IO, "the audit public key file is empty or too large");
	buf[n] = '\0';
	return 0;
}

static int h_audit_checkpoint_latest(struct reqctx *ctx)
{
	struct audit_query q;
	struct audit_checkpoint cp;
	struct audit_pubkey *key = NULL;
	char pem[AUDIT_PEM_MAX], cpjson[AUDIT_CHECKPOINT_JSON_MAX], hexid[2 * AUDIT_KEY_ID_BYTES + 1];
	char headhex[2 * AUDIT_HASH_BYTES + 1];
	uint8_t kid[AUDIT_KEY_ID_BYTES], headhash[AUDIT_HASH_BYTES];
	int64_t head_seq = 0;
	json_t *cpobj = NULL;
	int rc;
	if ((rc = parse_query(ctx, 0, &q)) != 0)
		return rc;
	if (!app_require(ctx, POLICY_ACT_AUDIT_READ, NULL, NULL))
		return 0;
	audit_auditor(ctx, "audit.read", &q, json_pack("{s:s}", "resource", "checkpoint"));
	struct txn t = app_txn(ctx, ctx->rd);
	if ((rc = read_public_pem(ctx->app->cfg.signing_pub, pem, sizeof pem)) != 0 ||
	    (rc = audit_pubkey_from_pem(&key, pem, strlen(pem))) != 0 ||
	    (rc = trail_head(&t, &head_seq, headhash)) != 0)
		goto fail;
	audit_pubkey_key_id(key, kid);
	audit_hex_encode(kid, sizeof kid, hexid);
	audit_hex_encode(headhash, sizeof headhash, headhex);
	rc = trail_checkpoint_latest(&t, &cp);
	if (rc == ERR_NOTFOUND) {
		audit_decide(ctx, false, "no_checkpoint");
		audit_pubkey_free(key);
		return app_reason(ctx, ERR_NOTFOUND, REASON_NO_CHECKPOINT);
	}
	if (rc != 0)
		goto fail;
	int n = audit_checkpoint_format_json(&cp, cpjson, sizeof cpjson);
	if (n < 0 || (cpobj = json_loadb(cpjson, (size_t)n, 0, NULL)) == NULL) {
		rc = n < 0 ? n : err_set(ERR_INTERNAL, "cannot render the checkpoint");
		goto fail;
	}
	bool valid = audit_checkpoint_verify(key, &cp) == 0;
	reply_json(ctx, 200,
		   json_pack("{s:o, s:b, s:s, s:s, s:s, s:{s:I, s:s}}", "checkpoint", cpobj,
			     "signature_valid", valid, "algorithm", "Ed25519", "key_id", hexid, "public_key",
			     pem, "head", "seq", (json_int_t)head_seq, "hash", head_seq > 0 ? headhex : ""));
	audit_pubkey_free(key);
	app_commit(ctx);
	return 0;
fail:
	audit_pubkey_free(key);
	return fail_audited(ctx, rc);
}

const struct route audit_routes[] = {
	{ "GET", "/v1/audit", h_audit_list, NULL, false, 0, "audit.read" },
	{ "GET", "/v1/audit/export", h_audit_export, NULL, false, 0, "audit.export" },
	{ "GET", "/v1/audit/verify", h_audit_verify, NULL, false, 0, "audit.verify" },
	{ "GET", "/v1/audit/checkpoints/latest", h_audit_checkpoint_latest, NULL, false, 0, "audit.read" },
	{ 0 },
};
