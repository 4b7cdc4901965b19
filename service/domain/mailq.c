/*
 * mailq: queuing and composing the mail a change causes. See mailq.h.
 */
#include "service/domain/mailq.h"

#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/base/limits.h"
#include "service/crypto/fieldcrypt.h"
#include "service/domain/record.h"
#include "service/linktoken.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int mailq_manage_link_queue(struct txn *t, const struct store_link *l, const char *lang)
{
	struct store_mail m;
	uint8_t raw[LIMIT_ID_RAW_BYTES];
	memset(&m, 0, sizeof m);
	crypto_random(raw, sizeof raw);
	b64url_encode(raw, sizeof raw, m.id);
	snprintf(m.kind, sizeof m.kind, "manage_link");
	snprintf(m.contact_id, sizeof m.contact_id, "%s", l->contact_id);
	snprintf(m.link_id, sizeof m.link_id, "%s", l->id);
	snprintf(m.lang, sizeof m.lang, "%s", lang != NULL && strcmp(lang, "zh-CN") == 0 ? "zh-CN" : "en");
	m.created_us = t->now_us;
	return store_mail_put(t->c, &m);
}

struct email_walk {
	const struct store_contact *ct;
	const uint8_t *dek;
	char *out;
	size_t cap;
	bool found;
};

static int email_cb(void *arg, const char *name, const uint8_t *sealed, size_t len)
{
	struct email_walk *w = arg;
	json_t *v = NULL;
	if (strcmp(name, "email") != 0)
		return 0;
	int rc = record_open(w->dek, "contact", w->ct->id, name, sealed, len, &v);
	if (rc != 0)
		return rc;
	const char *s = json_string_value(v);
	if (s != NULL && strlen(s) < w->cap) {
		snprintf(w->out, w->cap, "%s", s);
		w->found = true;
	}
	json_decref(v);
	return 0;
}

/* A value that goes on a header line must not be able to start another. */
static bool header_safe(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || *s == 0x7f || *s == '<' || *s == '>')
			return false;
	return true;
}

/* A bounded text buffer that refuses, rather than cuts, what does not
 * fit: a message cut short would carry a broken link. */
struct mbuf {
	char *s;
	size_t n, cap;
	bool full;
};

static void mb_put(struct mbuf *b, const char *s, size_t n)
{
	if (b->full || b->n + n + 1 > b->cap) {
		b->full = true;
		return;
	}
	memcpy(b->s + b->n, s, n);
	b->n += n;
	b->s[b->n] = '\0';
}

static void mb_str(struct mbuf *b, const char *s)
{
	mb_put(b, s, strlen(s));
}

/* Text for the plain part: line breaks become CRLF, as mail wants. */
static void mb_text(struct mbuf *b, const char *s)
{
	for (; *s; s++)
		if (*s == '\n')
			mb_str(b, "\r\n");
		else if (*s != '\r')
			mb_put(b, s, 1);
}

/* Text for the HTML part: every markup character escaped, line breaks
 * kept as <br>. */
static void mb_html(struct mbuf *b, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&': mb_str(b, "&amp;"); break;
		case '<': mb_str(b, "&lt;"); break;
		case '>': mb_str(b, "&gt;"); break;
		case '"': mb_str(b, "&quot;"); break;
		case '\'': mb_str(b, "&#39;"); break;
		case '\n': mb_str(b, "<br>"); break;
		case '\r': break;
		default: mb_put(b, s, 1);
		}
	}
}

/* The words of one kind of mail, in English [0] and Chinese [1]. In lead,
 * "{date}" is the link's expiry date and "{purpose}" what the person is
 * asked to confirm (the policy's description of the purpose). */
struct mail_words {
	const char *kind;
	const char *subject[2], *greeting[2], *lead[2], *action[2], *note[2];
};

