/*
 * app: lifecycle, request dispatch, authentication, problem replies and the
 * commit-then-reply path. See app.h for the flow.
 *
 * Invariants:
 * - A prepared reply is sent by exactly one of app_send() or the commit
 *   callback; an audited reply never leaves before its entry is durable.
 * - Bearer tokens are hashed (SHA-256) on arrival and never stored, logged
 *   or copied elsewhere; the lookup compares hashes.
 * - Errors the client did not cause (ERR_INTERNAL, ERR_IO, ...) are answered
 *   without internal detail; the detail goes to stderr with the request id.
 */
#include "service/app.h"

#include "service/auditwatch.h"

#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/domain/contact.h"
#include "service/base/limits.h"
#include "service/crypto/fieldcrypt.h"
#include "service/router.h"

#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PROBLEM_BASE "https://consentd.dev/problems/"

/* The one table from error codes to HTTP. */
static const struct {
	int code, status;
	const char *type, *title;
} problems[] = {
	{ ERR_INVALID, 400, "invalid-request", "The request is malformed" },
	{ ERR_UNAUTHENTICATED, 401, "unauthenticated", "A valid bearer token is required" },
	{ ERR_DENIED, 403, "forbidden", "Not allowed" },
	{ ERR_NOTFOUND, 404, "not-found", "No such resource" },
	{ ERR_CONFLICT, 409, "conflict", "Conflicts with the current state" },
	{ ERR_GONE, 410, "erased", "The contact was erased" },
	{ ERR_TOOBIG, 413, "too-large", "The request is larger than allowed" },
	{ ERR_UNSUPPORTED, 415, "unsupported-media-type", "Unsupported content type" },
	{ ERR_UNPROCESSABLE, 422, "unprocessable", "The request names something unknown" },
	{ ERR_UNAVAILABLE, 503, "unavailable", "Cannot serve this safely right now" },
	{ ERR_AUDIT_ALTERED, 503, "audit-altered", "The audit trail is not intact; nothing is served" },
};

int status_for_err(int code)
{
	for (size_t i = 0; i < sizeof problems / sizeof problems[0]; i++)
		if (problems[i].code == code)
			return problems[i].status;
	return 500;
}

struct policy *app_policy(struct app *app)
{
	pthread_mutex_lock(&app->policy_lock);
	struct policy *p = policy_ref(app->policy);
	pthread_mutex_unlock(&app->policy_lock);
	return p;
}

/* ---- replies ---- */

static void drop_reply(struct reqctx *ctx)
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
	drop_reply(ctx);
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
	char uri[128];
	snprintf(uri, sizeof uri, PROBLEM_BASE "%s", type);
	json_t *p = json_pack("{s:s, s:s, s:i}", "type", uri, "title", title, "status", status);
	if (detail != NULL && detail[0] != '\0')
		json_object_set_new(p, "detail", json_string(detail));
	if (reason != NULL)
		json_object_set_new(p, "reason", json_string(reason));
	json_object_set_new(p, "instance", json_string(http_path(ctx->http)));
	json_object_set_new(p, "request_id", json_string(http_request_id(ctx->http)));
	char *text = json_dumps(p, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(p);
	reply_text(ctx, status, "application/problem+json", text, text ? strlen(text) : 0);
	if (status == 401)
		http_add_header(ctx->http, "WWW-Authenticate", "Bearer realm=\"consentd\"");
}

