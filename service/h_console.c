/*
 * h_console: the auditor's console, server-rendered pages on the API's own
 * TLS port.
 *
 *   GET  /console/                  sign-in form, or the trail's health once signed in
 *   GET  /console/console.css       the stylesheet (public, static)
 *   POST /console/login             field token (+ csrf): starts a session
 *   POST /console/logout            field csrf: ends it
 *   GET  /console/search            entries by contact id, actor, action, purpose,
 *                                   decision, reason and time; cursor pages
 *   POST /console/search            the search form; an email or phone is turned
 *                                   into a contact id here (blind index), then 303
 *   GET  /console/entries/{token}   one entry (its sequence number) and its hash link
 *   GET  /console/people/{id}       a person's access report, printable
 *   GET  /console/campaigns         the outreach filter requests and their releases
 *   GET  /console/export            a search as NDJSON or CSV
 *   GET  /console/evidence          the evidence pack (tar): trail, checkpoint, key, README
 *
 * Layering: like every handler this file parses, calls the domain
 * (service/domain/console_session.c for sessions, trail.c for every read
 * of the trail, the contacts and the releases) on app_txn(), and renders;
 * it calls no store_*, fieldcrypt_* or keyring_* function
 * (scripts/check-layers.py).
 *
 * Invariants:
 * - The routes are "public" to the bearer-token layer: the credential is the
 *   session cookie, checked here on every request (console.h), including
 *   that the token behind the session is still valid and its role may still
 *   audit.read. A session of a revoked token is refused and deleted.
 * - Every page view and export is an audited access (audit.read,
 *   audit.export, detail {"console": page, ...filters}), committed before
 *   the page leaves (app_commit); the same commit records the session's
 *   last use. Wrong tokens are audited as auth.failure and rate-limited.
 * - No personal plaintext in URLs, logs or the trail: the search form
 *   POSTs; an email or phone is normalised and turned into its blind index
 *   in the trail domain (trail_find_contacts, on the functions GET
 *   /v1/contacts?email= uses) and forgotten; only the contact id goes into
 *   the redirect, the page and the entry. Pages show ids, names of
 *   principals, purposes and reasons: what the trail itself holds.
 * - Every form carries the session's CSRF value (the sign-in form a
 *   double-submit cookie), compared in constant time; a form without it
 *   changes nothing.
 * - Bad input (unknown query keys, malformed values) is answered 400 with a
 *   problem+json body, or an HTML page when the browser asks for HTML, and
 *   is not audited, like every other validation error.
 */
#include "service/app.h"

#include "audit/audit.h"
#include "audit/checkpoint.h"
#include "service/auditwatch.h"
#include "service/auth.h"
#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/base/limits.h"
#include "service/console.h"
#include "service/consolepage.h"
#include "service/domain/console_session.h"
#include "service/domain/release.h"
#include "service/domain/trail.h"
#include "service/parse.h"
#include "service/router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FORM_CAP 512
#define COOKIE_ATTRS "; Path=/console; HttpOnly; Secure; SameSite=Strict"
#define COOKIE_CAP 256

/* ---- per-request state ---- */

enum session_op { OP_NONE, OP_TOUCH, OP_INSERT, OP_DELETE };

struct creq {
	enum prefpage_lang lang;
	bool signed_in;
	struct store_console_session s; /* the session (signed in), or the new one (login) */
	enum session_op op;
	char sid[CONSOLE_SECRET_CAP]; /* a new session's id, for its cookie only */
	struct writer_job wait[2];    /* the evidence pack's two empty jobs */
};

static void creq_free(void *p)
{
	struct creq *r = p;
	if (r == NULL)
		return;
	console_wipe(r, sizeof *r);
	free(r);
}

static int apply_session(struct store_conn *w, struct writer_job *job)
{
	struct reqctx *ctx = job->ctx;
	struct creq *r = ctx->state;
	struct txn t = app_txn(ctx, w);
	switch (r->op) {
	case OP_TOUCH: return console_session_touch(&t, r->s.id_hash);
	case OP_INSERT: return console_session_start(&t, &r->s);
	case OP_DELETE: return console_session_end(&t, r->s.id_hash);
	default: return 0;
	}
}

static bool wants_html(struct reqctx *ctx)
{
	const char *a = http_header(ctx->http, "Accept");
	return a != NULL && strstr(a, "text/html") != NULL;
}

static void page_headers(struct reqctx *ctx)
{
	http_add_header(ctx->http, "Content-Security-Policy", CONSOLE_CSP);
	http_add_header(ctx->http, "X-Frame-Options", "DENY");
	http_add_header(ctx->http, "Content-Language", "en, zh-CN");
	http_add_header(ctx->http, "Vary", "Accept-Language, Cookie");
}

/* Prepares a page. A page that could not be built (out of memory) leaves
 * no reply at all, which the sender answers as a bare 500. */
static void reply_page(struct reqctx *ctx, int status, struct page_buf *b)
{
	char *page = page_finish(b);
	if (page == NULL) {
		reply_drop(ctx);
		return;
	}
	page_headers(ctx);
	reply_text(ctx, status, PREFPAGE_CONTENT_TYPE, page, strlen(page));
}

static struct creq *creq_new(struct reqctx *ctx)
{
	struct creq *r = calloc(1, sizeof *r);
	if (r == NULL)
		return NULL;
	r->lang = prefpage_lang_from(http_header(ctx->http, "Accept-Language"));
	ctx->state = r;
	ctx->state_free = creq_free;
	return r;
}

/* ---- the sign-in page ---- */

/* The sign-in form, with a fresh double-submit value in its cookie; 0 when
 * it is prepared. */
static int signin_page(struct reqctx *ctx, struct creq *r, int status, enum ctext notice, bool alert)
{
	struct page_buf b = { 0 };
	char csrf[CONSOLE_SECRET_CAP], cookie[COOKIE_CAP];
	if (console_secret_new(csrf) != 0)
		return err_set(ERR_UNAVAILABLE, "no randomness for the sign-in form");
	int cn = snprintf(cookie, sizeof cookie, CONSOLE_LOGIN_COOKIE "=%s" COOKIE_ATTRS "; Max-Age=3600",
			  csrf);
	if (cn < 0 || (size_t)cn >= sizeof cookie)
		return err_set(ERR_INTERNAL, "the sign-in cookie does not fit");
	consolepage_head(&b, r->lang, consolepage_tx(r->lang, C_SIGN_IN), C_COUNT_TEXTS, NULL, NULL, NULL);
	if (notice != C_COUNT_TEXTS)
		consolepage_notice(&b, consolepage_tx(r->lang, notice), alert);
	page_puts(&b, "<p>");
	page_esc(&b, consolepage_tx(r->lang, C_SIGN_IN_TEXT));
	page_puts(&b, "</p>\n<form class=\"login\" method=\"post\" action=\"/console/login\">");
	consolepage_csrf(&b, csrf);
	page_puts(&b, "<label for=\"token\">");
	page_esc(&b, consolepage_tx(r->lang, C_TOKEN));
	page_puts(
		&b,
		"</label><input type=\"password\" id=\"token\" name=\"token\" required autocomplete=\"off\" "
		"spellcheck=\"false\"><p><button type=\"submit\">");
	page_esc(&b, consolepage_tx(r->lang, C_SIGN_IN_BTN));
	page_puts(&b, "</button></p></form>\n");
	consolepage_tail(&b);
	reply_page(ctx, status, &b);
	http_add_header(ctx->http, "Set-Cookie", cookie);
	return 0;
}

static void clear_session_cookie(struct reqctx *ctx)
{
	http_add_header(ctx->http, "Set-Cookie", CONSOLE_COOKIE "=" COOKIE_ATTRS "; Max-Age=0");
}

/* A refusal in the console's own terms: an HTML page for a browser
 * (prepared; 0), or code, which the dispatcher answers as a problem. */
static int refuse(struct reqctx *ctx, struct creq *r, int code, enum ctext text)
{
	if (r != NULL && wants_html(ctx)) {
		struct page_buf b = { 0 };
		consolepage_head(&b, r->lang, consolepage_tx(r->lang, C_CONSOLE), C_COUNT_TEXTS, NULL, NULL,
				 NULL);
		consolepage_notice(&b, consolepage_tx(r->lang, text), 1);
		if (code == ERR_INVALID || code == ERR_TOOBIG) {
			page_puts(&b, "<p class=\"mono\">");
			page_esc(&b, err_msg());
			page_puts(&b, "</p>");
		}
		page_puts(&b, "<p><a href=\"/console/\">");
		page_esc(&b, consolepage_tx(r->lang, C_CONSOLE));
		page_puts(&b, "</a></p>");
		consolepage_tail(&b);
		reply_page(ctx, status_for_err(code), &b);
		return 0;
	}
	return code;
}

/* A helper's "the request has its reply (prepared, or sent): stop here",
 * distinct from 0 (go on) and from an error code (negative). */
#define ANSWERED 1

static int answered(int rc)
{
	return rc != 0 ? rc : ANSWERED;
}

/* What a handler returns for a helper's result. */
static int handled(int rc)
{
	return rc == ANSWERED ? 0 : rc;
}

/* ---- sessions ---- */

/* Resolves the session cookie; 0 when signed in (ctx is then the
 * session's principal). Otherwise ANSWERED (the sign-in page, 200 when
 * signin_ok, or a refusal page, or an audited refusal of a revoked token's
 * session) or an error code for the dispatcher. */
static int session(struct reqctx *ctx, struct creq *r, bool signin_ok)
{
	char sid[CONSOLE_SECRET_CAP];
	const char *reason = NULL;
	int rc;
	if (!console_cookie_get(http_header(ctx->http, "Cookie"), CONSOLE_COOKIE, sid))
		goto signed_out;
	console_hash(sid, r->s.id_hash);
	console_wipe(sid, sizeof sid);
	struct txn t = app_txn(ctx, ctx->rd);
	rc = console_session_load(&t, r->s.id_hash, &r->s);
	if (rc == ERR_NOTFOUND)
		goto signed_out;
	if (rc != 0)
		return answered(refuse(ctx, r, ERR_UNAVAILABLE, C_SESSION_ENDED));
	rc = auth_principal(ctx, r->s.token_hash, &reason);
	if (rc == ERR_UNAVAILABLE)
		return answered(refuse(ctx, r, ERR_UNAVAILABLE, C_SESSION_ENDED));
	if (rc != 0 || strcmp(ctx->actor, r->s.actor) != 0) {
		/* The token was revoked (or now names someone else): the
		 * session dies with it, on the record. */
		ctx->authenticated = false;
		ctx->actor[0] = ctx->role[0] = '\0';
		audit_begin(ctx, "auth.failure", NULL, NULL, NULL);
		audit_decide(ctx, false, "session_token_revoked");
		char route[160];
		snprintf(route, sizeof route, "%s %s", http_method(ctx->http), ctx->route->pattern);
		audit_detail(ctx, json_pack("{s:s, s:s}", "route", route, "console_actor", r->s.actor));
		r->op = OP_DELETE;
		ctx->job.apply = apply_session;
		atomic_fetch_add(&ctx->app->metrics.auth_failures, 1);
		if (wants_html(ctx))
			rc = signin_page(ctx, r, 401, C_SESSION_ENDED, true);
		else
			rc = app_reason(ctx,
					err_set(ERR_UNAUTHENTICATED,
						"the session's token was revoked; sign in again"),
					REASON_SESSION_TOKEN_REVOKED);
		clear_session_cookie(ctx);
		return answered(rc);
	}
	if (!app_require(ctx, POLICY_ACT_AUDIT_READ, NULL, NULL))
		return ANSWERED;
	r->signed_in = true;
	return 0;
signed_out:
	if (signin_ok)
		return answered(signin_page(ctx, r, 200, C_COUNT_TEXTS, false));
	if (wants_html(ctx))
		return answered(signin_page(ctx, r, 401, C_SESSION_ENDED, false));
	return app_reason(ctx, err_set(ERR_UNAUTHENTICATED, "sign in at /console/ first"), REASON_NO_SESSION);
}

