/*
 * h_events: POST /v1/events/{provider}, where email providers report
 * bounces, complaints and unsubscribes (docs/integrations.md). Public: no
 * bearer token; each provider proves itself by its own scheme
 * (service/domain/provider.h). The steps, in order:
 *
 *   provider not configured ─> 404 (as for any unknown path; not audited)
 *   body over LIMIT_EVENT_BODY_BYTES ─> 413 (not audited: nothing was read)
 *   Mailgun only: parse (the signature is in the body) ─> 400 (not audited)
 *   proof fails (signature, stale timestamp, credentials)
 *        ─> audit events.auth_failure ─> 401
 *   parse (SendGrid, Postmark) ─> 400 / 413, audited as events.receive deny
 *   take in (one job: the events and their audit entry commit together)
 *        ─> audit events.receive allow ─> 200 with the counts
 *
 * A replayed event is counted as replayed and changes nothing; the reply is
 * still 200 so that the provider stops retrying. Neither the reply nor the
 * audit entry holds an address: the entry names the provider, the counts
 * and the event ids as keyed hashes.
 */
#include "service/app.h"

#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/domain/provider.h"
#include "service/evparse.h"
#include "service/router.h"

#include <stdlib.h>
#include <string.h>

struct ev_req {
	enum provider_kind kind;
	struct evp_item *items;
	size_t n;
	struct provider_counts counts;
};

static void ev_free(void *p)
{
	struct ev_req *r = p;
	if (r == NULL)
		return;
	if (r->items != NULL) {
		mem_wipe(r->items, LIMIT_EVENT_BATCH * sizeof *r->items);
		free(r->items);
	}
	free(r);
}

static json_t *counts_json(const struct provider_counts *c)
{
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "events", (json_int_t)c->events, "suppressed",
			 (json_int_t)c->suppressed, "already_suppressed", (json_int_t)c->already, "replayed",
			 (json_int_t)c->replayed, "soft_bounces", (json_int_t)c->soft, "ignored",
			 (json_int_t)c->ignored);
}

static int apply_take_in(struct store_conn *w, struct writer_job *job)
{
	struct reqctx *ctx = job->ctx;
	struct ev_req *r = ctx->state;
	struct txn t = app_txn(ctx, w);
	int rc = provider_take_in(&t, provider_name(r->kind), r->items, r->n,
				  &ctx->app->cfg.events.sendgrid_groups, &r->counts);
	if (rc != 0) {
		audit_decide(ctx, false, "error");
		return rc;
	}
	json_t *d = counts_json(&r->counts);
	json_object_set_new(d, "provider", json_string(provider_name(r->kind)));
	json_object_set_new(d, "event_ids", json_string(r->counts.ids));
	audit_detail(ctx, d);
	reply_json(ctx, 200, counts_json(&r->counts));
	return 0;
}

static int h_events(struct reqctx *ctx)
{
	struct ev_req *r = NULL;
	struct evp_mailgun_sig mg;
	size_t len = 0;
	const char *body = http_body(ctx->http, &len);
	const char *why = "";
	enum provider_kind kind;
	int rc;
	if (provider_from_name(ctx->param[0], &kind) != 0 || !provider_configured(ctx->app->provsig, kind)) {
		return err_set(ERR_NOTFOUND, "no such resource");
	}
	if (http_body_too_big(ctx->http)) {
		return err_set(ERR_TOOBIG, "a provider request is at most %d bytes", LIMIT_EVENT_BODY_BYTES);
	}
	if ((r = calloc(1, sizeof *r)) == NULL ||
	    (r->items = calloc(LIMIT_EVENT_BATCH, sizeof *r->items)) == NULL) {
		ev_free(r);
		return err_set(ERR_NOMEM, "out of memory");
	}
	r->kind = kind;
	ctx->state = r;
	ctx->state_free = ev_free;

	struct provider_proof proof = { .body = body,
					.len = len,
					.authorization = http_header(ctx->http, "Authorization") };
	if (kind == PROVIDER_SENDGRID) {
		proof.signature = http_header(ctx->http, "X-Twilio-Email-Event-Webhook-Signature");
		proof.timestamp = http_header(ctx->http, "X-Twilio-Email-Event-Webhook-Timestamp");
	} else if (kind == PROVIDER_MAILGUN) {
		if ((rc = evparse_mailgun(body, len, &r->items[0], &mg)) != 0) {
			return rc;
		}
		r->n = 1;
		proof.timestamp = mg.timestamp;
		proof.token = mg.token;
		proof.signature = mg.signature;
	}
	struct txn t = app_txn(ctx, NULL);
	if ((rc = provider_authenticate(&t, ctx->app->provsig, kind, &proof, &why)) != 0) {
		atomic_fetch_add(&ctx->app->metrics.auth_failures, 1);
		audit_begin(ctx, "events.auth_failure", "", NULL, NULL);
		audit_decide(ctx, false, why);
		audit_detail(ctx, json_pack("{s:s}", "provider", provider_name(kind)));
		return app_reason(ctx, rc, decision_reason_from_name(why));
	}
	audit_begin(ctx, "events.receive", "", NULL, NULL);
	if (kind == PROVIDER_SENDGRID) {
		rc = evparse_sendgrid(body, len, r->items, LIMIT_EVENT_BATCH, &r->n);
	} else if (kind == PROVIDER_POSTMARK) {
		rc = evparse_postmark(body, len, &r->items[0]);
		r->n = rc == 0 ? 1 : 0;
	}
	if (rc != 0) {
		enum decision_reason reason =
			rc == ERR_TOOBIG ? REASON_TOO_MANY_EVENTS : REASON_INVALID_EVENTS;
		audit_decide_reason(ctx, false, reason);
		audit_detail(ctx, json_pack("{s:s}", "provider", provider_name(kind)));
		return app_reason(ctx, rc, reason);
	}
	audit_decide(ctx, true, "taken_in");
	reply_json(ctx, 200, json_object()); /* replaced in apply */
	ctx->job.apply = apply_take_in;
	app_commit(ctx);
	return 0;
}

const struct route event_routes[] = {
	{ "POST", "/v1/events/{name}", h_events, NULL, true, LIMIT_EVENT_BODY_BYTES, "events.receive" },
	{ 0 },
};