void reply_problem(struct reqctx *ctx, int code, const char *reason)
{
	for (size_t i = 0; i < sizeof problems / sizeof problems[0]; i++) {
		if (problems[i].code == code) {
			const char *detail = err_code() == code ? err_msg() : NULL;
			reply_problem_status(ctx, problems[i].status, problems[i].type, problems[i].title,
					     detail, reason);
			return;
		}
	}
	fprintf(stderr, "consentd: request %s: internal error: %s\n", http_request_id(ctx->http),
		err_msg());
	reply_problem_status(ctx, 500, "internal", "Internal error",
			     "see the server log for this request id", reason);
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
			err_set(ERR_AUDIT_ALTERED, "the audit trail is not the one this server signed (%s); "
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
		reply_problem(ctx, job->apply_rc, job->entry.reason[0] ? job->entry.reason : NULL);
		if (job->apply_rc == ERR_UNAVAILABLE)
			http_add_header(ctx->http, "Retry-After", "5");
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
	ctx->replied = true;
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
		audit_decide(ctx, false, "audit_entry_too_big");
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
		audit_overflow(ctx, err_set(ERR_TOOBIG, "the audit %s is longer than %zu bytes", name, cap - 1));
		return;
	}
	memcpy(dst, src, n + 1);
}

void audit_begin(struct reqctx *ctx, const char *action, const char *record_id,
		 const char *purpose, const char *channel)
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

void audit_fields(struct reqctx *ctx, const char *list)
{
	audit_put(ctx, ctx->job.entry.fields, sizeof ctx->job.entry.fields, list, "field list");
}

void audit_detail(struct reqctx *ctx, json_t *detail)
{
	/* Canonical flat JSON: sorted keys, compact. */
	char *text = detail != NULL ? json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(detail);
	if (text == NULL)
		audit_overflow(ctx, err_set(ERR_NOMEM, "the audit detail could not be encoded"));
	else
		audit_put(ctx, ctx->job.entry.detail, sizeof ctx->job.entry.detail, text, "detail");
	free(text);
}

bool app_require(struct reqctx *ctx, enum policy_action act, const char *record_id,
		 const char *purpose)
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
	audit_decide(ctx, false, "role_denied");
	err_set(ERR_DENIED, "role %s may not %s%s%s", ctx->role, policy_action_name(act),
		purpose ? " for purpose " : "", purpose ? purpose : "");
	reply_problem(ctx, ERR_DENIED, "role_denied");
	app_commit(ctx);
	return false;
}

bool app_stream_refused(struct reqctx *ctx, const void *state, bool role_denied,
			enum policy_action act, const char *purpose, int setup_rc, const char *reason)
{
	int rc = state == NULL ? (ctx->stream_rc ? ctx->stream_rc : ERR_NOMEM) : setup_rc;
	if (state != NULL && role_denied) {
		app_require(ctx, act, NULL, purpose);
		return true;
	}
	if (rc == 0)
		return false;
	err_set(rc, "%s", ctx->stream_begin_msg[0] ? ctx->stream_begin_msg : err_name(rc));
	reply_problem(ctx, rc, state == NULL ? NULL : reason);
	app_send(ctx);
	return true;
}

struct txn app_txn(struct reqctx *ctx, struct store_conn *c)
{
	struct txn t = { c, ctx->app->keys, ctx->policy, now_us() };
	return t;
}

int app_active_contact(struct reqctx *ctx, struct txn *t, const char *id, struct store_contact *out)
{
	const char *reason = NULL;
	int rc = contact_get_active(t, id, out, &reason);
	if (reason != NULL)
		audit_decide(ctx, false, reason);
	return rc;
}

/* ---- bodies ---- */

static bool media_type_is(const char *header, const char *want)
{
	if (header == NULL)
		return false;
	size_t n = strlen(want);
	if (strncasecmp(header, want, n) != 0)
		return false;
	return header[n] == '\0' || header[n] == ';' || header[n] == ' ';
}

