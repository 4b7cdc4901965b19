/*
 * h_consents: recording consent (with a receipt and encrypted evidence),
 * reading the current state and full history, and the consent check.
 *
 * The rules (validation, which event is current, sealing the evidence, the
 * check's lookup and decision) are the consent domain's
 * (service/domain/consent.h); this file parses, authorises, audits and
 * renders.
 *
 * The check's body is read by parse_check_body (service/parse.c): pure, no
 * keys, and fuzzed by tests/fuzz/fuzz_check_body.c.
 */
#include "service/app.h"

#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/domain/consent.h"
#include "service/domain/contact.h"
#include "service/parse.h"
#include "service/router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct consent_write {
	struct store_consent cs;
	json_t *evidence; /* sealed in apply, under the contact's data key */
};

static void consent_write_free(void *p)
{
	struct consent_write *w = p;
	if (w == NULL)
		return;
	json_decref(w->evidence);
	free(w);
}

/* The receipt. `current` says whether the event is now the current state
 * or joined the history only (a back-dated grant after a withdrawal), so a
 * system replaying old receipts is not left believing a grant is live. */
static void consent_receipt(struct reqctx *ctx, const struct store_consent *cs, bool current)
{
	reply_json(ctx, 200,
		   json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:b}", "receipt_id",
			     cs->receipt_id, "contact_id", cs->contact_id, "purpose", cs->purpose, "channel",
			     cs->channel, "status", cs->status, "legal_basis", cs->legal_basis,
			     "notice_version", cs->notice_version, "at", json_time(cs->at_us), "expires_at",
			     json_time(cs->expires_us), "recorded_at", json_time(cs->recorded_us), "current",
			     current));
}

static int apply_consent(struct store_conn *wc, struct writer_job *job)
{
	struct reqctx *ctx = job->ctx;
	struct consent_write *w = ctx->state;
	struct txn t = app_txn(ctx, wc);
	struct store_contact ct;
	bool current = false;
	int rc = app_active_contact(ctx, &t, w->cs.contact_id, &ct);
	if (rc == 0)
		rc = consent_put(&t, &ct, &w->cs, w->evidence, &current);
	if (rc != 0)
		return rc;
	/* Double opt-in may have recorded the grant as pending_confirmation. */
	audit_decide(ctx, true, w->cs.status);
	/* Runs on the commit thread before the reply is sent; if the commit
	 * fails, commit_done replaces this receipt with a 503. */
	consent_receipt(ctx, &w->cs, current);
	return 0;
}

int h_consent_put(struct reqctx *ctx)
{
	const char *id = ctx->param[0], *purpose = ctx->param[1];
	json_t *body;
	int reason = -1, rc;
	if (!app_require_logged(ctx, POLICY_ACT_CONSENTS_WRITE, id, NULL, is_name(purpose) ? purpose : NULL))
		return 0;
	if ((rc = app_body(ctx, &body)) != 0)
		return rc;
	struct consent_write *w = calloc(1, sizeof *w);
	if (w == NULL) {
		json_decref(body);
		return err_set(ERR_NOMEM, "out of memory");
	}
	ctx->state = w;
	ctx->state_free = consent_write_free;
	if ((rc = consent_from_json(ctx->policy, purpose, body, now_us(), &w->cs, &reason)) != 0) {
		json_decref(body);
		return app_reason(ctx, rc,
				  reason >= 0 ? decision_reason_of((enum policy_reason)reason) : REASON_NONE);
	}
	consent_new_receipt(w->cs.receipt_id);
	snprintf(w->cs.contact_id, sizeof w->cs.contact_id, "%s", id);
	w->evidence = json_incref(json_object_get(body, "evidence"));
	json_decref(body);

	audit_begin(ctx, "consents.write", id, purpose, w->cs.channel);
	audit_decide(ctx, true, w->cs.status);
	audit_detail(ctx, json_pack("{s:s, s:s}", "receipt_id", w->cs.receipt_id, "method", w->cs.method));
	/* The receipt is written by apply_consent, once the store has said
	 * whether the event became the current state. */
	ctx->job.apply = apply_consent;
	app_commit(ctx);
	return 0;
}

/* ---- reading ---- */

