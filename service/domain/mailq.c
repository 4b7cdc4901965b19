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

int mailq_manage_link_queue(struct txn *t, const struct store_link *l)
{
	struct store_mail m;
	uint8_t raw[LIMIT_ID_RAW_BYTES];
	memset(&m, 0, sizeof m);
	crypto_random(raw, sizeof raw);
	b64url_encode(raw, sizeof raw, m.id);
	snprintf(m.kind, sizeof m.kind, "manage_link");
	snprintf(m.contact_id, sizeof m.contact_id, "%s", l->contact_id);
	snprintf(m.link_id, sizeof m.link_id, "%s", l->id);
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
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

/* Appends the organisation's details to the body at *n; false when they
 * do not fit (the caller refuses the message rather than cut it). */
static bool org_footer(struct mailq_message *out, size_t *n, const struct mailq_org *org)
{
	const char *v[4] = { org->name, org->postal_address, org->privacy_policy_url, org->contact_email };
	bool any = false;
	for (int i = 0; i < 4; i++)
		any = any || (v[i] != NULL && v[i][0] != '\0');
	if (!any)
		return true;
	int w = snprintf(out->body + *n, sizeof out->body - *n, "\r\n-- \r\n");
	if (w < 0 || (size_t)w >= sizeof out->body - *n)
		return false;
	*n += (size_t)w;
	for (int i = 0; i < 4; i++) {
		if (v[i] == NULL || v[i][0] == '\0')
			continue;
		for (const char *s = v[i]; *s; s++) {
			/* A postal address's line breaks become CRLF, as mail wants. */
			const char *piece = *s == '\n' ? "\r\n" : NULL;
			size_t len = piece != NULL ? 2 : 1;
			if (*n + len + 3 >= sizeof out->body)
				return false;
			memcpy(out->body + *n, piece != NULL ? piece : s, len);
			*n += len;
		}
		memcpy(out->body + *n, "\r\n", 3);
		*n += 2;
	}
	return true;
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
	rc = store_link_get(t->c, m->link_id, &l);
	if (rc == ERR_NOTFOUND || (rc == 0 && strcmp(l.contact_id, m->contact_id) != 0)) {
		*drop = "unknown_link";
		return 0;
	}
	if (rc != 0)
		return rc;
	if (l.revoked_us != 0) {
		*drop = "revoked";
		return 0;
	}
	if (l.expires_us <= t->now_us) {
		*drop = "expired";
		return 0;
	}
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
	if (b64url_decode(l.id, strlen(l.id), raw, sizeof raw) != LINKTOKEN_ID_BYTES) {
		*drop = "unknown_link";
		goto fail;
	}
	if ((rc = linktoken_make(t->keys, raw, l.expires_us / 1000000, token)) != 0)
		goto fail;
	size_t bl = strlen(public_url);
	while (bl > 0 && public_url[bl - 1] == '/')
		bl--;
	char expires[32];
	time_t es = (time_t)(l.expires_us / 1000000);
	struct tm tm;
	gmtime_r(&es, &tm);
	strftime(expires, sizeof expires, "%Y-%m-%d", &tm);
	snprintf(out->subject, sizeof out->subject, "Your privacy choices / 您的隐私选择");
	int n = snprintf(
		out->body, sizeof out->body,
		"Hello,\r\n\r\n"
		"You can see and change what you agreed to, download your data or ask\r\n"
		"us to erase it at this personal link (valid until %s):\r\n\r\n"
		"  %.*s/p/%s\r\n\r\n"
		"Anyone with this link can act for you: do not forward it. If you did\r\n"
		"not ask for it, you can ignore this message.\r\n\r\n"
		"您好：\r\n\r\n"
		"您可以通过以下个人链接（有效期至 %s）查看和更改您的同意选择、下载您的数据，\r\n"
		"或要求我们删除您的数据：\r\n\r\n"
		"  %.*s/p/%s\r\n\r\n"
		"任何持有此链接的人都可以代表您操作：请勿转发。如果您没有提出此请求，请忽略本邮件。\r\n",
		expires, (int)bl, public_url, token, expires, (int)bl, public_url, token);
	crypto_wipe(token, sizeof token);
	size_t used = n < 0 ? 0 : (size_t)n;
	if (n < 0 || (size_t)n >= sizeof out->body || !org_footer(out, &used, org)) {
		/* A message cut short would carry a broken link: refuse it whole. */
		rc = err_set(ERR_TOOBIG, "the composed mail does not fit %d bytes", MAIL_BODY_CAP);
		goto fail;
	}
	return 0;
fail:
	if (rc != 0 || *drop != NULL) {
		crypto_wipe(out->to, sizeof out->to);
		crypto_wipe(out->body, sizeof out->body);
	}
	return rc;
}
