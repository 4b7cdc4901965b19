/*
 * h_requests: data-subject requests (access, erasure, objection) recorded
 * by staff on a person's behalf, listed, read, and moved through their
 * states with a reason. The rules (the state table, the deadlines, the
 * extension window, sealing the reason, the mail) are the request domain's
 * (service/domain/request.h); this file parses, authorises, audits and
 * renders.
 *
 *   POST /v1/requests                        requests.manage: 201 the new request
 *   GET  /v1/requests?state=&due_before=     requests.read: the list, earliest due first
 *   GET  /v1/requests/{id}                   requests.read: one, with its steps
 *   POST /v1/requests/{id}/transitions       requests.manage: {"to", "reason"}
 *
 * Every answer is audited: the entry names the contact as its record and
 * the request, its kind and the states in the detail, never the reason
 * (free text that may name the person). Completing an erasure request
 * erases the person, so it also needs contacts.erase.
 */
#include "service/app.h"

#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/base/limits.h"
#include "service/domain/request.h"
#include "service/router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct request_job {
	char contact_id[STORE_ID_CAP];
	enum request_kind kind;
	enum request_jurisdiction jurisdiction;
	struct request_date received;
	enum request_state to;
	char reason[LIMIT_REQUEST_REASON_BYTES + 1];
};

static void request_job_free(void *p)
{
	if (p != NULL)
		mem_wipe(p, sizeof(struct request_job));
	free(p);
}

static struct request_job *job_new(struct reqctx *ctx)
{
	struct request_job *j = calloc(1, sizeof *j);
	if (j != NULL) {
		ctx->state = j;
		ctx->state_free = request_job_free;
	}
	return j;
}

/* Whether body has only the keys in allowed (NULL-terminated). */
static bool only_keys(json_t *body, const char *const *allowed)
{
	const char *k;
	json_t *v;
	json_object_foreach (body, k, v) {
		bool ok = false;
		for (size_t i = 0; allowed[i] != NULL && !ok; i++)
			ok = strcmp(k, allowed[i]) == 0;
		if (!ok)
			return false;
	}
	return true;
}

/* received_at: a date (YYYY-MM-DD) or an RFC 3339 time, whose UTC day is
 * the day of receipt. */
static int parse_received(const char *s, struct request_date *out)
{
	int64_t us;
	int y, m, d;
	char tail;
	if (strlen(s) == 10 && sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &tail) == 3) {
		*out = (struct request_date){ y, m, d };
		return request_date_valid(*out) ? 0 : err_set(ERR_INVALID, "received_at is not a real date");
	}
	if (parse_time(s, &us) != 0)
		return err_set(ERR_INVALID, "received_at must be a date (YYYY-MM-DD) or an RFC 3339 time");
	int64_t sec = us / 1000000;
	*out = request_date_of_day(sec >= 0 ? sec / 86400 : (sec - 86399) / 86400);
	return 0;
}

/* ---- creating ---- */

static int apply_create(struct store_conn *wc, struct writer_job *job)
{
	struct reqctx *ctx = job->ctx;
	struct request_job *j = ctx->state;
	struct txn t = app_txn(ctx, wc);
	struct store_request r;
	enum decision_reason why = REASON_NONE;
	int rc = request_open(&t, j->contact_id, j->kind, j->jurisdiction, j->received, "staff",
			      REQUEST_RECEIVED, false, NULL, &r, &why);
	if (rc != 0) {
		audit_decide(ctx, false, why != REASON_NONE ? decision_reason_name(why) : "error");
		return rc;
	}
	audit_decide(ctx, true, "received");
	audit_detail(ctx, json_pack("{s:s, s:s, s:s, s:s}", "request_id", r.id, "kind", r.kind,
				    "jurisdiction", r.jurisdiction, "origin", r.origin));
	reply_json(ctx, 201, request_to_json(&r));
	return 0;
}