static const struct mail_words words[] = {
	{ "manage_link",
	  { "Your privacy choices", "您的隐私选择" },
	  { "Hello,", "您好：" },
	  { "You can see and change what you agreed to, download your data or ask us to erase it at this "
	    "personal link (valid until {date}):",
	    "您可以通过以下个人链接（有效期至 {date}）查看和更改您的同意选择、下载您的数据，或要求我们删除您的数据：" },
	  { "Open your privacy choices", "打开您的隐私选择" },
	  { "Anyone with this link can act for you: do not forward it. If you did not ask for it, you can "
	    "ignore this message.",
	    "任何持有此链接的人都可以代表您操作：请勿转发。如果您没有提出此请求，请忽略本邮件。" } },
	{ "confirm_consent",
	  { "Please confirm your subscription", "请确认您的订阅" },
	  { "Hello,", "您好：" },
	  { "Please confirm that you want to receive this by email: {purpose}. Open this link and press "
	    "the button to confirm (valid until {date}):",
	    "请确认您希望通过电子邮件接收：{purpose}。请打开以下链接并点击按钮确认（有效期至 {date}）：" },
	  { "Confirm my subscription", "确认我的订阅" },
	  { "Until you confirm, we will not send you this. If you did not ask for it, ignore this message: "
	    "nothing will be sent.",
	    "在您确认之前，我们不会向您发送此类邮件。如果您没有提出此请求，请忽略本邮件：我们不会发送任何内容。" } },
	/* Data-subject requests (request.h): no link; {purpose} is the kind of
	 * request in the person's language and {date} its due date. */
	{ "request_received",
	  { "We received your request", "我们已收到您的请求" },
	  { "Hello,", "您好：" },
	  { "We received your {purpose} about your personal data. We will answer by {date}, and write to you "
	    "if we need more time or more information.",
	    "我们已收到您关于个人数据的{purpose}。我们将在 {date} 之前答复；如果需要更多时间或信息，我们会写信告知您。" },
	  { "", "" },
	  { "You do not need to do anything now. If you did not make this request, please tell us at the "
	    "contact address below.",
	    "您现在无需进行任何操作。如果您没有提出此请求，请通过下方的联系方式告知我们。" } },
	{ "request_completed",
	  { "Your request is complete", "您的请求已完成" },
	  { "Hello,", "您好：" },
	  { "We have completed your {purpose} about your personal data.",
	    "我们已完成您关于个人数据的{purpose}。" },
	  { "", "" },
	  { "If you have questions about how we handled it, please write to us at the contact address "
	    "below.",
	    "如果您对我们的处理方式有疑问，请通过下方的联系方式与我们联系。" } },
};

/* The kind of a data-subject request, as the mail names it. */
static const char *request_kind_words(const char *kind, int L)
{
	if (strcmp(kind, "access") == 0)
		return L ? "访问（查阅）请求" : "request for access";
	if (strcmp(kind, "erasure") == 0)
		return L ? "删除请求" : "request for erasure";
	return L ? "反对处理请求" : "objection to processing";
}

/* Copies template into out (cap bytes) with {date} and {purpose} filled
 * in; false when it does not fit. */
static bool fill(char *out, size_t cap, const char *template, const char *date, const char *purpose)
{
	size_t n = 0;
	for (const char *s = template; *s;) {
		const char *v = NULL;
		size_t skip = 1;
		if (strncmp(s, "{date}", 6) == 0)
			v = date, skip = 6;
		else if (strncmp(s, "{purpose}", 9) == 0)
			v = purpose, skip = 9;
		size_t len = v != NULL ? strlen(v) : 1;
		if (n + len + 1 > cap)
			return false;
		memcpy(out + n, v != NULL ? v : s, len);
		n += len;
		s += skip;
	}
	out[n] = '\0';
	return true;
}

static const char *const org_labels[2][4] = {
	{ "", "", "Privacy policy: ", "Contact: " },
	{ "", "", "隐私政策：", "联系方式：" },
};

/* The organisation's details, in both parts: who sent this and how to
 * reach them (every mail carries them). */
