/*
 * h_confirm: the double opt-in confirmation page, /p/confirm/{token}
 * (service/domain/optin.h). GET shows what the person is asked to confirm
 * and a button; only the POST of that button confirms, so a mail scanner
 * that opens every link confirms nothing. Public like the preference
 * pages, answered in the browser's language (en, zh-CN), with the same
 * headers (CSP, no framing); every answer is audited as the person's
 * ("customer"), with the confirmation's id in the entry's detail and the
 * client address as a keyed hash. A link that cannot confirm (forged,
 * expired, used, superseded, erased) gets the one "this link does not
 * work" page and changes nothing.
 */
#include "service/app.h"
#include "service/base/error.h"
#include "service/base/limits.h"
#include "service/domain/consent.h"
#include "service/domain/link.h"
#include "service/domain/optin.h"
#include "service/prefpage.h"
#include "service/router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct confirm_req {
	struct store_confirmation cf;
	enum prefpage_lang lang;
	json_t *evidence;
};

static void confirm_req_free(void *p)
{
	struct confirm_req *r = p;
	if (r == NULL)
		return;
	json_decref(r->evidence);
	free(r);
}

static void reply_page(struct reqctx *ctx, int status, char *page)
{
	if (page == NULL) {
		reply_drop(ctx); /* a bare 500, as the customer pages answer */
		return;
	}
	http_add_header(ctx->http, "Content-Security-Policy", PREFPAGE_CSP);
	http_add_header(ctx->http, "X-Frame-Options", "DENY");
	http_add_header(ctx->http, "Content-Language", "en, zh-CN");
	http_add_header(ctx->http, "Vary", "Accept-Language");
	http_add_header(ctx->http, "Cache-Control", "no-store");
	http_add_header(ctx->http, "Referrer-Policy", "no-referrer");
	reply_text(ctx, status, PREFPAGE_CONTENT_TYPE, page, strlen(page));
}

/* Resolves the path's token on the reader and opens the audit entry into
 * *out. 0 with *out NULL when the link cannot confirm (the refusal page is
 * then answered and committed); an error code for the dispatcher to render
 * otherwise. */
static int resolve(struct reqctx *ctx, const char *action, struct confirm_req **out)
{
	struct confirm_req *r = calloc(1, sizeof *r);
	const char *refusal = NULL;
	snprintf(ctx->actor, sizeof ctx->actor, "customer");
	snprintf(ctx->role, sizeof ctx->role, "customer");
	ctx->authenticated = true;
	*out = NULL;
	if (r == NULL)
		return err_set(ERR_NOMEM, "out of memory");
	ctx->state = r;
	ctx->state_free = confirm_req_free;
	r->lang = prefpage_lang_from(http_header(ctx->http, "Accept-Language"));
	struct txn t = app_txn(ctx, ctx->rd);
	int rc = optin_resolve(&t, ctx->param[0], &r->cf, &refusal);
	if (rc != 0)
		return rc;
	bool ok = refusal == NULL;
	audit_begin(ctx, action, ok ? r->cf.contact_id : "", ok ? r->cf.purpose : NULL,
		    ok ? r->cf.channel : NULL);
	link_client_id(&t, http_client(ctx->http), ctx->job.entry.client, sizeof ctx->job.entry.client);
	if (!ok) {
		audit_decide(ctx, false, refusal);
		/* A forged token names no confirmation: nothing to name. */
		if (r->cf.id[0] != '\0')
			audit_detail(ctx, json_pack("{s:s}", "confirmation_id", r->cf.id));
		reply_page(ctx, 403, prefpage_link_invalid(r->lang));
		app_commit(ctx);
		return 0;
	}
	audit_detail(ctx, json_pack("{s:s, s:s}", "confirmation_id", r->cf.id, "pending_receipt_id",
				    r->cf.receipt_id));
	*out = r;
	return 0;
}

static int h_confirm_get(struct reqctx *ctx)
{
	struct confirm_req *r = NULL;
	struct policy_purpose_info pi;
	int rc = resolve(ctx, "customer.confirm_view", &r);
	if (rc != 0 || r == NULL)
		return rc;
	const char *what = r->cf.purpose;
	if (policy_purpose_get(ctx->policy, r->cf.purpose, &pi) == 0)
		what = r->lang == PREFPAGE_ZH && pi.description_zh != NULL ? pi.description_zh
									   : pi.description;
	audit_decide(ctx, true, "shown");
	reply_page(ctx, 200, prefpage_confirm_ask(r->lang, ctx->param[0], what));
	app_commit(ctx);
	return 0;
}

static int apply_confirm(struct store_conn *wc, struct writer_job *job)
{
	struct reqctx *ctx = job->ctx;
	struct confirm_req *r = ctx->state;
	struct txn t = app_txn(ctx, wc);
	struct store_consent granted;
	const char *refusal = NULL;
	int rc = consent_confirm(&t, &r->cf, r->evidence, &granted, &refusal);
	if (rc != 0) {
		audit_decide(ctx, false, "error");
		return rc;
	}
	/* Confirmed by another click between the read and this write: the
	 * link confirms once. */
	if (refusal != NULL) {
		audit_decide(ctx, false, refusal);
		reply_page(ctx, 403, prefpage_link_invalid(r->lang));
		return 0;
	}
	audit_decide(ctx, true, "confirmed");
	audit_detail(ctx, json_pack("{s:s, s:s, s:s}", "confirmation_id", r->cf.id, "pending_receipt_id",
				    r->cf.receipt_id, "receipt_id", granted.receipt_id));
	reply_page(ctx, 200, prefpage_confirmed(r->lang));
	return 0;
}

static int h_confirm_post(struct reqctx *ctx)
{
	struct confirm_req *r = NULL;
	int rc = resolve(ctx, "customer.confirm", &r);
	if (rc != 0 || r == NULL)
		return rc;
	/* The evidence of the confirming request: how it came (the client
	 * address is in the audit entry, as a keyed hash). A user agent longer
	 * than the bound is left out whole rather than cut. */
	const char *ua = http_header(ctx->http, "User-Agent");
	r->evidence = json_pack("{s:s, s:s?}", "method", "confirmation link", "user_agent",
				ua != NULL && strlen(ua) <= LIMIT_USER_AGENT_BYTES ? ua : NULL);
	ctx->job.apply = apply_confirm;
	app_commit(ctx);
	return 0;
}

const struct route confirm_routes[] = {
	{ "GET", "/p/confirm/{token}", h_confirm_get, NULL, true, 0, "customer.confirm_view" },
	{ "POST", "/p/confirm/{token}", h_confirm_post, NULL, true, 0, "customer.confirm" },
	{ 0 },
};
