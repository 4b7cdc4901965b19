/*
 * reply: preparing a request's reply and sending it, at once (app_send) or
 * only after its audit entry is durable (app_commit: commit-then-reply);
 * the audit entry helpers; and the domain handle of a request (app_txn).
 * See app.h for the flow.
 *
 * Invariants:
 * - A prepared reply is sent by exactly one of app_send() or the commit
 *   callback; an audited reply never leaves before its entry is durable.
 * - Errors the client did not cause (ERR_INTERNAL, ERR_IO, ...) are answered
 *   without internal detail; the detail goes to stderr with the request id.
 */
#include "service/app.h"

#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/domain/contact.h"
#include "service/problem.h"
#include "service/router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- replies ---- */

void reply_drop(struct reqctx *ctx)
{
	free(ctx->body);
	ctx->body = NULL;
	ctx->body_len = 0;
	if (ctx->stream_free != NULL)
		ctx->stream_free(ctx->stream_ctx);
	ctx->stream_read = NULL;
	ctx->stream_ctx = NULL;
	ctx->stream_free = NULL;
}

void reply_text(struct reqctx *ctx, int status, const char *content_type, char *body, size_t len)
{
	reply_drop(ctx);
	ctx->status = status;
	ctx->content_type = content_type;
	ctx->body = body;
	ctx->body_len = len;
}

void reply_json(struct reqctx *ctx, int status, json_t *body)
{
	char *text = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(body);
	if (text == NULL) {
		reply_problem_status(ctx, 500, "internal", "Internal error", NULL, NULL);
		return;
	}
	reply_text(ctx, status, "application/json", text, strlen(text));
}

void reply_problem_status(struct reqctx *ctx, int status, const char *type, const char *title,
			  const char *detail, const char *reason)
{
	char *text = problem_json(status, type, title, detail, reason, http_path(ctx->http),
				  http_request_id(ctx->http));
	reply_text(ctx, status, "application/problem+json", text, text ? strlen(text) : 0);
	if (status == 401)
		http_add_header(ctx->http, "WWW-Authenticate", "Bearer realm=\"consentd\"");
}

void reply_problem(struct reqctx *ctx, int code, const char *reason)
{
	const struct problem *p = problem_for(code);
	if (p->code != 0) {
		const char *detail = err_code() == code ? err_msg() : NULL;
		reply_problem_status(ctx, p->status, p->type, p->title, detail, reason);
		return;
	}
	fprintf(stderr, "consentd: request %s: internal error: %s\n", http_request_id(ctx->http), err_msg());
	reply_problem_status(ctx, 500, "internal", "Internal error", "see the server log for this request id",
			     reason);
}

/* ---- failing: the one place an error code becomes a reply ---- */

/* The problem for code with reason; a 503 says when to try again. Used for
 * a handler's returned code (app_fail) and for a job's apply error
 * (commit_done) alike. */
static void fail_render(struct reqctx *ctx, int code, const char *reason)
{
	reply_problem(ctx, code, reason);
	if (code == ERR_UNAVAILABLE)
		http_add_header(ctx->http, "Retry-After", "5");
}

int app_reason(struct reqctx *ctx, int code, enum decision_reason reason)
{
	ctx->reason = reason;
	return code;
}

void app_fail(struct reqctx *ctx, int code)
{
	if (ctx->replied)
		return;
	fail_render(ctx, code, decision_reason_name(ctx->reason));
	/* A refusal that was begun as an audit entry is on the record before
	 * it is answered; one that touched nothing is answered at once. */
	if (ctx->audit_begun)
		app_commit(ctx);
	else
		app_send(ctx);
}

void app_fail_deferred(struct reqctx *ctx, int code)
{
	if (code != 0)
		fail_render(ctx, code, decision_reason_name(ctx->reason));
	app_commit_deferred(ctx);
}

static void count_status(struct app *app, int status)
{
	if (status < 300)
		atomic_fetch_add(&app->metrics.status_2xx, 1);
	else if (status < 500)
		atomic_fetch_add(&app->metrics.status_4xx, 1);
	else
		atomic_fetch_add(&app->metrics.status_5xx, 1);
}

static void deliver(struct reqctx *ctx)
{
	count_status(ctx->app, ctx->status);
	if (ctx->stream_read != NULL) {
		http_respond_stream(ctx->http, ctx->status, ctx->content_type, ctx->stream_read,
				    ctx->stream_ctx, ctx->stream_free);
		ctx->stream_read = NULL;
		ctx->stream_ctx = NULL;
		ctx->stream_free = NULL;
		return;
	}
	if (ctx->body == NULL)
		reply_problem_status(ctx, 500, "internal", "Internal error", NULL, NULL);
	http_respond(ctx->http, ctx->status, ctx->content_type, ctx->body, ctx->body_len);
	ctx->body = NULL;
}

