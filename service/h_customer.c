/*
 * h_customer: customer self-service. Staff create (and revoke) signed
 * preference links; the person who holds one sees and changes their
 * choices, withdraws everything, downloads their data, asks for erasure,
 * and unsubscribes in one click (RFC 8058), without an account.
 *
 *   POST   /v1/contacts/{id}/preference-link            staff: a new link
 *   DELETE /v1/contacts/{id}/preference-link            staff: revoke all
 *   DELETE /v1/contacts/{id}/preference-link/{link id}  staff: revoke one
 *   GET    /p/{token}                                   the preference centre
 *   POST   /p/{token}                                   its forms (CSRF-checked)
 *   GET    /v1/unsubscribe/{token}                      a confirmation button only
 *   POST   /v1/unsubscribe/{token}                      one-click unsubscribe
 *   GET    /p/request                                   the public "ask for a link" form
 *   POST   /p/request                                   mails a manage link to an address on file
 *
 * Invariants:
 * - The customer routes are public: the token is the credential. It is
 *   checked (shape, MAC, expiry, link row, revocation, contact not erased)
 *   before anything is read, and every failure gets the same 403 page, so
 *   the page never tells whether a contact exists. Such a denial is
 *   audited without a record id.
 * - Every customer request that passes is audited as actor "customer",
 *   role "customer", with the client address replaced by "h:" and a keyed
 *   hash of it (FC_HASH_CLIENT): a customer's IP address is personal data.
 * - Writes run as job.apply on the commit thread, in the audit entry's
 *   transaction. GET never writes, except that a Sec-GPC: 1 signal on the
 *   preference centre records the opt-out it means; GET on the unsubscribe
 *   URL writes nothing at all, because mail scanners prefetch it.
 * - Forms carry a CSRF value bound to the link (linktoken.h); a value is
 *   accepted once (the nonce is remembered until the value expires).
 * - Bodies are read by pure parsers declared in service/parse.h
 *   (parse_form_value, parse_one_click, parse_link_body, ...), fuzzed by
 *   tests/fuzz/fuzz_form.c and fuzz_link_body.c.
 */
#include "service/app.h"

#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/base/limits.h"
#include "service/domain/consent.h"
#include "service/domain/contact.h"
#include "service/domain/link.h"
#include "service/domain/receipt.h"
#include "service/domain/release.h"
#include "service/domain/request.h"
#include "service/domain/trail.h"
#include "service/domain/suppression.h"
#include "service/linktoken.h"
#include "service/parse.h"
#include "service/prefpage.h"
#include "service/router.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CSRF_MAX_AGE_S (2 * 3600)
#define FORM_VALUE_CAP 256
#define EXPORT_AUDIT_MAX 100000 /* entries in one data download */

/* ---- form bodies (pure; service/parse.h) ---- */

/* Decodes an application/x-www-form-urlencoded component into out. */
static int url_decode(const char *s, size_t n, char *out, size_t cap)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '+') {
			c = ' ';
		} else if (c == '%') {
			if (i + 2 >= n)
				return ERR_INVALID;
			int h = hex_digit((unsigned char)s[i + 1]), l = hex_digit((unsigned char)s[i + 2]);
			if (h < 0 || l < 0)
				return ERR_INVALID;
			c = (char)(h << 4 | l);
			i += 2;
		}
		if (o + 1 >= cap)
			return ERR_TOOBIG;
		out[o++] = c;
	}
	out[o] = '\0';
	return is_clean_utf8(out, o) ? 0 : ERR_INVALID;
}

int parse_form_value(const char *body, size_t len, const char *name, char *out, size_t cap)
{
	size_t nlen = strlen(name);
	const char *p = body, *end = body + len;
	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *fend = amp ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(fend - p));
		char key[64];
		if (eq != NULL && url_decode(p, (size_t)(eq - p), key, sizeof key) == 0 &&
		    strlen(key) == nlen && memcmp(key, name, nlen) == 0) {
			int rc = url_decode(eq + 1, (size_t)(fend - eq - 1), out, cap);
			if (rc == ERR_TOOBIG)
				return err_set(rc, "form field %s is longer than %zu bytes", name, cap - 1);
			if (rc != 0)
				return err_set(rc,
					       "form field %s has a bad %%-escape or is not clean UTF-8 text",
					       name);
			return 0;
		}
		if (amp == NULL)
			break;
		p = amp + 1;
	}
	return err_set(ERR_NOTFOUND, "no form field %s", name);
}

bool parse_media_is(const char *h, const char *want)
{
	size_t n = strlen(want);
	while (h != NULL && *h == ' ')
		h++;
	return h != NULL && strncasecmp(h, want, n) == 0 && (h[n] == '\0' || h[n] == ';' || h[n] == ' ');
}

bool parse_multipart_one_click(const char *ctype, const char *body, size_t len)
{
	const char *b = strcasestr(ctype, "boundary=");
	char boundary[80] = "\r\n--";
	if (b == NULL)
		return false;
	b += 9;
	bool quoted = *b == '"';
	if (quoted)
		b++;
	size_t n = strcspn(b, quoted ? "\"" : "; ");
	if (n == 0 || n > 70)
		return false;
	memcpy(boundary + 4, b, n);
	boundary[4 + n] = '\0';
	size_t blen = 4 + n;
	/* The first delimiter may start the body without the leading CRLF. */
	const char *p = NULL;
	if (len >= blen - 2 && memcmp(body, boundary + 2, blen - 2) == 0)
		p = body + blen - 2;
	else if ((p = memmem(body, len, boundary, blen)) != NULL)
		p += blen;
	const char *end = body + len;
	while (p != NULL && p < end) {
		if (end - p >= 2 && p[0] == '-' && p[1] == '-')
			return false; /* the closing delimiter */
		const char *hdr_end = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
		if (hdr_end == NULL)
			return false;
		const char *value = hdr_end + 4;
		const char *next = memmem(value, (size_t)(end - value), boundary, blen);
		if (next == NULL)
			return false;
		size_t hlen = (size_t)(hdr_end - p);
		char hdrs[512];
		if (hlen < sizeof hdrs) {
			memcpy(hdrs, p, hlen);
			hdrs[hlen] = '\0';
			const char *nm = strcasestr(hdrs, "name=\"List-Unsubscribe\"");
			if (nm == NULL)
				nm = strcasestr(hdrs, "name=List-Unsubscribe");
			size_t vlen = (size_t)(next - value);
			if (nm != NULL && vlen == 9 && memcmp(value, "One-Click", 9) == 0)
				return true;
		}
		p = next + blen;
	}
	return false;
}

bool parse_one_click(const char *ctype, const char *body, size_t len)
{
	char value[FORM_VALUE_CAP];
	if (body == NULL || ctype == NULL)
		return false;
	if (parse_media_is(ctype, "application/x-www-form-urlencoded"))
		return parse_form_value(body, len, "List-Unsubscribe", value, sizeof value) == 0 &&
		       strcmp(value, "One-Click") == 0;
	if (parse_media_is(ctype, "multipart/form-data"))
		return parse_multipart_one_click(ctype, body, len);
	return false;
}

/* ---- the customer's identity in the audit trail ---- */

static void customer_identity(struct reqctx *ctx)
{
	snprintf(ctx->actor, sizeof ctx->actor, "customer");
	snprintf(ctx->role, sizeof ctx->role, "customer");
	ctx->authenticated = true;
}

static void cust_detail(struct reqctx *ctx, json_t *detail);

static void customer_audit_begin(struct reqctx *ctx, const char *action, const char *record_id,
				 const char *purpose, const char *channel)
{
	struct txn t = app_txn(ctx, NULL);
	audit_begin(ctx, action, record_id, purpose, channel);
	link_client_id(&t, http_client(ctx->http), ctx->job.entry.client, sizeof ctx->job.entry.client);
	cust_detail(ctx, json_object());
}

static void page_headers(struct reqctx *ctx)
{
	http_add_header(ctx->http, "Content-Security-Policy", PREFPAGE_CSP);
	http_add_header(ctx->http, "X-Frame-Options", "DENY");
	http_add_header(ctx->http, "Content-Language", "en, zh-CN");
	http_add_header(ctx->http, "Vary", "Accept-Language, Sec-GPC");
}

/* Prepares a page. A page that could not be built (out of memory) leaves
 * no reply at all, which the sender answers as a bare 500. */
static void reply_page(struct reqctx *ctx, int status, char *page)
{
	if (page == NULL) {
		reply_drop(ctx);
		return;
	}
	page_headers(ctx);
	reply_text(ctx, status, PREFPAGE_CONTENT_TYPE, page, strlen(page));
}

/* ---- resolving a token ---- */

/* OP_ERASE_REQUEST: an erasure the policy holds for staff approval
 * (request.h); OP_ERASE erases at once. */
enum cust_op { OP_NONE, OP_SET, OP_WITHDRAW_ALL, OP_UNSUBSCRIBE, OP_ERASE, OP_ERASE_REQUEST };

struct cust {
	struct linktoken tok;
	struct store_link link;
	char link_role[STORE_NAME_CAP]; /* the creator's role: bounds the purposes */
	struct store_contact ct;
	char token[LINKTOKEN_CAP];
	enum prefpage_lang lang;
	bool gpc;
	enum cust_op op;
	struct store_consent cs; /* OP_SET */
	json_t *evidence;	 /* OP_SET */
	int changed, suppressed; /* counted by apply, for the audit detail */
	struct store_request rq; /* a request the page recorded */
	char fq_purpose[STORE_NAME_CAP], fq_channel[STORE_NAME_CAP]; /* apply_frequency */
	enum policy_frequency fq;
	/* A form's checked CSRF value, spent by apply_form in the job of
	 * what the form does (csrf_set), and that job's own apply. */
	bool csrf_set;
	struct linktoken_csrf csrf;
	int (*form_apply)(struct store_conn *, struct writer_job *);
	bool record_access; /* a download: recorded as an access request answered at once */
};