/* The start of every signed-in page: state and session (0, *out), or what
 * session() answers. */
static int signed_in(struct reqctx *ctx, struct creq **out)
{
	struct creq *r = creq_new(ctx);
	*out = NULL;
	if (r == NULL)
		return err_set(ERR_NOMEM, "out of memory");
	int rc = session(ctx, r, false);
	if (rc == 0)
		*out = r;
	return rc;
}

/* A form's csrf field against the session's value. */
static bool csrf_ok(struct reqctx *ctx, const char *want)
{
	size_t len;
	const char *body = http_body(ctx->http, &len);
	char got[FORM_CAP];
	if (body == NULL ||
	    !parse_media_is(http_header(ctx->http, "Content-Type"), "application/x-www-form-urlencoded"))
		return false;
	if (parse_form_value(body, len, "csrf", got, sizeof got) != 0)
		return false;
	return console_secret_equal(got, want);
}

/* Audits a console view as an allowed access and records the session's
 * use in the same commit. */
static void audit_view(struct reqctx *ctx, struct creq *r, const char *action, const char *record_id,
		       json_t *detail)
{
	audit_begin(ctx, action, record_id, NULL, NULL);
	audit_decide(ctx, true, "allowed");
	audit_detail(ctx, detail);
	r->op = OP_TOUCH;
	ctx->job.apply = apply_session;
}

/* A view failed after its entry was begun: the entry says so, and the
 * refusal (a page, or rc for the dispatcher) is committed with it. */
static int fail_audited(struct reqctx *ctx, struct creq *r, int rc)
{
	snprintf(ctx->job.entry.decision, sizeof ctx->job.entry.decision, "error");
	snprintf(ctx->job.entry.reason, sizeof ctx->job.entry.reason, "error");
	return refuse(ctx, r, rc, C_NOT_FOUND);
}

/* The same for a request suspended by app_defer, on the thread that
 * finishes it. */
static void fail_audited_deferred(struct reqctx *ctx, struct creq *r, int rc)
{
	snprintf(ctx->job.entry.decision, sizeof ctx->job.entry.decision, "error");
	snprintf(ctx->job.entry.reason, sizeof ctx->job.entry.reason, "error");
	app_fail_deferred(ctx, refuse(ctx, r, rc, C_NOT_FOUND));
}

/* ---- GET /console/console.css ---- */

static int h_console_css(struct reqctx *ctx)
{
	size_t a = strlen(PAGE_STYLE), b = strlen(CONSOLEPAGE_STYLE);
	char *css = malloc(a + b + 1);
	if (css == NULL)
		return err_set(ERR_NOMEM, "out of memory");
	memcpy(css, PAGE_STYLE, a);
	memcpy(css + a, CONSOLEPAGE_STYLE, b + 1);
	http_add_header(ctx->http, "Content-Security-Policy", CONSOLE_CSP);
	reply_text(ctx, 200, "text/css; charset=utf-8", css, a + b);
	app_send(ctx);
	return 0;
}

/* ---- POST /console/login, POST /console/logout ---- */

static int login_failure(struct reqctx *ctx, struct creq *r, const char *reason, int status, enum ctext text)
{
	atomic_fetch_add(&ctx->app->metrics.auth_failures, 1);
	audit_begin(ctx, "auth.failure", NULL, NULL, NULL);
	audit_decide(ctx, false, reason);
	audit_detail(ctx, json_pack("{s:s}", "route", "POST /console/login"));
	if (wants_html(ctx))
		return signin_page(ctx, r, status, text, true);
	return app_reason(ctx,
			  err_set(status == 429 ? ERR_RATE_LIMITED : ERR_UNAUTHENTICATED, "%s",
				  consolepage_tx(PREFPAGE_EN, text)),
			  decision_reason_from_name(reason));
}

static int h_console_login(struct reqctx *ctx)
{
	struct creq *r = creq_new(ctx);
	char token[FORM_CAP], want[CONSOLE_SECRET_CAP], cookie[COOKIE_CAP];
	const char *reason = NULL;
	size_t len;
	int retry = 0;
	if (r == NULL)
		return err_set(ERR_NOMEM, "out of memory");
	const char *client = http_client(ctx->http);
	if (!console_login_allowed(client, now_us(), &retry)) {
		char ra[16];
		snprintf(ra, sizeof ra, "%d", retry);
		http_add_header(ctx->http, "Retry-After", ra);
		return login_failure(ctx, r, "rate_limited", 429, C_RATE_LIMITED);
	}
	const char *body = http_body(ctx->http, &len);
	if (body == NULL ||
	    !parse_media_is(http_header(ctx->http, "Content-Type"), "application/x-www-form-urlencoded")) {
		err_set(ERR_UNSUPPORTED, "send the sign-in form as application/x-www-form-urlencoded");
		return refuse(ctx, r, ERR_UNSUPPORTED, C_FORM_EXPIRED);
	}
	/* Login CSRF: the form's value must be the one its page set in the
	 * cookie, so another site cannot sign a browser in as someone else. */
	if (!console_cookie_get(http_header(ctx->http, "Cookie"), CONSOLE_LOGIN_COOKIE, want) ||
	    !csrf_ok(ctx, want)) {
		if (wants_html(ctx))
			return signin_page(ctx, r, 403, C_FORM_EXPIRED, true);
		return app_reason(
			ctx, err_set(ERR_DENIED, "the sign-in form's csrf value does not match its cookie"),
			REASON_CSRF);
	}
	int rc = parse_form_value(body, len, "token", token, sizeof token);
	size_t tlen = rc == 0 ? strlen(token) : 0;
	if (rc != 0 || tlen < 16 || tlen > 256) {
		console_wipe(token, sizeof token);
		console_login_failed(client, now_us());
		return login_failure(ctx, r, rc != 0 ? "missing_token" : "malformed_token", 401,
				     C_WRONG_TOKEN);
	}
	console_hash(token, r->s.token_hash);
	console_wipe(token, sizeof token);
	rc = auth_principal(ctx, r->s.token_hash, &reason);
	if (rc == ERR_UNAVAILABLE) {
		/* A problem gets its Retry-After where it is rendered (app_fail). */
		if ((rc = refuse(ctx, r, ERR_UNAVAILABLE, C_SESSION_ENDED)) == 0)
			http_add_header(ctx->http, "Retry-After", "5");
		return rc;
	}
	if (rc != 0) {
		console_login_failed(client, now_us());
		return login_failure(ctx, r, reason ? reason : "unknown_token", 401, C_WRONG_TOKEN);
	}
	if (!policy_role_may(ctx->policy, ctx->role, POLICY_ACT_AUDIT_READ)) {
		/* A real token of a role without audit.read: no guess, so not
		 * counted against the address, but on the record. */
		atomic_fetch_add(&ctx->app->metrics.denials, 1);
		audit_begin(ctx, "console.login", NULL, NULL, NULL);
		audit_decide(ctx, false, "role_denied");
		if (wants_html(ctx))
			return signin_page(ctx, r, 403, C_NOT_AUDITOR, true);
		return app_reason(ctx,
				  err_set(ERR_DENIED,
					  "role %s may not audit.read, so it cannot use the console",
					  ctx->role),
				  REASON_ROLE_DENIED);
	}
	console_login_succeeded(client);
	if ((rc = console_secret_new(r->sid)) != 0 || (rc = console_secret_new(r->s.csrf)) != 0)
		return refuse(ctx, r, ERR_UNAVAILABLE, C_SESSION_ENDED);
	console_hash(r->sid, r->s.id_hash);
	/* The cookie before the entry: a session that cannot be handed out is
	 * never begun (nor written). */
	int cn = snprintf(cookie, sizeof cookie, CONSOLE_COOKIE "=%s" COOKIE_ATTRS "; Max-Age=%d", r->sid,
			  CONSOLE_ABSOLUTE_SECONDS);
	console_wipe(r->sid, sizeof r->sid);
	if (cn < 0 || (size_t)cn >= sizeof cookie)
		return refuse(ctx, r, err_set(ERR_INTERNAL, "the session cookie does not fit"),
			      C_SESSION_ENDED);
	snprintf(r->s.actor, sizeof r->s.actor, "%s", ctx->actor);
	snprintf(r->s.role, sizeof r->s.role, "%s", ctx->role);
	r->s.created_us = r->s.seen_us = now_us();
	r->op = OP_INSERT;
	audit_begin(ctx, "console.login", NULL, NULL, NULL);
	audit_decide(ctx, true, "signed_in");
	ctx->job.apply = apply_session;
	reply_text(ctx, 303, "text/plain; charset=utf-8", strdup("signed in\n"), 10);
	http_add_header(ctx->http, "Location", "/console/");
	http_add_header(ctx->http, "Set-Cookie", CONSOLE_LOGIN_COOKIE "=" COOKIE_ATTRS "; Max-Age=0");
	http_add_header(ctx->http, "Set-Cookie", cookie);
	console_wipe(cookie, sizeof cookie);
	app_commit(ctx);
	return 0;
}

static int h_console_logout(struct reqctx *ctx)
{
	struct creq *r = NULL;
	int src = signed_in(ctx, &r);
	if (src != 0)
		return handled(src);
	if (!csrf_ok(ctx, r->s.csrf)) {
		err_set(ERR_DENIED, "the form's csrf value is missing or wrong; nothing was done");
		return wants_html(ctx) ? refuse(ctx, r, ERR_DENIED, C_FORM_EXPIRED)
				       : app_reason(ctx, ERR_DENIED, REASON_CSRF);
	}
	audit_begin(ctx, "console.logout", NULL, NULL, NULL);
	audit_decide(ctx, true, "signed_out");
	r->op = OP_DELETE;
	ctx->job.apply = apply_session;
	reply_text(ctx, 303, "text/plain; charset=utf-8", strdup("signed out\n"), 11);
	http_add_header(ctx->http, "Location", "/console/");
	clear_session_cookie(ctx);
	app_commit(ctx);
	return 0;
}

/* ---- GET /console/: sign-in, or the trail's health ---- */

struct day_series {
	struct consolepage_bar bars[CONSOLE_CHART_DAYS];
	int64_t first_day;
	size_t n;
};

static void series_init(struct day_series *d, int64_t now)
{
	d->n = CONSOLE_CHART_DAYS;
	d->first_day = now / INT64_C(86400000000) - (CONSOLE_CHART_DAYS - 1);
	for (size_t i = 0; i < d->n; i++) {
		char t[32];
		format_time_us((d->first_day + (int64_t)i) * INT64_C(86400000000), t, sizeof t);
		t[10] = '\0';
		snprintf(d->bars[i].label, sizeof d->bars[i].label, "%s", t);
		d->bars[i].value = 0;
	}
}

static int series_add(void *arg, int64_t day, const char *key, int64_t count)
{
	(void)key;
	struct day_series *d = arg;
	if (day >= d->first_day && day < d->first_day + (int64_t)d->n)
		d->bars[day - d->first_day].value += count;
	return 0;
}