static void org_footer(struct mbuf *tx, struct mbuf *ht, const struct mailq_org *org, int L)
{
	const char *v[4] = { org->name, org->postal_address, org->privacy_policy_url, org->contact_email };
	bool any = false;
	for (int i = 0; i < 4; i++)
		any = any || (v[i] != NULL && v[i][0] != '\0');
	if (!any)
		return;
	mb_str(tx, "\r\n-- \r\n");
	mb_str(ht, "<hr><address style=\"font-style:normal\">");
	for (int i = 0; i < 4; i++) {
		if (v[i] == NULL || v[i][0] == '\0')
			continue;
		mb_text(tx, org_labels[L][i]);
		mb_text(tx, v[i]);
		mb_str(tx, "\r\n");
		mb_str(ht, "<p>");
		mb_html(ht, org_labels[L][i]);
		if (i == 2) {
			mb_str(ht, "<a href=\"");
			mb_html(ht, v[i]);
			mb_str(ht, "\">");
			mb_html(ht, v[i]);
			mb_str(ht, "</a>");
		} else if (i == 3) {
			mb_str(ht, "<a href=\"mailto:");
			mb_html(ht, v[i]);
			mb_str(ht, "\">");
			mb_html(ht, v[i]);
			mb_str(ht, "</a>");
		} else {
			mb_html(ht, v[i]);
		}
		mb_str(ht, "</p>");
	}
	mb_str(ht, "</address>");
}

/* Writes the subject, the text part and the HTML part of a message of the
 * given words in language L (0 English, 1 Chinese) for the link url. */
static int compose_parts(struct mailq_message *out, const struct mail_words *w, int L, const char *url,
			 const char *expires, const char *purpose, const struct mailq_org *org)
{
	struct mbuf tx = { out->body, 0, sizeof out->body, false };
	struct mbuf ht = { out->html, 0, sizeof out->html, false };
	char lead[POLICY_MAX_TEXT_BYTES + 1024];
	snprintf(out->subject, sizeof out->subject, "%s", w->subject[L]);
	snprintf(out->lang, sizeof out->lang, "%s", L ? "zh-CN" : "en");
	snprintf(out->from_name, sizeof out->from_name, "%s", org->name != NULL ? org->name : "");
	if (!fill(lead, sizeof lead, w->lead[L], expires, purpose))
		return err_set(ERR_TOOBIG, "the composed mail does not fit");

	mb_text(&tx, w->greeting[L]);
	mb_str(&tx, "\r\n\r\n");
	mb_text(&tx, lead);
	mb_str(&tx, "\r\n\r\n");
	if (url != NULL) {
		mb_str(&tx, "  ");
		mb_str(&tx, url);
		mb_str(&tx, "\r\n\r\n");
	}
	mb_text(&tx, w->note[L]);
	mb_str(&tx, "\r\n");

	mb_str(&ht, L ? "<!DOCTYPE html>\r\n<html lang=\"zh-CN\">" : "<!DOCTYPE html>\r\n<html lang=\"en\">");
	mb_str(&ht, "<head><meta charset=\"utf-8\"><title>");
	mb_html(&ht, w->subject[L]);
	mb_str(&ht, "</title></head>\r\n<body>\r\n<p>");
	mb_html(&ht, w->greeting[L]);
	mb_str(&ht, "</p>\r\n<p>");
	mb_html(&ht, lead);
	mb_str(&ht, "</p>\r\n<p>");
	if (url != NULL) {
		mb_str(&ht, "<a href=\"");
		mb_html(&ht, url);
		mb_str(&ht, "\">");
		mb_html(&ht, w->action[L]);
		mb_str(&ht, "</a></p>\r\n<p>");
	}
	mb_html(&ht, w->note[L]);
	mb_str(&ht, "</p>\r\n");
	org_footer(&tx, &ht, org, L);
	mb_str(&ht, "\r\n</body>\r\n</html>\r\n");
	if (tx.full || ht.full)
		return err_set(ERR_TOOBIG, "the composed mail does not fit %d bytes", MAIL_BODY_CAP);
	return 0;
}

