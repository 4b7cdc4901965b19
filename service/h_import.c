/*
 * h_import: POST /v1/contacts/import — NDJSON, one contact a line with its
 * fields, collected_for, source and consents (with their original times),
 * streamed; the answer is NDJSON, one result line per input line (created
 * with the new id, duplicate, or invalid with the reason), then a summary.
 * A bad line never stops the rest.
 *
 * Work is split so the single writer does only inserts:
 *   request thread: contact_new_prepare, the contact domain's one creation
 *     path (validation, new id, new DEK wrapped under the master key, every
 *     field and every consent's evidence sealed, keyed hashes);
 *   commit thread (job.apply, IMPORT_BATCH contacts per job):
 *     contact_new_insert_many (the inserts, a few statements per batch;
 *     the unique email blind index answers a duplicate per line).
 * Each batch is one job with ONE audit entry ("contacts.import", counts in
 * the detail) committed in the same transaction as its contacts, so every
 * created contact is durable and audited before its result line exists; the
 * request's own entry carries the totals and the reply follows it.
 *
 * Two batch buffers are pipelined: while batch k commits on the writer, the
 * request thread prepares batch k+1 (parsing and sealing are as costly as
 * the inserts). Before a buffer is reused its batch is collected: waited
 * for, its result lines written in order, its memory wiped. So at most two
 * batches per import are in memory, and a request is never freed while the
 * commit thread still holds one of its batches.
 *
 *   fill b[0] -> submit b[0] -> fill b[1] -> submit b[1] -> collect b[0]
 *   -> fill b[0] -> submit b[0] -> collect b[1] -> ...
 *
 * Result lines are spooled encrypted (service/domain/spool.h; they are ids
 * and counts, but the spool costs nothing and keeps one path).
 */
#include "service/app.h"

#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/bulk.h"
#include "service/domain/contact.h"
#include "service/domain/spool.h"
#include "service/router.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Contacts per job and transaction. A larger transaction writes each
 * randomly placed leaf of the email blind index once for more contacts; two
 * batches are in memory, about 3 KB a contact (docs/suppression.md has the
 * measurements: 8,000 bought 4 % more at 1,000,000 for 22 MiB). */
#define IMPORT_BATCH 4000

/* One line: the contact prepared by the contact domain's one creation path
 * (the same as POST /v1/contacts), and its result. */
struct imp_contact {
	uint64_t line;
	enum { IMP_READY, IMP_CREATED, IMP_DUPLICATE, IMP_INVALID, IMP_ERROR } result;
	char error[160];
	struct contact_new nc;
};

struct import;

/* One batch buffer; while `pending`, the commit thread owns items and job. */
struct imp_batch {
	struct import *im;
	struct imp_contact *items;
	size_t n;
	uint64_t number;
	struct writer_job job;
	bool pending, done; /* done and rc under im->lock */
	int rc;
};

struct import {
	struct reqctx *ctx;
	bool role_denied;
	int setup_rc;
	struct bulk_reader *reader;
	struct spool *out;
	struct imp_batch b[2];
	int fill; /* the buffer being filled */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int64_t now;
	uint64_t lines, created, duplicates, invalid, errors, batches;
};

static void contact_clear(struct imp_contact *c)
{
	contact_new_clear(&c->nc);
	memset(c, 0, sizeof *c);
}

static void batch_wait(struct imp_batch *b);

static void import_free(void *p)
{
	struct import *im = p;
	if (im == NULL)
		return;
	for (int k = 0; k < 2; k++) {
		struct imp_batch *b = &im->b[k];
		batch_wait(b); /* the commit thread may still hold it */
		for (size_t i = 0; b->items != NULL && i < b->n; i++)
			contact_clear(&b->items[i]);
		free(b->items);
	}
	pthread_mutex_destroy(&im->lock);
	pthread_cond_destroy(&im->cond);
	bulk_reader_free(im->reader);
	spool_free(im->out);
	free(im);
}