struct keyed {
	struct consolepage_bar bars[12];
	size_t n;
	int64_t other;
};

static int keyed_add(void *arg, int64_t day, const char *key, int64_t count)
{
	(void)day;
	struct keyed *k = arg;
	const char *label = key[0] ? key : "-";
	for (size_t i = 0; i < k->n; i++) {
		if (strcmp(k->bars[i].label, label) == 0) {
			k->bars[i].value += count;
			return 0;
		}
	}
	/* Reasons and roles are short names; a long one is shown whole in
	 * the table only if it fits the label, else it counts as other. */
	if (k->n < sizeof k->bars / sizeof k->bars[0] - 1 && strlen(label) < sizeof k->bars[0].label) {
		snprintf(k->bars[k->n].label, sizeof k->bars[k->n].label, "%s", label);
		k->bars[k->n++].value = count;
	} else {
		k->other += count;
	}
	return 0;
}

static void keyed_finish(struct keyed *k)
{
	if (k->other > 0) {
		snprintf(k->bars[k->n].label, sizeof k->bars[k->n].label, "…");
		k->bars[k->n++].value = k->other;
	}
}

static void dl_item(struct page_buf *b, enum prefpage_lang lang, enum ctext term)
{
	page_puts(b, "<dt>");
	page_esc(b, consolepage_tx(lang, term));
	page_puts(b, "</dt><dd>");
}

static int h_console_home(struct reqctx *ctx)
{
	struct creq *r = creq_new(ctx);
	struct page_buf b = { 0 };
	struct auditwatch_status ws;
	struct writer_stats ls;
	struct audit_checkpoint cp;
	struct audit_pubkey *key = NULL;
	struct day_series per_day, denials;
	struct keyed reasons = { 0 }, roles = { 0 };
	int rc;
	if (r == NULL)
		return err_set(ERR_NOMEM, "out of memory");
	if ((rc = session(ctx, r, true)) != 0)
		return handled(rc);
	audit_view(ctx, r, "audit.read", NULL, json_pack("{s:s}", "console", "health"));
	int64_t now = now_us(),
		since = (now / INT64_C(86400000000) - (CONSOLE_CHART_DAYS - 1)) * INT64_C(86400000000);
	series_init(&per_day, now);
	series_init(&denials, now);
	struct txn t = app_txn(ctx, ctx->rd);
	if ((rc = trail_stats(&t, STORE_STAT_PER_DAY, since, series_add, &per_day)) != 0 ||
	    (rc = trail_stats(&t, STORE_STAT_DENIALS_BY_REASON, since, series_add, &denials)) != 0 ||
	    (rc = trail_stats(&t, STORE_STAT_DENIALS_BY_REASON, since, keyed_add, &reasons)) != 0 ||
	    (rc = trail_stats(&t, STORE_STAT_BY_ROLE, since, keyed_add, &roles)) != 0) {
		return fail_audited(ctx, r, rc);
	}
	keyed_finish(&reasons);
	keyed_finish(&roles);
	auditwatch_status(ctx->app->watch, &ws);
	writer_stats(ctx->app->writer, &ls);
	int cprc = trail_checkpoint_latest(&t, &cp);
	if (cprc != 0 && cprc != ERR_NOTFOUND) {
		return fail_audited(ctx, r, cprc);
	}
	bool sig_ok = cprc == 0 && audit_pubkey_load(&key, ctx->app->cfg.signing_pub) == 0 &&
		      audit_checkpoint_verify(key, &cp) == 0;
	audit_pubkey_free(key);

	enum prefpage_lang L = r->lang;
	consolepage_head(&b, L, consolepage_tx(L, C_HEALTH), C_HEALTH, ctx->actor, ctx->role, r->s.csrf);
	bool intact = ws.intact && ls.fault == AUDIT_FAULT_NONE;
	page_puts(&b, "<div class=\"grid\"><section aria-labelledby=\"h-state\"><h2 id=\"h-state\">");
	page_puts(&b, intact ? "<span class=\"ok\">" : "<span class=\"bad\">");
	page_esc(&b, consolepage_tx(L, intact ? C_INTACT : C_NOT_INTACT));
	page_puts(&b, "</span></h2>");
	if (!ws.ran)
		consolepage_notice(&b, consolepage_tx(L, C_NOT_YET_VERIFIED), 0);
	page_puts(&b, "<dl>");
	if (ws.ran) {
		dl_item(&b, L, C_LAST_VERIFIED);
		consolepage_time(&b, ws.last_us);
		page_puts(&b, "</dd>");
	}
	dl_item(&b, L, C_VERIFIED_SIZE);
	page_printf(&b, "%lld</dd>", (long long)ws.verified_size);
	dl_item(&b, L, C_ANCHORED);
	page_printf(&b, "%lld</dd>", (long long)ls.anchored);
	dl_item(&b, L, C_HEAD);
	page_printf(&b, "%lld</dd></dl>", (long long)ls.head_seq);
	if (!ws.intact) {
		page_puts(&b, "<div class=\"notice alert\" role=\"alert\"><h3>");
		page_esc(&b, consolepage_tx(L, C_ALARM));
		page_puts(&b, "</h3><p>");
		page_esc(&b, consolepage_tx(L, C_ALARM_TEXT));
		page_puts(&b, "</p><dl>");
		dl_item(&b, L, C_TIME);
		consolepage_time(&b, ws.first_failure_us);
		page_puts(&b, "</dd>");
		dl_item(&b, L, C_FAULT);
		page_esc(&b, audit_fault_name(ws.first_failure.fault));
		page_puts(&b, "</dd>");
		dl_item(&b, L, C_REASON);
		page_esc(&b, ws.first_failure.reason);
		page_puts(&b, "</dd></dl></div>");
	}
	page_puts(&b, "</section>\n<section aria-labelledby=\"h-cp\"><h2 id=\"h-cp\">");
	page_esc(&b, consolepage_tx(L, C_CHECKPOINT));
	page_puts(&b, "</h2>");
	if (cprc == 0) {
		char root[2 * AUDIT_HASH_BYTES + 1];
		audit_hex_encode(cp.root, sizeof cp.root, root);
		page_puts(&b, "<dl>");
		dl_item(&b, L, C_CHECKPOINT_SIZE);
		page_printf(&b, "1–%lld</dd>", (long long)cp.size);
		dl_item(&b, L, C_SIGNED_AT);
		consolepage_time(&b, cp.time_us);
		page_puts(&b, "</dd>");
		dl_item(&b, L, C_SIGNATURE);
		page_puts(&b, sig_ok ? "<span class=\"ok\">" : "<span class=\"bad\">");
		page_esc(&b, consolepage_tx(L, sig_ok ? C_SIG_VALID : C_SIG_INVALID));
		page_puts(&b, "</span></dd>");
		dl_item(&b, L, C_HASH);
		page_puts(&b, "<code>");
		page_esc(&b, root);
		page_puts(&b, "</code></dd></dl>");
	} else {
		page_puts(&b, "<p>");
		page_esc(&b, consolepage_tx(L, C_NO_CHECKPOINT));
		page_puts(&b, "</p>");
	}
	page_puts(&b, "<h3>");
	page_esc(&b, consolepage_tx(L, C_EVIDENCE));
	page_puts(&b, "</h3><p>");
	page_esc(&b, consolepage_tx(L, C_EVIDENCE_TEXT));
	page_puts(&b, "</p><p><a href=\"/console/evidence\" download>");
	page_esc(&b, consolepage_tx(L, C_EVIDENCE_BTN));
	page_puts(
		&b,
		"</a></p></section></div>\n<section aria-labelledby=\"h-charts\"><h2 id=\"h-charts\" class=\"vh\">");
	page_esc(&b, consolepage_tx(L, C_ENTRIES_PER_DAY));
	page_puts(&b, "</h2><div class=\"grid\"><div>");
	consolepage_chart(&b, L, "c-days", consolepage_tx(L, C_ENTRIES_PER_DAY), per_day.bars, per_day.n,
			  C_DAY);
	page_puts(&b, "</div><div>");
	consolepage_chart(&b, L, "c-denials", consolepage_tx(L, C_DENIALS_PER_DAY), denials.bars, denials.n,
			  C_DAY);
	page_puts(&b, "</div><div>");
	consolepage_chart(&b, L, "c-reasons", consolepage_tx(L, C_DENIALS_BY_REASON), reasons.bars, reasons.n,
			  C_REASON);
	page_puts(&b, "</div><div>");
	consolepage_chart(&b, L, "c-roles", consolepage_tx(L, C_ACCESS_BY_ROLE), roles.bars, roles.n, C_ROLE);
	page_puts(&b, "</div></div></section>\n");
	consolepage_tail(&b);
	reply_page(ctx, 200, &b);
	app_commit(ctx);
	return 0;
}

/* ---- search filters ---- */

enum {
	F_CONTACT = 1 << 0,
	F_ACTOR = 1 << 1,
	F_ACTION = 1 << 2,
	F_PURPOSE = 1 << 3,
	F_DECISION = 1 << 4,
	F_REASON = 1 << 5,
	F_SINCE = 1 << 6,
	F_UNTIL = 1 << 7,
	F_AFTER = 1 << 8,
	F_FORMAT = 1 << 9,
	F_FILTERS = F_CONTACT | F_ACTOR | F_ACTION | F_PURPOSE | F_DECISION | F_REASON | F_SINCE | F_UNTIL,
};

static const struct {
	const char *name;
	unsigned bit;
} filter_keys[] = {
	{ "contact", F_CONTACT },   { "actor", F_ACTOR },   { "action", F_ACTION }, { "purpose", F_PURPOSE },
	{ "decision", F_DECISION }, { "reason", F_REASON }, { "since", F_SINCE },   { "until", F_UNTIL },
	{ "after", F_AFTER },	    { "format", F_FORMAT },
};

struct cfilter {
	unsigned allowed, seen;
	char contact[AUDIT_RECORD_ID_MAX + 1];
	char actor[AUDIT_ACTOR_MAX + 1];
	char action[AUDIT_NAME_MAX + 1];
	char purpose[AUDIT_NAME_MAX + 1];
	char decision[AUDIT_DECISION_MAX + 1];
	char reason[AUDIT_NAME_MAX + 1];
	char since[AUDIT_TIME_BYTES], until[AUDIT_TIME_BYTES];
	int64_t since_us, until_us, after;
	bool csv;
};

static bool chars_ok(const char *s, size_t max, const char *extra, bool upper)
{
	size_t n = strlen(s);
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (upper && c >= 'A' && c <= 'Z') ||
		      strchr(extra, c) != NULL))
			return false;
	}
	return true;
}

/* RFC 3339, or a day (YYYY-MM-DD, from 00:00 UTC). */
static int parse_when(const char *name, const char *v, int64_t *us, char out[AUDIT_TIME_BYTES])
{
	char day[32];
	if (strlen(v) == 10) {
		snprintf(day, sizeof day, "%sT00:00:00Z", v);
		v = day;
	}
	if (parse_time(v, us) != 0 || *us < 0 || *us > AUDIT_TIME_MAX_US)
		return err_set(ERR_INVALID, "%s must be a day (YYYY-MM-DD) or an RFC 3339 time after 1970",
			       name);
	audit_time_format(*us, out);
	return 0;
}

