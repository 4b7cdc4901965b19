/*
 * h_webhooks: the admin's outbound webhook endpoints (docs/integrations.md).
 * Every route needs webhooks.manage and is audited; the entry names the
 * endpoint id and its event types, never its URL (which may carry a
 * subscriber's token) and never its secret. The secret is in the 201 reply
 * of the create and nowhere else.
 *
 *   POST   /v1/webhooks                     create ─> 201 {id, secret, ...}
 *   GET    /v1/webhooks                     list
 *   GET    /v1/webhooks/{id}                one
 *   DELETE /v1/webhooks/{id}                delete (pending deliveries fail)
 *   GET    /v1/webhooks/{id}/deliveries     the latest deliveries
 *   POST   /v1/webhooks/{id}/deliveries/{delivery}/retry   due again now
 */
#include "service/app.h"

#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/domain/contact.h"
#include "service/domain/webhook.h"
#include "service/router.h"

#include <stdlib.h>
#include <string.h>

static void wh_free(void *p)
{
	if (p != NULL)
		mem_wipe(p, sizeof(struct webhook_new));
	free(p);
}

static int apply_create(struct store_conn *w, struct writer_job *job)
{
	struct reqctx *ctx = job->ctx;
	struct webhook_new *in = ctx->state;
	struct store_webhook out;
	char secret[WEBHOOK_SECRET_CAP];
	struct txn t = app_txn(ctx, w);
	int rc = webhook_create(&t, in, &out, secret);
	if (rc != 0) {
		audit_decide(ctx, false, rc == ERR_CONFLICT ? "too_many_endpoints" : "error");
		return rc;
	}
	audit_detail(ctx, json_pack("{s:s, s:s, s:s}", "endpoint_id", out.id, "events", out.events, "role",
				    out.role));
	json_t *body = webhook_to_json(&out);
	json_object_set_new(body, "secret", json_string(secret));
	reply_json(ctx, 201, body);
	mem_wipe(secret, sizeof secret);
	mem_wipe(&out, sizeof out);
	return 0;
}

static int h_webhook_create(struct reqctx *ctx)
{
	json_t *body = NULL;
	struct webhook_new *in = NULL;
	int rc;
	if (!app_require(ctx, POLICY_ACT_WEBHOOKS_MANAGE, NULL, NULL))
		return 0;
	if ((rc = app_body(ctx, &body)) != 0)
		return rc;
	struct txn t = app_txn(ctx, NULL);
	if ((in = calloc(1, sizeof *in)) == NULL)
		rc = err_set(ERR_NOMEM, "out of memory");
	else
		rc = webhook_parse(&t, &ctx->app->cfg.webhooks, body, in);
	json_decref(body);
	if (rc != 0) {
		wh_free(in);
		return rc;
	}
	ctx->state = in;
	ctx->state_free = wh_free;
	audit_begin(ctx, "webhooks.create", "", NULL, NULL);
	audit_decide(ctx, true, "created");
	reply_json(ctx, 201, json_object()); /* replaced in apply */
	ctx->job.apply = apply_create;
	app_commit(ctx);
	return 0;
}

/* The end of a read: the reply, or the error, audited. */
static int read_done(struct reqctx *ctx, int rc, json_t *body)
{
	if (rc != 0) {
		audit_decide(ctx, false, rc == ERR_NOTFOUND ? "not_found" : "error");
		return rc;
	}
	audit_decide(ctx, true, "read");
	reply_json(ctx, 200, body);
	app_commit(ctx);
	return 0;
}

static int h_webhooks_list(struct reqctx *ctx)
{
	json_t *list = NULL;
	if (!app_require(ctx, POLICY_ACT_WEBHOOKS_MANAGE, NULL, NULL))
		return 0;
	audit_begin(ctx, "webhooks.read", "", NULL, NULL);
	struct txn t = app_txn(ctx, ctx->rd);
	int rc = webhook_list_json(&t, &list);
	return read_done(ctx, rc, rc == 0 ? json_pack("{s:o}", "webhooks", list) : NULL);
}