/* Validates and seals one line into c (request thread). */
static int prepare(struct import *im, struct imp_contact *c, json_t *v)
{
	struct txn t = app_txn(im->ctx, NULL);
	json_t *body = NULL;
	int rc;
	if (!json_is_object(v))
		return err_set(ERR_INVALID, "a line is one JSON object: a contact");
	t.now_us = im->now;
	body = json_copy(v);
	json_t *consents = json_incref(json_object_get(body, "consents"));
	json_object_del(body, "consents");
	rc = contact_new_prepare(&t, body, consents, "import", &c->nc);
	json_decref(consents);
	json_decref(body);
	return rc;
}

/* Inserts the batch (commit thread), in one contact_new_insert_many call:
 * a few statements per batch, not several per contact. A duplicate email
 * is that line's result; any other failure fails the whole batch (rolled
 * back). */
static int apply_batch(struct store_conn *w, struct writer_job *job)
{
	struct imp_batch *b = job->ctx;
	struct txn t = app_txn(b->im->ctx, w);
	uint64_t created = 0, dups = 0;
	struct contact_new **ready = calloc(b->n + 1, sizeof *ready);
	size_t n = 0;
	int rc = 0;
	if (ready == NULL) {
		rc = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < b->n; i++)
		if (b->items[i].result == IMP_READY)
			ready[n++] = &b->items[i].nc;
	if ((rc = contact_new_insert_many(&t, ready, n)) != 0)
		goto out;
	for (size_t i = 0; i < b->n; i++) {
		struct imp_contact *c = &b->items[i];
		if (c->result != IMP_READY)
			continue;
		c->result = c->nc.duplicate ? IMP_DUPLICATE : IMP_CREATED;
		if (c->nc.duplicate)
			dups++;
		else
			created++;
	}
	snprintf(job->entry.detail, sizeof job->entry.detail,
		 "{\"batch\":%llu,\"created\":%llu,\"duplicates\":%llu,\"lines\":%zu}",
		 (unsigned long long)b->number, (unsigned long long)created, (unsigned long long)dups, b->n);
out:
	if (rc != 0) {
		snprintf(job->entry.decision, sizeof job->entry.decision, "deny");
		snprintf(job->entry.reason, sizeof job->entry.reason, "error");
	}
	free(ready);
	return rc;
}

static int write_result(struct import *im, const struct imp_contact *c)
{
	char buf[512];
	int n;
	switch (c->result) {
	case IMP_CREATED:
		im->created++;
		n = snprintf(buf, sizeof buf, "{\"line\":%llu,\"status\":\"created\",\"id\":\"%s\"}\n",
			     (unsigned long long)c->line, c->nc.ct.id);
		break;
	case IMP_DUPLICATE:
		im->duplicates++;
		n = snprintf(buf, sizeof buf,
			     "{\"line\":%llu,\"status\":\"duplicate\",\"reason\":\"duplicate_email\"}\n",
			     (unsigned long long)c->line);
		break;
	case IMP_INVALID: {
		im->invalid++;
		char q[400];
		size_t qn = bulk_json_quote(c->error, strlen(c->error), q, sizeof q);
		n = snprintf(buf, sizeof buf, "{\"line\":%llu,\"status\":\"invalid\",\"error\":%.*s}\n",
			     (unsigned long long)c->line, (int)qn, qn ? q : "null");
		break;
	}
	default:
		im->errors++;
		n = snprintf(buf, sizeof buf,
			     "{\"line\":%llu,\"status\":\"error\",\"error\":\"not stored\"}\n",
			     (unsigned long long)c->line);
		break;
	}
	return spool_put(im->out, buf, (size_t)n);
}

static void batch_done(struct writer_job *job, int rc)
{
	struct imp_batch *b = job->ctx;
	struct import *im = b->im;
	pthread_mutex_lock(&im->lock);
	b->rc = rc != 0 ? rc : job->apply_rc != 0 ? err_set(job->apply_rc, "%s", job->apply_msg) : 0;
	b->done = true;
	pthread_cond_broadcast(&im->cond);
	pthread_mutex_unlock(&im->lock);
}

static void batch_wait(struct imp_batch *b)
{
	struct import *im = b->im;
	if (im == NULL || !b->pending)
		return;
	pthread_mutex_lock(&im->lock);
	while (!b->done)
		pthread_cond_wait(&im->cond, &im->lock);
	pthread_mutex_unlock(&im->lock);
	b->pending = false;
}