static int filter_one(void *arg, const char *name, const char *v)
{
	struct cfilter *q = arg;
	unsigned bit = 0;
	for (size_t i = 0; i < sizeof filter_keys / sizeof filter_keys[0]; i++)
		if (strcmp(filter_keys[i].name, name) == 0)
			bit = filter_keys[i].bit;
	if (bit == 0 || !(q->allowed & bit))
		return err_set(ERR_INVALID, "unknown parameter \"%.64s\"", name);
	if (q->seen & bit)
		return err_set(ERR_INVALID, "parameter %s is given more than once", name);
	/* An empty form field means "any". */
	if (v == NULL || v[0] == '\0')
		return 0;
	if (strlen(v) > LIMIT_QUERY_VALUE_BYTES)
		return err_set(ERR_TOOBIG, "parameter %s is longer than %d bytes", name,
			       LIMIT_QUERY_VALUE_BYTES);
	q->seen |= bit;
	switch (bit) {
	case F_CONTACT:
		if (!chars_ok(v, AUDIT_RECORD_ID_MAX, "-_.:", true))
			return err_set(ERR_INVALID, "contact must be a record id");
		snprintf(q->contact, sizeof q->contact, "%s", v);
		return 0;
	case F_ACTOR:
		if (!is_actor_name(v))
			return err_set(ERR_INVALID, "actor must be a principal name of 1 to %d characters",
				       LIMIT_PRINCIPAL_CHARS);
		snprintf(q->actor, sizeof q->actor, "%s", v);
		return 0;
	case F_ACTION:
		if (!chars_ok(v, AUDIT_NAME_MAX, "_.", false) || v[0] < 'a' || v[0] > 'z')
			return err_set(ERR_INVALID, "action must be an action name such as contacts.read");
		snprintf(q->action, sizeof q->action, "%s", v);
		return 0;
	case F_PURPOSE:
		if (!is_name(v))
			return err_set(ERR_INVALID, "purpose must be a purpose name");
		snprintf(q->purpose, sizeof q->purpose, "%s", v);
		return 0;
	case F_DECISION:
		if (strcmp(v, "allow") != 0 && strcmp(v, "deny") != 0 && strcmp(v, "error") != 0 &&
		    strcmp(v, "none") != 0)
			return err_set(ERR_INVALID, "decision must be allow, deny, error or none");
		snprintf(q->decision, sizeof q->decision, "%s", v);
		return 0;
	case F_REASON:
		if (!chars_ok(v, AUDIT_NAME_MAX, "_.:-", false))
			return err_set(ERR_INVALID, "reason must be a reason name such as role_denied");
		snprintf(q->reason, sizeof q->reason, "%s", v);
		return 0;
	case F_SINCE: return parse_when("since", v, &q->since_us, q->since);
	case F_UNTIL: return parse_when("until", v, &q->until_us, q->until);
	case F_AFTER: {
		char *end = NULL;
		if (!chars_ok(v, 19, "", false) || (q->after = strtoll(v, &end, 10)) < 0 || *end != '\0')
			return err_set(ERR_INVALID,
				       "after must be a cursor: the sequence number from the next link");
		return 0;
	}
	case F_FORMAT:
		if (strcmp(v, "ndjson") != 0 && strcmp(v, "csv") != 0)
			return err_set(ERR_INVALID, "format must be ndjson or csv");
		q->csv = strcmp(v, "csv") == 0;
		return 0;
	default: return err_set(ERR_INTERNAL, "a parameter without a parser");
	}
}

static int filter_check(struct cfilter *q)
{
	if ((q->seen & F_SINCE) && (q->seen & F_UNTIL) && q->since_us >= q->until_us)
		return err_set(ERR_INVALID, "since must be before until");
	if ((q->seen & F_UNTIL) && q->until_us == 0)
		return err_set(ERR_INVALID, "until must be after 1970-01-01");
	return 0;
}

/* Parses the query string; 0, or ANSWERED with a refusal page, or the
 * error (400) for the dispatcher. */
static int filter_query(struct reqctx *ctx, struct creq *r, unsigned allowed, struct cfilter *q)
{
	memset(q, 0, sizeof *q);
	q->allowed = allowed;
	int rc = http_query_each(ctx->http, filter_one, q);
	if (rc == 0)
		rc = filter_check(q);
	if (rc != 0) {
		/* Nothing was read: a plain validation error, not audited. */
		return answered(refuse(ctx, r, rc, C_FORM_EXPIRED));
	}
	return 0;
}

static void filter_store(const struct cfilter *q, struct store_audit_filter *f)
{
	memset(f, 0, sizeof *f);
	f->record_id = (q->seen & F_CONTACT) ? q->contact : NULL;
	f->actor = (q->seen & F_ACTOR) ? q->actor : NULL;
	f->action = (q->seen & F_ACTION) ? q->action : NULL;
	f->purpose = (q->seen & F_PURPOSE) ? q->purpose : NULL;
	f->decision = (q->seen & F_DECISION) ? q->decision : NULL;
	f->since_us = q->since_us;
	f->until_us = q->until_us;
	f->after_seq = q->after;
}

static json_t *filter_detail(const struct cfilter *q, const char *page)
{
	json_t *d = json_pack("{s:s}", "console", page);
	static const struct {
		unsigned bit;
		const char *key;
		size_t off;
	} keys[] = {
		{ F_CONTACT, "contact", offsetof(struct cfilter, contact) },
		{ F_ACTOR, "actor", offsetof(struct cfilter, actor) },
		{ F_ACTION, "action", offsetof(struct cfilter, action) },
		{ F_PURPOSE, "purpose", offsetof(struct cfilter, purpose) },
		{ F_DECISION, "decision", offsetof(struct cfilter, decision) },
		{ F_REASON, "reason", offsetof(struct cfilter, reason) },
		{ F_SINCE, "since", offsetof(struct cfilter, since) },
		{ F_UNTIL, "until", offsetof(struct cfilter, until) },
	};
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		if (q->seen & keys[i].bit)
			json_object_set_new(d, keys[i].key, json_string((const char *)q + keys[i].off));
	if (q->seen & F_AFTER)
		json_object_set_new(d, "after", json_integer(q->after));
	if (q->allowed & F_FORMAT)
		json_object_set_new(d, "format", json_string(q->csv ? "csv" : "ndjson"));
	return d;
}

/* Percent-encodes v for a query string. */
static void put_qvalue(struct page_buf *b, const char *v)
{
	for (const unsigned char *p = (const unsigned char *)v; *p != '\0'; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    *p == '-' || *p == '_' || *p == '.' || *p == '~')
			page_put(b, (const char *)p, 1);
		else
			page_printf(b, "%%%02X", *p);
	}
}

/* The filters as a query string (raw: escape it with page_esc in HTML). */
static void put_filters(struct page_buf *b, const struct cfilter *q)
{
	const char *vals[] = { q->contact,  q->actor,  q->action, q->purpose,
			       q->decision, q->reason, q->since,  q->until };
	static const unsigned bits[] = { F_CONTACT,  F_ACTOR,  F_ACTION, F_PURPOSE,
					 F_DECISION, F_REASON, F_SINCE,	 F_UNTIL };
	static const char *const names[] = { "contact",	 "actor",  "action", "purpose",
					     "decision", "reason", "since",  "until" };
	bool first = true;
	for (size_t i = 0; i < sizeof bits / sizeof bits[0]; i++) {
		if (!(q->seen & bits[i]))
			continue;
		page_puts(b, first ? "" : "&");
		first = false;
		page_puts(b, names[i]);
		page_puts(b, "=");
		put_qvalue(b, vals[i]);
	}
}

/* An href (HTML-escaped) to path?filters[&extra]. */
static void put_href(struct page_buf *b, const char *path, const struct cfilter *q, const char *extra)
{
	struct page_buf qs = { 0 };
	put_filters(&qs, q);
	if (extra != NULL) {
		if (qs.len > 0)
			page_puts(&qs, "&");
		page_puts(&qs, extra);
	}
	char *s = page_finish(&qs);
	page_puts(b, path);
	if (s != NULL && s[0] != '\0') {
		page_puts(b, "?");
		page_esc(b, s);
	} else if (s == NULL && qs.oom) {
		b->oom = true;
	}
	free(s);
}

/* ---- entries as a table ---- */

static void entry_row(struct page_buf *b, const struct audit_entry *e)
{
	page_printf(b, "<tr><th scope=\"row\"><a href=\"/console/entries/%lld\">%lld</a></th><td>",
		    (long long)e->seq, (long long)e->seq);
	consolepage_time(b, e->time_us);
	page_puts(b, "</td><td>");
	page_esc(b, e->actor);
	page_puts(b, "</td><td>");
	page_esc(b, e->role);
	page_puts(b, "</td><td>");
	page_esc(b, e->action);
	page_puts(b, "</td><td class=\"mono\">");
	if (is_contact_id(e->record_id)) {
		page_puts(b, "<a href=\"/console/people/");
		page_esc(b, e->record_id);
		page_puts(b, "\">");
		page_esc(b, e->record_id);
		page_puts(b, "</a>");
	} else {
		page_esc(b, e->record_id);
	}
	page_puts(b, "</td><td>");
	page_esc(b, e->purpose);
	page_puts(b, "</td><td>");
	page_esc(b, e->decision);
	page_puts(b, "</td><td>");
	page_esc(b, e->reason);
	page_puts(b, "</td></tr>\n");
}

/* Opens a table of class "entries": its (visually hidden) caption and a
 * head row of the n columns cols. */
static void table_head(struct page_buf *b, enum prefpage_lang L, enum ctext caption, const enum ctext *cols,
		       size_t n)
{
	page_puts(b, "<table class=\"entries\"><caption class=\"vh\">");
	page_esc(b, consolepage_tx(L, caption));
	page_puts(b, "</caption><thead><tr>");
	for (size_t i = 0; i < n; i++) {
		page_puts(b, "<th scope=\"col\">");
		page_esc(b, consolepage_tx(L, cols[i]));
		page_puts(b, "</th>");
	}
	page_puts(b, "</tr></thead><tbody>\n");
}

static void entries_head(struct page_buf *b, enum prefpage_lang L, enum ctext caption)
{
	static const enum ctext cols[] = { C_SEQ,    C_TIME,	C_ACTOR,    C_ROLE,  C_ACTION,
					   C_RECORD, C_PURPOSE, C_DECISION, C_REASON };
	table_head(b, L, caption, cols, sizeof cols / sizeof cols[0]);
}

struct listing {
	struct page_buf *b;
	const char *reason; /* post-filter, or NULL */
	int64_t n, limit, scanned, last_seq;
	bool more;
};

static int listing_add(void *arg, const struct audit_entry *e)
{
	struct listing *l = arg;
	l->scanned++;
	if (l->reason != NULL && strcmp(e->reason, l->reason) != 0) {
		l->last_seq = e->seq;
		/* A reason filter scans; past the bound the page ends and the
		 * next link goes on from here, so nothing is skipped silently. */
		if (l->scanned >= CONSOLE_SCAN_MAX) {
			l->more = true;
			return 1;
		}
		return 0;
	}
	if (l->n == l->limit) {
		l->more = true;
		return 1;
	}
	entry_row(l->b, e);
	l->n++;
	l->last_seq = e->seq;
	return 0;
}

/* ---- GET/POST /console/search ---- */

static void search_field(struct page_buf *b, enum prefpage_lang L, const char *name, enum ctext label,
			 const char *type, const char *value)
{
	page_puts(b, "<div><label for=\"f-");
	page_puts(b, name);
	page_puts(b, "\">");
	page_esc(b, consolepage_tx(L, label));
	page_puts(b, "</label><input type=\"");
	page_puts(b, type);
	page_puts(b, "\" id=\"f-");
	page_puts(b, name);
	page_puts(b, "\" name=\"");
	page_puts(b, name);
	page_puts(b, "\" value=\"");
	page_esc(b, value);
	page_puts(b, "\" autocomplete=\"off\"></div>");
}