static void cust_free(void *p)
{
	struct cust *c = p;
	if (c == NULL)
		return;
	json_decref(c->evidence);
	mem_wipe(c, sizeof *c);
	free(c);
}

/* Every customer entry names the link used and who created it: the token
 * is a bearer credential, so a staff member acting through a link they
 * minted stays attributable. */
static void cust_detail(struct reqctx *ctx, json_t *detail)
{
	struct cust *c = ctx->state_free == cust_free ? ctx->state : NULL;
	if (c != NULL && detail != NULL && c->link.id[0] != '\0') {
		if (json_object_get(detail, "link_id") == NULL)
			json_object_set_new(detail, "link_id", json_string(c->link.id));
		json_object_set_new(detail, "link_created_by", json_string(c->link.created_by));
		json_object_set_new(detail, "link_capability", json_string(c->link.capability));
	}
	audit_detail(ctx, detail);
}

/* Refuses an unusable link: one page for every reason, audited without a
 * record id (the reason for auditors is in the detail). */
static void refuse_link(struct reqctx *ctx, enum prefpage_lang lang, const char *why)
{
	atomic_fetch_add(&ctx->app->metrics.denials, 1);
	customer_audit_begin(ctx, "customer.link", "", NULL, NULL);
	audit_decide(ctx, false, "invalid_link");
	char route[96];
	snprintf(route, sizeof route, "%s %s", http_method(ctx->http), ctx->route->pattern);
	cust_detail(ctx, json_pack("{s:s, s:s}", "route", route, "why", why));
	reply_page(ctx, 403, prefpage_link_invalid(lang));
	app_commit(ctx);
}

/* Checks the token in ctx->param[0] and loads its link and contact into a
 * new ctx->state, *out. An unusable link is answered here with the refusal
 * page (0, *out NULL); an error is returned, audited. */
static int resolve(struct reqctx *ctx, struct cust **out)
{
	const char *token = ctx->param[0];
	enum prefpage_lang lang = prefpage_lang_from(http_header(ctx->http, "Accept-Language"));
	const char *gpc = http_header(ctx->http, "Sec-GPC");
	int64_t now_s = now_us() / 1000000;
	int rc;

	*out = NULL;
	customer_identity(ctx);
	struct cust *c = calloc(1, sizeof *c);
	if (c == NULL)
		return err_set(ERR_NOMEM, "out of memory");
	ctx->state = c;
	ctx->state_free = cust_free;
	c->lang = lang;
	c->gpc = gpc != NULL && strcmp(gpc, "1") == 0;
	struct txn t = app_txn(ctx, ctx->rd);
	const char *refusal = NULL;
	rc = link_resolve(&t, token, now_s, &c->tok, &c->link, c->link_role, &c->ct, &refusal);
	if (rc != 0) {
		customer_audit_begin(ctx, "customer.link", "", NULL, NULL);
		audit_decide(ctx, false, "error");
		return rc;
	}
	if (refusal != NULL) {
		refuse_link(ctx, lang, refusal);
		return 0;
	}
	snprintf(c->token, sizeof c->token, "%s", token);
	*out = c;
	return 0;
}

/* resolve() for the one-click POST: an authentic opt-out token keeps
 * unsubscribing after its expiry or revocation, and after erasure
 * (*erased: answer success, write nothing). See link_resolve_optout. */
static int resolve_optout(struct reqctx *ctx, bool *erased, struct cust **out)
{
	const char *token = ctx->param[0];
	enum prefpage_lang lang = prefpage_lang_from(http_header(ctx->http, "Accept-Language"));
	const char *refusal = NULL;
	int rc;

	*erased = false;
	*out = NULL;
	customer_identity(ctx);
	struct cust *c = calloc(1, sizeof *c);
	if (c == NULL)
		return err_set(ERR_NOMEM, "out of memory");
	ctx->state = c;
	ctx->state_free = cust_free;
	c->lang = lang;
	struct txn t = app_txn(ctx, ctx->rd);
	rc = link_resolve_optout(&t, token, t.now_us / 1000000, &c->tok, &c->link, c->link_role, &c->ct,
				 erased, &refusal);
	if (rc != 0) {
		customer_audit_begin(ctx, "customer.link", "", NULL, NULL);
		audit_decide(ctx, false, "error");
		return rc;
	}
	if (refusal != NULL) {
		refuse_link(ctx, lang, refusal);
		return 0;
	}
	snprintf(c->token, sizeof c->token, "%s", token);
	*out = c;
	return 0;
}

/* True when the link may show and change purpose: its creator's role may
 * use it (a marketing link never reaches a care consent). */
static bool link_covers(const struct reqctx *ctx, const struct cust *c, const char *purpose)
{
	return link_covers_purpose(ctx->policy, c->link_role, purpose);
}

/* ---- writes (commit thread) ---- */

static int make_consent(const struct policy *p, const struct policy_purpose_info *pi, const char *contact_id,
			const char *channel, enum policy_consent_status status, const char *method,
			const char *source, int64_t now, struct store_consent *cs)
{
	memset(cs, 0, sizeof *cs);
	snprintf(cs->contact_id, sizeof cs->contact_id, "%s", contact_id);
	snprintf(cs->purpose, sizeof cs->purpose, "%s", pi->name);
	snprintf(cs->channel, sizeof cs->channel, "%s", channel);
	snprintf(cs->status, sizeof cs->status, "%s", policy_consent_status_name(status));
	snprintf(cs->legal_basis, sizeof cs->legal_basis, "%s", policy_legal_basis_name(pi->legal_basis));
	snprintf(cs->notice_version, sizeof cs->notice_version, "%s", policy_notice_version(p));
	snprintf(cs->source, sizeof cs->source, "%s", source);
	snprintf(cs->method, sizeof cs->method, "%s", method);
	consent_new_receipt(cs->receipt_id);
	cs->at_us = cs->recorded_us = now;
	if (status == POLICY_CONSENT_GRANTED) {
		cs->granted_us = now;
		if (pi->consent_lifetime_days > 0)
			cs->expires_us = now + pi->consent_lifetime_days * 86400 * INT64_C(1000000);
	} else if (status == POLICY_CONSENT_WITHDRAWN) {
		cs->withdrawn_us = now;
	}
	return 0;
}

/* Withdraws every granted channel of a purpose; with record_refusal, also
 * records "refused" where nothing was on record (GPC is an answer). */
static int optout_purpose(struct store_conn *wc, struct reqctx *ctx, struct cust *c,
			  const struct policy_purpose_info *pi, const char *method, bool record_refusal,
			  int64_t now)
{
	for (int ch = -1; ch < POLICY_CH_COUNT; ch++) {
		const char *channel;
		if (ch < 0) {
			if (pi->channels != 0)
				continue;
			channel = "";
		} else {
			if (!(pi->channels & (1u << ch)))
				continue;
			channel = policy_channel_name((enum policy_channel)ch);
		}
		struct store_consent cur, cs;
		enum policy_consent_status status = POLICY_CONSENT_NONE;
		struct txn t = app_txn(ctx, wc);
		t.now_us = now;
		int rc = consent_current(&t, c->ct.id, pi->name, channel, &cur);
		if (rc == 0 && consent_status(&cur) == POLICY_CONSENT_GRANTED)
			status = POLICY_CONSENT_WITHDRAWN;
		else if (rc == ERR_NOTFOUND && record_refusal)
			status = POLICY_CONSENT_REFUSED;
		else if (rc != 0 && rc != ERR_NOTFOUND)
			return rc;
		if (status == POLICY_CONSENT_NONE)
			continue;
		if ((rc = make_consent(ctx->policy, pi, c->ct.id, channel, status, method, "customer", now,
				       &cs)) != 0 ||
		    (rc = consent_put(&t, &c->ct, &cs, NULL, NULL)) != 0)
			return rc;
		c->changed++;
	}
	return 0;
}

/* Puts the person's email and phone hashes on the suppression list for a
 * purpose, unless a suppression already covers it (idempotent). */
static int suppress_purpose(struct store_conn *wc, struct reqctx *ctx, struct cust *c, const char *purpose,
			    const char *reason, int64_t now)
{
	struct txn t = app_txn(ctx, wc);
	t.now_us = now;
	const uint8_t *hashes[2] = { c->ct.has_email_shash ? c->ct.email_shash : NULL,
				     c->ct.has_phone_shash ? c->ct.phone_shash : NULL };
	const char *kinds[2] = { "email", "phone" };
	for (int i = 0; i < 2; i++) {
		if (hashes[i] == NULL)
			continue;
		int rc = suppression_match(&t, hashes[i], NULL, purpose, "", NULL);
		if (rc == 0)
			continue;
		if (rc != ERR_NOTFOUND)
			return rc;
		struct store_suppression sp = { .kind = kinds[i],
						.scope = suppression_scope_name(SUPPRESSION_SCOPE_PURPOSE),
						.scope_value = purpose,
						.reason = reason,
						.source = "customer",
						.created_us = now,
						.recorded_us = now };
		memcpy(sp.hash, hashes[i], 32);
		if ((rc = suppression_add(&t, &sp)) < 0)
			return rc;
		c->suppressed++;
	}
	return 0;
}