void app_send(struct reqctx *ctx)
{
	if (ctx->replied)
		return;
	ctx->replied = true;
	deliver(ctx);
}

static void commit_done(struct writer_job *job, int rc)
{
	struct reqctx *ctx = job->ctx;
	if (rc != 0) {
		char why[AUDIT_REASON_BYTES];
		atomic_fetch_add(&ctx->app->metrics.audit_unavailable, 1);
		if (writer_fault(ctx->app->writer, why, sizeof why) != AUDIT_FAULT_NONE) {
			err_set(ERR_AUDIT_ALTERED,
				"the audit trail is not the one this server signed (%s); "
				"nothing was changed or revealed",
				audit_fault_name(writer_fault(ctx->app->writer, NULL, 0)));
			reply_problem(ctx, ERR_AUDIT_ALTERED, NULL);
		} else {
			err_set(ERR_UNAVAILABLE, "the audit trail cannot be written; nothing was changed or "
						 "revealed");
			reply_problem(ctx, ERR_UNAVAILABLE, NULL);
		}
		http_add_header(ctx->http, "Retry-After", "5");
	} else if (job->apply_rc != 0) {
		err_set(job->apply_rc, "%s", job->apply_msg);
		fail_render(ctx, job->apply_rc, job->entry.reason[0] ? job->entry.reason : NULL);
	}
	deliver(ctx);
	http_resume(ctx->http);
}

void app_commit(struct reqctx *ctx)
{
	if (ctx->replied)
		return;
	if (!ctx->audit_begun) {
		/* A handler that commits without describing the access is a bug;
		 * never let it reply unaudited. */
		fprintf(stderr, "consentd: request %s: commit without an audit entry\n",
			http_request_id(ctx->http));
		reply_problem_status(ctx, 500, "internal", "Internal error", NULL, NULL);
		app_send(ctx);
		return;
	}
	app_defer(ctx);
	app_commit_deferred(ctx);
}

void app_defer(struct reqctx *ctx)
{
	ctx->replied = true; /* the other thread replies */
	/* Give the reader connection back before waiting: it is not needed
	 * while another thread works, and the pool stays small. */
	store_conn_put(ctx->app->store, ctx->rd);
	ctx->rd = NULL;
	http_suspend(ctx->http);
}

void app_commit_deferred(struct reqctx *ctx)
{
	/* ctx->replied was set by app_defer on the HTTP thread; this runs on
	 * another one, which must not write it (the HTTP thread reads it). */
	if (!ctx->audit_begun) {
		fprintf(stderr, "consentd: request %s: commit without an audit entry\n",
			http_request_id(ctx->http));
		reply_problem_status(ctx, 500, "internal", "Internal error", NULL, NULL);
		deliver(ctx);
		http_resume(ctx->http);
		return;
	}
	if (ctx->audit_overflow[0] != '\0') {
		/* A bug (inputs are bounded before they reach the entry), so the
		 * request is refused whole rather than recorded wrongly. */
		fprintf(stderr, "consentd: request %s: audit entry does not fit: %s\n",
			http_request_id(ctx->http), ctx->audit_overflow);
		ctx->job.apply = NULL;
		audit_decide_reason(ctx, false, REASON_AUDIT_ENTRY_TOO_BIG);
		reply_problem_status(ctx, 500, "internal", "Internal error",
				     "the audit entry for this request does not fit; nothing was done", NULL);
	}
	ctx->job.done = commit_done;
	ctx->job.ctx = ctx;
	if (writer_submit(ctx->app->writer, &ctx->job) != 0)
		commit_done(&ctx->job, ERR_UNAVAILABLE);
}

/* ---- audit helpers ---- */

/* A value that does not fit its audit field is never cut or dropped: the
 * first such problem is kept, and app_commit answers 500 instead of the
 * prepared reply, changing nothing, with an entry that says so. */
static void audit_overflow(struct reqctx *ctx, int rc)
{
	if (rc != 0 && ctx->audit_overflow[0] == '\0')
		snprintf(ctx->audit_overflow, sizeof ctx->audit_overflow, "%s", err_msg());
}

