/*
 * h_suppressions: the suppression list. POST adds one suppression (JSON) or
 * imports a historical opt-out list (CSV or NDJSON, streamed, keeping each
 * entry's original created_at); GET looks up the active suppressions of one
 * address; DELETE lifts them (admin only, audited; lifting sets lifted_us
 * and lifted_by and never deletes a row, and erasure suppressions are never
 * lifted: an erased person stays suppressed).
 *
 * Addresses are normalised and stored only as keyed hashes
 * (FC_HASH_SUPPRESSION), the same hash erasure writes, so a list entry
 * matches the contact, the single check and the filter alike. Replies and
 * audit entries never echo the address: the audit detail names the first
 * 16 hex digits of the keyed hash instead.
 *
 * A bulk import is read, checked and hashed while it arrives, and spooled
 * (encrypted, service/domain/spool.h); nothing is written before the upload
 * has ended whole, so a list that turns out malformed changes nothing.
 * Then the request is deferred and the spool goes to the single writer in
 * batches of SUPP_BATCH entries (one job and one audit entry per batch,
 * "suppressions.import", with counts), each submitted from the commit
 * thread when the one before it is durable: no HTTP worker waits for a
 * commit. The request's own entry ("suppressions.write") carries the
 * totals, and the reply leaves after it is durable. A batch that cannot be
 * written ends the import; the batches before it stay (each was audited).
 *
 *   upload:  line -> parse, hash -> spool             (HTTP thread)
 *   finish:  rewind, defer -> submit batch 1          (HTTP thread)
 *   done k:  ok -> load and submit batch k+1, or      (commit thread)
 *            the request's entry and reply (app_commit_deferred)
 *
 * An entry is read by parse_supp_entry (service/parse.h): pure, no keys, and
 * fuzzed by tests/fuzz/fuzz_suppression_body.c; the address is hashed here.
 */
#include "service/app.h"

#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/bulk.h"
#include "service/domain/contact.h"
#include "service/domain/spool.h"
#include "service/domain/suppression.h"
#include "service/parse.h"
#include "service/router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUPP_BATCH 1000
#define SUPP_ERRORS_SHOWN 100

struct supp_import {
	struct reqctx *ctx;
	bool role_denied;
	int setup_rc;
	bool json;  /* a single entry, buffered */
	char *body; /* json: the buffered body */
	size_t body_len;
	struct bulk_reader *reader;
	struct spool *pending; /* the valid entries, until the upload has ended */
	uint64_t spooled;
	struct supp_entry *batch; /* the batch being written (or the single entry) */
	size_t n_batch;
	int64_t now;
	uint64_t total, added, already, invalid, batches;
	json_t *errors; /* first SUPP_ERRORS_SHOWN invalid lines */
	struct writer_job job;
	char hash_hex[17]; /* single entry: for the reply's audit detail */
};

static void supp_free(void *p)
{
	struct supp_import *s = p;
	if (s == NULL)
		return;
	bulk_reader_free(s->reader);
	spool_free(s->pending);
	free(s->body);
	free(s->batch);
	json_decref(s->errors);
	free(s);
}

/* Hashes a parsed entry's address (as contact_*_hashes do for a contact). */
static int entry_hash(struct supp_import *s, struct supp_entry *e, const char *address)
{
	struct txn t = app_txn(s->ctx, NULL);
	int rc = suppression_may_add(&t, s->ctx->role, e->reason);
	if (rc != 0)
		return rc;
	bool email = strcmp(e->kind, "email") == 0;
	rc = email ? contact_hash_email(&t, address, NULL, e->hash)
		   : contact_hash_phone(&t, address, NULL, e->hash);
	if (rc != 0)
		return err_set(ERR_INVALID, "%s is not a valid address", email ? "email" : "phone");
	return 0;
}

/* Validates and hashes one entry object into e; ERR_INVALID with a message
 * naming the key. */
static int entry_from_json(struct supp_import *s, json_t *o, struct supp_entry *e)
{
	const char *address;
	int rc = parse_supp_entry(s->ctx->policy, o, s->now, e, &address);
	return rc != 0 ? rc : entry_hash(s, e, address);
}

/* Writes the batch on the commit thread, in one suppression_add_many call
 * (one statement per batch on PostgreSQL, not one per entry). */