static int apply_gpc(struct store_conn *wc, struct reqctx *ctx, struct cust *c, int64_t now)
{
	const char *names[POLICY_MAX_PURPOSES];
	size_t n = policy_purposes_for_gpc(ctx->policy, names, POLICY_MAX_PURPOSES);
	for (size_t i = 0; i < n && i < POLICY_MAX_PURPOSES; i++) {
		struct policy_purpose_info pi;
		if (policy_purpose_get(ctx->policy, names[i], &pi) != 0 || !link_covers(ctx, c, pi.name))
			continue;
		int before = c->changed;
		int rc = optout_purpose(wc, ctx, c, &pi, "gpc", true, now);
		if (rc == 0 && c->changed != before)
			rc = suppress_purpose(wc, ctx, c, pi.name, "gpc", now);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* Records what the person asked for through the page as a data-subject
 * request (request.h): the link proved the address, so it starts
 * verified (or is completed at once). Page requests are held to the GDPR
 * deadline, the shorter of the two, since the page does not know which
 * law the person relies on. An erasure held for approval waits for staff. */
static int page_request(struct reqctx *ctx, struct txn *t, struct cust *c, enum request_kind kind,
			enum request_state state)
{
	enum decision_reason why = REASON_NONE;
	bool hold = kind == REQUEST_ERASURE && state != REQUEST_COMPLETED;
	int rc = request_open(t, c->ct.id, kind, REQUEST_GDPR, request_today(t), "page", state, hold,
			      prefpage_lang_tag(c->lang), &c->rq, &why);
	if (rc == 0)
		cust_detail(ctx, json_pack("{s:s, s:s, s:s}", "link_id", c->link.id, "request_id", c->rq.id,
					   "request_state", c->rq.state));
	return rc;
}

static int apply_customer(struct store_conn *wc, struct writer_job *job)
{
	struct reqctx *ctx = job->ctx;
	struct cust *c = ctx->state;
	int64_t now = now_us();
	struct txn t = app_txn(ctx, wc);
	t.now_us = now;
	int rc = contact_get(&t, c->ct.id, &c->ct);
	if (rc == 0 && c->ct.erased)
		rc = err_set(ERR_GONE, "the contact was erased");
	if (rc != 0) {
		audit_decide(ctx, false, rc == ERR_GONE || rc == ERR_NOTFOUND ? "erased" : "error");
		return rc;
	}
	if (c->gpc && c->op != OP_ERASE && (rc = apply_gpc(wc, ctx, c, now)) != 0)
		goto out;
	if (c->record_access && (rc = page_request(ctx, &t, c, REQUEST_ACCESS, REQUEST_COMPLETED)) != 0)
		goto out;
	switch (c->op) {
	case OP_NONE: break;
	case OP_SET:
		if (consent_status(&c->cs) == POLICY_CONSENT_GRANTED) {
			/* A fresh yes from the person lifts their own earlier
			 * opt-outs of this purpose (suppression_may_lift). */
			if (c->ct.has_email_shash &&
			    (rc = suppression_lift_by_subject(&t, c->ct.email_shash, c->cs.purpose,
							      "customer")) != 0)
				goto out;
			if (c->ct.has_phone_shash &&
			    (rc = suppression_lift_by_subject(&t, c->ct.phone_shash, c->cs.purpose,
							      "customer")) != 0)
				goto out;
		}
		c->cs.at_us = c->cs.recorded_us = now;
		rc = consent_put(&t, &c->ct, &c->cs, c->evidence, NULL);
		c->changed++;
		break;
	case OP_WITHDRAW_ALL:
	case OP_UNSUBSCRIBE:
		for (size_t i = 0; rc == 0 && i < policy_purpose_count(ctx->policy); i++) {
			struct policy_purpose_info pi;
			if (policy_purpose_at(ctx->policy, i, &pi) != 0 || !pi.consent_required ||
			    !link_covers(ctx, c, pi.name))
				continue;
			if (c->op == OP_UNSUBSCRIBE) {
				bool in_scope = strcmp(c->link.scope, "all") == 0
							? (pi.channels & (1u << POLICY_CH_EMAIL)) != 0
							: strcmp(c->link.scope, pi.name) == 0;
				if (!in_scope)
					continue;
			}
			const char *method = c->op == OP_UNSUBSCRIBE ? "one_click" : "preference_centre";
			rc = optout_purpose(wc, ctx, c, &pi, method, false, now);
			if (rc == 0)
				rc = suppress_purpose(wc, ctx, c, pi.name,
						      c->op == OP_UNSUBSCRIBE ? "unsubscribe" : "withdrawal",
						      now);
		}
		/* A link scoped to a purpose that needs no consent (say,
		 * service mail) still suppresses that purpose on request. */
		if (rc == 0 && c->op == OP_UNSUBSCRIBE && strcmp(c->link.scope, "all") != 0 &&
		    link_covers(ctx, c, c->link.scope))
			rc = suppress_purpose(wc, ctx, c, c->link.scope, "unsubscribe", now);
		break;
	case OP_ERASE_REQUEST:
		rc = page_request(ctx, &t, c, REQUEST_ERASURE, REQUEST_VERIFIED);
		if (rc == 0) {
			char due[16];
			request_due_text(&c->rq, due);
			reply_page(ctx, 200, prefpage_erase_received(c->lang, c->token, due));
		}
		break;
	case OP_ERASE:
		/* The erasure is also a request answered at once: its record
		 * (ids and dates only) outlives the person. */
		rc = page_request(ctx, &t, c, REQUEST_ERASURE, REQUEST_COMPLETED);
		if (rc == 0)
			rc = link_revoke_all(&t, c->ct.id);
		if (rc == 0)
			rc = contact_erase(&t, &c->ct);
		break;
	}
out:
	if (rc != 0) {
		audit_decide(ctx, false, "error");
		return rc;
	}
	if (c->gpc || c->op == OP_WITHDRAW_ALL || c->op == OP_UNSUBSCRIBE)
		cust_detail(ctx,
			    json_pack("{s:s, s:b, s:i, s:i}", "link_id", c->link.id, "gpc", c->gpc,
				      "consents_changed", c->changed, "suppressions_added", c->suppressed));
	return 0;
}

/* ---- the preference centre ---- */

struct consent_list {
	struct store_consent *items;
	size_t n, cap;
};

static int collect_cb(void *arg, const struct store_consent *cs)
{
	struct consent_list *l = arg;
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 32;
		struct store_consent *p = realloc(l->items, cap * sizeof *p);
		if (p == NULL)
			return err_set(ERR_NOMEM, "out of memory");
		l->items = p;
		l->cap = cap;
	}
	l->items[l->n] = *cs;
	l->items[l->n].evidence = NULL;
	l->items[l->n].evidence_len = 0;
	l->n++;
	return 0;
}

static void fill_choice(struct prefpage_choice *ch, const char *channel, const struct consent_list *l,
			const char *purpose, bool gpc_optout, int64_t now)
{
	memset(ch, 0, sizeof *ch);
	snprintf(ch->channel, sizeof ch->channel, "%s", channel);
	snprintf(ch->status, sizeof ch->status, "none");
	for (size_t i = 0; i < l->n; i++) {
		const struct store_consent *cs = &l->items[i];
		if (strcmp(cs->purpose, purpose) != 0 || strcmp(cs->channel, channel) != 0)
			continue;
		struct policy_consent pc = { POLICY_CONSENT_NONE, cs->expires_us / 1000000 };
		policy_consent_status_from_name(cs->status, &pc.status);
		bool lapsed =
			pc.status == POLICY_CONSENT_GRANTED && !policy_consent_valid(&pc, now / 1000000);
		snprintf(ch->status, sizeof ch->status, "%s", lapsed ? "expired" : cs->status);
		ch->at_us = cs->at_us;
		ch->granted_us = cs->granted_us;
		ch->withdrawn_us = cs->withdrawn_us;
		ch->expires_us = cs->expires_us;
		snprintf(ch->method, sizeof ch->method, "%s", cs->method);
		snprintf(ch->source, sizeof ch->source, "%s", cs->source);
		snprintf(ch->receipt_id, sizeof ch->receipt_id, "%s", cs->receipt_id);
	}
	/* What this request's GPC signal is about to record (same transaction
	 * as this page's audit entry). */
	if (gpc_optout && strcmp(ch->status, "refused") != 0 && strcmp(ch->status, "withdrawn") != 0) {
		bool was_granted = strcmp(ch->status, "granted") == 0;
		if (was_granted || strcmp(ch->status, "none") == 0) {
			snprintf(ch->status, sizeof ch->status, "%s", was_granted ? "withdrawn" : "refused");
			ch->at_us = now;
			if (was_granted)
				ch->withdrawn_us = now;
			snprintf(ch->method, sizeof ch->method, "gpc");
			snprintf(ch->source, sizeof ch->source, "customer");
		}
	}
}

static enum prefpage_done done_param(struct reqctx *ctx)
{
	const char *d = http_query(ctx->http, "done");
	if (d == NULL)
		return PREFPAGE_DONE_NONE;
	if (strcmp(d, "saved") == 0)
		return PREFPAGE_DONE_SAVED;
	if (strcmp(d, "withdrawn_all") == 0)
		return PREFPAGE_DONE_WITHDRAWN_ALL;
	if (strcmp(d, "gpc_blocked") == 0)
		return PREFPAGE_DONE_GPC_BLOCKED;
	return PREFPAGE_DONE_NONE;
}

/* The person's own frequency choices into the page's rows. */
static int fill_frequencies(struct txn *t, const char *contact_id, struct prefpage_purpose *pp, size_t n)
{
	json_t *all = NULL, *fq;
	size_t k;
	int rc = release_choices_json(t, contact_id, &all);
	if (rc != 0)
		return rc;
	json_array_foreach (all, k, fq) {
		const char *purpose = json_string_value(json_object_get(fq, "purpose"));
		const char *channel = json_string_value(json_object_get(fq, "channel"));
		for (size_t i = 0; purpose && channel && i < n; i++)
			for (size_t j = 0; strcmp(pp[i].name, purpose) == 0 && j < pp[i].n_choices; j++)
				if (strcmp(pp[i].choices[j].channel, channel) == 0)
					snprintf(pp[i].choices[j].frequency,
						 sizeof pp[i].choices[j].frequency, "%s",
						 json_string_value(json_object_get(fq, "choice")));
	}
	json_decref(all);
	return 0;
}

/* The person's active suppressions, for the page to show for what they
 * are; at most PAGE_BLOCKS listed, the rest counted (the download lists
 * them all). */
#define PAGE_BLOCKS 16
struct block_list {
	struct prefpage_block items[PAGE_BLOCKS];
	size_t n, more;
};

static int block_cb(void *arg, const struct store_suppression *sp, int64_t lifted_us)
{
	struct block_list *l = arg;
	if (lifted_us != 0)
		return 0;
	if (l->n == PAGE_BLOCKS) {
		l->more++;
		return 0;
	}
	struct prefpage_block *k = &l->items[l->n++];
	snprintf(k->kind, sizeof k->kind, "%s", sp->kind);
	snprintf(k->scope, sizeof k->scope, "%s", sp->scope);
	snprintf(k->scope_value, sizeof k->scope_value, "%s", sp->scope_value ? sp->scope_value : "");
	snprintf(k->reason, sizeof k->reason, "%s", sp->reason);
	k->at_us = sp->created_us;
	return 0;
}

/* Marks each choice a suppression stops, by the same match the consent
 * check makes, so the page never says "yes" to a use the check refuses
 * without saying why. */
static int mark_blocked(struct txn *t, const struct store_contact *ct, struct prefpage_purpose *pp, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < pp[i].n_choices; j++) {
			struct prefpage_choice *ch = &pp[i].choices[j];
			char reason[STORE_NAME_CAP] = "";
			int rc = suppression_match(t, ct->has_email_shash ? ct->email_shash : NULL,
						   ct->has_phone_shash ? ct->phone_shash : NULL, pp[i].name,
						   ch->channel, reason);
			if (rc == 0)
				snprintf(ch->blocked, sizeof ch->blocked, "%s",
					 reason[0] ? reason : "manual");
			else if (rc != ERR_NOTFOUND)
				return rc;
		}
	}
	return 0;
}