/* A manage link's row: *drop when it no longer should be mailed. */
static int link_target(struct txn *t, const struct store_mail *m, struct store_link *l, const char **drop)
{
	int rc = store_link_get(t->c, m->link_id, l);
	if (rc == ERR_NOTFOUND || (rc == 0 && strcmp(l->contact_id, m->contact_id) != 0)) {
		*drop = "unknown_link";
		return 0;
	}
	if (rc != 0)
		return rc;
	if (l->revoked_us != 0)
		*drop = "revoked";
	else if (l->expires_us <= t->now_us)
		*drop = "expired";
	return 0;
}

/* A double opt-in confirmation, as a link (its id and expiry): dropped
 * once used, expired or superseded by a newer choice of the person's
 * (a withdrawal before the mail went must not be undone by it). */
static int confirm_target(struct txn *t, const struct store_mail *m, struct store_link *l, char *purpose_text,
			  size_t cap, const char **drop)
{
	struct store_confirmation cf;
	struct store_consent cur;
	struct policy_purpose_info pi;
	memset(l, 0, sizeof *l);
	int rc = store_confirmation_get(t->c, m->link_id, &cf);
	if (rc == ERR_NOTFOUND || (rc == 0 && strcmp(cf.contact_id, m->contact_id) != 0)) {
		*drop = "unknown_link";
		return 0;
	}
	if (rc != 0)
		return rc;
	if (cf.confirmed_us != 0) {
		*drop = "used";
		return 0;
	}
	if (cf.expires_us <= t->now_us) {
		*drop = "expired";
		return 0;
	}
	rc = store_consent_get(t->c, cf.contact_id, cf.purpose, cf.channel, &cur);
	if (rc != 0 && rc != ERR_NOTFOUND)
		return rc;
	if (rc == ERR_NOTFOUND || strcmp(cur.receipt_id, cf.receipt_id) != 0 ||
	    strcmp(cur.status, "pending_confirmation") != 0) {
		*drop = "superseded";
		return 0;
	}
	snprintf(l->id, sizeof l->id, "%s", cf.id);
	snprintf(l->contact_id, sizeof l->contact_id, "%s", cf.contact_id);
	l->expires_us = cf.expires_us;
	bool zh = strcmp(m->lang, "zh-CN") == 0;
	if (policy_purpose_get(t->policy, cf.purpose, &pi) == 0)
		snprintf(purpose_text, cap, "%s",
			 zh && pi.description_zh != NULL ? pi.description_zh : pi.description);
	else
		snprintf(purpose_text, cap, "%s", cf.purpose);
	return 0;
}

/* A data-subject request's mail: the request must still be this
 * contact's; the kind in the row's language and the due date. */
static int request_target(struct txn *t, const struct store_mail *m, char *kind_text, size_t kcap, char *due,
			  size_t dcap, const char **drop)
{
	struct store_request r;
	int y, mo, d;
	int rc = store_request_get(t->c, m->link_id, &r);
	if (rc == ERR_NOTFOUND || (rc == 0 && strcmp(r.contact_id, m->contact_id) != 0)) {
		*drop = "unknown_link";
		return 0;
	}
	if (rc != 0)
		return rc;
	snprintf(kind_text, kcap, "%s", request_kind_words(r.kind, strcmp(m->lang, "zh-CN") == 0));
	civil_from_days(r.due_day, &y, &mo, &d);
	snprintf(due, dcap, "%04d-%02d-%02d", y, mo, d);
	return 0;
}