json_t *app_json_body(struct reqctx *ctx)
{
	size_t len;
	const char *body = http_body(ctx->http, &len);
	json_error_t jerr;
	if (http_body_too_big(ctx->http)) {
		err_set(ERR_TOOBIG, "the body is larger than %d bytes", LIMIT_BODY_BYTES);
		reply_problem(ctx, ERR_TOOBIG, NULL);
		return NULL;
	}
	if (!media_type_is(http_header(ctx->http, "Content-Type"), "application/json")) {
		err_set(ERR_UNSUPPORTED, "send the body as application/json");
		reply_problem(ctx, ERR_UNSUPPORTED, NULL);
		return NULL;
	}
	if (body == NULL || len == 0) {
		err_set(ERR_INVALID, "the body is empty; a JSON object is expected");
		reply_problem(ctx, ERR_INVALID, NULL);
		return NULL;
	}
	if (!json_depth_within(body, len, LIMIT_JSON_DEPTH)) {
		err_set(ERR_INVALID, "JSON nesting is deeper than %d", LIMIT_JSON_DEPTH);
		reply_problem(ctx, ERR_INVALID, NULL);
		return NULL;
	}
	json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		err_set(ERR_INVALID, "malformed JSON at line %d column %d: %s", jerr.line, jerr.column,
			jerr.text);
		reply_problem(ctx, ERR_INVALID, NULL);
		return NULL;
	}
	if (!json_is_object(root)) {
		json_decref(root);
		err_set(ERR_INVALID, "the body must be a JSON object");
		reply_problem(ctx, ERR_INVALID, NULL);
		return NULL;
	}
	return root;
}

/* ---- authentication ---- */

/* A small cache of principals found in the database, so that the hot path
 * (one consent check per request) does not query for the token each time.
 * Keyed by the token's SHA-256; positive entries only. An entry lives
 * AUTH_CACHE_SECONDS, so `consentd token revoke` takes effect within that
 * time even without a SIGHUP (which empties the cache at once). */
#define AUTH_CACHE_SLOTS 256
#define AUTH_CACHE_SECONDS 10

struct auth_cache {
	pthread_mutex_t lock;
	struct {
		bool used;
		int64_t until_us;
		uint8_t hash[32];
		char actor[STORE_TEXT_CAP];
		char role[STORE_NAME_CAP];
	} slot[AUTH_CACHE_SLOTS];
};

static bool auth_cache_get(struct auth_cache *c, const uint8_t hash[32], char *actor, char *role)
{
	bool hit = false;
	if (c == NULL)
		return false;
	unsigned i = hash[0] | (unsigned)hash[1] << 8;
	i %= AUTH_CACHE_SLOTS;
	pthread_mutex_lock(&c->lock);
	if (c->slot[i].used && c->slot[i].until_us > now_us() && crypto_equal(c->slot[i].hash, hash, 32)) {
		memcpy(actor, c->slot[i].actor, STORE_TEXT_CAP);
		memcpy(role, c->slot[i].role, STORE_NAME_CAP);
		hit = true;
	}
	pthread_mutex_unlock(&c->lock);
	return hit;
}

static void auth_cache_put(struct auth_cache *c, const uint8_t hash[32], const char *actor,
			   const char *role)
{
	if (c == NULL)
		return;
	unsigned i = hash[0] | (unsigned)hash[1] << 8;
	i %= AUTH_CACHE_SLOTS;
	pthread_mutex_lock(&c->lock);
	c->slot[i].used = true;
	c->slot[i].until_us = now_us() + AUTH_CACHE_SECONDS * INT64_C(1000000);
	memcpy(c->slot[i].hash, hash, 32);
	snprintf(c->slot[i].actor, STORE_TEXT_CAP, "%s", actor);
	snprintf(c->slot[i].role, STORE_NAME_CAP, "%s", role);
	pthread_mutex_unlock(&c->lock);
}

static void auth_cache_clear(struct auth_cache *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&c->lock);
	for (int i = 0; i < AUTH_CACHE_SLOTS; i++)
		c->slot[i].used = false;
	pthread_mutex_unlock(&c->lock);
}