static void search_form(struct page_buf *b, enum prefpage_lang L, const char *csrf, const struct cfilter *q)
{
	static const char *const decisions[] = { "allow", "deny", "error", "none" };
	page_puts(b, "<p>");
	page_esc(b, consolepage_tx(L, C_SEARCH_TEXT));
	page_puts(b, "</p>\n<form class=\"search\" method=\"post\" action=\"/console/search\">");
	consolepage_csrf(b, csrf);
	search_field(b, L, "contact", C_CONTACT_ID, "text", q->contact);
	search_field(b, L, "email", C_EMAIL, "email", "");
	search_field(b, L, "phone", C_PHONE, "tel", "");
	search_field(b, L, "actor", C_ACTOR, "text", q->actor);
	search_field(b, L, "action", C_ACTION, "text", q->action);
	search_field(b, L, "purpose", C_PURPOSE, "text", q->purpose);
	page_puts(b, "<div><label for=\"f-decision\">");
	page_esc(b, consolepage_tx(L, C_DECISION));
	page_puts(b, "</label><select id=\"f-decision\" name=\"decision\"><option value=\"\">");
	page_esc(b, consolepage_tx(L, C_ANY));
	page_puts(b, "</option>");
	for (size_t i = 0; i < 4; i++) {
		page_puts(b, "<option");
		page_puts(b, strcmp(q->decision, decisions[i]) == 0 ? " selected>" : ">");
		page_puts(b, decisions[i]);
		page_puts(b, "</option>");
	}
	page_puts(b, "</select></div>");
	search_field(b, L, "reason", C_REASON, "text", q->reason);
	search_field(b, L, "since", C_SINCE, "text", q->since);
	search_field(b, L, "until", C_UNTIL, "text", q->until);
	page_puts(b, "<div><button type=\"submit\">");
	page_esc(b, consolepage_tx(L, C_SEARCH_BTN));
	page_puts(b, "</button></div></form>\n");
}

static int h_console_search(struct reqctx *ctx)
{
	struct creq *r = NULL;
	int src = signed_in(ctx, &r);
	struct cfilter q;
	struct store_audit_filter f;
	struct page_buf b = { 0 };
	if (src != 0)
		return handled(src);
	if ((src = filter_query(ctx, r, F_FILTERS | F_AFTER, &q)) != 0)
		return handled(src);
	enum prefpage_lang L = r->lang;
	audit_view(ctx, r, "audit.read", (q.seen & F_CONTACT) ? q.contact : NULL,
		   filter_detail(&q, "search"));
	consolepage_head(&b, L, consolepage_tx(L, C_SEARCH), C_SEARCH, ctx->actor, ctx->role, r->s.csrf);
	search_form(&b, L, r->s.csrf, &q);
	bool any = (q.seen & F_FILTERS) != 0;
	if (any) {
		struct listing l = { .b = &b,
				     .reason = (q.seen & F_REASON) ? q.reason : NULL,
				     .limit = CONSOLE_PAGE_ENTRIES };
		page_puts(&b, "<h2>");
		page_esc(&b, consolepage_tx(L, C_RESULTS));
		page_puts(&b, "</h2>");
		if (q.seen & F_CONTACT && is_contact_id(q.contact)) {
			page_puts(&b, "<p><a href=\"/console/people/");
			page_esc(&b, q.contact);
			page_puts(&b, "\">");
			page_esc(&b, consolepage_tx(L, C_OPEN_REPORT));
			page_puts(&b, "</a></p>");
		}
		entries_head(&b, L, C_RESULTS);
		filter_store(&q, &f);
		f.limit = l.reason != NULL ? 0 : l.limit + 1;
		struct txn t = app_txn(ctx, ctx->rd);
		int rc = trail_each(&t, &f, listing_add, &l);
		if (rc < 0) {
			free(page_finish(&b));
			return fail_audited(ctx, r, rc);
		}
		page_puts(&b, "</tbody></table>\n");
		if (l.n == 0)
			consolepage_notice(&b, consolepage_tx(L, C_NO_RESULTS), 0);
		page_puts(&b, "<p class=\"actions\">");
		if (l.more) {
			char after[32];
			snprintf(after, sizeof after, "after=%lld", (long long)l.last_seq);
			page_puts(&b, "<a rel=\"next\" href=\"");
			put_href(&b, "/console/search", &q, after);
			page_puts(&b, "\">");
			page_esc(&b, consolepage_tx(L, C_NEXT_PAGE));
			page_puts(&b, "</a>");
		}
		page_puts(&b, "<a href=\"");
		put_href(&b, "/console/export", &q, "format=ndjson");
		page_puts(&b, "\" download>");
		page_esc(&b, consolepage_tx(L, C_EXPORT_NDJSON));
		page_puts(&b, "</a><a href=\"");
		put_href(&b, "/console/export", &q, "format=csv");
		page_puts(&b, "\" download>");
		page_esc(&b, consolepage_tx(L, C_EXPORT_CSV));
		page_puts(&b, "</a></p>\n");
		json_t *d = filter_detail(&q, "search");
		json_object_set_new(d, "count", json_integer(l.n));
		audit_detail(ctx, d);
	}
	consolepage_tail(&b);
	reply_page(ctx, 200, &b);
	app_commit(ctx);
	return 0;
}

/* Reads the search form's filters (not email/phone) into q. */
static int form_filters(const char *body, size_t len, struct cfilter *q)
{
	static const char *const names[] = { "contact",	 "actor",  "action", "purpose",
					     "decision", "reason", "since",  "until" };
	char v[FORM_CAP];
	memset(q, 0, sizeof *q);
	q->allowed = F_FILTERS;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		int rc = parse_form_value(body, len, names[i], v, sizeof v);
		if (rc == ERR_NOTFOUND)
			continue;
		if (rc == 0)
			rc = filter_one(q, names[i], v);
		if (rc != 0)
			return rc;
	}
	return filter_check(q);
}

static int h_console_search_post(struct reqctx *ctx)
{
	struct creq *r = NULL;
	int src = signed_in(ctx, &r);
	struct cfilter q;
	char email[FORM_CAP] = "", phone[FORM_CAP] = "";
	char ids[CONSOLE_PHONE_MATCHES][STORE_ID_CAP];
	size_t len, n = 0;
	bool more = false;
	int rc;
	if (src != 0)
		return handled(src);
	if (!csrf_ok(ctx, r->s.csrf)) {
		err_set(ERR_DENIED, "the form's csrf value is missing or wrong; nothing was done");
		return wants_html(ctx) ? refuse(ctx, r, ERR_DENIED, C_FORM_EXPIRED)
				       : app_reason(ctx, ERR_DENIED, REASON_CSRF);
	}
	const char *body = http_body(ctx->http, &len);
	if ((rc = form_filters(body, len, &q)) != 0) {
		return refuse(ctx, r, rc, C_FORM_EXPIRED);
	}
	rc = parse_form_value(body, len, "email", email, sizeof email);
	if (rc == 0 || rc == ERR_NOTFOUND)
		rc = parse_form_value(body, len, "phone", phone, sizeof phone);
	if (rc != 0 && rc != ERR_NOTFOUND) {
		console_wipe(email, sizeof email);
		return refuse(ctx, r, rc, C_FORM_EXPIRED);
	}
	const char *by = email[0] ? "email" : phone[0] ? "phone" : NULL;
	if (by != NULL) {
		struct txn t = app_txn(ctx, ctx->rd);
		if (email[0] && phone[0])
			rc = err_set(ERR_INVALID, "give an email address or a phone number, not both");
		else if (q.seen & F_CONTACT)
			rc = err_set(ERR_INVALID, "give a contact id or an address, not both");
		else
			rc = trail_find_contacts(&t, email[0] ? email : NULL, email[0] ? NULL : phone, ids,
						 CONSOLE_PHONE_MATCHES, &n, &more);
		/* The address is not needed any more, and never kept. */
		console_wipe(email, sizeof email);
		console_wipe(phone, sizeof phone);
		if (rc == ERR_INVALID && (q.seen & F_CONTACT) == 0 && !(email[0] && phone[0]))
			err_set(ERR_INVALID, "%s",
				by[0] == 'e' ? "this is not an email address"
					     : "a phone number needs the form +CC NUMBER");
		if (rc == ERR_INVALID) {
			return refuse(ctx, r, rc, C_FORM_EXPIRED);
		}
		audit_view(
			ctx, r, "audit.read", n == 1 ? ids[0] : NULL,
			json_pack("{s:s, s:s, s:I}", "console", "lookup", "by", by, "found", (json_int_t)n));
		if (rc != 0) {
			return fail_audited(ctx, r, rc);
		}
		if (n != 1) {
			/* None, or several sharing a phone number: a page, not a
			 * redirect, and still without the address. */
			struct page_buf b = { 0 };
			enum prefpage_lang L = r->lang;
			consolepage_head(&b, L, consolepage_tx(L, C_SEARCH), C_SEARCH, ctx->actor, ctx->role,
					 r->s.csrf);
			if (n == 0) {
				consolepage_notice(&b, consolepage_tx(L, C_NO_MATCH), 0);
			} else {
				page_puts(&b, "<p>");
				page_esc(&b, consolepage_tx(L, C_SEVERAL));
				page_puts(&b, "</p><ul>");
				for (size_t i = 0; i < n; i++) {
					page_puts(&b, "<li><a class=\"mono\" href=\"/console/people/");
					page_esc(&b, ids[i]);
					page_puts(&b, "\">");
					page_esc(&b, ids[i]);
					page_puts(&b, "</a></li>");
				}
				page_puts(&b, more ? "<li>…</li></ul>" : "</ul>");
			}
			search_form(&b, L, r->s.csrf, &q);
			consolepage_tail(&b);
			reply_page(ctx, 200, &b);
			app_commit(ctx);
			return 0;
		}
		snprintf(q.contact, sizeof q.contact, "%s", ids[0]);
		q.seen |= F_CONTACT;
	}
	struct page_buf loc = { 0 };
	page_puts(&loc, "/console/search?");
	put_filters(&loc, &q);
	char *where = page_finish(&loc);
	if (where == NULL) {
		rc = err_set(ERR_NOMEM, "out of memory");
		return ctx->audit_begun ? fail_audited(ctx, r, rc) : rc;
	}
	reply_text(ctx, 303, "text/plain; charset=utf-8", strdup("see the search page\n"), 20);
	http_add_header(ctx->http, "Location", where);
	free(where);
	/* A lookup revealed which contact an address belongs to: that is an
	 * access, committed before the answer; plain filters reveal nothing
	 * until the GET, which is audited itself. */
	if (ctx->audit_begun)
		app_commit(ctx);
	else
		app_send(ctx);
	return 0;
}

/* ---- GET /console/entries/{token} ---- */

static void hash_row(struct page_buf *b, enum prefpage_lang L, enum ctext label, const uint8_t h[32])
{
	char hex[2 * AUDIT_HASH_BYTES + 1];
	audit_hex_encode(h, AUDIT_HASH_BYTES, hex);
	page_puts(b, "<tr><th scope=\"row\">");
	page_esc(b, consolepage_tx(L, label));
	page_puts(b, "</th><td><code>");
	page_esc(b, hex);
	page_puts(b, "</code></td></tr>");
}