static int apply_batch(struct store_conn *w, struct writer_job *job)
{
	struct supp_import *s = job->ctx;
	struct txn t = app_txn(s->ctx, w);
	uint64_t added = 0;
	struct store_suppression *sp = calloc(s->n_batch + 1, sizeof *sp);
	bool *ok = calloc(s->n_batch + 1, sizeof *ok);
	int rc = 0;
	if (sp == NULL || ok == NULL) {
		rc = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < s->n_batch; i++) {
		struct supp_entry *e = &s->batch[i];
		sp[i] = (struct store_suppression){ .kind = e->kind,
						    .scope = e->scope,
						    .scope_value = e->scope_value,
						    .reason = e->reason,
						    .source = e->source,
						    .created_us = e->created_us,
						    .recorded_us = s->now };
		memcpy(sp[i].hash, e->hash, 32);
	}
	if ((rc = suppression_add_many(&t, sp, s->n_batch, ok)) != 0)
		goto out;
	for (size_t i = 0; i < s->n_batch; i++)
		added += ok[i];
	s->added += added;
	s->already += s->n_batch - added;
out:
	if (rc != 0) {
		snprintf(job->entry.decision, sizeof job->entry.decision, "deny");
		snprintf(job->entry.reason, sizeof job->entry.reason, "error");
	}
	free(sp);
	free(ok);
	return rc;
}

static int on_entry(void *arg, const struct bulk_item *it)
{
	struct supp_import *s = arg;
	struct supp_entry e;
	s->total++;
	json_t *v = json_incref(it->value);
	if (json_is_string(v)) {
		/* A bare address (CSV without a header): unsubscribe from all. */
		const char *a = json_string_value(v);
		json_t *o = json_pack("{s:s, s:s}", strchr(a, '@') ? "email" : "phone", a, "reason",
				      "unsubscribe");
		json_decref(v);
		v = o;
	}
	memset(&e, 0, sizeof e);
	int rc = it->error ? err_set(ERR_INVALID, "%s", it->error) : entry_from_json(s, v, &e);
	json_decref(v);
	if (rc != 0) {
		s->invalid++;
		if (json_array_size(s->errors) < SUPP_ERRORS_SHOWN)
			json_array_append_new(s->errors, json_pack("{s:I, s:s}", "line", (json_int_t)it->line,
								   "error", err_msg()));
		return 0;
	}
	/* Held (sealed) until the upload has ended: a list that breaks later
	 * must not have been half written. */
	if ((rc = spool_put(s->pending, &e, sizeof e)) != 0)
		return rc;
	s->spooled++;
	return 0;
}

static int supp_begin(struct reqctx *ctx)
{
	struct supp_import *s = calloc(1, sizeof *s);
	enum bulk_format fmt;
	enum bulk_csv_header hdr;
	if (s == NULL)
		return err_set(ERR_NOMEM, "out of memory");
	ctx->stream_state = s;
	s->ctx = ctx;
	s->now = now_us();
	if (!policy_role_may(ctx->policy, ctx->role, POLICY_ACT_SUPPRESSIONS_WRITE)) {
		s->role_denied = true;
		return ERR_DENIED;
	}
	s->errors = json_array();
	s->batch = calloc(SUPP_BATCH, sizeof *s->batch);
	if (s->errors == NULL || s->batch == NULL)
		return s->setup_rc = err_set(ERR_NOMEM, "out of memory");
	int rc = bulk_format_from_type(http_header(ctx->http, "Content-Type"), &fmt, &hdr);
	if (rc != 0)
		return s->setup_rc =
			       err_set(ERR_UNSUPPORTED, "send one suppression as application/json, or a "
							"list as text/csv or application/x-ndjson");
	if (fmt == BULK_JSON_ARRAY) {
		s->json = true;
		return 0;
	}
	if ((rc = bulk_reader_new(&s->reader, fmt, hdr, on_entry, s)) != 0 ||
	    (rc = spool_open(&s->pending, ctx->app->cfg.dir)) != 0)
		s->setup_rc = rc;
	return rc;
}