static int h_request_create(struct reqctx *ctx)
{
	static const char *const allowed[] = { "contact_id", "kind", "jurisdiction", "received_at", NULL };
	json_t *body = NULL;
	int rc;
	if ((rc = app_body(ctx, &body)) != 0)
		return rc;
	const char *cid = json_string_value(json_object_get(body, "contact_id"));
	const char *kind = json_string_value(json_object_get(body, "kind"));
	const char *jur = json_string_value(json_object_get(body, "jurisdiction"));
	json_t *recv = json_object_get(body, "received_at");
	struct request_job *j = job_new(ctx);
	if (j == NULL) {
		rc = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	if (!only_keys(body, allowed)) {
		rc = err_set(ERR_INVALID, "unknown field: the body takes contact_id, kind, jurisdiction and "
					  "received_at");
		goto out;
	}
	if (cid == NULL || !is_contact_id(cid)) {
		rc = err_set(ERR_INVALID, "contact_id must be a contact id");
		goto out;
	}
	if (kind == NULL || request_kind_from_name(kind, &j->kind) != 0) {
		rc = err_set(ERR_INVALID, "kind must be access, erasure or objection");
		goto out;
	}
	if (jur == NULL || request_jurisdiction_from_name(jur, &j->jurisdiction) != 0) {
		rc = err_set(ERR_INVALID, "jurisdiction must be gdpr or ccpa");
		goto out;
	}
	if (recv != NULL && !json_is_string(recv)) {
		rc = err_set(ERR_INVALID, "received_at must be a string");
		goto out;
	}
	if (recv != NULL) {
		if ((rc = parse_received(json_string_value(recv), &j->received)) != 0)
			goto out;
	} else {
		int64_t sec = now_us() / 1000000;
		j->received = request_date_of_day(sec / 86400);
	}
	/* Checked here too (the domain checks it again on the writer), so
	 * the common mistake is a plain 422 with nothing begun. */
	if (request_days(j->received) > now_us() / 1000000 / 86400) {
		rc = err_set(ERR_UNPROCESSABLE, "received_at is in the future");
		goto out;
	}
	snprintf(j->contact_id, sizeof j->contact_id, "%s", cid);
	if (!app_require(ctx, POLICY_ACT_REQUESTS_MANAGE, j->contact_id, NULL))
		goto out;
	audit_begin(ctx, "requests.create", j->contact_id, NULL, NULL);
	audit_decide(ctx, true, "received");
	ctx->job.apply = apply_create;
	app_commit(ctx);
out:
	json_decref(body);
	return rc;
}

/* ---- reading ---- */

struct list_query {
	const char *state;
	int64_t due_before;
	size_t limit;
	int rc;
};

static int list_param(void *arg, const char *name, const char *value)
{
	struct list_query *q = arg;
	enum request_state st;
	struct request_date d;
	if (strcmp(name, "state") == 0) {
		if (request_state_from_name(value, &st) != 0)
			return q->rc = err_set(ERR_INVALID, "state must be a request state");
		q->state = value;
	} else if (strcmp(name, "due_before") == 0) {
		if (parse_received(value, &d) != 0)
			return q->rc = err_set(ERR_INVALID, "due_before must be a date (YYYY-MM-DD)");
		q->due_before = request_days(d);
	} else if (strcmp(name, "limit") == 0) {
		char *end = NULL;
		long n = strtol(value, &end, 10);
		if (end == value || *end != '\0' || n < 1 || n > LIMIT_REQUEST_LIST)
			return q->rc = err_set(ERR_INVALID, "limit must be 1 to %d", LIMIT_REQUEST_LIST);
		q->limit = (size_t)n;
	} else {
		return q->rc = err_set(ERR_INVALID,
				       "unknown query parameter: the list takes state, due_before "
				       "and limit");
	}
	return 0;
}

static int h_requests_list(struct reqctx *ctx)
{
	struct list_query q = { NULL, 0, LIMIT_REQUEST_LIST_DEFAULT, 0 };
	json_t *arr = NULL;
	bool more = false;
	if (http_query_each(ctx->http, list_param, &q) != 0 || q.rc != 0)
		return q.rc != 0 ? q.rc : err_set(ERR_INVALID, "malformed query");
	if (!app_require(ctx, POLICY_ACT_REQUESTS_READ, NULL, NULL))
		return 0;
	struct txn t = app_txn(ctx, ctx->rd);
	audit_begin(ctx, "requests.list", "", NULL, NULL);
	int rc = request_list_json(&t, q.state, q.due_before, q.limit, &arr, &more);
	if (rc != 0) {
		audit_decide(ctx, false, "error");
		return rc;
	}
	audit_decide(ctx, true, "allowed");
	audit_detail(ctx, json_pack("{s:I}", "count", (json_int_t)json_array_size(arr)));
	reply_json(ctx, 200, json_pack("{s:o, s:b}", "requests", arr, "more", more));
	app_commit(ctx);
	return 0;
}

static int h_request_get(struct reqctx *ctx)
{
	struct store_request r;
	json_t *o = NULL;
	if (!app_require(ctx, POLICY_ACT_REQUESTS_READ, NULL, NULL))
		return 0;
	struct txn t = app_txn(ctx, ctx->rd);
	int rc = request_get(&t, ctx->param[0], &r);
	audit_begin(ctx, "requests.read", rc == 0 ? r.contact_id : "", NULL, NULL);
	if (rc == 0)
		rc = request_get_json(&t, r.id, true, &o);
	if (rc != 0) {
		audit_decide(ctx, false, rc == ERR_NOTFOUND ? "not_found" : "error");
		audit_detail(ctx, json_pack("{s:s}", "request_id", ctx->param[0]));
		return app_reason(ctx, rc, rc == ERR_NOTFOUND ? REASON_NOT_FOUND : REASON_NONE);
	}
	audit_decide(ctx, true, "allowed");
	audit_detail(ctx, json_pack("{s:s}", "request_id", r.id));
	/* The steps' reasons are staff text about the person. */
	audit_fields(ctx, "reason");
	reply_json(ctx, 200, o);
	app_commit(ctx);
	return 0;
}

/* ---- transitions ---- */

static int apply_move(struct store_conn *wc, struct writer_job *job)
{
	struct reqctx *ctx = job->ctx;
	struct request_job *j = ctx->state;
	struct txn t = app_txn(ctx, wc);
	struct store_request r;
	const char *refusal = NULL;
	int rc = request_move(&t, ctx->param[0], j->to, j->reason, ctx->actor, &r, &refusal);
	if (rc != 0) {
		audit_decide(ctx, false, rc == ERR_CONFLICT ? "invalid_transition" : "error");
		return rc;
	}
	if (refusal != NULL) {
		audit_decide(ctx, false, refusal);
		return strcmp(refusal, "erased") == 0
			       ? err_set(ERR_GONE, "the person was erased: the request cannot move")
			       : err_set(ERR_CONFLICT, "a %s request cannot move to %s (%s)", r.state,
					 request_state_name(j->to), refusal);
	}
	audit_decide(ctx, true, r.state);
	reply_json(ctx, 200, request_to_json(&r));
	return 0;
}

static int h_request_move(struct reqctx *ctx)
{
	static const char *const allowed[] = { "to", "reason", NULL };
	struct store_request r;
	json_t *body = NULL;
	int rc;
	if ((rc = app_body(ctx, &body)) != 0)
		return rc;
	const char *to = json_string_value(json_object_get(body, "to"));
	const char *reason = json_string_value(json_object_get(body, "reason"));
	struct request_job *j = job_new(ctx);
	if (j == NULL) {
		rc = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	if (!only_keys(body, allowed)) {
		rc = err_set(ERR_INVALID, "unknown field: a transition takes to and reason");
		goto out;
	}
	if (to == NULL || request_state_from_name(to, &j->to) != 0 || j->to == REQUEST_RECEIVED) {
		rc = err_set(ERR_INVALID, "to must be verified, in_progress, extended, completed or denied");
		goto out;
	}
	/* A reason is what makes a refusal or an extension answerable to the
	 * person; it is kept whole or refused, never cut. */
	size_t rlen = reason != NULL ? strlen(reason) : 0;
	if (reason == NULL || rlen == 0 || !is_clean_utf8(reason, rlen)) {
		rc = err_set(ERR_INVALID, "reason must be a non-empty string");
		goto out;
	}
	if (rlen > LIMIT_REQUEST_REASON_BYTES) {
		rc = err_set(ERR_TOOBIG, "reason is longer than %d bytes", LIMIT_REQUEST_REASON_BYTES);
		goto out;
	}
	memcpy(j->reason, reason, rlen + 1);
	if (!app_require(ctx, POLICY_ACT_REQUESTS_MANAGE, NULL, NULL))
		goto out;
	struct txn t = app_txn(ctx, ctx->rd);
	if ((rc = request_get(&t, ctx->param[0], &r)) != 0) {
		audit_begin(ctx, "requests.transition", "", NULL, NULL);
		audit_decide(ctx, false, rc == ERR_NOTFOUND ? "not_found" : "error");
		audit_detail(ctx, json_pack("{s:s}", "request_id", ctx->param[0]));
		rc = app_reason(ctx, rc, rc == ERR_NOTFOUND ? REASON_NOT_FOUND : REASON_NONE);
		goto out;
	}
	bool erases = j->to == REQUEST_COMPLETED && strcmp(r.kind, "erasure") == 0;
	/* Completing an erasure erases: only a role that may erase may. */
	if (erases && !app_require(ctx, POLICY_ACT_CONTACTS_ERASE, r.contact_id, NULL))
		goto out;
	audit_begin(ctx, "requests.transition", r.contact_id, NULL, NULL);
	audit_decide(ctx, true, request_state_name(j->to));
	audit_detail(ctx, json_pack("{s:s, s:s, s:s, s:s}", "request_id", r.id, "kind", r.kind, "from",
				    r.state, "to", request_state_name(j->to)));
	ctx->job.apply = apply_move;
	/* An erasure is confirmed only once no older copy is left in the WAL. */
	ctx->job.purge_wal = erases;
	app_commit(ctx);
out:
	json_decref(body);
	return rc;
}

const struct route request_routes[] = {
	{ "POST", "/v1/requests", h_request_create, NULL, false, 0, "requests.create" },
	{ "GET", "/v1/requests", h_requests_list, NULL, false, 0, "requests.list" },
	{ "GET", "/v1/requests/{id}", h_request_get, NULL, false, 0, "requests.read" },
	{ "POST", "/v1/requests/{id}/transitions", h_request_move, NULL, false, 0, "requests.transition" },
	{ 0 },
};