static int authenticate(struct reqctx *ctx, const char **reason)
{
	const char *h = http_header(ctx->http, "Authorization");
	uint8_t hash[32];
	const char *name = NULL, *role = NULL;
	if (h == NULL) {
		*reason = "missing_token";
		return err_set(ERR_UNAUTHENTICATED, "send Authorization: Bearer <token>");
	}
	if (strncasecmp(h, "Bearer ", 7) != 0 || strlen(h + 7) < 16 || strlen(h + 7) > 256) {
		*reason = "malformed_token";
		return err_set(ERR_UNAUTHENTICATED, "the Authorization header must be: Bearer <token>");
	}
	crypto_sha256(h + 7, strlen(h + 7), hash);
	if (policy_principal_find(ctx->policy, hash, &name, &role) == 0) {
		snprintf(ctx->actor, sizeof ctx->actor, "%s", name);
		snprintf(ctx->role, sizeof ctx->role, "%s", role);
	} else if (!auth_cache_get(ctx->app->auth_cache, hash, ctx->actor, ctx->role)) {
		int rc = store_principal_find(ctx->rd, hash, ctx->actor, ctx->role);
		if (rc == ERR_NOTFOUND) {
			*reason = "unknown_token";
			return err_set(ERR_UNAUTHENTICATED, "the token is not valid");
		}
		if (rc != 0) {
			/* The token may well be valid: a failed lookup is the
			 * server's trouble, never a reason to call the client
			 * unauthenticated. */
			*reason = "store_unavailable";
			fprintf(stderr, "consentd: request %s: token lookup failed: %s\n",
				http_request_id(ctx->http), err_msg());
			return err_set(ERR_UNAVAILABLE, "the credentials cannot be checked right now");
		}
		auth_cache_put(ctx->app->auth_cache, hash, ctx->actor, ctx->role);
	}
	crypto_wipe(hash, sizeof hash);
	/* A principal created before names were checked may have one the audit
	 * trail cannot hold (a control character, too long) or one that passes
	 * for consentd's own actors; it cannot act until it is created again. */
	if (!is_principal_name(ctx->actor)) {
		ctx->actor[0] = ctx->role[0] = '\0';
		*reason = "unusable_principal_name";
		return err_set(ERR_UNAUTHENTICATED, "this token's principal name cannot be recorded; "
				"create a new token with a valid --name");
	}
	ctx->authenticated = true;
	return 0;
}

/* ---- http callbacks ---- */

static int ensure_reader(struct reqctx *ctx)
{
	if (ctx->rd == NULL)
		return store_conn_get(ctx->app->store, &ctx->rd);
	return 0;
}

static void on_headers(struct http_request *req, void *arg)
{
	struct app *app = arg;
	/* Each request starts with a clean error state: a message or code left
	 * by an earlier request on this thread must never decide this one. */
	err_clear();
	/* The audit entry is several kilobytes of fixed buffers; zero everything
	 * but it (audit_begin fills it), since this runs for every request. */
	_Static_assert(offsetof(struct writer_job, entry) == 0, "entry leads struct writer_job");
	struct reqctx *ctx = malloc(sizeof *ctx);
	if (ctx == NULL)
		return;
	size_t job_at = offsetof(struct reqctx, job), entry_end = job_at + sizeof(struct audit_entry);
	memset(ctx, 0, job_at);
	memset((char *)ctx + entry_end, 0, sizeof *ctx - entry_end);
	ctx->app = app;
	ctx->http = req;
	http_set_state(req, ctx);
	atomic_fetch_add(&app->metrics.requests, 1);
	ctx->policy = app_policy(app);

	char allow[ROUTER_ALLOW_CAP];
	int rc = router_match(http_method(req), http_path(req), &ctx->route, ctx->param, allow);
	if (rc != 0)
		return; /* answered in on_complete */
	uint64_t limit = ctx->route->body_limit ? ctx->route->body_limit : LIMIT_BODY_BYTES;
	http_set_body_limit(req, limit);
	const char *cl = http_header(req, "Content-Length");
	if (cl != NULL && strtoull(cl, NULL, 10) > limit) {
		err_set(ERR_TOOBIG, "the body is larger than %llu bytes", (unsigned long long)limit);
		reply_problem(ctx, ERR_TOOBIG, NULL);
		app_send(ctx);
		return;
	}
	if (ctx->route->stream != NULL) {
		http_set_streaming(req);
		const char *reason = NULL;
		if (ensure_reader(ctx) == 0 && authenticate(ctx, &reason) == 0) {
			ctx->stream_rc = ctx->route->stream->begin(ctx);
			/* Body chunks may set other messages before finish runs. */
			if (ctx->stream_rc != 0)
				snprintf(ctx->stream_begin_msg, sizeof ctx->stream_begin_msg, "%s", err_msg());
		} else {
			ctx->stream_rc = ERR_UNAUTHENTICATED;
		}
	}
}