static void text_row(struct page_buf *b, enum prefpage_lang L, enum ctext label, const char *v)
{
	page_puts(b, "<tr><th scope=\"row\">");
	page_esc(b, consolepage_tx(L, label));
	page_puts(b, "</th><td>");
	page_esc(b, v);
	page_puts(b, "</td></tr>");
}

static int h_console_entry(struct reqctx *ctx)
{
	struct creq *r = NULL;
	int src = signed_in(ctx, &r);
	struct audit_entry *e = NULL;
	struct page_buf b = { 0 };
	bool linked = false;
	char *end = NULL;
	if (src != 0)
		return handled(src);
	const char *p = ctx->param[0];
	long long seq = strtoll(p, &end, 10);
	if (!chars_ok(p, 19, "", false) || *end != '\0' || seq < 1) {
		err_set(ERR_INVALID, "an entry is named by its sequence number");
		return refuse(ctx, r, ERR_INVALID, C_NOT_FOUND);
	}
	audit_view(ctx, r, "audit.read", NULL,
		   json_pack("{s:s, s:I}", "console", "entry", "seq", (json_int_t)seq));
	e = calloc(1, sizeof *e);
	if (e == NULL) {
		return fail_audited(ctx, r, err_set(ERR_NOMEM, "out of memory"));
	}
	struct txn t = app_txn(ctx, ctx->rd);
	int rc = trail_entry(&t, seq, e, &linked);
	if (rc != 0) {
		free(e);
		if (rc != ERR_NOTFOUND)
			return fail_audited(ctx, r, rc);
		audit_decide(ctx, false, "no_such_entry");
		err_set(ERR_NOTFOUND, "there is no entry %lld", seq);
		return refuse(ctx, r, ERR_NOTFOUND, C_NOT_FOUND);
	}
	enum prefpage_lang L = r->lang;
	char title[96];
	snprintf(title, sizeof title, "%s %lld", consolepage_tx(L, C_ENTRY), seq);
	consolepage_head(&b, L, title, C_SEARCH, ctx->actor, ctx->role, r->s.csrf);
	consolepage_notice(&b, consolepage_tx(L, linked ? C_LINK_OK : C_LINK_BAD), !linked);
	page_puts(&b, "<table><caption class=\"vh\">");
	page_esc(&b, title);
	page_puts(&b, "</caption><tbody><tr><th scope=\"row\">");
	page_esc(&b, consolepage_tx(L, C_TIME));
	page_puts(&b, "</th><td>");
	consolepage_time(&b, e->time_us);
	page_puts(&b, "</td></tr>");
	text_row(&b, L, C_ACTOR, e->actor);
	text_row(&b, L, C_ROLE, e->role);
	text_row(&b, L, C_ACTION, e->action);
	page_puts(&b, "<tr><th scope=\"row\">");
	page_esc(&b, consolepage_tx(L, C_RECORD));
	page_puts(&b, "</th><td class=\"mono\">");
	if (is_contact_id(e->record_id)) {
		page_puts(&b, "<a href=\"/console/people/");
		page_esc(&b, e->record_id);
		page_puts(&b, "\">");
		page_esc(&b, e->record_id);
		page_puts(&b, "</a>");
	} else {
		page_esc(&b, e->record_id);
	}
	page_puts(&b, "</td></tr>");
	text_row(&b, L, C_PURPOSE, e->purpose);
	text_row(&b, L, C_CHANNEL, e->channel);
	text_row(&b, L, C_DECISION, e->decision);
	text_row(&b, L, C_REASON, e->reason);
	text_row(&b, L, C_FIELDS, e->fields);
	text_row(&b, L, C_REQUEST, e->request_id);
	text_row(&b, L, C_CLIENT, e->client);
	page_puts(&b, "<tr><th scope=\"row\">");
	page_esc(&b, consolepage_tx(L, C_DETAIL));
	page_puts(&b, "</th><td><code>");
	page_esc(&b, e->detail);
	page_puts(&b, "</code></td></tr>");
	hash_row(&b, L, C_PREV_HASH, e->prev_hash);
	hash_row(&b, L, C_HASH, e->hash);
	page_puts(&b, "</tbody></table><p class=\"actions\">");
	if (seq > 1)
		page_printf(&b, "<a rel=\"prev\" href=\"/console/entries/%lld\">", seq - 1);
	if (seq > 1) {
		page_esc(&b, consolepage_tx(L, C_PREVIOUS));
		page_puts(&b, "</a>");
	}
	page_printf(&b, "<a rel=\"next\" href=\"/console/entries/%lld\">", seq + 1);
	page_esc(&b, consolepage_tx(L, C_NEXT));
	page_puts(&b, "</a></p>\n");
	consolepage_tail(&b);
	free(e);
	reply_page(ctx, 200, &b);
	app_commit(ctx);
	return 0;
}

/* ---- GET /console/people/{id} ---- */

struct report {
	struct page_buf *b;
	int64_t n, last_seq;
	bool more;
};

static int report_add(void *arg, const struct audit_entry *e)
{
	struct report *rp = arg;
	if (rp->n == CONSOLE_REPORT_ENTRIES) {
		rp->more = true;
		return 1;
	}
	page_printf(rp->b, "<tr><th scope=\"row\"><a href=\"/console/entries/%lld\">%lld</a></th><td>",
		    (long long)e->seq, (long long)e->seq);
	consolepage_time(rp->b, e->time_us);
	page_puts(rp->b, "</td><td>");
	page_esc(rp->b, e->actor);
	page_puts(rp->b, "</td><td>");
	page_esc(rp->b, e->role);
	page_puts(rp->b, "</td><td>");
	page_esc(rp->b, e->action);
	page_puts(rp->b, "</td><td>");
	page_esc(rp->b, e->purpose);
	page_puts(rp->b, "</td><td>");
	page_esc(rp->b, e->decision);
	if (e->reason[0]) {
		page_puts(rp->b, ": ");
		page_esc(rp->b, e->reason);
	}
	page_puts(rp->b, "</td><td>");
	page_esc(rp->b, e->fields);
	page_puts(rp->b, "</td></tr>\n");
	rp->n++;
	rp->last_seq = e->seq;
	return 0;
}

/* One outreach filter request, read from its entry's detail. */
struct campaign {
	int64_t seq, time_us, total, allowed, denied, released, held_by_cap;
	char actor[AUDIT_ACTOR_MAX + 1], purpose[AUDIT_NAME_MAX + 1], channel[AUDIT_NAME_MAX + 1];
	char release_id[STORE_ID_CAP], list_hmac[80];
};

static void campaign_from(const struct audit_entry *e, struct campaign *c)
{
	memset(c, 0, sizeof *c);
	c->seq = e->seq;
	c->time_us = e->time_us;
	snprintf(c->actor, sizeof c->actor, "%s", e->actor);
	snprintf(c->purpose, sizeof c->purpose, "%s", e->purpose);
	snprintf(c->channel, sizeof c->channel, "%s", e->channel);
	json_t *d = json_loads(e->detail, 0, NULL);
	if (d == NULL)
		return;
	c->total = json_integer_value(json_object_get(d, "total"));
	c->allowed = json_integer_value(json_object_get(d, "allowed"));
	c->denied = json_integer_value(json_object_get(d, "denied"));
	c->released = json_integer_value(json_object_get(d, "released"));
	c->held_by_cap = json_integer_value(json_object_get(d, "held_by_cap"));
	const char *rid = json_string_value(json_object_get(d, "release_id"));
	const char *mac = json_string_value(json_object_get(d, "list_hmac"));
	if (rid != NULL && strlen(rid) < sizeof c->release_id)
		snprintf(c->release_id, sizeof c->release_id, "%s", rid);
	if (mac != NULL && strlen(mac) < sizeof c->list_hmac)
		snprintf(c->list_hmac, sizeof c->list_hmac, "%s", mac);
	json_decref(d);
}

static void campaigns_head(struct page_buf *b, enum prefpage_lang L, enum ctext caption)
{
	static const enum ctext cols[] = { C_SEQ,	  C_TIME,     C_ACTOR,	     C_PURPOSE,
					   C_CHANNEL,	  C_TOTAL,    C_ALLOWED,     C_DENIED,
					   C_HELD_BY_CAP, C_RELEASED, C_LIST_DIGEST, C_RELEASE };
	table_head(b, L, caption, cols, sizeof cols / sizeof cols[0]);
}

static void campaign_row(struct page_buf *b, const struct campaign *c)
{
	page_printf(b, "<tr><th scope=\"row\"><a href=\"/console/entries/%lld\">%lld</a></th><td>",
		    (long long)c->seq, (long long)c->seq);
	consolepage_time(b, c->time_us);
	page_puts(b, "</td><td>");
	page_esc(b, c->actor);
	page_puts(b, "</td><td>");
	page_esc(b, c->purpose);
	page_puts(b, "</td><td>");
	page_esc(b, c->channel);
	page_printf(b, "</td><td>%lld</td><td>%lld</td><td>%lld</td><td>%lld</td><td>%lld</td><td><code>",
		    (long long)c->total, (long long)c->allowed, (long long)c->denied,
		    (long long)c->held_by_cap, (long long)c->released);
	page_esc(b, c->list_hmac);
	page_puts(b, "</code></td><td><code>");
	page_esc(b, c->release_id);
	page_puts(b, "</code></td></tr>\n");
}

struct reach {
	struct page_buf *b;
	int64_t found;
};

/* One campaign that reached the person (trail_reach_each decided that). */
static int reach_add(void *arg, const struct audit_entry *e)
{
	struct reach *x = arg;
	struct campaign c;
	campaign_from(e, &c);
	campaign_row(x->b, &c);
	x->found++;
	return 0;
}

struct recent {
	struct page_buf *b;
	int64_t n;
};

/* One row of the person's release log: what the frequency caps count. */
static int recent_add(void *arg, const struct store_release_entry *e)
{
	struct recent *x = arg;
	page_puts(x->b, "<tr><td>");
	consolepage_time(x->b, e->at_us);
	page_puts(x->b, "</td><td>");
	page_esc(x->b, e->purpose);
	page_puts(x->b, "</td><td>");
	page_esc(x->b, e->channel);
	page_puts(x->b, "</td><td><code>");
	page_esc(x->b, e->release_id);
	page_puts(x->b, "</code></td></tr>\n");
	x->n++;
	return 0;
}

/* The person's recent releases, read from the release log itself (exact,
 * no scan limit), newest first. */
static int person_recent_releases(struct txn *t, struct page_buf *b, enum prefpage_lang L, const char *id)
{
	static const enum ctext cols[] = { C_TIME, C_PURPOSE, C_CHANNEL, C_RELEASE_ID };
	struct recent x = { .b = b };
	page_puts(b, "<h2>");
	page_esc(b, consolepage_tx(L, C_RECENT_RELEASES));
	page_puts(b, "</h2>");
	table_head(b, L, C_RECENT_RELEASES, cols, sizeof cols / sizeof cols[0]);
	int rc = release_of_contact_each(t, id, recent_add, &x);
	page_puts(b, "</tbody></table>\n");
	if (rc == 0 && x.n == 0)
		consolepage_notice(b, consolepage_tx(L, C_NO_RELEASES), 0);
	return rc;
}