static int supp_chunk(struct reqctx *ctx, const char *data, size_t len)
{
	struct supp_import *s = ctx->stream_state;
	if (!s->json)
		return bulk_feed(s->reader, data, len);
	if (s->body_len + len > LIMIT_BODY_BYTES)
		return err_set(ERR_TOOBIG,
			       "a single suppression is at most %d bytes; send lists as CSV or NDJSON",
			       LIMIT_BODY_BYTES);
	char *n = realloc(s->body, s->body_len + len + 1);
	if (n == NULL)
		return err_set(ERR_NOMEM, "out of memory");
	s->body = n;
	memcpy(s->body + s->body_len, data, len);
	s->body_len += len;
	s->body[s->body_len] = '\0';
	return 0;
}

static void hash_prefix(const uint8_t hash[32], char out[17])
{
	hex_encode(hash, 8, out);
}

static int apply_single(struct store_conn *w, struct writer_job *job)
{
	struct reqctx *ctx = job->ctx;
	struct supp_import *s = ctx->stream_state;
	struct supp_entry *e = &s->batch[0];
	struct store_suppression sp = { .kind = e->kind,
					.scope = e->scope,
					.scope_value = e->scope_value,
					.reason = e->reason,
					.source = e->source,
					.created_us = e->created_us,
					.recorded_us = s->now };
	memcpy(sp.hash, e->hash, 32);
	struct txn t = app_txn(ctx, w);
	int rc = suppression_add(&t, &sp);
	if (rc < 0) {
		audit_decide(ctx, false, "error");
		return rc;
	}
	s->added = (uint64_t)rc;
	reply_json(ctx, rc == 1 ? 201 : 200,
		   json_pack("{s:b, s:s, s:s, s:s, s:s, s:s, s:o}", "added", rc == 1, "kind", e->kind,
			     "scope", e->scope, "scope_value", e->scope_value, "reason", e->reason, "source",
			     e->source, "created_at", json_time(e->created_us)));
	return 0;
}

static int finish_single(struct reqctx *ctx, struct supp_import *s)
{
	json_t *o = NULL;
	const char *address;
	int rc = parse_supp_body(ctx->policy, s->body, s->body_len, s->now, &s->batch[0], &o, &address);
	if (rc == 0)
		rc = entry_hash(s, &s->batch[0], address);
	json_decref(o);
	if (rc != 0)
		return rc;
	struct supp_entry *e = &s->batch[0];
	hash_prefix(e->hash, s->hash_hex);
	audit_begin(ctx, "suppressions.write", "", e->scope[0] == 'p' ? e->scope_value : "",
		    e->scope[0] == 'c' ? e->scope_value : "");
	audit_decide(ctx, true, e->reason);
	audit_detail(ctx, json_pack("{s:s, s:s, s:s, s:s}", "subject_hash", s->hash_hex, "kind", e->kind,
				    "scope", e->scope, "source", e->source));
	reply_json(ctx, 201, json_pack("{s:b}", "added", true)); /* replaced in apply */
	ctx->job.apply = apply_single;
	app_commit(ctx);
	return 0;
}

/* The request's own entry: the totals, whatever the outcome. */
static void import_totals(struct reqctx *ctx, struct supp_import *s)
{
	audit_detail(ctx, json_pack("{s:I, s:I, s:I, s:I, s:I}", "total", (json_int_t)s->total, "added",
				    (json_int_t)s->added, "already", (json_int_t)s->already, "invalid",
				    (json_int_t)s->invalid, "batches", (json_int_t)s->batches));
}

/* The end of an import that reached the writer (commit thread, or the HTTP
 * thread when nothing was submitted): answer after the request's entry. */
static void import_end(struct supp_import *s, int rc)
{
	struct reqctx *ctx = s->ctx;
	import_totals(ctx, s);
	if (rc != 0) {
		audit_decide(ctx, false, "import_failed");
		app_reason(ctx, rc, REASON_IMPORT_FAILED);
		app_fail_deferred(ctx, rc);
		return;
	}
	audit_decide(ctx, true, "imported");
	reply_json(ctx, 200,
		   json_pack("{s:I, s:I, s:I, s:I, s:O}", "total", (json_int_t)s->total, "added",
			     (json_int_t)s->added, "already", (json_int_t)s->already, "invalid",
			     (json_int_t)s->invalid, "errors", s->errors));
	app_commit_deferred(ctx);
}

static void batch_done(struct writer_job *job, int rc);

/* Loads the next batch from the spool and hands it to the writer; at the
 * end of the spool (or on an error) ends the import. Never waits. */