/* Hands a full (or the last) buffer to the writer; returns at once. */
static int batch_submit(struct import *im, struct imp_batch *b)
{
	struct reqctx *ctx = im->ctx;
	bool any = false;
	for (size_t i = 0; i < b->n; i++)
		any = any || b->items[i].result == IMP_READY;
	b->rc = 0;
	b->done = false;
	if (!any)
		return 0; /* nothing to store: collected without a commit */
	memset(&b->job, 0, sizeof b->job);
	int frc = audit_entry_fill(&b->job.entry, ctx->actor, ctx->role, "contacts.import", "", "", "",
				   "allow", "imported");
	if (frc != 0) {
		b->rc = frc; /* never a batch whose entry names someone else */
		return 0;
	}
	snprintf(b->job.entry.request_id, sizeof b->job.entry.request_id, "%s", http_request_id(ctx->http));
	snprintf(b->job.entry.client, sizeof b->job.entry.client, "%s", http_client(ctx->http));
	b->number = ++im->batches;
	b->job.apply = apply_batch;
	b->job.done = batch_done;
	b->job.ctx = b;
	b->pending = true;
	int rc = writer_submit(ctx->app->writer, &b->job);
	if (rc != 0) {
		b->pending = false;
		b->rc = rc;
	}
	return 0;
}

/* Waits for a submitted buffer, writes its result lines in order, wipes it.
 * A failed batch (audit or store unavailable) is returned, so the import
 * stops: what was committed before stays, and the reply says where. */
static int batch_collect(struct import *im, struct imp_batch *b)
{
	batch_wait(b);
	int rc = b->rc;
	if (rc != 0)
		for (size_t i = 0; i < b->n; i++)
			if (b->items[i].result != IMP_INVALID)
				b->items[i].result = IMP_ERROR;
	for (size_t i = 0; i < b->n; i++) {
		int wrc = write_result(im, &b->items[i]);
		contact_clear(&b->items[i]);
		if (wrc != 0 && rc == 0)
			rc = wrc;
	}
	b->n = 0;
	b->rc = 0;
	return rc;
}

/* Submits the buffer being filled and switches to the other one, collecting
 * it first if its batch is still out. */
static int batch_rotate(struct import *im)
{
	struct imp_batch *cur = &im->b[im->fill];
	batch_submit(im, cur);
	im->fill ^= 1;
	return batch_collect(im, &im->b[im->fill]);
}

/* At the end: the older buffer first, then the last one, so result lines
 * stay in input order. */
static int batch_drain(struct import *im)
{
	struct imp_batch *last = &im->b[im->fill];
	batch_submit(im, last);
	int rc = batch_collect(im, &im->b[im->fill ^ 1]);
	int rc2 = batch_collect(im, last);
	return rc != 0 ? rc : rc2;
}

static int on_line(void *arg, const struct bulk_item *it)
{
	struct import *im = arg;
	struct imp_batch *b = &im->b[im->fill];
	struct imp_contact *c = &b->items[b->n++];
	memset(c, 0, sizeof *c);
	c->line = it->line;
	im->lines++;
	int rc = it->error ? err_set(ERR_INVALID, "%s", it->error) : prepare(im, c, it->value);
	if (rc != 0) {
		if (rc == ERR_NOMEM)
			return rc;
		char msg[160];
		snprintf(msg, sizeof msg, "%s", err_msg());
		contact_clear(c);
		c->line = it->line;
		c->result = IMP_INVALID;
		snprintf(c->error, sizeof c->error, "%s", msg);
	}
	if (b->n == IMPORT_BATCH)
		return batch_rotate(im);
	return 0;
}

static int import_begin(struct reqctx *ctx)
{
	struct import *im = calloc(1, sizeof *im);
	enum bulk_format fmt;
	int rc;
	if (im == NULL)
		return err_set(ERR_NOMEM, "out of memory");
	ctx->stream_state = im;
	im->ctx = ctx;
	im->now = now_us();
	pthread_mutex_init(&im->lock, NULL);
	pthread_cond_init(&im->cond, NULL);
	im->b[0].im = im->b[1].im = im;
	if (!policy_role_may(ctx->policy, ctx->role, POLICY_ACT_CONTACTS_IMPORT)) {
		im->role_denied = true;
		return ERR_DENIED;
	}
	rc = bulk_format_from_type(http_header(ctx->http, "Content-Type"), &fmt, NULL);
	if (rc != 0 || fmt == BULK_CSV)
		return im->setup_rc = err_set(ERR_UNSUPPORTED, "send contacts as application/x-ndjson");
	for (int k = 0; k < 2; k++) {
		im->b[k].items = calloc(IMPORT_BATCH, sizeof *im->b[k].items);
		if (im->b[k].items == NULL)
			return im->setup_rc = err_set(ERR_NOMEM, "out of memory");
	}
	if ((rc = bulk_reader_new(&im->reader, fmt, BULK_CSV_AUTO, on_line, im)) != 0 ||
	    (rc = spool_open(&im->out, ctx->app->cfg.dir)) != 0)
		im->setup_rc = rc;
	return rc;
}