static void on_body(struct http_request *req, const char *data, size_t len, void *arg)
{
	(void)arg;
	struct reqctx *ctx = http_state(req);
	if (ctx == NULL || ctx->stream_rc != 0 || ctx->route == NULL || ctx->route->stream == NULL)
		return;
	err_clear();
	ctx->stream_rc = ctx->route->stream->chunk(ctx, data, len);
	/* Kept with the request: other requests run on this thread before
	 * finish does, and each clears the thread's error state. */
	if (ctx->stream_rc != 0)
		snprintf(ctx->stream_msg, sizeof ctx->stream_msg, "%s", err_msg());
}

/* code is authenticate()'s own result, never the thread's last error: that
 * may be left over from another request served on this thread. */
static void refuse_auth(struct reqctx *ctx, const char *reason, int code)
{
	atomic_fetch_add(&ctx->app->metrics.auth_failures, 1);
	if (code != ERR_UNAVAILABLE)
		code = ERR_UNAUTHENTICATED;
	reply_problem(ctx, code, NULL);
	if (code == ERR_UNAVAILABLE)
		http_add_header(ctx->http, "Retry-After", "5");
	audit_begin(ctx, "auth.failure", NULL, NULL, NULL);
	audit_decide(ctx, false, reason);
	char detail[160];
	snprintf(detail, sizeof detail, "%s %s", http_method(ctx->http), ctx->route ? ctx->route->pattern : "");
	audit_detail(ctx, json_pack("{s:s}", "route", detail));
	app_commit(ctx);
}

static void on_complete(struct http_request *req, void *arg)
{
	struct app *app = arg;
	struct reqctx *ctx = http_state(req);
	char allow[ROUTER_ALLOW_CAP];
	if (ctx == NULL)
		return; /* out of memory: http answers 500 */
	/* Callbacks of other connections may have run on this thread since
	 * on_headers; only this request's own saved error counts. */
	err_clear();
	if (ctx->stream_rc != 0 && ctx->stream_msg[0] != '\0')
		err_set(ctx->stream_rc, "%s", ctx->stream_msg);
	if (ctx->route == NULL) {
		int rc = router_match(http_method(req), http_path(req), &ctx->route, ctx->param, allow);
		if (rc == ERR_UNSUPPORTED) {
			reply_problem_status(ctx, 405, "method-not-allowed", "Method not allowed", err_msg(), NULL);
			http_add_header(req, "Allow", allow);
		} else {
			reply_problem(ctx, ERR_NOTFOUND, NULL);
		}
		app_send(ctx);
		return;
	}
	if (ensure_reader(ctx) != 0) {
		reply_problem(ctx, ERR_UNAVAILABLE, NULL);
		app_send(ctx);
		return;
	}
	if (!ctx->route->public && !ctx->authenticated) {
		const char *reason = "unknown_token";
		int arc = authenticate(ctx, &reason);
		if (arc != 0) {
			refuse_auth(ctx, reason, arc);
			return;
		}
	}
	if (ctx->route->stream != NULL) {
		if (ctx->stream_rc == ERR_UNAUTHENTICATED && !ctx->authenticated) {
			const char *reason = "unknown_token";
			refuse_auth(ctx, reason, authenticate(ctx, &reason));
			return;
		}
		if (http_body_too_big(req)) {
			err_set(ERR_TOOBIG, "the body is larger than allowed");
			reply_problem(ctx, ERR_TOOBIG, NULL);
			app_send(ctx);
			return;
		}
		ctx->route->stream->finish(ctx);
	} else {
		ctx->route->handler(ctx);
	}
	if (!ctx->replied) {
		/* A handler that prepared a reply without sending it. */
		app_send(ctx);
	}
	(void)app;
}