static void batch_next(struct supp_import *s)
{
	struct reqctx *ctx = s->ctx;
	int rc = 0;
	s->n_batch = 0;
	while (s->n_batch < SUPP_BATCH &&
	       (rc = spool_get(s->pending, &s->batch[s->n_batch], sizeof s->batch[0])) == 1)
		s->n_batch++;
	if (rc < 0 || s->n_batch == 0) {
		import_end(s, rc < 0 ? rc : 0);
		return;
	}
	memset(&s->job, 0, sizeof s->job);
	rc = audit_entry_fill(&s->job.entry, ctx->actor, ctx->role, "suppressions.import", "", "", "",
			      "allow", "imported");
	if (rc != 0) {
		import_end(s, rc); /* never a batch whose entry names someone else */
		return;
	}
	snprintf(s->job.entry.request_id, sizeof s->job.entry.request_id, "%s", http_request_id(ctx->http));
	snprintf(s->job.entry.client, sizeof s->job.entry.client, "%s", http_client(ctx->http));
	snprintf(s->job.entry.detail, sizeof s->job.entry.detail, "{\"batch\":%llu,\"entries\":%zu}",
		 (unsigned long long)++s->batches, s->n_batch);
	s->job.apply = apply_batch;
	s->job.done = batch_done;
	s->job.ctx = s;
	if ((rc = writer_submit(ctx->app->writer, &s->job)) != 0)
		import_end(s, rc);
}

/* Commit thread: batch k is durable (or not); go on with k+1. */
static void batch_done(struct writer_job *job, int rc)
{
	struct supp_import *s = job->ctx;
	if (rc != 0) {
		import_end(s, err_set(rc,
				      "batch %llu of the import could not be written; the batches "
				      "before it stay",
				      (unsigned long long)s->batches));
		return;
	}
	if (job->apply_rc != 0) {
		import_end(s, err_set(job->apply_rc, "%s", job->apply_msg));
		return;
	}
	batch_next(s);
}

static int supp_finish(struct reqctx *ctx)
{
	struct supp_import *s = ctx->stream_state;
	int rc = ctx->stream_rc;
	if (app_stream_refused(ctx, s, s && s->role_denied, POLICY_ACT_SUPPRESSIONS_WRITE, NULL,
			       s ? s->setup_rc : 0, NULL))
		return 0;
	if (s->json)
		return rc != 0 ? rc : finish_single(ctx, s);
	if (rc == 0)
		rc = bulk_finish(s->reader);
	if (rc == 0)
		rc = spool_rewind(s->pending);
	audit_begin(ctx, "suppressions.write", "", NULL, NULL);
	if (rc != 0) {
		/* Nothing was written: the list is refused whole. */
		import_totals(ctx, s);
		audit_decide(ctx, false, "import_failed");
		return app_reason(ctx, rc, REASON_IMPORT_FAILED);
	}
	/* From here the commit thread drives the import and replies. */
	app_defer(ctx);
	batch_next(s);
	return 0;
}

static const struct stream_ops supp_ops = { supp_begin, supp_chunk, supp_finish, supp_free };

/* ---- look up and lift ---- */

/* The address of a GET or DELETE: ?email= or ?phone=, hashed. */
static int address_param(struct reqctx *ctx, uint8_t hash[32], char hex[17])
{
	const char *email = http_query(ctx->http, "email"), *phone = http_query(ctx->http, "phone");
	if ((email == NULL) == (phone == NULL))
		return err_set(ERR_INVALID, "give exactly one of ?email= and ?phone=");
	struct txn t = app_txn(ctx, NULL);
	int rc =
		email ? contact_hash_email(&t, email, NULL, hash) : contact_hash_phone(&t, phone, NULL, hash);
	if (rc != 0)
		return err_set(ERR_INVALID, "%s is not a valid address", email ? "email" : "phone");
	hash_prefix(hash, hex);
	return 0;
}

static int row_cb(void *arg, const struct store_suppression_row *r)
{
	json_array_append_new(arg, json_pack("{s:s, s:s, s:s, s:s, s:o, s:o}", "scope", r->scope,
					     "scope_value", r->scope_value, "reason", r->reason, "source",
					     r->source, "created_at", json_time(r->created_us), "recorded_at",
					     json_time(r->recorded_us)));
	return 0;
}

