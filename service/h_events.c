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
 * SES posts through Amazon SNS (h_events_ses): the SNS message is parsed
 * first (400, not audited), then proven (topic, certificate URL, the
 * certificate fetched, signature, timestamp: 401, or 503 when the
 * certificate cannot be fetched now, audited as events.auth_failure). A
 * SubscriptionConfirmation is confirmed by a GET of its SubscribeURL, whose
 * host must pass the same check (503 when that fails, so SNS sends it
 * again); an UnsubscribeConfirmation is recorded; both are audited as
 * events.receive. A Notification's SES events are taken in like any other.
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
#include "service/snscert.h"

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

/* A refusal after the provider's proof failed: audited, then rendered by
 * the dispatcher. */
static int refuse_audited(struct reqctx *ctx, enum provider_kind kind, const char *action, int rc,
			  const char *why)
{
	if (rc == ERR_UNAUTHENTICATED)
		atomic_fetch_add(&ctx->app->metrics.auth_failures, 1);
	audit_begin(ctx, action, "", NULL, NULL);
	audit_decide(ctx, false, why);
	audit_detail(ctx, json_pack("{s:s}", "provider", provider_name(kind)));
	return app_reason(ctx, rc, decision_reason_from_name(why));
}

/* A proven SNS (Un)SubscriptionConfirmation: audited, and a subscription is
 * confirmed by fetching its SubscribeURL. */
static int ses_confirmation(struct reqctx *ctx, const struct evp_sns *m)
{
	const struct provider_ses *cfg = &ctx->app->cfg.events.ses;
	bool subscribe = m->type == EVP_SNS_SUBSCRIBE;
	int rc = 0;
	audit_begin(ctx, "events.receive", "", NULL, NULL);
	if (subscribe && ((rc = provider_sns_url_ok(cfg, m->subscribe_url, false)) != 0 ||
			  (rc = snscert_confirm(ctx->app->snscert, m->subscribe_url)) != 0)) {
		enum decision_reason reason =
			rc == ERR_UNAUTHENTICATED ? REASON_BAD_SUBSCRIBE_URL : REASON_CONFIRM_FAILED;
		audit_decide_reason(ctx, false, reason);
		audit_detail(ctx, json_pack("{s:s, s:s}", "provider", "ses", "topic", m->topic_arn));
		return app_reason(ctx, rc == ERR_UNAUTHENTICATED ? ERR_UNAUTHENTICATED : ERR_UNAVAILABLE,
				  reason);
	}
	audit_decide(ctx, true, subscribe ? "subscription_confirmed" : "unsubscribe_confirmed");
	audit_detail(ctx, json_pack("{s:s, s:s}", "provider", "ses", "topic", m->topic_arn));
	reply_json(ctx, 200,
		   json_pack("{s:s, s:s}", "topic", m->topic_arn, "subscription",
			     subscribe ? "confirmed" : "ended"));
	app_commit(ctx);
	return 0;
}

static int h_events_ses(struct reqctx *ctx, struct ev_req *r, const char *body, size_t len)
{
	struct evp_sns *m = calloc(1, sizeof *m);
	const char *why = "";
	int rc;
	if (m == NULL)
		return err_set(ERR_NOMEM, "out of memory");
	if ((rc = evparse_sns(body, len, m)) != 0)
		goto out;
	struct txn t = app_txn(ctx, NULL);
	if ((rc = provider_sns_authenticate(&t, &ctx->app->cfg.events.ses, m, snscert_get, ctx->app->snscert,
					    &why)) != 0) {
		rc = refuse_audited(ctx, PROVIDER_SES, "events.auth_failure", rc, why);
		goto out;
	}
	if (m->type != EVP_SNS_NOTIFICATION) {
		rc = ses_confirmation(ctx, m);
		goto out;
	}
	audit_begin(ctx, "events.receive", "", NULL, NULL);
	if ((rc = evparse_ses(m->message, m->message_len, m->message_id, r->items, LIMIT_EVENT_BATCH,
			      &r->n)) != 0) {
		enum decision_reason reason =
			rc == ERR_TOOBIG ? REASON_TOO_MANY_EVENTS : REASON_INVALID_EVENTS;
		audit_decide_reason(ctx, false, reason);
		audit_detail(ctx, json_pack("{s:s}", "provider", "ses"));
		rc = app_reason(ctx, rc, reason);
		goto out;
	}
	audit_decide(ctx, true, "taken_in");
	reply_json(ctx, 200, json_object()); /* replaced in apply */
	ctx->job.apply = apply_take_in;
	app_commit(ctx);
out:
	evparse_sns_clear(m);
	free(m);
	return rc;
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
	if (provider_from_name(ctx->param[0], &kind) != 0 ||
	    !(kind == PROVIDER_SES ? provider_ses_configured(&ctx->app->cfg.events.ses)
				   : provider_configured(ctx->app->provsig, kind))) {
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
	if (kind == PROVIDER_SES)
		return h_events_ses(ctx, r, body, len);

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