static void on_free(struct http_request *req, void *arg)
{
	struct app *app = arg;
	struct reqctx *ctx = http_state(req);
	if (ctx == NULL)
		return;
	if (ctx->stream_state != NULL && ctx->route != NULL && ctx->route->stream != NULL)
		ctx->route->stream->free(ctx->stream_state);
	if (ctx->state != NULL && ctx->state_free != NULL)
		ctx->state_free(ctx->state);
	drop_reply(ctx);
	store_conn_put(app->store, ctx->rd);
	policy_unref(ctx->policy);
	free(ctx);
}

/* ---- lifecycle ---- */

static int read_file(const char *path, char **out, bool secret)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int rc = 0;
	*out = NULL;
	if (fd < 0)
		return err_set(ERR_NOTFOUND, "cannot open %s: %s", path, strerror(errno));
	if (fstat(fd, &st) != 0 || st.st_size > 1024 * 1024) {
		close(fd);
		return err_set(ERR_INVALID, "%s is not a small regular file", path);
	}
	if (secret && (st.st_mode & (S_IRWXG | S_IRWXO))) {
		close(fd);
		return err_set(ERR_DENIED,
			       "key file %s is accessible by group or others (mode %03o); run: chmod 600 %s",
			       path, (unsigned)(st.st_mode & 0777), path);
	}
	char *buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL || read(fd, buf, (size_t)st.st_size) != st.st_size) {
		free(buf);
		rc = err_set(ERR_IO, "cannot read %s", path);
	} else {
		buf[st.st_size] = '\0';
		*out = buf;
	}
	close(fd);
	return rc;
}

static void print_policy_errors(struct policy_errors *errs)
{
	if (errs != NULL)
		policy_errors_print(errs, stderr);
}

int app_reload_policy(struct app *app)
{
	struct policy *next = NULL;
	struct policy_errors *errs = NULL;
	struct writer_job job;
	memset(&job, 0, sizeof job);
	int rc = policy_load_file(&next, app->cfg.policy, &errs);
	audit_entry_fill(&job.entry, "system", "", "policy.reload", "", "", "", rc == 0 ? "allow" : "deny",
			 rc == 0 ? "valid" : "invalid");
	if (rc != 0) {
		fprintf(stderr, "consentd: policy reload refused; the previous policy stays live:\n");
		print_policy_errors(errs);
	}
	policy_errors_free(errs);
	/* The new policy goes live only once its entry is durable: a policy
	 * that decided requests without a record of when it arrived would make
	 * those decisions unexplainable. */
	int arc = writer_run(app->writer, &job);
	if (rc == 0 && arc != 0) {
		fprintf(stderr, "consentd: policy reload refused, the audit entry cannot be written; "
				"the previous policy stays live\n");
		policy_unref(next);
		return err_set(ERR_UNAVAILABLE, "the policy reload cannot be audited");
	}
	if (rc == 0) {
		pthread_mutex_lock(&app->policy_lock);
		struct policy *old = app->policy;
		app->policy = next;
		pthread_mutex_unlock(&app->policy_lock);
		policy_unref(old);
		fprintf(stderr, "consentd: policy reloaded from %s\n", app->cfg.policy);
	}
	return rc;
}

int app_reload_keys(struct app *app)
{
	/* In place: the keyring only takes the versions it lacks, so any
	 * number of SIGHUPs costs no memory and never runs out of room. */
	int added = 0;
	int rc = keyring_refresh(atomic_load(&app->keys), &added);
	if (rc != 0) {
		fprintf(stderr, "consentd: key reload incomplete, the loaded keys stay in use: %s\n", err_msg());
		return rc;
	}
	fprintf(stderr, "consentd: keys reloaded (master key version %d)\n",
		keyring_current_version(atomic_load(&app->keys)));
	return 0;
}