static int import_chunk(struct reqctx *ctx, const char *data, size_t len)
{
	struct import *im = ctx->stream_state;
	return bulk_feed(im->reader, data, len);
}

static int import_finish(struct reqctx *ctx)
{
	struct import *im = ctx->stream_state;
	int rc = ctx->stream_rc;
	if (app_stream_refused(ctx, im, im && im->role_denied, POLICY_ACT_CONTACTS_IMPORT, NULL,
			       im ? im->setup_rc : 0, NULL))
		return 0;
	if (rc == 0)
		rc = bulk_finish(im->reader);
	/* A body that turns out malformed (a JSON array cut short or broken,
	 * too many entries) after elements were read: what was stored stays,
	 * and the reply must name every contact created, so it is the usual
	 * result lines with a summary that says the import is incomplete and
	 * why. Broken before any element: a plain problem, nothing changed. */
	char broken[256] = "";
	if (rc == ERR_INVALID || rc == ERR_TOOBIG)
		snprintf(broken, sizeof broken, "%s", err_msg());
	int frc = batch_drain(im); /* what was read is stored, even after an error */
	int status = 200;
	if (broken[0] != '\0' && frc == 0 && im->lines > 0) {
		status = status_for_err(rc);
		rc = 0;
	}
	if (rc == 0)
		rc = frc;
	audit_begin(ctx, "contacts.import", "", NULL, NULL);
	audit_detail(ctx, json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "lines", (json_int_t)im->lines,
				    "created", (json_int_t)im->created, "duplicates",
				    (json_int_t)im->duplicates, "invalid", (json_int_t)im->invalid, "errors",
				    (json_int_t)im->errors, "batches", (json_int_t)im->batches));
	char *text = NULL;
	if (rc == 0) {
		json_t *sum = json_pack(
			"{s:{s:I, s:I, s:I, s:I, s:I, s:s, s:b}}", "summary", "lines", (json_int_t)im->lines,
			"created", (json_int_t)im->created, "duplicates", (json_int_t)im->duplicates,
			"invalid", (json_int_t)im->invalid, "errors", (json_int_t)im->errors, "request_id",
			http_request_id(ctx->http), "complete", broken[0] == '\0');
		if (sum != NULL && broken[0] != '\0')
			json_object_set_new(json_object_get(sum, "summary"), "error", json_string(broken));
		text = json_dumps(sum, JSON_COMPACT | JSON_PRESERVE_ORDER);
		json_decref(sum);
		rc = text ? spool_line(im->out, text) : err_set(ERR_NOMEM, "out of memory");
		free(text);
	}
	if (rc == 0)
		rc = spool_rewind(im->out);
	if (rc != 0) {
		audit_decide(ctx, false, "import_failed");
		return app_reason(ctx, rc, REASON_IMPORT_FAILED);
	}
	audit_decide(ctx, true, status == 200 ? "imported" : "import_incomplete");
	ctx->status = status;
	ctx->content_type = "application/x-ndjson";
	ctx->stream_read = spool_reply_read;
	ctx->stream_ctx = im->out;
	ctx->stream_free = spool_reply_free;
	im->out = NULL; /* the reply owns it now */
	app_commit(ctx);
	return 0;
}

static const struct stream_ops import_ops = { import_begin, import_chunk, import_finish, import_free };

const struct route import_routes[] = {
	{ "POST", "/v1/contacts/import", NULL, &import_ops, false, LIMIT_STREAM_BODY_BYTES,
	  "contacts.import" },
	{ 0 },
};