static int h_pref_get(struct reqctx *ctx)
{
	struct cust *c = NULL;
	struct consent_list l = { 0 };
	struct prefpage_purpose *pp = NULL;
	char csrf[LINKTOKEN_CSRF_CAP];
	int64_t now = now_us();
	int rc = resolve(ctx, &c);
	if (rc != 0 || c == NULL)
		return rc;
	customer_audit_begin(ctx, "customer.view", c->ct.id, NULL, NULL);
	struct txn rt = app_txn(ctx, ctx->rd);
	if ((rc = consent_each(&rt, c->ct.id, collect_cb, &l)) != 0)
		goto fail;
	size_t np = policy_purpose_count(ctx->policy), shown = 0;
	pp = calloc(np ? np : 1, sizeof *pp);
	if (pp == NULL) {
		rc = err_set(ERR_NOMEM, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < np; i++) {
		struct policy_purpose_info pi;
		if (policy_purpose_at(ctx->policy, i, &pi) != 0 || !link_covers(ctx, c, pi.name))
			continue;
		struct prefpage_purpose *p = &pp[shown++];
		p->name = pi.name;
		p->description =
			c->lang == PREFPAGE_ZH && pi.description_zh ? pi.description_zh : pi.description;
		p->legal_basis = policy_legal_basis_name(pi.legal_basis);
		p->consent_required = pi.consent_required;
		p->sale_or_sharing = pi.sale_or_sharing;
		p->frequency_choice = pi.frequency_choice && pi.channels != 0;
		p->offerable = consent_offerable(ctx->policy, c->ct.collected_for, pi.name);
		bool gpc_optout = c->gpc && pi.sale_or_sharing;
		if (pi.channels == 0) {
			fill_choice(&p->choices[p->n_choices++], "", &l, pi.name, gpc_optout, now);
			continue;
		}
		for (int ch = 0; ch < POLICY_CH_COUNT && p->n_choices < 8; ch++)
			if (pi.channels & (1u << ch))
				fill_choice(&p->choices[p->n_choices++],
					    policy_channel_name((enum policy_channel)ch), &l, pi.name,
					    gpc_optout, now);
	}
	if ((rc = fill_frequencies(&rt, c->ct.id, pp, shown)) != 0)
		goto fail;
	struct block_list *bl = calloc(1, sizeof *bl);
	if (bl == NULL) {
		rc = err_set(ERR_NOMEM, "out of memory");
		goto fail;
	}
	if ((rc = suppression_subject_each(&rt, &c->ct, block_cb, bl)) != 0 ||
	    (rc = mark_blocked(&rt, &c->ct, pp, shown)) != 0) {
		free(bl);
		goto fail;
	}
	struct txn t = app_txn(ctx, ctx->rd);
	if ((rc = link_csrf_make(&t, &c->tok, now / 1000000, csrf)) != 0)
		goto fail;
	struct prefpage_model m = { .lang = c->lang,
				    .token = c->token,
				    .csrf = csrf,
				    .done = done_param(ctx),
				    .gpc = c->gpc,
				    .manage = link_capability_of(&c->link) == LINK_MANAGE,
				    .purposes = pp,
				    .n_purposes = shown,
				    .blocks = bl->items,
				    .n_blocks = bl->n,
				    .more_blocks = bl->more };
	char *page = prefpage_centre(&m);
	free(bl);
	free(pp);
	free(l.items);
	audit_decide(ctx, true, "link_valid");
	cust_detail(ctx, json_pack("{s:s, s:b}", "link_id", c->link.id, "gpc", c->gpc));
	reply_page(ctx, 200, page);
	if (c->gpc)
		ctx->job.apply = apply_customer; /* records the GPC opt-out */
	app_commit(ctx);
	return 0;
fail:
	free(pp);
	free(l.items);
	audit_decide(ctx, false, "error");
	return rc;
}

/* ---- download my data ---- */

static int export_consent_cb(void *arg, const struct store_consent *cs)
{
	json_array_append_new(arg, consent_to_json(cs, NULL, now_us() / 1000000));
	return 0;
}

static int export_suppression_cb(void *arg, const struct store_suppression *sp, int64_t lifted_us)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o}", "kind", sp->kind, "scope", sp->scope,
			      "scope_value", sp->scope_value, "reason", sp->reason, "source", sp->source,
			      "created_at", json_time(sp->created_us), "lifted_at", json_time(lifted_us));
	json_array_append_new(arg, o);
	return 0;
}

static int export_audit_cb(void *arg, const struct audit_entry *e)
{
	json_t *arr = arg;
	if (json_array_size(arr) >= EXPORT_AUDIT_MAX)
		return 1;
	/* The person sees who (by role) did what, when, for which purpose and
	 * with which outcome; staff names and client addresses stay out. */
	json_t *o = json_pack("{s:o, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "time", json_time(e->time_us), "by",
			      strcmp(e->actor, "customer") == 0 ? "you" : "staff or system", "role", e->role,
			      "action", e->action, "purpose", e->purpose, "channel", e->channel, "decision",
			      strcmp(e->decision, "allow") == 0	 ? "allowed"
			      : strcmp(e->decision, "deny") == 0 ? "denied"
								 : e->decision,
			      "reason", e->reason);
	if (e->fields[0] != '\0')
		json_object_set_new(o, "fields_revealed", json_string(e->fields));
	json_array_append_new(arr, o);
	return 0;
}

/* The job of a form whose CSRF value was checked: the value is spent in
 * the same transaction as what the form does, so a form is accepted once by
 * every instance on the database; of two posts of one form at once the
 * second finds it spent, changes nothing and is refused. */
static int apply_form(struct store_conn *wc, struct writer_job *job)
{
	struct reqctx *ctx = job->ctx;
	struct cust *c = ctx->state;
	struct txn t = app_txn(ctx, wc);
	int rc = link_csrf_spend(&t, &c->tok, &c->csrf, CSRF_MAX_AGE_S);
	if (rc != 0) {
		audit_decide(ctx, false, rc == ERR_DENIED ? "csrf_replayed" : "error");
		return rc;
	}
	return c->form_apply != NULL ? c->form_apply(wc, job) : 0;
}

static void form_job(struct reqctx *ctx, struct cust *c,
		     int (*apply)(struct store_conn *, struct writer_job *))
{
	c->form_apply = apply;
	ctx->job.apply = c->csrf_set ? apply_form : apply;
}