static void audit_put(struct reqctx *ctx, char *dst, size_t cap, const char *src, const char *name)
{
	size_t n = strlen(src);
	if (n >= cap) {
		dst[0] = '\0';
		audit_overflow(ctx,
			       err_set(ERR_TOOBIG, "the audit %s is longer than %zu bytes", name, cap - 1));
		return;
	}
	memcpy(dst, src, n + 1);
}

void audit_begin(struct reqctx *ctx, const char *action, const char *record_id, const char *purpose,
		 const char *channel)
{
	struct audit_entry *e = &ctx->job.entry;
	ctx->audit_begun = true;
	e->seq = 0;
	e->time_us = 0;
	e->fields[0] = '\0';
	e->detail[0] = '\0';
	audit_overflow(ctx, audit_entry_fill(e, ctx->authenticated ? ctx->actor : "",
					     ctx->authenticated ? ctx->role : "", action, record_id, purpose,
					     channel, "none", ""));
	snprintf(e->request_id, sizeof e->request_id, "%s", http_request_id(ctx->http));
	snprintf(e->client, sizeof e->client, "%s", http_client(ctx->http));
}

void audit_decide(struct reqctx *ctx, bool allowed, const char *reason)
{
	struct audit_entry *e = &ctx->job.entry;
	snprintf(e->decision, sizeof e->decision, "%s", allowed ? "allow" : "deny");
	audit_put(ctx, e->reason, sizeof e->reason, reason ? reason : "", "reason");
}

void audit_decide_reason(struct reqctx *ctx, bool allowed, enum decision_reason reason)
{
	audit_decide(ctx, allowed, decision_reason_name(reason));
}

void audit_fields(struct reqctx *ctx, const char *list)
{
	audit_put(ctx, ctx->job.entry.fields, sizeof ctx->job.entry.fields, list, "field list");
}

void audit_detail(struct reqctx *ctx, json_t *detail)
{
	audit_overflow(ctx, audit_entry_set_detail(&ctx->job.entry, detail));
}

bool app_require(struct reqctx *ctx, enum policy_action act, const char *record_id, const char *purpose)
{
	return app_require_logged(ctx, act, record_id, purpose, purpose);
}

bool app_require_logged(struct reqctx *ctx, enum policy_action act, const char *record_id,
			const char *purpose, const char *logged_purpose)
{
	if (policy_role_may(ctx->policy, ctx->role, act) &&
	    (purpose == NULL || policy_role_may_purpose(ctx->policy, ctx->role, purpose)))
		return true;
	purpose = logged_purpose;
	atomic_fetch_add(&ctx->app->metrics.denials, 1);
	/* Logged under the action that was attempted (the route's), so that an
	 * auditor filtering by action finds the refusals with the successes. */
	const char *action = ctx->route != NULL && ctx->route->action != NULL ? ctx->route->action
									      : policy_action_name(act);
	audit_begin(ctx, action, record_id, purpose, NULL);
	audit_decide_reason(ctx, false, REASON_ROLE_DENIED);
	err_set(ERR_DENIED, "role %s may not %s%s%s", ctx->role, policy_action_name(act),
		purpose ? " for purpose " : "", purpose ? purpose : "");
	app_fail(ctx, app_reason(ctx, ERR_DENIED, REASON_ROLE_DENIED));
	return false;
}

bool app_stream_refused(struct reqctx *ctx, const void *state, bool role_denied, enum policy_action act,
			const char *purpose, int setup_rc, const char *reason)
{
	int rc = state == NULL ? (ctx->stream_rc ? ctx->stream_rc : ERR_NOMEM) : setup_rc;
	if (state != NULL && role_denied) {
		app_require(ctx, act, NULL, purpose);
		return true;
	}
	if (rc == 0)
		return false;
	err_set(rc, "%s", ctx->stream_begin_msg[0] ? ctx->stream_begin_msg : err_name(rc));
	/* The string is the bulk routes' own (h_outreach.c still names it so). */
	app_fail(ctx, app_reason(ctx, rc, state == NULL ? REASON_NONE : decision_reason_from_name(reason)));
	return true;
}

struct txn app_txn(struct reqctx *ctx, struct store_conn *c)
{
	struct txn t = { c, ctx->app->keys, ctx->policy, now_us() };
	return t;
}

int app_active_contact(struct reqctx *ctx, struct txn *t, const char *id, struct store_contact *out)
{
	enum decision_reason reason = REASON_NONE;
	int rc = contact_get_active(t, id, out, &reason);
	if (reason != REASON_NONE)
		audit_decide_reason(ctx, false, reason);
	return rc;
}