static int h_suppressions_get(struct reqctx *ctx)
{
	uint8_t hash[32];
	char hex[17];
	int rc = address_param(ctx, hash, hex);
	if (rc != 0)
		return rc;
	if (!app_require(ctx, POLICY_ACT_SUPPRESSIONS_READ, NULL, NULL))
		return 0;
	json_t *list = json_array();
	audit_begin(ctx, "suppressions.read", "", NULL, NULL);
	audit_detail(ctx, json_pack("{s:s}", "subject_hash", hex));
	struct txn t = app_txn(ctx, ctx->rd);
	rc = suppression_list(&t, hash, row_cb, list);
	if (rc != 0) {
		json_decref(list);
		audit_decide(ctx, false, "error");
		return rc;
	}
	bool any = json_array_size(list) > 0;
	audit_decide(ctx, true, any ? "suppressed" : "not_suppressed");
	reply_json(ctx, 200, json_pack("{s:b, s:o}", "suppressed", any, "suppressions", list));
	app_commit(ctx);
	return 0;
}

struct lift {
	uint8_t hash[32];
	char scope[16], value[STORE_NAME_CAP];
	bool has_scope, has_value;
	int64_t now;
};

static int apply_lift(struct store_conn *w, struct writer_job *job)
{
	struct reqctx *ctx = job->ctx;
	struct lift *l = ctx->state;
	int64_t lifted = 0;
	struct txn t = app_txn(ctx, w);
	t.now_us = l->now;
	int rc = suppression_lift(&t, l->hash, l->has_scope ? l->scope : NULL, l->has_value ? l->value : NULL,
				  ctx->actor, &lifted);
	if (rc != 0) {
		audit_decide(ctx, false, "error");
		return rc;
	}
	if (lifted == 0) {
		audit_decide(ctx, false, "not_found");
		return err_set(ERR_NOTFOUND, "no active suppression to lift here (erasure suppressions are "
					     "permanent)");
	}
	reply_json(ctx, 200,
		   json_pack("{s:I, s:o}", "lifted", (json_int_t)lifted, "lifted_at", json_time(l->now)));
	return 0;
}

static int h_suppressions_delete(struct reqctx *ctx)
{
	char hex[17];
	struct lift *l = calloc(1, sizeof *l);
	const char *scope = http_query(ctx->http, "scope");
	const char *value = http_query(ctx->http, "scope_value");
	int rc = l ? address_param(ctx, l->hash, hex) : err_set(ERR_NOMEM, "out of memory");
	if (rc == 0 && scope != NULL && strcmp(scope, "all") != 0 && strcmp(scope, "purpose") != 0 &&
	    strcmp(scope, "channel") != 0)
		rc = err_set(ERR_INVALID, "scope must be all, purpose or channel");
	if (rc == 0 && value != NULL && strlen(value) >= sizeof l->value)
		rc = err_set(ERR_INVALID, "scope_value is too long");
	if (rc != 0) {
		free(l);
		return rc;
	}
	ctx->state = l;
	ctx->state_free = free;
	if (!app_require(ctx, POLICY_ACT_SUPPRESSIONS_DELETE, NULL, NULL))
		return 0;
	l->now = now_us();
	if ((l->has_scope = scope != NULL))
		snprintf(l->scope, sizeof l->scope, "%s", scope);
	if ((l->has_value = value != NULL))
		snprintf(l->value, sizeof l->value, "%s", value);
	audit_begin(ctx, "suppressions.delete", "", NULL, NULL);
	audit_decide(ctx, true, "lifted");
	audit_detail(ctx, json_pack("{s:s, s:s, s:s}", "subject_hash", hex, "scope", scope ? scope : "",
				    "scope_value", value ? value : ""));
	reply_json(ctx, 200, json_pack("{s:i}", "lifted", 0)); /* replaced in apply */
	ctx->job.apply = apply_lift;
	app_commit(ctx);
	return 0;
}

const struct route suppression_routes[] = {
	{ "POST", "/v1/suppressions", NULL, &supp_ops, false, LIMIT_STREAM_BODY_BYTES, "suppressions.write" },
	{ "GET", "/v1/suppressions", h_suppressions_get, NULL, false, 0, "suppressions.read" },
	{ "DELETE", "/v1/suppressions", h_suppressions_delete, NULL, false, 0, "suppressions.delete" },
	{ 0 },
};