static int customer_download(struct reqctx *ctx, struct cust *c)
{
	json_t *fields = NULL, *consents = json_array(), *history = json_array(), *supp = json_array(),
	       *accesses = json_array();
	char names[AUDIT_FIELDS_MAX + 1] = "";
	size_t nf = policy_field_count(ctx->policy);
	uint64_t all = nf >= 64 ? UINT64_MAX : (UINT64_C(1) << nf) - 1;
	struct store_audit_filter f = { .record_id = c->ct.id };
	int rc;

	customer_audit_begin(ctx, "customer.export", c->ct.id, NULL, NULL);
	struct txn rt = app_txn(ctx, ctx->rd);
	if ((rc = contact_fields_json(&rt, &c->ct, all, &fields, names, sizeof names)) != 0 ||
	    (rc = consent_each(&rt, c->ct.id, export_consent_cb, consents)) != 0 ||
	    (rc = consent_history_each(&rt, c->ct.id, export_consent_cb, history)) != 0 ||
	    (rc = suppression_subject_each(&rt, &c->ct, export_suppression_cb, supp)) != 0)
		goto fail;
	/* The campaigns that were allowed to reach the person (release log). */
	json_t *campaigns = NULL, *freqs = NULL;
	if ((rc = release_of_contact_json(&rt, c->ct.id, &campaigns)) != 0)
		goto fail;
	if ((rc = release_choices_json(&rt, c->ct.id, &freqs)) != 0) {
		json_decref(campaigns);
		goto fail;
	}
	rc = trail_each(&rt, &f, export_audit_cb, accesses);
	if (rc != 0 && rc != 1) {
		json_decref(campaigns);
		json_decref(freqs);
		goto fail;
	}
	json_t *purposes = json_array();
	char cf[STORE_LIST_CAP];
	snprintf(cf, sizeof cf, "%s", c->ct.collected_for);
	for (char *save = NULL, *t = strtok_r(cf, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save))
		json_array_append_new(purposes, json_string(t));
	json_t *out =
		json_pack("{s:s, s:o, s:{s:s, s:o, s:o, s:o, s:s, s:o}, s:o, s:o, s:o, s:o, s:b}", "format",
			  "consentd-subject-export-1", "exported_at", json_time(now_us()), "contact", "id",
			  c->ct.id, "created_at", json_time(c->ct.created_us), "updated_at",
			  json_time(c->ct.updated_us), "collected_for", purposes, "source", c->ct.source,
			  "fields", fields, "consents", consents, "consent_history", history, "suppressions",
			  supp, "accesses", accesses, "accesses_truncated", rc == 1);
	fields = consents = history = supp = accesses = NULL;
	json_object_set_new(out, "campaigns", campaigns);
	json_object_set_new(out, "frequency_choices", freqs);
	audit_decide(ctx, true, "exported");
	audit_fields(ctx, names);
	cust_detail(ctx, json_pack("{s:s}", "link_id", c->link.id));
	reply_json(ctx, 200, out);
	http_add_header(ctx->http, "Content-Disposition", "attachment; filename=\"my-data.json\"");
	http_add_header(ctx->http, "Content-Security-Policy", PREFPAGE_CSP);
	c->record_access = true;
	form_job(ctx, c, apply_customer);
	app_commit(ctx);
	return 0;
fail:
	json_decref(fields);
	json_decref(consents);
	json_decref(history);
	json_decref(supp);
	json_decref(accesses);
	audit_decide(ctx, false, "error");
	return rc;
}

static int form_refused(struct reqctx *ctx, struct cust *c, int status, const char *why);

/* POST /p/<token> action=receipt (+ receipt_id): one consent event's
 * receipt (receipt.h) as a JSON attachment, in the page's language. */
static int customer_receipt(struct reqctx *ctx, struct cust *c, const char *body, size_t len)
{
	char rid[FORM_VALUE_CAP], name[FORM_VALUE_CAP + 48];
	json_t *out = NULL;
	const struct config_org *org = &ctx->app->cfg.org;
	const struct receipt_controller ctl = { org->name, org->postal_address, org->privacy_policy_url,
						org->contact_email, org->jurisdiction };
	if (parse_form_value(body, len, "receipt_id", rid, sizeof rid) != 0 || !is_contact_id(rid))
		return form_refused(ctx, c, 400, "malformed_form");
	customer_audit_begin(ctx, "customer.receipt", c->ct.id, NULL, NULL);
	cust_detail(ctx, json_pack("{s:s, s:s}", "link_id", c->link.id, "receipt_id", rid));
	struct txn rt = app_txn(ctx, ctx->rd);
	int rc = receipt_json(&rt, &c->ct, rid, &ctl, prefpage_lang_tag(c->lang), &out);
	if (rc == ERR_NOTFOUND) {
		/* Not one of this person's receipts: the same answer as any
		 * other form this link may not send. */
		audit_decide(ctx, false, "unknown_receipt");
		reply_page(ctx, 404, prefpage_form_expired(c->lang, c->token));
		app_commit(ctx);
		return 0;
	}
	if (rc != 0) {
		audit_decide(ctx, false, "error");
		return rc;
	}
	audit_decide(ctx, true, "shown");
	reply_json(ctx, 200, out);
	snprintf(name, sizeof name, "attachment; filename=\"consent-receipt-%s.json\"", rid);
	http_add_header(ctx->http, "Content-Disposition", name);
	http_add_header(ctx->http, "Content-Security-Policy", PREFPAGE_CSP);
	/* A form like the download: its CSRF value is spent with it. */
	form_job(ctx, c, c->gpc ? apply_customer : NULL);
	app_commit(ctx);
	return 0;
}

/* ---- the person's own frequency choice ---- */

static int apply_frequency(struct store_conn *w, struct writer_job *job)
{
	struct reqctx *ctx = job->ctx;
	struct cust *c = ctx->state;
	struct txn t = app_txn(ctx, w);
	int rc = contact_get(&t, c->ct.id, &c->ct);
	if (rc == 0 && c->ct.erased)
		rc = err_set(ERR_GONE, "the contact was erased");
	if (rc == 0)
		rc = consent_frequency_set(&t, &c->ct, c->fq_purpose, c->fq_channel, c->fq, c->link.id);
	if (rc != 0)
		audit_decide(ctx, false, rc == ERR_GONE || rc == ERR_NOTFOUND ? "erased" : "error");
	return rc;
}

static void redirect_back(struct reqctx *ctx, struct cust *c, const char *done);
static int form_refused(struct reqctx *ctx, struct cust *c, int status, const char *why);

/* The end of every form branch, whose reply is prepared: its entry (the
 * action on this contact, the decision, the link in the detail, or detail
 * when not NULL), then the commit, with apply as the job's write (NULL:
 * nothing to write). The reply leaves once the entry is durable. */
static int form_done(struct reqctx *ctx, struct cust *c, const char *action, const char *purpose,
		     const char *channel, bool allowed, const char *reason, json_t *detail,
		     int (*apply)(struct store_conn *, struct writer_job *))
{
	customer_audit_begin(ctx, action, c->ct.id, purpose, channel);
	audit_decide(ctx, allowed, reason);
	if (detail != NULL)
		cust_detail(ctx, detail);
	form_job(ctx, c, apply);
	app_commit(ctx);
	return 0;
}

/* POST /p/<token> action=frequency: how often the person wants to hear
 * from us for one (purpose, channel) of a purpose that offers the choice.
 * Any link may set it: choosing less contact is the person's right. */
static int customer_frequency(struct reqctx *ctx, struct cust *c, const char *body, size_t len)
{
	char purpose[FORM_VALUE_CAP], channel[FORM_VALUE_CAP], choice[FORM_VALUE_CAP];
	struct policy_purpose_info pi;
	enum policy_channel chv;
	if (parse_form_value(body, len, "purpose", purpose, sizeof purpose) != 0 || !is_name(purpose) ||
	    policy_purpose_get(ctx->policy, purpose, &pi) != 0 || !pi.frequency_choice ||
	    parse_form_value(body, len, "channel", channel, sizeof channel) != 0 ||
	    policy_channel_from_name(channel, &chv) != 0 || !(pi.channels & (1u << chv)) ||
	    parse_form_value(body, len, "frequency", choice, sizeof choice) != 0 ||
	    policy_frequency_from_name(choice, &c->fq) != 0)
		return form_refused(ctx, c, 400, "malformed_form");
	if (!link_covers(ctx, c, pi.name))
		return form_refused(ctx, c, 403, "link_scope");
	snprintf(c->fq_purpose, sizeof c->fq_purpose, "%s", pi.name);
	snprintf(c->fq_channel, sizeof c->fq_channel, "%s", policy_channel_name(chv));
	redirect_back(ctx, c, "saved");
	return form_done(
		ctx, c, "customer.frequency", c->fq_purpose, c->fq_channel, true,
		policy_frequency_name(c->fq),
		json_pack("{s:s, s:s}", "link_id", c->link.id, "frequency", policy_frequency_name(c->fq)),
		apply_frequency);
}

/* ---- the forms ---- */

static void redirect_back(struct reqctx *ctx, struct cust *c, const char *done)
{
	char loc[LINKTOKEN_CAP + 32];
	snprintf(loc, sizeof loc, "/p/%s?done=%s#done", c->token, done);
	http_add_header(ctx->http, "Location", loc);
	char *body = strdup("<!doctype html><title>303</title>");
	reply_page(ctx, 303, body);
}

static int form_refused(struct reqctx *ctx, struct cust *c, int status, const char *reason)
{
	reply_page(ctx, status, prefpage_form_expired(c->lang, c->token));
	return form_done(ctx, c, "customer.form", NULL, NULL, false, reason, NULL, NULL);
}

