/*
 * optin: double opt-in confirmations. See optin.h.
 */
#include "service/domain/optin.h"

#include "policy/policy.h"
#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/base/limits.h"
#include "service/crypto/fieldcrypt.h"
#include "service/linktoken.h"

#include <stdio.h>
#include <string.h>

#define OPTIN_STATUS "pending_confirmation"

bool optin_needed(const struct policy *p, const struct store_consent *cs, const struct store_consent *prev)
{
	struct policy_purpose_info pi;
	if (strcmp(cs->status, "granted") != 0 || strcmp(cs->channel, "email") != 0)
		return false;
	if (policy_purpose_get(p, cs->purpose, &pi) != 0 || !pi.double_opt_in)
		return false;
	/* Already confirmed: renewing a live grant asks nothing again. */
	return prev == NULL || strcmp(prev->status, "granted") != 0;
}

int optin_begin(struct txn *t, const struct store_consent *cs, const char *lang)
{
	struct store_confirmation cf;
	struct store_mail m;
	uint8_t raw[LINKTOKEN_ID_BYTES], mid[16];
	memset(&cf, 0, sizeof cf);
	crypto_random(raw, sizeof raw);
	linktoken_id_text(raw, cf.id);
	snprintf(cf.contact_id, sizeof cf.contact_id, "%s", cs->contact_id);
	snprintf(cf.purpose, sizeof cf.purpose, "%s", cs->purpose);
	snprintf(cf.channel, sizeof cf.channel, "%s", cs->channel);
	snprintf(cf.receipt_id, sizeof cf.receipt_id, "%s", cs->receipt_id);
	cf.created_us = t->now_us;
	/* Whole seconds: the token carries its expiry in seconds. */
	cf.expires_us = (t->now_us / 1000000 + (int64_t)OPTIN_TTL_DAYS * 86400) * 1000000;
	int rc = store_confirmation_put(t->c, &cf);
	if (rc != 0)
		return rc;
	memset(&m, 0, sizeof m);
	crypto_random(mid, sizeof mid);
	b64url_encode(mid, sizeof mid, m.id);
	snprintf(m.kind, sizeof m.kind, "confirm_consent");
	snprintf(m.contact_id, sizeof m.contact_id, "%s", cf.contact_id);
	snprintf(m.link_id, sizeof m.link_id, "%s", cf.id);
	snprintf(m.lang, sizeof m.lang, "%s", lang != NULL && strcmp(lang, "zh-CN") == 0 ? "zh-CN" : "en");
	m.created_us = t->now_us;
	return store_mail_put(t->c, &m);
}

/* The checks both steps make: the row, its use, its time, the contact and
 * whether the pending event is still the current state. */
int optin_check(struct txn *t, const struct store_confirmation *cf, const char **refusal)
{
	struct store_contact ct;
	struct store_consent cur;
	if (cf->confirmed_us != 0) {
		*refusal = "used";
		return 0;
	}
	if (cf->expires_us <= t->now_us) {
		*refusal = "expired";
		return 0;
	}
	int rc = store_contact_get(t->c, cf->contact_id, &ct);
	if (rc == ERR_NOTFOUND || (rc == 0 && ct.erased)) {
		*refusal = "erased";
		return 0;
	}
	if (rc != 0)
		return rc;
	rc = store_consent_get(t->c, cf->contact_id, cf->purpose, cf->channel, &cur);
	if (rc != 0 && rc != ERR_NOTFOUND)
		return rc;
	/* A withdrawal (or any newer event) after the grant wins: this link
	 * no longer speaks for the person's latest choice. */
	if (rc == ERR_NOTFOUND || strcmp(cur.status, OPTIN_STATUS) != 0 ||
	    strcmp(cur.receipt_id, cf->receipt_id) != 0)
		*refusal = "superseded";
	return 0;
}

int optin_resolve(struct txn *t, const char *token, struct store_confirmation *out, const char **refusal)
{
	struct linktoken tok;
	char id[LINKTOKEN_ID_TEXT_CAP];
	*refusal = NULL;
	memset(out, 0, sizeof *out);
	if (linktoken_parse(token, strlen(token), &tok) != 0 ||
	    linktoken_verify(t->keys, &tok, t->now_us / 1000000) != 0) {
		*refusal = "invalid";
		return 0;
	}
	linktoken_id_text(tok.id, id);
	int rc = store_confirmation_get(t->c, id, out);
	if (rc == ERR_NOTFOUND) {
		*refusal = "invalid";
		return 0;
	}
	if (rc != 0)
		return rc;
	return optin_check(t, out, refusal);
}