int h_consents_get(struct reqctx *ctx)
{
	const char *id = ctx->param[0];
	struct store_contact ct;
	json_t *current = NULL, *history = NULL;
	if (!app_require(ctx, POLICY_ACT_CONSENTS_READ, id, NULL))
		return 0;
	struct txn t = app_txn(ctx, ctx->rd);
	audit_begin(ctx, "consents.read", id, NULL, NULL);
	int rc = contact_get(&t, id, &ct);
	if (rc != 0) {
		audit_decide(ctx, false, rc == ERR_NOTFOUND ? "unknown_contact" : "error");
		return app_reason(ctx, rc, rc == ERR_NOTFOUND ? REASON_UNKNOWN_CONTACT : REASON_NONE);
	}
	/* Evidence (form URL, user agent, address) is personal data: only roles
	 * that may change the record see it. */
	bool evidence = policy_role_may(ctx->policy, ctx->role, POLICY_ACT_CONTACTS_UPDATE);
	/* Roles that record consents (for any purpose) see them all; a read-only
	 * role sees only the purposes it may use. */
	const char *only =
		policy_role_may(ctx->policy, ctx->role, POLICY_ACT_CONSENTS_WRITE) ? NULL : ctx->role;
	rc = consent_lists_json(&t, &ct, only, evidence, &current, &history);
	if (rc != 0) {
		audit_decide(ctx, false, "error");
		return rc;
	}
	audit_decide(ctx, true, ct.erased ? "erased" : "allowed");
	if (evidence)
		audit_fields(ctx, "evidence");
	reply_json(ctx, 200,
		   json_pack("{s:s, s:s, s:o, s:o}", "contact_id", id, "status",
			     ct.erased ? "erased" : "active", "consents", current, "history", history));
	app_commit(ctx);
	return 0;
}

/* ---- the check ---- */

int h_consent_check(struct reqctx *ctx)
{
	json_t *body;
	struct check_req req;
	struct consent_decision cd;
	const char *reason_422;
	int rc;

	atomic_fetch_add(&ctx->app->metrics.checks, 1);
	if ((rc = app_body(ctx, &body)) != 0)
		return rc;
	rc = parse_check_body(ctx->policy, body, &req, &reason_422);
	if (rc != 0) {
		json_decref(body);
		return app_reason(ctx, rc,
				  rc == ERR_UNPROCESSABLE ? decision_reason_from_name(reason_422)
							  : REASON_NONE);
	}
	const char *purpose = req.purpose, *channel = req.channel;
	if (!app_require(ctx, POLICY_ACT_CONSENT_CHECK, NULL, purpose)) {
		json_decref(body);
		return 0;
	}
	struct txn t = app_txn(ctx, ctx->rd);
	if ((rc = consent_check(&t, ctx->role, &req, &cd)) != 0)
		goto fail;
	const char *reason = policy_reason_name(cd.d.reason);
	audit_begin(ctx, "consent.check", cd.contact_id, purpose, channel);
	audit_decide_reason(ctx, cd.d.allowed, decision_reason_of(cd.d.reason));
	/* The hot path: every value here is a policy name or a contact id
	 * (validated, [A-Za-z0-9_-]), so the reply is written directly. */
	char *out = NULL, when[80] = "";
	if (cd.reachable_us > 0) {
		char t_s[32];
		format_time_us(cd.reachable_us, t_s, sizeof t_s);
		snprintf(when, sizeof when, ",\"reachable_again\":\"%s\"", t_s);
	}
	/* A purpose without channels is answered with "channel": null. */
	char chan[STORE_NAME_CAP + 2] = "null";
	if (req.ch != POLICY_CH_COUNT)
		snprintf(chan, sizeof chan, "\"%s\"", policy_channel_name(req.ch));
	int n = asprintf(&out, "{\"allowed\":%s,\"reason\":\"%s\",\"purpose\":\"%s\",\"channel\":%s%s%s%s%s}",
			 cd.d.allowed ? "true" : "false", reason, req.pi.name, chan,
			 cd.known ? ",\"contact_id\":\"" : "", cd.contact_id, cd.known ? "\"" : "", when);
	json_decref(body);
	if (n < 0) {
		rc = err_set(ERR_NOMEM, "out of memory");
		goto fail_noid;
	}
	reply_text(ctx, 200, "application/json", out, (size_t)n);
	app_commit(ctx);
	return 0;
fail:
	json_decref(body);
fail_noid:
	audit_begin(ctx, "consent.check", "", req.pi.name,
		    req.ch == POLICY_CH_COUNT ? "" : policy_channel_name(req.ch));
	audit_decide(ctx, false, "error");
	return rc;
}

const struct route consent_routes[] = {
	{ "PUT", "/v1/contacts/{id}/consents/{name}", h_consent_put, NULL, false, 0, "consents.write" },
	{ "GET", "/v1/contacts/{id}/consents", h_consents_get, NULL, false, 0, "consents.read" },
	{ "POST", "/v1/consent/check", h_consent_check, NULL, false, 0, "consent.check" },
	{ 0 },
};