static int h_pref_post(struct reqctx *ctx)
{
	struct cust *c = NULL;
	size_t len;
	const char *body;
	char csrf_text[FORM_VALUE_CAP], action[FORM_VALUE_CAP];
	struct linktoken_csrf csrf;
	int64_t now_s = now_us() / 1000000;
	int rc = resolve(ctx, &c);
	if (rc != 0 || c == NULL)
		return rc;
	body = http_body(ctx->http, &len);
	if (http_body_too_big(ctx->http) || body == NULL ||
	    !parse_media_is(http_header(ctx->http, "Content-Type"), "application/x-www-form-urlencoded") ||
	    parse_form_value(body, len, "action", action, sizeof action) != 0)
		return form_refused(ctx, c, 400, "malformed_form");
	struct txn t = app_txn(ctx, NULL);
	if (parse_form_value(body, len, "csrf", csrf_text, sizeof csrf_text) != 0 ||
	    link_csrf_check(&t, &c->tok, csrf_text, now_s, CSRF_MAX_AGE_S, &csrf) != 0)
		return form_refused(ctx, c, 403, "csrf_invalid");
	/* A value spent before, on any instance, is a replay. The job spends
	 * this one (apply_form), so the read here answers the usual case with
	 * the page, and the write decides a race. */
	bool spent = false;
	t.c = ctx->rd;
	if ((rc = link_csrf_spent(&t, &c->tok, &csrf, &spent)) != 0)
		return rc;
	if (spent)
		return form_refused(ctx, c, 403, "csrf_replayed");
	c->csrf = csrf;
	c->csrf_set = true;

	/* An opt-out link may withdraw, and nothing more: granting, downloading
	 * and erasure need a "manage" link (see h_link_create). */
	bool manage = link_capability_of(&c->link) == LINK_MANAGE;
	char wanted[16] = "";
	if (parse_form_value(body, len, "status", wanted, sizeof wanted) != 0)
		wanted[0] = '\0';
	if (!manage && strcmp(action, "withdraw_all") != 0 && strcmp(action, "withdraw_all_request") != 0 &&
	    strcmp(action, "frequency") != 0 &&
	    !(strcmp(action, "set") == 0 && strcmp(wanted, "withdrawn") == 0))
		return form_refused(ctx, c, 403, "link_capability");

	if (strcmp(action, "set") == 0) {
		char purpose[FORM_VALUE_CAP], channel[FORM_VALUE_CAP] = "", status[FORM_VALUE_CAP];
		struct policy_purpose_info pi;
		enum policy_channel chv;
		enum policy_consent_status stv = POLICY_CONSENT_NONE;
		if (parse_form_value(body, len, "purpose", purpose, sizeof purpose) != 0 ||
		    !is_name(purpose) || policy_purpose_get(ctx->policy, purpose, &pi) != 0 ||
		    !pi.consent_required ||
		    parse_form_value(body, len, "status", status, sizeof status) != 0 ||
		    policy_consent_status_from_name(status, &stv) != 0 ||
		    (stv != POLICY_CONSENT_GRANTED && stv != POLICY_CONSENT_WITHDRAWN))
			return form_refused(ctx, c, 400, "malformed_form");
		if (!link_covers(ctx, c, pi.name))
			return form_refused(ctx, c, 403, "link_scope");
		if (stv == POLICY_CONSENT_GRANTED &&
		    !consent_offerable(ctx->policy, c->ct.collected_for, pi.name))
			return form_refused(ctx, c, 403, "not_collected_for");
		int crc = parse_form_value(body, len, "channel", channel, sizeof channel);
		if ((crc != 0 && crc != ERR_NOTFOUND) ||
		    (pi.channels == 0
			     ? channel[0] != '\0'
			     : policy_channel_from_name(channel, &chv) != 0 || !(pi.channels & (1u << chv))))
			return form_refused(ctx, c, 400, "malformed_form");
		if (c->gpc && pi.sale_or_sharing && stv == POLICY_CONSENT_GRANTED) {
			/* The browser says "do not sell or share" in the same
			 * breath: the signal wins, and the page says why. */
			redirect_back(ctx, c, "gpc_blocked");
			return form_done(ctx, c, "customer.consent", purpose, channel, false, "gpc", NULL,
					 apply_customer);
		}
		if ((rc = make_consent(ctx->policy, &pi, c->ct.id, channel, stv, "preference_centre",
				       "customer", now_us(), &c->cs)) != 0)
			return rc;
		const char *ua = http_header(ctx->http, "User-Agent");
		char ua_cut[256];
		snprintf(ua_cut, sizeof ua_cut, "%s", ua && is_clean_utf8(ua, strlen(ua)) ? ua : "");
		c->evidence = json_pack("{s:s, s:s, s:s}", "form", "preference_centre", "link_id", c->link.id,
					"user_agent", ua_cut);
		c->op = OP_SET;
		redirect_back(ctx, c, "saved");
		return form_done(ctx, c, "customer.consent", purpose, channel, true, status,
				 json_pack("{s:s, s:s, s:s}", "receipt_id", c->cs.receipt_id, "method",
					   "preference_centre", "link_id", c->link.id),
				 apply_customer);
	} else if (strcmp(action, "frequency") == 0) {
		return customer_frequency(ctx, c, body, len);
	} else if (strcmp(action, "withdraw_all_request") == 0) {
		/* Withdrawing everything is one click away from the page, so it
		 * asks first, with a fresh form value; nothing changes here. */
		char next[LINKTOKEN_CSRF_CAP];
		if ((rc = link_csrf_make(&t, &c->tok, now_s, next)) != 0)
			return rc;
		reply_page(ctx, 200, prefpage_withdraw_all_confirm(c->lang, c->token, next));
		return form_done(ctx, c, "customer.withdraw_all_request", NULL, NULL, true,
				 "confirmation_shown", NULL, c->gpc ? apply_customer : NULL);
	} else if (strcmp(action, "withdraw_all") == 0) {
		char confirm[16];
		if (parse_form_value(body, len, "confirm", confirm, sizeof confirm) != 0 ||
		    strcmp(confirm, "yes") != 0)
			return form_refused(ctx, c, 400, "not_confirmed");
		c->op = OP_WITHDRAW_ALL;
		redirect_back(ctx, c, "withdrawn_all");
		return form_done(ctx, c, "customer.withdraw_all", NULL, NULL, true, "withdrawn", NULL,
				 apply_customer);
	} else if (strcmp(action, "download") == 0) {
		return customer_download(ctx, c);
	} else if (strcmp(action, "receipt") == 0) {
		return customer_receipt(ctx, c, body, len);
	} else if (strcmp(action, "erase_request") == 0) {
		char next[LINKTOKEN_CSRF_CAP];
		if ((rc = link_csrf_make(&t, &c->tok, now_s, next)) != 0)
			return rc;
		reply_page(ctx, 200, prefpage_erase_confirm(c->lang, c->token, next));
		return form_done(ctx, c, "customer.erase_request", NULL, NULL, true, "confirmation_shown",
				 NULL, c->gpc ? apply_customer : NULL);
	} else if (strcmp(action, "erase_confirm") == 0) {
		char confirm[16];
		if (parse_form_value(body, len, "confirm", confirm, sizeof confirm) != 0 ||
		    strcmp(confirm, "yes") != 0)
			return form_refused(ctx, c, 400, "not_confirmed");
		if (policy_erasure_needs_approval(ctx->policy)) {
			/* The page written by apply, once the due date is known. */
			c->op = OP_ERASE_REQUEST;
			return form_done(ctx, c, "customer.erase_request", NULL, NULL, true,
					 "awaiting_approval", json_pack("{s:s}", "link_id", c->link.id),
					 apply_customer);
		}
		c->op = OP_ERASE;
		reply_page(ctx, 200, prefpage_erased(c->lang));
		ctx->job.purge_wal = true;
		return form_done(ctx, c, "customer.erase", NULL, NULL, true, "erased",
				 json_pack("{s:s}", "link_id", c->link.id), apply_customer);
	}
	return form_refused(ctx, c, 400, "malformed_form");
}

/* ---- one-click unsubscribe ---- */

static int h_unsub_get(struct reqctx *ctx)
{
	struct cust *c = NULL;
	int rc = resolve(ctx, &c);
	if (rc != 0 || c == NULL)
		return rc;
	/* Nothing is written here, not even a GPC signal: mail scanners and
	 * link previews fetch this URL without the person. */
	customer_audit_begin(ctx, "customer.unsubscribe_view", c->ct.id, NULL, NULL);
	audit_decide(ctx, true, "confirmation_shown");
	reply_page(ctx, 200, prefpage_unsubscribe_confirm(c->lang, c->token));
	app_commit(ctx);
	return 0;
}

static int h_unsub_post(struct reqctx *ctx)
{
	bool erased = false;
	struct cust *c = NULL;
	size_t len;
	const char *body;
	int rc = resolve_optout(ctx, &erased, &c);
	if (rc != 0 || c == NULL)
		return rc;
	body = http_body(ctx->http, &len);
	bool ok = !http_body_too_big(ctx->http) &&
		  parse_one_click(http_header(ctx->http, "Content-Type"), body, len);
	customer_audit_begin(ctx, "customer.unsubscribe", erased ? c->link.contact_id : c->ct.id,
			     strcmp(c->link.scope, "all") ? c->link.scope : NULL, NULL);
	if (!ok) {
		audit_decide(ctx, false, "not_one_click");
		reply_page(ctx, 400, prefpage_unsubscribe_confirm(c->lang, c->token));
		app_commit(ctx);
		return 0;
	}
	if (erased) {
		/* The person was erased: their addresses are erasure-suppressed
		 * for good, so the opt-out already holds; nothing to write. */
		audit_decide(ctx, true, "already_suppressed");
		reply_page(ctx, 200, prefpage_unsubscribed(c->lang, c->token));
		app_commit(ctx);
		return 0;
	}
	audit_decide(ctx, true, "unsubscribed");
	c->op = OP_UNSUBSCRIBE;
	reply_page(ctx, 200, prefpage_unsubscribed(c->lang, c->token));
	ctx->job.apply = apply_customer;
	app_commit(ctx);
	return 0;
}

/* ---- staff: creating and revoking links ---- */

static int apply_link_insert(struct store_conn *wc, struct writer_job *job)
{
	struct reqctx *ctx = job->ctx;
	struct txn t = app_txn(ctx, wc);
	int rc = link_insert(&t, ctx->state);
	if (rc != 0)
		audit_decide(ctx, false, "error");
	return rc;
}

/* A link the person asked for, with the language the mail is written in
 * (the page's, or the "lang" staff give). The link comes first, so the
 * pair frees as one. */