static int h_console_person(struct reqctx *ctx)
{
	struct creq *r = NULL;
	int src = signed_in(ctx, &r);
	struct cfilter q;
	struct store_audit_filter f;
	struct page_buf b = { 0 };
	if (src != 0)
		return handled(src);
	if ((src = filter_query(ctx, r, F_AFTER, &q)) != 0)
		return handled(src);
	const char *id = ctx->param[0];
	enum prefpage_lang L = r->lang;
	json_t *d = json_pack("{s:s}", "console", "report");
	if (q.seen & F_AFTER)
		json_object_set_new(d, "after", json_integer(q.after));
	audit_view(ctx, r, "audit.read", id, d);
	char title[96];
	snprintf(title, sizeof title, "%s: %s", consolepage_tx(L, C_REPORT), id);
	consolepage_head(&b, L, title, C_SEARCH, ctx->actor, ctx->role, r->s.csrf);
	page_puts(&b, "<p>");
	page_esc(&b, consolepage_tx(L, C_REPORT_TEXT));
	page_puts(&b, "</p><p class=\"muted actions\">");
	page_esc(&b, consolepage_tx(L, C_PRINT_NOTE));
	page_puts(&b, "</p>\n<h2>");
	page_esc(&b, consolepage_tx(L, C_WHO_ACCESSED));
	page_puts(&b, "</h2>");
	static const enum ctext cols[] = { C_SEQ,    C_TIME,	C_ACTOR,   C_ROLE,
					   C_ACTION, C_PURPOSE, C_OUTCOME, C_FIELDS };
	table_head(&b, L, C_WHO_ACCESSED, cols, sizeof cols / sizeof cols[0]);
	struct report rp = { .b = &b };
	memset(&f, 0, sizeof f);
	f.record_id = id;
	f.after_seq = q.after;
	f.limit = CONSOLE_REPORT_ENTRIES + 1;
	struct txn t = app_txn(ctx, ctx->rd);
	int rc = trail_each(&t, &f, report_add, &rp);
	if (rc < 0) {
		free(page_finish(&b));
		return fail_audited(ctx, r, rc);
	}
	page_puts(&b, "</tbody></table>\n");
	if (rp.n == 0)
		consolepage_notice(&b, consolepage_tx(L, C_NO_RESULTS), 0);
	if (rp.more) {
		page_printf(&b,
			    "<p class=\"actions\"><a rel=\"next\" href=\"/console/people/%s?after=%lld\">",
			    id, (long long)rp.last_seq);
		page_esc(&b, consolepage_tx(L, C_NEXT_PAGE));
		page_puts(&b, "</a></p>");
	}
	page_puts(&b, "<h2>");
	page_esc(&b, consolepage_tx(L, C_CAMPAIGNS_REACHED));
	page_puts(&b, "</h2>");
	campaigns_head(&b, L, C_CAMPAIGNS_REACHED);
	struct reach x = { .b = &b };
	bool more = false;
	if ((rc = trail_reach_each(&t, id, reach_add, &x, &more)) != 0) {
		free(page_finish(&b));
		/* The router checked the id's form; a bad one here is ours. */
		return fail_audited(
			ctx, r,
			rc == ERR_INVALID ? err_set(ERR_INTERNAL, "a contact id that is not 16 bytes") : rc);
	}
	page_puts(&b, "</tbody></table>\n");
	if (x.found == 0)
		consolepage_notice(&b, consolepage_tx(L, C_NO_CAMPAIGNS), 0);
	if (more)
		consolepage_notice(&b, consolepage_tx(L, C_SCAN_LIMIT), 0);
	if ((rc = person_recent_releases(&t, &b, L, id)) != 0) {
		free(page_finish(&b));
		return fail_audited(ctx, r, rc);
	}
	consolepage_tail(&b);
	reply_page(ctx, 200, &b);
	app_commit(ctx);
	return 0;
}

/* ---- GET /console/campaigns ---- */

struct clist {
	struct page_buf *b;
	int64_t n, last_seq;
	bool more;
};

static int clist_add(void *arg, const struct audit_entry *e)
{
	struct clist *l = arg;
	struct campaign c;
	if (l->n == CONSOLE_CAMPAIGNS_MAX) {
		l->more = true;
		return 1;
	}
	campaign_from(e, &c);
	campaign_row(l->b, &c);
	l->n++;
	l->last_seq = e->seq;
	return 0;
}

static int h_console_campaigns(struct reqctx *ctx)
{
	struct creq *r = NULL;
	int src = signed_in(ctx, &r);
	struct cfilter q;
	struct store_audit_filter f;
	struct page_buf b = { 0 };
	if (src != 0)
		return handled(src);
	if ((src = filter_query(ctx, r, F_AFTER, &q)) != 0)
		return handled(src);
	enum prefpage_lang L = r->lang;
	json_t *d = json_pack("{s:s}", "console", "campaigns");
	if (q.seen & F_AFTER)
		json_object_set_new(d, "after", json_integer(q.after));
	audit_view(ctx, r, "audit.read", NULL, d);
	consolepage_head(&b, L, consolepage_tx(L, C_CAMPAIGNS), C_CAMPAIGNS, ctx->actor, ctx->role,
			 r->s.csrf);
	page_puts(&b, "<p>");
	page_esc(&b, consolepage_tx(L, C_CAMPAIGNS_TEXT));
	page_puts(&b, "</p>");
	campaigns_head(&b, L, C_CAMPAIGNS);
	struct clist l = { .b = &b };
	memset(&f, 0, sizeof f);
	f.action = "outreach.filter";
	f.decision = "allow";
	f.after_seq = q.after;
	f.limit = CONSOLE_CAMPAIGNS_MAX + 1;
	struct txn t = app_txn(ctx, ctx->rd);
	int rc = trail_each(&t, &f, clist_add, &l);
	if (rc < 0) {
		free(page_finish(&b));
		return fail_audited(ctx, r, rc);
	}
	page_puts(&b, "</tbody></table>\n");
	if (l.n == 0)
		consolepage_notice(&b, consolepage_tx(L, C_NO_RESULTS), 0);
	if (l.more) {
		page_printf(&b,
			    "<p class=\"actions\"><a rel=\"next\" href=\"/console/campaigns?after=%lld\">",
			    (long long)l.last_seq);
		page_esc(&b, consolepage_tx(L, C_NEXT_PAGE));
		page_puts(&b, "</a></p>");
	}
	consolepage_tail(&b);
	reply_page(ctx, 200, &b);
	app_commit(ctx);
	return 0;
}

/* ---- GET /console/export and GET /console/evidence: streamed bodies ---- */

/*
 * One streamed download: either the entries of a search (NDJSON or CSV,
 * like GET /v1/audit/export) or the evidence pack, a POSIX ustar archive:
 *
 *   README.txt        how to verify, with the sizes and times below
 *   checkpoint.json   the newest signed checkpoint (size N)
 *   audit-public.pem  the public key
 *   audit.ndjson      entries 1..N exactly, so the checkpoint covers them
 *
 * Each member is a 512-byte header, its bytes, and zero padding to 512;
 * the archive ends with two zero blocks. A tar header needs the member's
 * size first, so the NDJSON member is measured in one pass over entries
 * 1..N before anything is sent; those entries are immutable (append-only
 * trail), so the second pass yields the very same bytes.
 */
enum { M_README, M_CHECKPOINT, M_PUBKEY, M_NDJSON, M_COUNT };
static const char *const member_names[M_COUNT] = { "README.txt", "checkpoint.json", "audit-public.pem",
						   "audit.ndjson" };

struct dl {
	struct store *st;
	struct trail_lines *lines; /* audit.ndjson's entries (trail.c's export stream) */
	bool ended;
	int64_t entries; /* evidence: the checkpoint's size, measured before its member's header */
	bool measured;
	/* tar */
	int member, phase; /* phase 0 header, 1 body, 2 padding; member M_COUNT: the end blocks */
	char *mem[M_COUNT];
	uint64_t size[M_COUNT], sent; /* bytes of the current member's body sent */
	size_t len, off;
	char line[AUDIT_JSON_MAX > AUDIT_CSV_MAX ? AUDIT_JSON_MAX : AUDIT_CSV_MAX];
};

static void dl_free(void *arg)
{
	struct dl *x = arg;
	if (x == NULL)
		return;
	trail_lines_free(x->lines);
	for (int i = 0; i < M_COUNT; i++)
		free(x->mem[i]);
	free(x);
}

/* The next entry's NDJSON line into x->line; 1, 0 at the end, negative on
 * error. */
static int dl_entry_line(struct dl *x)
{
	const char *p;
	size_t n;
	int rc = trail_lines_next(x->lines, &p, &n);
	if (rc <= 0)
		return rc;
	if (n > sizeof x->line)
		return err_set(ERR_INTERNAL, "an entry's line is longer than its bound");
	memcpy(x->line, p, n);
	x->len = n;
	x->off = 0;
	return 1;
}

static void tar_header(char h[512], const char *name, uint64_t size, int64_t mtime)
{
	memset(h, 0, 512);
	snprintf(h, 100, "%s", name);
	memcpy(h + 100, "0000644", 8);
	memcpy(h + 108, "0000000", 8);
	memcpy(h + 116, "0000000", 8);
	snprintf(h + 124, 12, "%011llo", (unsigned long long)size);
	snprintf(h + 136, 12, "%011llo", (unsigned long long)mtime);
	memset(h + 148, ' ', 8);
	h[156] = '0';
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	snprintf(h + 265, 32, "consentd");
	snprintf(h + 297, 32, "consentd");
	unsigned sum = 0;
	for (int i = 0; i < 512; i++)
		sum += (unsigned char)h[i];
	snprintf(h + 148, 8, "%06o", sum & 0777777);
	h[155] = ' ';
}

/* Measures entries 1..N (N = x->entries, the checkpoint's size), then opens
 * the cursor that sends them. This pass reads the whole signed trail, so it
 * runs when the reader pulls the member's header, on the thread that sends
 * the body, never on the writer's commit thread. A failure cuts the
 * download (dl_read), so a short pack cannot pass for a whole one. */
static int dl_measure(struct dl *x)
{
	struct store_audit_filter f;
	int64_t count = 0;
	int rc;
	memset(&f, 0, sizeof f);
	f.limit = x->entries;
	if ((rc = trail_lines_open(x->st, &f, TRAIL_NDJSON, NULL, &x->lines)) != 0)
		return rc;
	while ((rc = dl_entry_line(x)) == 1) {
		x->size[M_NDJSON] += x->len;
		count++;
	}
	trail_lines_free(x->lines);
	x->lines = NULL;
	x->len = x->off = 0;
	if (rc == 0 && count != x->entries)
		rc = err_set(ERR_AUDIT_ALTERED, "the trail has %lld of the %lld entries its checkpoint signs",
			     (long long)count, (long long)x->entries);
	if (rc != 0 || (rc = trail_lines_open(x->st, &f, TRAIL_NDJSON, NULL, &x->lines)) != 0)
		return rc;
	x->measured = true;
	return 0;
}