static int h_webhook_get(struct reqctx *ctx)
{
	struct store_webhook w;
	if (!app_require(ctx, POLICY_ACT_WEBHOOKS_MANAGE, NULL, NULL))
		return 0;
	audit_begin(ctx, "webhooks.read", "", NULL, NULL);
	audit_detail(ctx, json_pack("{s:s}", "endpoint_id", ctx->param[0]));
	struct txn t = app_txn(ctx, ctx->rd);
	int rc = webhook_get(&t, ctx->param[0], &w);
	rc = read_done(ctx, rc, rc == 0 ? webhook_to_json(&w) : NULL);
	mem_wipe(&w, sizeof w);
	return rc;
}

static int h_webhook_deliveries(struct reqctx *ctx)
{
	json_t *list = NULL;
	if (!app_require(ctx, POLICY_ACT_WEBHOOKS_MANAGE, NULL, NULL))
		return 0;
	audit_begin(ctx, "webhooks.deliveries", "", NULL, NULL);
	audit_detail(ctx, json_pack("{s:s}", "endpoint_id", ctx->param[0]));
	struct txn t = app_txn(ctx, ctx->rd);
	int rc = webhook_deliveries_json(&t, ctx->param[0], &list);
	return read_done(ctx, rc, rc == 0 ? json_pack("{s:o}", "deliveries", list) : NULL);
}

static int apply_delete(struct store_conn *w, struct writer_job *job)
{
	struct reqctx *ctx = job->ctx;
	struct txn t = app_txn(ctx, w);
	int rc = webhook_delete(&t, ctx->param[0]);
	if (rc != 0)
		audit_decide(ctx, false, rc == ERR_NOTFOUND ? "not_found" : "error");
	return rc;
}

static int h_webhook_delete(struct reqctx *ctx)
{
	if (!app_require(ctx, POLICY_ACT_WEBHOOKS_MANAGE, NULL, NULL))
		return 0;
	audit_begin(ctx, "webhooks.delete", "", NULL, NULL);
	audit_decide(ctx, true, "deleted");
	audit_detail(ctx, json_pack("{s:s}", "endpoint_id", ctx->param[0]));
	reply_json(ctx, 200, json_pack("{s:s, s:b}", "id", ctx->param[0], "deleted", true));
	ctx->job.apply = apply_delete;
	app_commit(ctx);
	return 0;
}

static int apply_retry(struct store_conn *w, struct writer_job *job)
{
	struct reqctx *ctx = job->ctx;
	struct txn t = app_txn(ctx, w);
	int rc = webhook_retry(&t, ctx->param[0], ctx->param[1]);
	if (rc != 0)
		audit_decide(ctx, false,
			     rc == ERR_NOTFOUND	  ? "not_found"
			     : rc == ERR_CONFLICT ? "disabled"
						  : "error");
	return rc;
}

static int h_webhook_retry(struct reqctx *ctx)
{
	if (!app_require(ctx, POLICY_ACT_WEBHOOKS_MANAGE, NULL, NULL))
		return 0;
	audit_begin(ctx, "webhooks.retry", "", NULL, NULL);
	audit_decide(ctx, true, "queued");
	audit_detail(ctx,
		     json_pack("{s:s, s:s}", "endpoint_id", ctx->param[0], "delivery_id", ctx->param[1]));
	reply_json(ctx, 202, json_pack("{s:s, s:s}", "id", ctx->param[1], "state", "pending"));
	ctx->job.apply = apply_retry;
	app_commit(ctx);
	return 0;
}

const struct route webhook_routes[] = {
	{ "POST", "/v1/webhooks", h_webhook_create, NULL, false, 0, "webhooks.create" },
	{ "GET", "/v1/webhooks", h_webhooks_list, NULL, false, 0, "webhooks.read" },
	{ "GET", "/v1/webhooks/{id}", h_webhook_get, NULL, false, 0, "webhooks.read" },
	{ "DELETE", "/v1/webhooks/{id}", h_webhook_delete, NULL, false, 0, "webhooks.delete" },
	{ "GET", "/v1/webhooks/{id}/deliveries", h_webhook_deliveries, NULL, false, 0,
	  "webhooks.deliveries" },
	{ "POST", "/v1/webhooks/{id}/deliveries/{token}/retry", h_webhook_retry, NULL, false, 0,
	  "webhooks.retry" },
	{ 0 },
};