int app_open(struct app *app, const char *dir, const char *listen_override)
{
	struct policy_errors *errs = NULL;
	char *cert = NULL, *key = NULL;
	int rc;
	memset(app, 0, sizeof *app);
	pthread_mutex_init(&app->policy_lock, NULL);
	app->started_us = now_us();
	app->auth_cache = calloc(1, sizeof *app->auth_cache);
	if (app->auth_cache == NULL)
		return err_set(ERR_NOMEM, "out of memory");
	pthread_mutex_init(&app->auth_cache->lock, NULL);
	if ((rc = config_load(&app->cfg, dir)) != 0)
		return rc;
	if (listen_override != NULL &&
	    (rc = config_parse_listen(listen_override, app->cfg.address, sizeof app->cfg.address,
				      &app->cfg.port)) != 0)
		return rc;
	struct keyring *kr = NULL;
	if ((rc = keyring_open(&kr, app->cfg.keys_dir)) != 0)
		return rc;
	atomic_store(&app->keys, kr);
	if ((rc = policy_load_file(&app->policy, app->cfg.policy, &errs)) != 0) {
		fprintf(stderr, "consentd: the policy file is invalid:\n");
		print_policy_errors(errs);
		policy_errors_free(errs);
		return err_set(rc, "refusing to start with an invalid policy (%s)", app->cfg.policy);
	}
	if ((rc = store_open(&app->store, app->cfg.database)) != 0)
		return rc;
	if ((rc = writer_open(&app->writer, app->store, app->cfg.signing_key, app->cfg.audit_anchor)) != 0)
		return rc;
	if ((rc = auditwatch_start(&app->watch, app->store, app->cfg.signing_pub, app->cfg.audit_anchor,
				   app->cfg.audit_verify_every)) != 0)
		return rc;
	if ((rc = read_file(app->cfg.tls_cert, &cert, false)) != 0 ||
	    (rc = read_file(app->cfg.tls_key, &key, true)) != 0)
		goto out;
	struct http_config hc = {
		.address = app->cfg.address,
		.port = app->cfg.port,
		.cert_pem = cert,
		.key_pem = key,
		.threads = app->cfg.threads,
		.cb = { on_headers, on_body, on_complete, on_free },
		.app = app,
	};
	rc = http_start(&app->http, &hc);
	if (rc == 0 && !app->cfg.public_url_given)
		config_default_public_url(&app->cfg, http_port(app->http)); /* --listen with port 0 */
out:
	free(cert);
	if (key != NULL) {
		crypto_wipe(key, strlen(key));
		free(key);
	}
	return rc;
}

int app_serve(struct app *app)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	atomic_store(&app->ready, true);
	for (;;) {
		int sig = 0;
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			auth_cache_clear(app->auth_cache);
			app_reload_keys(app);
			app_reload_policy(app);
			continue;
		}
		fprintf(stderr, "consentd: shutting down\n");
		atomic_store(&app->ready, false);
		return 0;
	}
}

void app_close(struct app *app)
{
	/* Answer waiting verifications (through the log), drain the audit queue
	 * (every suspended request gets its reply), then stop the server, then
	 * free the log. */
	auditwatch_stop(app->watch);
	app->watch = NULL;
	writer_shutdown(app->writer);
	http_stop(app->http);
	writer_close(app->writer);
	store_close(app->store);
	keyring_free(atomic_load(&app->keys));
	policy_unref(app->policy);
	pthread_mutex_destroy(&app->policy_lock);
	if (app->auth_cache != NULL) {
		pthread_mutex_destroy(&app->auth_cache->lock);
		crypto_wipe(app->auth_cache, sizeof *app->auth_cache);
		free(app->auth_cache);
	}
}