struct mailed_link {
	struct store_link l;
	char lang[8];
};

static int apply_link_insert_mailed_lang(struct store_conn *wc, struct writer_job *job)
{
	struct reqctx *ctx = job->ctx;
	struct txn t = app_txn(ctx, wc);
	struct mailed_link *ml = ctx->state;
	int rc = link_insert_mailed_lang(&t, &ml->l, ml->lang);
	if (rc != 0)
		audit_decide(ctx, false, "error");
	return rc;
}

int parse_link_body(const struct policy *p, json_t *body, struct link_req *out, const char **reason)
{
	const char *key;
	json_t *v;
	out->scope = "all";
	out->ttl_days = LINK_TTL_DAYS_DEFAULT;
	out->manage = false;
	out->lang = NULL;
	*reason = NULL;
	if (body == NULL)
		return 0;
	json_object_foreach (body, key, v) {
		if (strcmp(key, "scope") != 0 && strcmp(key, "ttl_days") != 0 &&
		    strcmp(key, "capability") != 0 && strcmp(key, "lang") != 0)
			return err_set(ERR_INVALID, "unknown key \"%s\"", key);
	}
	json_t *lang = json_object_get(body, "lang");
	if (lang != NULL) {
		const char *lv = json_string_value(lang);
		if (lv == NULL || (strcmp(lv, "en") != 0 && strcmp(lv, "zh-CN") != 0))
			return err_set(ERR_INVALID, "lang must be \"en\" or \"zh-CN\"");
		out->lang = lv;
	}
	json_t *cap = json_object_get(body, "capability");
	if (cap != NULL) {
		const char *cv = json_string_value(cap);
		if (cv == NULL || (strcmp(cv, "optout") != 0 && strcmp(cv, "manage") != 0))
			return err_set(ERR_INVALID, "capability must be \"optout\" or \"manage\"");
		out->manage = strcmp(cv, "manage") == 0;
	}
	json_t *s = json_object_get(body, "scope"), *t = json_object_get(body, "ttl_days");
	if (s != NULL) {
		struct policy_purpose_info pi;
		if (!json_is_string(s))
			return err_set(ERR_INVALID, "scope must be \"all\" or a purpose name");
		const char *scope = json_string_value(s);
		if (strcmp(scope, "all") != 0 && policy_purpose_get(p, scope, &pi) != 0) {
			*reason = "unknown_purpose";
			return err_set(ERR_UNPROCESSABLE, "unknown purpose \"%s\"", scope);
		}
		out->scope = scope;
	}
	if (t != NULL) {
		if (!json_is_integer(t) || json_integer_value(t) < 1 ||
		    json_integer_value(t) > LINK_TTL_DAYS_MAX)
			return err_set(ERR_INVALID, "ttl_days must be an integer from 1 to %d",
				       LINK_TTL_DAYS_MAX);
		out->ttl_days = json_integer_value(t);
	}
	return 0;
}

static int h_link_create(struct reqctx *ctx)
{
	const char *id = ctx->param[0];
	json_t *body = NULL;
	struct store_contact ct;
	struct store_link *l = NULL;
	struct link_req req;
	int64_t ttl_days;
	const char *scope, *reason;
	size_t len;
	int rc;

	if (!app_require(ctx, POLICY_ACT_LINKS_CREATE, id, NULL))
		return 0;
	if (http_body(ctx->http, &len) != NULL && len > 0 && (rc = app_body(ctx, &body)) != 0)
		return rc;
	rc = parse_link_body(ctx->policy, body, &req, &reason);
	if (rc != 0) {
		json_decref(body);
		return app_reason(ctx, rc, decision_reason_from_name(reason));
	}
	scope = req.scope;
	ttl_days = req.ttl_days;
	/* The token is the customer's only credential, and whoever mints it
	 * holds it. A "manage" link can grant consent, download every field and
	 * erase, so only a role that may do all of that itself may mint one;
	 * other roles get opt-out links (see choices, withdraw, unsubscribe). */
	if (!link_role_may_mint(ctx->policy, ctx->role, req.manage ? LINK_MANAGE : LINK_OPTOUT, scope)) {
		bool scope_denied =
			strcmp(scope, "all") != 0 && !policy_role_may_purpose(ctx->policy, ctx->role, scope);
		audit_begin(ctx, "links.create", id, strcmp(scope, "all") ? scope : NULL, NULL);
		audit_decide(ctx, false, "role_denied");
		cust_detail(ctx, json_pack("{s:s}", "capability", req.manage ? "manage" : "optout"));
		if (scope_denied)
			err_set(ERR_DENIED,
				"role %s may not mint a link for purpose %s: a link reaches only "
				"its creator's purposes",
				ctx->role, scope);
		else
			err_set(ERR_DENIED,
				"role %s may not mint a manage link (it needs consents.write, "
				"contacts.update and contacts.erase, and every purpose)",
				ctx->role);
		json_decref(body);
		return app_reason(ctx, ERR_DENIED, REASON_ROLE_DENIED);
	}
	audit_begin(ctx, "links.create", id, strcmp(scope, "all") ? scope : NULL, NULL);
	struct txn t = app_txn(ctx, ctx->rd);
	rc = contact_get(&t, id, &ct);
	if (rc != 0 || ct.erased) {
		bool gone = rc == 0;
		audit_decide(ctx, false, gone ? "erased" : rc == ERR_NOTFOUND ? "unknown_contact" : "error");
		if (gone)
			err_set(ERR_GONE, "the contact was erased");
		json_decref(body);
		return app_reason(ctx, gone ? ERR_GONE : rc,
				  gone		       ? REASON_ERASED
				  : rc == ERR_NOTFOUND ? REASON_UNKNOWN_CONTACT
						       : REASON_NONE);
	}
	if (req.manage && !link_mailable(&ct)) {
		audit_decide(ctx, false, "no_email");
		err_set(ERR_UNPROCESSABLE, "the contact has no email address to mail a manage link to");
		json_decref(body);
		return app_reason(ctx, ERR_UNPROCESSABLE, REASON_NO_EMAIL);
	}
	/* With the language a manage link's mail is written in (the link
	 * comes first in the pair: l frees it whole). */
	struct mailed_link *ml = calloc(1, sizeof *ml);
	l = ml != NULL ? &ml->l : NULL;
	if (ml != NULL)
		snprintf(ml->lang, sizeof ml->lang, "%s", req.lang != NULL ? req.lang : "en");
	if (l == NULL) {
		rc = err_set(ERR_NOMEM, "out of memory");
		goto bad;
	}
	char token[LINKTOKEN_CAP];
	if ((rc = link_mint(&t, id, scope, req.manage ? LINK_MANAGE : LINK_OPTOUT, ttl_days, ctx->actor, l,
			    token)) != 0) {
		free(l);
		l = NULL;
		goto bad;
	}
	ctx->state = l; /* freed with the request */
	ctx->state_free = free;
	json_decref(body);
	body = NULL;

	if (req.manage) {
		/* The token can grant, download every field and erase: it goes
		 * only to the person's own address, by mail queued in this
		 * job's transaction. The caller learns the link's id (to revoke
		 * it), never the token. */
		mem_wipe(token, sizeof token);
		audit_decide(ctx, true, "created");
		cust_detail(ctx, json_pack("{s:s, s:s, s:I, s:s, s:s}", "link_id", l->id, "scope", l->scope,
					   "ttl_days", (json_int_t)ttl_days, "capability", l->capability,
					   "delivery", "mail"));
		ctx->job.apply = apply_link_insert_mailed_lang;
		reply_json(ctx, 202,
			   json_pack("{s:s, s:s, s:s, s:o, s:s}", "link_id", l->id, "scope", l->scope,
				     "capability", l->capability, "expires_at", json_time(l->expires_us),
				     "delivery", "mail"));
		app_commit(ctx);
		return 0;
	}
	const char *base = ctx->app->cfg.public_url;
	size_t bl = strlen(base);
	while (bl > 0 && base[bl - 1] == '/')
		bl--;
	char url[1024], unsub[1024], lu[1100];
	snprintf(url, sizeof url, "%.*s/p/%s", (int)bl, base, token);
	snprintf(unsub, sizeof unsub, "%.*s/v1/unsubscribe/%s", (int)bl, base, token);
	snprintf(lu, sizeof lu, "<%s>", unsub);
	mem_wipe(token, sizeof token);
	audit_decide(ctx, true, "created");
	cust_detail(ctx, json_pack("{s:s, s:s, s:I, s:s}", "link_id", l->id, "scope", l->scope, "ttl_days",
				   (json_int_t)ttl_days, "capability", l->capability));
	reply_json(ctx, 201,
		   json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:{s:s, s:s}}", "link_id", l->id, "scope",
			     l->scope, "capability", l->capability, "url", url, "unsubscribe_url", unsub,
			     "expires_at", json_time(l->expires_us), "headers", "List-Unsubscribe", lu,
			     "List-Unsubscribe-Post", "List-Unsubscribe=One-Click"));
	mem_wipe(url, sizeof url);
	mem_wipe(unsub, sizeof unsub);
	mem_wipe(lu, sizeof lu);
	ctx->job.apply = apply_link_insert;
	app_commit(ctx);
	return 0;
bad:
	/* Minting failed (no randomness, no memory): the attempt is on the
	 * record as an error, and nothing was revealed. */
	json_decref(body);
	audit_decide(ctx, false, "error");
	return rc;
}

struct link_revoke {
	char contact_id[STORE_ID_CAP];
	char link_id[LINKTOKEN_ID_TEXT_CAP]; /* "" revokes them all */
	char role[STORE_NAME_CAP];	     /* revokes only what it could mint */
	const struct policy *policy;	     /* the request's reference */
};