int mailq_compose(struct txn *t, const struct store_mail *m, const char *public_url,
		  const struct mailq_org *org, struct mailq_message *out, const char **drop)
{
	struct store_link l;
	struct store_contact ct;
	uint8_t dek[32], raw[LINKTOKEN_ID_BYTES + 2];
	char token[LINKTOKEN_CAP];
	int rc;

	memset(out, 0, sizeof *out);
	*drop = NULL;
	snprintf(out->id, sizeof out->id, "%s", m->id);
	snprintf(out->link_id, sizeof out->link_id, "%s", m->link_id);
	bool confirm = strcmp(m->kind, "confirm_consent") == 0;
	bool request = strcmp(m->kind, "request_received") == 0 || strcmp(m->kind, "request_completed") == 0;
	char purpose_text[POLICY_MAX_TEXT_BYTES + 1] = "";
	char due[32] = "";
	/* A kind this consentd does not know (a newer one's row) is not
	 * guessed at: it could hand out the wrong kind of link. */
	if (!confirm && !request && strcmp(m->kind, "manage_link") != 0) {
		*drop = "unknown_kind";
		return 0;
	}
	if (confirm)
		rc = confirm_target(t, m, &l, purpose_text, sizeof purpose_text, drop);
	else if (request)
		rc = request_target(t, m, purpose_text, sizeof purpose_text, due, sizeof due, drop);
	else
		rc = link_target(t, m, &l, drop);
	if (rc != 0 || *drop != NULL)
		return rc;
	rc = store_contact_get(t->c, m->contact_id, &ct);
	if (rc == ERR_NOTFOUND || (rc == 0 && ct.erased)) {
		*drop = "erased";
		return 0;
	}
	if (rc != 0)
		return rc;
	if ((rc = record_unwrap(t->keys, &ct, dek)) != 0)
		return rc;
	struct email_walk w = { &ct, dek, out->to, sizeof out->to, false };
	rc = store_fields_each(t->c, ct.id, email_cb, &w);
	crypto_wipe(dek, sizeof dek);
	if (rc != 0)
		goto fail;
	if (!w.found) {
		*drop = "no_email";
		goto fail;
	}
	if (!header_safe(out->to) || strchr(out->to, '@') == NULL) {
		*drop = "bad_address";
		goto fail;
	}
	if (request) {
		/* A request's mail carries no link: nothing to sign. */
		const struct mail_words *rw = &words[0];
		for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
			if (strcmp(words[i].kind, m->kind) == 0)
				rw = &words[i];
		rc = compose_parts(out, rw, strcmp(m->lang, "zh-CN") == 0 ? 1 : 0, NULL, due, purpose_text,
				   org);
		goto fail;
	}
	if (b64url_decode(l.id, strlen(l.id), raw, sizeof raw) != LINKTOKEN_ID_BYTES) {
		*drop = "unknown_link";
		goto fail;
	}
	if ((rc = linktoken_make(t->keys, raw, l.expires_us / 1000000, token)) != 0)
		goto fail;
	size_t bl = strlen(public_url);
	while (bl > 0 && public_url[bl - 1] == '/')
		bl--;
	char expires[32], url[LINKTOKEN_CAP + 600];
	time_t es = (time_t)(l.expires_us / 1000000);
	struct tm tm;
	gmtime_r(&es, &tm);
	strftime(expires, sizeof expires, "%Y-%m-%d", &tm);
	int un = snprintf(url, sizeof url, "%.*s/p/%s%s", (int)bl, public_url, confirm ? "confirm/" : "",
			  token);
	crypto_wipe(token, sizeof token);
	const struct mail_words *mw = &words[0];
	for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
		if (strcmp(words[i].kind, m->kind) == 0)
			mw = &words[i];
	snprintf(out->link_id, sizeof out->link_id, "%s", m->link_id);
	if (un < 0 || (size_t)un >= sizeof url)
		rc = err_set(ERR_TOOBIG, "the public URL is too long for a mail link");
	else
		rc = compose_parts(out, mw, strcmp(m->lang, "zh-CN") == 0 ? 1 : 0, url, expires, purpose_text,
				   org);
	crypto_wipe(url, sizeof url);
	if (rc != 0)
		goto fail;
	return 0;
fail:
	if (rc != 0 || *drop != NULL) {
		crypto_wipe(out->to, sizeof out->to);
		crypto_wipe(out->body, sizeof out->body);
		crypto_wipe(out->html, sizeof out->html);
	}
	return rc;
}