/* The tar's next piece into x->line; 1, 0 at the end, negative on error. */
static int dl_tar_next(struct dl *x)
{
	for (;;) {
		if (x->member == M_COUNT) {
			if (x->phase == 3)
				return 0;
			memset(x->line, 0, 1024);
			x->len = 1024;
			x->off = 0;
			x->phase = 3;
			return 1;
		}
		if (x->phase == 0 && x->member == M_NDJSON && !x->measured) {
			int rc = dl_measure(x);
			if (rc != 0)
				return rc;
		}
		if (x->phase == 0) {
			tar_header(x->line, member_names[x->member], x->size[x->member], now_us() / 1000000);
			x->len = 512;
			x->off = 0;
			x->phase = 1;
			x->sent = 0;
			return 1;
		}
		if (x->phase == 1) {
			if (x->sent == x->size[x->member]) {
				x->phase = 2;
				continue;
			}
			if (x->member == M_NDJSON) {
				int rc = dl_entry_line(x);
				if (rc == 0 || (rc > 0 && x->sent + x->len > x->size[x->member]))
					return err_set(ERR_INTERNAL,
						       "the trail changed under the evidence pack");
				if (rc < 0)
					return rc;
			} else {
				size_t k = (size_t)(x->size[x->member] - x->sent);
				if (k > sizeof x->line)
					k = sizeof x->line;
				memcpy(x->line, x->mem[x->member] + x->sent, k);
				x->len = k;
				x->off = 0;
			}
			x->sent += x->len;
			return 1;
		}
		/* padding */
		size_t pad = (size_t)((512 - x->size[x->member] % 512) % 512);
		x->member++;
		x->phase = 0;
		if (pad > 0) {
			memset(x->line, 0, pad);
			x->len = pad;
			x->off = 0;
			return 1;
		}
	}
}

static ssize_t dl_read(void *arg, char *buf, size_t cap)
{
	struct dl *x = arg;
	size_t out = 0;
	while (out < cap) {
		if (x->off == x->len) {
			if (x->ended)
				break;
			int rc = dl_tar_next(x);
			if (rc < 0) {
				/* Cut: a chunked body without its last chunk can
				 * never pass for a whole download. */
				fprintf(stderr, "consentd: console download cut short: %s\n", err_msg());
				return -1;
			}
			if (rc == 0) {
				x->ended = true;
				break;
			}
		}
		size_t k = x->len - x->off;
		if (k > cap - out)
			k = cap - out;
		memcpy(buf + out, x->line + x->off, k);
		x->off += k;
		out += k;
	}
	return (ssize_t)out;
}

/* Prepares a streamed download (read, with free_arg for arg); the commit
 * sends it after the entry is durable, or drops it. */
static void prepare_download(struct reqctx *ctx, http_reader read, void *arg, void (*free_arg)(void *),
			     const char *ctype, const char *disposition)
{
	ctx->status = 200;
	ctx->content_type = ctype;
	ctx->stream_read = read;
	ctx->stream_ctx = arg;
	ctx->stream_free = free_arg;
	http_add_header(ctx->http, "Content-Disposition", disposition);
	http_add_header(ctx->http, "Content-Security-Policy", CONSOLE_CSP);
}

static int h_console_export(struct reqctx *ctx)
{
	struct creq *r = NULL;
	int src = signed_in(ctx, &r);
	struct cfilter q;
	struct store_audit_filter f;
	struct trail_lines *lines = NULL;
	int rc;
	if (src != 0)
		return handled(src);
	if ((src = filter_query(ctx, r, F_FILTERS | F_AFTER | F_FORMAT, &q)) != 0)
		return handled(src);
	audit_view(ctx, r, "audit.export", (q.seen & F_CONTACT) ? q.contact : NULL,
		   filter_detail(&q, "export"));
	/* The same stream as GET /v1/audit/export, with the reason post-filter. */
	filter_store(&q, &f);
	if ((rc = trail_lines_open(ctx->app->store, &f, q.csv ? TRAIL_CSV : TRAIL_NDJSON,
				   (q.seen & F_REASON) ? q.reason : NULL, &lines)) != 0)
		return fail_audited(ctx, r, rc);
	prepare_download(ctx, trail_lines_read, lines, trail_lines_free,
			 q.csv ? "text/csv; charset=utf-8" : "application/x-ndjson",
			 q.csv ? "attachment; filename=\"audit.csv\""
			       : "attachment; filename=\"audit.ndjson\"");
	app_commit(ctx);
	return 0;
}

static const char README[] =
	"consentd evidence pack\n"
	"======================\n\n"
	"This archive holds the audit trail of a consentd deployment as it was signed:\n\n"
	"  audit.ndjson      entries 1 to %lld, one JSON object a line\n"
	"  checkpoint.json   the signed checkpoint over exactly those entries\n"
	"                    (size %lld, signed %s, Ed25519 key id %s)\n"
	"  audit-public.pem  the public key that signed it\n\n"
	"Verify it independently, on any machine with the consentd binary:\n\n"
	"  tar -xf evidence.tar\n"
	"  consentd audit verify --export audit.ndjson --pubkey audit-public.pem \\\n"
	"      --checkpoint checkpoint.json\n\n"
	"The command recomputes every entry's SHA-256 hash link from the first entry on\n"
	"and checks that the last one matches the root the checkpoint signs. It prints\n"
	"\"ok\" and exits 0 when the file is the trail that was signed; any edited,\n"
	"deleted, inserted or reordered entry makes it fail with the first bad sequence\n"
	"number. Compare the key id with the one your organisation published, so that\n"
	"the check rests on a key you hold, not only on the one in this archive.\n\n"
	"Made for %s (role %s) at %s, request %s.\n"
	"Entries after %lld are not in this pack: they are covered by a later checkpoint.\n";

static int read_small_file(const char *path, char **out, uint64_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n;
	if (f == NULL)
		return err_set(ERR_IO, "cannot open the audit public key");
	buf = malloc(AUDIT_PEM_MAX);
	n = buf ? fread(buf, 1, AUDIT_PEM_MAX, f) : 0;
	fclose(f);
	if (buf == NULL || n == 0 || n == AUDIT_PEM_MAX) {
		free(buf);
		return err_set(ERR_IO, "the audit public key file is empty or too large");
	}
	*out = buf;
	*len = n;
	return 0;
}

/*
 * The evidence pack is built on a checkpoint over everything written before
 * it was asked for, and no HTTP worker waits for that signature:
 *
 *   HTTP thread     h_console_evidence: session, app_defer (suspend),
 *                   writer_checkpoint, submit empty job wait[0]
 *   commit thread   evidence_batch (wait[0] done): the writer signs after
 *                   the batch whose done this is, so submit wait[1]
 *                   evidence_signed (wait[1] done): the checkpoint is
 *                   stored; evidence_build loads and verifies it, prepares
 *                   the small members and the stream, app_commit_deferred
 *   HTTP thread     dl_read, after the view's entry is durable: measures
 *                   and sends entries 1..N (dl_measure)
 */
static void evidence_build(struct reqctx *ctx, struct creq *r, int rc)
{
	struct audit_checkpoint cp;
	struct dl *x = NULL;
	char tcp[AUDIT_TIME_BYTES], tnow[AUDIT_TIME_BYTES], kid[2 * AUDIT_KEY_ID_BYTES + 1];
	audit_view(ctx, r, "audit.export", NULL, json_pack("{s:s}", "console", "evidence"));
	if (rc != 0) {
		fail_audited_deferred(ctx, r, ERR_UNAVAILABLE);
		return;
	}
	if ((x = calloc(1, sizeof *x)) == NULL) {
		rc = err_set(ERR_NOMEM, "out of memory");
		goto fail;
	}
	x->st = ctx->app->store;
	if ((rc = trail_evidence_checkpoint_on(x->st, ctx->app->cfg.signing_pub, &cp)) != 0 ||
	    (rc = read_small_file(ctx->app->cfg.signing_pub, &x->mem[M_PUBKEY], &x->size[M_PUBKEY])) != 0)
		goto fail;
	x->entries = cp.size;
	x->mem[M_CHECKPOINT] = malloc(AUDIT_CHECKPOINT_JSON_MAX + 1);
	x->mem[M_README] = malloc(sizeof README + 1024);
	if (x->mem[M_CHECKPOINT] == NULL || x->mem[M_README] == NULL) {
		rc = err_set(ERR_NOMEM, "out of memory");
		goto fail;
	}
	int n = audit_checkpoint_format_json(&cp, x->mem[M_CHECKPOINT], AUDIT_CHECKPOINT_JSON_MAX);
	if (n < 0) {
		rc = n;
		goto fail;
	}
	x->mem[M_CHECKPOINT][n++] = '\n';
	x->size[M_CHECKPOINT] = (uint64_t)n;
	audit_time_format(cp.time_us, tcp);
	audit_time_format(now_us(), tnow);
	audit_hex_encode(cp.key_id, sizeof cp.key_id, kid);
	n = snprintf(x->mem[M_README], sizeof README + 1024, README, (long long)cp.size, (long long)cp.size,
		     tcp, kid, ctx->actor, ctx->role, tnow, http_request_id(ctx->http), (long long)cp.size);
	if (n < 0 || (size_t)n >= sizeof README + 1024) {
		rc = err_set(ERR_INTERNAL, "the evidence README does not fit");
		goto fail;
	}
	x->size[M_README] = (uint64_t)n;
	audit_detail(ctx, json_pack("{s:s, s:I}", "console", "evidence", "size", (json_int_t)cp.size));
	prepare_download(ctx, dl_read, x, dl_free, "application/x-tar",
			 "attachment; filename=\"consentd-evidence.tar\"");
	app_commit_deferred(ctx);
	return;
fail:
	dl_free(x);
	fail_audited_deferred(ctx, r, rc);
}

static void evidence_signed(struct writer_job *job, int rc)
{
	struct reqctx *ctx = job->ctx;
	evidence_build(ctx, ctx->state, rc);
}

static void evidence_batch(struct writer_job *job, int rc)
{
	struct reqctx *ctx = job->ctx;
	struct creq *r = ctx->state;
	/* The commit thread signs the checkpoint asked for after the batch
	 * whose done this is; the next empty job is taken only once that
	 * signature is stored. Submitting from here queues, it never waits. */
	if (rc == 0) {
		r->wait[1].done = evidence_signed;
		r->wait[1].ctx = ctx;
		rc = writer_submit(ctx->app->writer, &r->wait[1]);
	}
	if (rc != 0)
		evidence_build(ctx, r, rc);
}

static int h_console_evidence(struct reqctx *ctx)
{
	struct creq *r = NULL;
	int src = signed_in(ctx, &r);
	struct cfilter q;
	if (src != 0)
		return handled(src);
	if ((src = filter_query(ctx, r, 0, &q)) != 0)
		return handled(src);
	/* From here the request is the commit thread's (see above). */
	app_defer(ctx);
	writer_checkpoint(ctx->app->writer);
	r->wait[0].done = evidence_batch;
	r->wait[0].ctx = ctx;
	if (writer_submit(ctx->app->writer, &r->wait[0]) != 0)
		evidence_build(ctx, r, ERR_UNAVAILABLE);
	return 0;
}

const struct route console_routes[] = {
	{ "GET", "/console/", h_console_home, NULL, true, 0, "audit.read" },
	{ "GET", "/console/console.css", h_console_css, NULL, true, 0, NULL },
	{ "POST", "/console/login", h_console_login, NULL, true, 0, "console.login" },
	{ "POST", "/console/logout", h_console_logout, NULL, true, 0, "console.logout" },
	{ "GET", "/console/search", h_console_search, NULL, true, 0, "audit.read" },
	{ "POST", "/console/search", h_console_search_post, NULL, true, 0, "audit.read" },
	{ "GET", "/console/entries/{token}", h_console_entry, NULL, true, 0, "audit.read" },
	{ "GET", "/console/people/{id}", h_console_person, NULL, true, 0, "audit.read" },
	{ "GET", "/console/campaigns", h_console_campaigns, NULL, true, 0, "audit.read" },
	{ "GET", "/console/export", h_console_export, NULL, true, 0, "audit.export" },
	{ "GET", "/console/evidence", h_console_evidence, NULL, true, 0, "audit.export" },
	{ 0 },
};