static int apply_link_revoke(struct store_conn *wc, struct writer_job *job)
{
	struct reqctx *ctx = job->ctx;
	struct link_revoke *r = ctx->state;
	struct txn t = app_txn(ctx, wc);
	const char *reason = NULL;
	int64_t count = 0;
	int rc = link_revoke(&t, r->contact_id, r->link_id, r->role, &count, &reason);
	if (rc != 0) {
		audit_decide(ctx, false, reason);
		return rc;
	}
	if (r->link_id[0] == '\0')
		audit_detail(ctx, json_pack("{s:s, s:I}", "link_id", "all", "revoked", (json_int_t)count));
	return 0;
}

static int revoke_links(struct reqctx *ctx, const char *link_id)
{
	const char *id = ctx->param[0];
	/* The role first: a caller who may not revoke learns nothing about links. */
	if (!app_require(ctx, POLICY_ACT_LINKS_CREATE, id, NULL))
		return 0;
	if (link_id != NULL && strlen(link_id) != LINKTOKEN_ID_TEXT_CAP - 1) {
		audit_begin(ctx, "links.revoke", id, NULL, NULL);
		audit_decide(ctx, false, "unknown_link");
		return app_reason(ctx, err_set(ERR_NOTFOUND, "no preference link with this id"),
				  REASON_UNKNOWN_LINK);
	}
	struct link_revoke *r = calloc(1, sizeof *r);
	if (r == NULL)
		return err_set(ERR_NOMEM, "out of memory");
	snprintf(r->contact_id, sizeof r->contact_id, "%s", id);
	snprintf(r->link_id, sizeof r->link_id, "%s", link_id ? link_id : "");
	snprintf(r->role, sizeof r->role, "%s", ctx->role);
	r->policy = ctx->policy;
	ctx->state = r;
	ctx->state_free = free;
	audit_begin(ctx, "links.revoke", id, NULL, NULL);
	audit_decide(ctx, true, "revoked");
	cust_detail(ctx, json_pack("{s:s}", "link_id", link_id ? link_id : "all"));
	reply_json(ctx, 200,
		   json_pack("{s:s, s:s, s:o}", "contact_id", id, "link_id", link_id ? link_id : "all",
			     "revoked_at", json_time(now_us())));
	ctx->job.apply = apply_link_revoke;
	app_commit(ctx);
	return 0;
}

static int h_link_revoke_all(struct reqctx *ctx)
{
	return revoke_links(ctx, NULL);
}

static int h_link_revoke_one(struct reqctx *ctx)
{
	return revoke_links(ctx, ctx->param[1]);
}

/* ---- the public page: ask for a manage link by email (/p/request) ---- */

/* A fixed window per key (a keyed hash as text), in memory. A table whose
 * every slot holds a live window refuses new keys: fail closed. */
struct rate_slot {
	char key[40];
	int64_t start_s; /* 0: free */
	int count;
};

static struct rate_slot by_address[LINK_REQUEST_SLOTS], by_client[LINK_REQUEST_SLOTS];
static pthread_mutex_t rate_lock = PTHREAD_MUTEX_INITIALIZER;

/* Counts one use of key; false when key already had max in this window
 * (or the table is full of live windows). */
static bool rate_take(struct rate_slot *t, const char *key, int max, int64_t now_s)
{
	int free_slot = -1, hit = -1;
	bool ok = false;
	pthread_mutex_lock(&rate_lock);
	for (int i = 0; i < LINK_REQUEST_SLOTS; i++) {
		if (t[i].start_s != 0 && now_s - t[i].start_s >= LINK_REQUEST_WINDOW_SECONDS)
			t[i].start_s = 0;
		if (t[i].start_s == 0) {
			if (free_slot < 0)
				free_slot = i;
		} else if (strcmp(t[i].key, key) == 0) {
			hit = i;
		}
	}
	if (hit >= 0) {
		ok = t[hit].count < max;
		if (ok)
			t[hit].count++;
	} else if (free_slot >= 0) {
		snprintf(t[free_slot].key, sizeof t[free_slot].key, "%s", key);
		t[free_slot].start_s = now_s;
		t[free_slot].count = 1;
		ok = true;
	}
	pthread_mutex_unlock(&rate_lock);
	return ok;
}

static enum prefpage_lang request_lang(struct reqctx *ctx, const char *body, size_t len)
{
	char lang[16];
	if (body != NULL && parse_form_value(body, len, "lang", lang, sizeof lang) == 0)
		return strcmp(lang, "zh-CN") == 0 ? PREFPAGE_ZH : PREFPAGE_EN;
	return prefpage_lang_from(http_header(ctx->http, "Accept-Language"));
}

static int h_request_get(struct reqctx *ctx)
{
	customer_identity(ctx);
	reply_page(ctx, 200, prefpage_request_form(request_lang(ctx, NULL, 0)));
	app_send(ctx);
	return 0;
}

/* One answer for every address, found or not, so the page cannot tell who
 * is on file; the link goes only to the address on file, by mail queued in
 * the audit entry's transaction. The entry names the address by a keyed
 * hash, and the contact id when one matched (the trail is the auditor's). */
static int h_request_post(struct reqctx *ctx)
{
	char email[FORM_VALUE_CAP], addr_id[40], client_id[40];
	const char *outcome = NULL;
	struct store_link *l = NULL;
	size_t len;
	int64_t now_s = now_us() / 1000000;
	customer_identity(ctx);
	const char *body = http_body(ctx->http, &len);
	enum prefpage_lang lang = request_lang(ctx, body, body != NULL ? len : 0);
	struct txn t = app_txn(ctx, ctx->rd);
	if (http_body_too_big(ctx->http) || body == NULL ||
	    !parse_media_is(http_header(ctx->http, "Content-Type"), "application/x-www-form-urlencoded") ||
	    parse_form_value(body, len, "email", email, sizeof email) != 0 ||
	    link_address_id(&t, email, addr_id, sizeof addr_id) != 0) {
		err_set(ERR_INVALID, "the form needs one field email with an email address");
		return app_reason(ctx, ERR_INVALID, REASON_MALFORMED_FORM);
	}
	customer_audit_begin(ctx, "customer.link_request", "", NULL, NULL);
	snprintf(client_id, sizeof client_id, "%s", ctx->job.entry.client);
	if (!rate_take(by_client, client_id, LINK_REQUEST_PER_CLIENT, now_s)) {
		audit_decide(ctx, false, "rate_limited_client");
		cust_detail(ctx, json_pack("{s:s}", "address", addr_id));
		reply_page(ctx, 429, prefpage_request_busy(lang));
		http_add_header(ctx->http, "Retry-After", "600");
		app_commit(ctx);
		return 0;
	}
	if (!rate_take(by_address, addr_id, LINK_REQUEST_PER_ADDRESS, now_s)) {
		audit_decide(ctx, false, "rate_limited_address");
		cust_detail(ctx, json_pack("{s:s}", "address", addr_id));
		reply_page(ctx, 200, prefpage_request_sent(lang));
		app_commit(ctx);
		mem_wipe(email, sizeof email);
		return 0;
	}
	struct mailed_link *ml = calloc(1, sizeof *ml);
	l = ml != NULL ? &ml->l : NULL;
	if (ml != NULL)
		snprintf(ml->lang, sizeof ml->lang, "%s", prefpage_lang_tag(lang));
	int rc = l == NULL ? err_set(ERR_NOMEM, "out of memory") : link_request_mint(&t, email, l, &outcome);
	mem_wipe(email, sizeof email);
	if (rc != 0) {
		free(l);
		audit_decide(ctx, false, "error");
		return rc;
	}
	if (strcmp(outcome, "mailed") != 0) {
		free(l);
		audit_decide(ctx, true, outcome);
		cust_detail(ctx, json_pack("{s:s}", "address", addr_id));
		reply_page(ctx, 200, prefpage_request_sent(lang));
		app_commit(ctx);
		return 0;
	}
	snprintf(ctx->job.entry.record_id, sizeof ctx->job.entry.record_id, "%s", l->contact_id);
	audit_decide(ctx, true, "mailed");
	cust_detail(ctx, json_pack("{s:s, s:s, s:s}", "address", addr_id, "link_id", l->id, "capability",
				   l->capability));
	ctx->state = l; /* freed with the request */
	ctx->state_free = free;
	reply_page(ctx, 200, prefpage_request_sent(lang));
	ctx->job.apply = apply_link_insert_mailed_lang;
	app_commit(ctx);
	return 0;
}

const struct route customer_routes[] = {
	/* Before /p/{token}: the router takes the first pattern that matches. */
	{ "GET", "/p/request", h_request_get, NULL, true, 0, NULL },
	{ "POST", "/p/request", h_request_post, NULL, true, 0, "customer.link_request" },
	{ "POST", "/v1/contacts/{id}/preference-link", h_link_create, NULL, false, 0, "links.create" },
	{ "DELETE", "/v1/contacts/{id}/preference-link", h_link_revoke_all, NULL, false, 0, "links.revoke" },
	{ "DELETE", "/v1/contacts/{id}/preference-link/{token}", h_link_revoke_one, NULL, false, 0,
	  "links.revoke" },
	{ "GET", "/p/{token}", h_pref_get, NULL, true, 0, "customer.view" },
	{ "POST", "/p/{token}", h_pref_post, NULL, true, 0, "customer.*" },
	{ "GET", "/v1/unsubscribe/{token}", h_unsub_get, NULL, true, 0, "customer.unsubscribe_view" },
	{ "POST", "/v1/unsubscribe/{token}", h_unsub_post, NULL, true, 0, "customer.unsubscribe" },
	{ 0 },
};
