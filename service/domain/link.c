/*
 * link: minting, resolving and revoking preference links. See link.h.
 */
#include "service/domain/link.h"

#include "policy/policy.h"
#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/crypto/fieldcrypt.h"
#include "service/domain/contact.h"
#include "service/domain/mailq.h"

#include "service/base/limits.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

static const char *const capability_names[LINK_CAPABILITY_COUNT] = {
	[LINK_OPTOUT] = "optout",
	[LINK_MANAGE] = "manage",
};

const char *link_capability_name(enum link_capability c)
{
	return (unsigned)c < LINK_CAPABILITY_COUNT ? capability_names[c] : capability_names[LINK_OPTOUT];
}

enum link_capability link_capability_of(const struct store_link *l)
{
	return strcmp(l->capability, capability_names[LINK_MANAGE]) == 0 ? LINK_MANAGE : LINK_OPTOUT;
}

bool link_role_may_mint(const struct policy *p, const char *role, enum link_capability cap, const char *scope)
{
	bool manage = cap == LINK_MANAGE;
	if (!policy_role_may(p, role, POLICY_ACT_LINKS_CREATE))
		return false;
	if (strcmp(scope, "all") != 0 && !policy_role_may_purpose(p, role, scope))
		return false;
	if (!manage)
		return true;
	if (!policy_role_may(p, role, POLICY_ACT_CONSENTS_WRITE) ||
	    !policy_role_may(p, role, POLICY_ACT_CONTACTS_ERASE) ||
	    !policy_role_may(p, role, POLICY_ACT_CONTACTS_UPDATE))
		return false;
	for (size_t i = 0; i < policy_purpose_count(p); i++) {
		struct policy_purpose_info pi;
		if (policy_purpose_at(p, i, &pi) == 0 && !policy_role_may_purpose(p, role, pi.name))
			return false;
	}
	return true;
}

/* The role's purposes, comma-separated, for store_links_revoke_mintable. */
static void role_purposes(const struct policy *p, const char *role, char *out, size_t cap)
{
	size_t n = 0;
	out[0] = '\0';
	for (size_t i = 0; i < policy_purpose_count(p); i++) {
		struct policy_purpose_info pi;
		if (policy_purpose_at(p, i, &pi) != 0 || !policy_role_may_purpose(p, role, pi.name))
			continue;
		int k = snprintf(out + n, cap - n, "%s%s", n ? "," : "", pi.name);
		if (k < 0 || (size_t)k >= cap - n) {
			out[n] = '\0'; /* a shorter list revokes less, never more */
			return;
		}
		n += (size_t)k;
	}
}

int link_mint(const struct txn *t, const char *contact_id, const char *scope, enum link_capability cap,
	      int64_t ttl_days, const char *actor, struct store_link *l, char token[LINKTOKEN_CAP])
{
	uint8_t raw[LINKTOKEN_ID_BYTES];
	int64_t expires_s = t->now_us / 1000000 + ttl_days * 86400;
	memset(l, 0, sizeof *l);
	crypto_random(raw, sizeof raw);
	linktoken_id_text(raw, l->id);
	snprintf(l->contact_id, sizeof l->contact_id, "%s", contact_id);
	snprintf(l->scope, sizeof l->scope, "%s", scope);
	l->created_us = t->now_us;
	l->expires_us = expires_s * 1000000;
	snprintf(l->created_by, sizeof l->created_by, "%s", actor);
	snprintf(l->capability, sizeof l->capability, "%s", link_capability_name(cap));
	return linktoken_make(t->keys, raw, expires_s, token);
}

int link_insert(struct txn *t, const struct store_link *l)
{
	return store_link_insert(t->c, l);
}

int link_insert_mailed_lang(struct txn *t, const struct store_link *l, const char *lang)
{
	int rc = store_link_insert(t->c, l);
	return rc != 0 ? rc : mailq_manage_link_queue(t, l, lang);
}

bool link_mailable(const struct store_contact *ct)
{
	return !ct->erased && ct->has_email_shash;
}

bool link_covers_purpose(const struct policy *p, const char *creator_role, const char *purpose)
{
	return strcmp(creator_role, LINK_CREATOR_SELF) == 0 ||
	       policy_role_may_purpose(p, creator_role, purpose);
}

int link_address_id(const struct txn *t, const char *email, char *out, size_t cap)
{
	char norm[320], in[330];
	uint8_t h[FC_HASH_BYTES];
	char hex[2 * 16 + 1];
	if (normalize_email(email, strlen(email), norm, sizeof norm) != 0)
		return err_set(ERR_INVALID, "not an email address");
	/* Domain-separated from client addresses, which share the key. */
	snprintf(in, sizeof in, "mail:%s", norm);
	int rc = fieldcrypt_keyed_hash(t->keys, FC_HASH_CLIENT, in, strlen(in), h);
	crypto_wipe(norm, sizeof norm);
	crypto_wipe(in, sizeof in);
	if (rc != 0)
		return rc;
	hex_encode(h, 16, hex);
	snprintf(out, cap, "h:%s", hex);
	crypto_wipe(h, sizeof h);
	return 0;
}

int link_request_mint(struct txn *t, const char *email, struct store_link *out, const char **outcome)
{
	char id[STORE_ID_CAP], token[LINKTOKEN_CAP];
	struct store_contact ct;
	*outcome = "no_match";
	int rc = contact_find_email(t, email, id);
	if (rc == ERR_NOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	rc = store_contact_get(t->c, id, &ct);
	if (rc == ERR_NOTFOUND || (rc == 0 && !link_mailable(&ct)))
		return 0;
	if (rc != 0)
		return rc;
	rc = link_mint(t, id, "all", LINK_MANAGE, LINK_SELF_TTL_DAYS, LINK_CREATOR_SELF, out, token);
	crypto_wipe(token, sizeof token);
	if (rc == 0)
		*outcome = "mailed";
	return rc;
}

int link_resolve(struct txn *t, const char *token, int64_t now_s, struct linktoken *tok,
		 struct store_link *link, char role[STORE_NAME_CAP], struct store_contact *ct,
		 const char **refusal)
{
	char id[LINKTOKEN_ID_TEXT_CAP];
	int rc;
	*refusal = NULL;
	if (linktoken_parse(token, strlen(token), tok) != 0) {
		*refusal = "malformed";
		return 0;
	}
	if (linktoken_verify(t->keys, tok, now_s) != 0) {
		*refusal = now_s >= tok->expires_s ? "expired_or_forged" : "forged";
		return 0;
	}
	linktoken_id_text(tok->id, id);
	rc = store_link_get(t->c, id, link);
	if (rc == ERR_NOTFOUND) {
		*refusal = "unknown_link";
		return 0;
	}
	if (rc != 0)
		return rc;
	if (link->revoked_us != 0) {
		*refusal = "revoked";
		return 0;
	}
	if (link->expires_us / 1000000 <= now_s || link->expires_us / 1000000 != tok->expires_s) {
		*refusal = "expired";
		return 0;
	}
	/* The link is its creator's credential as much as the person's, so it
	 * reaches only the purposes the creator's role may use; a creator the
	 * service no longer knows leaves the link without any. */
	const char *prole = NULL;
	role[0] = '\0';
	if (strcmp(link->created_by, LINK_CREATOR_SELF) == 0)
		snprintf(role, STORE_NAME_CAP, "%s", LINK_CREATOR_SELF);
	else if (policy_principal_role(t->policy, link->created_by, &prole) == 0)
		snprintf(role, STORE_NAME_CAP, "%s", prole);
	else if ((rc = store_principal_role(t->c, link->created_by, role)) != 0 && rc != ERR_NOTFOUND)
		return rc;
	if (strcmp(role, LINK_CREATOR_SELF) != 0 && !policy_role_exists(t->policy, role)) {
		*refusal = "creator_unknown";
		return 0;
	}
	rc = store_contact_get(t->c, link->contact_id, ct);
	if (rc == ERR_NOTFOUND || (rc == 0 && ct->erased)) {
		*refusal = "erased";
		return 0;
	}
	return rc;
}

int link_resolve_optout(struct txn *t, const char *token, int64_t now_s, struct linktoken *tok,
			struct store_link *link, char role[STORE_NAME_CAP], struct store_contact *ct,
			bool *erased, const char **refusal)
{
	char id[LINKTOKEN_ID_TEXT_CAP];
	const char *prole = NULL;
	int rc = link_resolve(t, token, now_s, tok, link, role, ct, refusal);
	*erased = false;
	if (rc != 0 || *refusal == NULL)
		return rc;
	if (strcmp(*refusal, "expired_or_forged") != 0 && strcmp(*refusal, "expired") != 0 &&
	    strcmp(*refusal, "revoked") != 0 && strcmp(*refusal, "erased") != 0)
		return 0;
	/* The MAC alone: verified as of the earliest time, where no token has
	 * expired yet. A forged token stays forged. */
	if (linktoken_verify(t->keys, tok, INT64_MIN) != 0)
		return 0;
	linktoken_id_text(tok->id, id);
	if ((rc = store_link_get(t->c, id, link)) != 0)
		return rc == ERR_NOTFOUND ? 0 : rc;
	if (link_capability_of(link) != LINK_OPTOUT)
		return 0; /* staff links of other capabilities keep their expiry */
	role[0] = '\0';
	if (policy_principal_role(t->policy, link->created_by, &prole) == 0)
		snprintf(role, STORE_NAME_CAP, "%s", prole);
	else if ((rc = store_principal_role(t->c, link->created_by, role)) != 0 && rc != ERR_NOTFOUND)
		return rc;
	rc = store_contact_get(t->c, link->contact_id, ct);
	if (rc == ERR_NOTFOUND || (rc == 0 && ct->erased)) {
		*erased = true;
		*refusal = NULL;
		return 0;
	}
	if (rc != 0)
		return rc;
	/* A creator the service no longer knows leaves the link without any
	 * purpose, as in link_resolve; that refusal stands. */
	if (!policy_role_exists(t->policy, role)) {
		*refusal = "creator_unknown";
		return 0;
	}
	*refusal = NULL;
	return 0;
}

int link_revoke(struct txn *t, const char *contact_id, const char *link_id, const char *role, int64_t *count,
		const char **reason)
{
	struct store_contact ct;
	int rc = store_contact_get(t->c, contact_id, &ct);
	*reason = NULL;
	*count = 0;
	if (rc == ERR_NOTFOUND) {
		*reason = "unknown_contact";
		return err_set(ERR_NOTFOUND, "no contact with this id");
	}
	if (rc == 0 && link_id[0] != '\0') {
		/* A role may end only a link it could have minted itself: marketing
		 * cannot cut off a person's manage link, or one for care. */
		struct store_link l;
		rc = store_link_get(t->c, link_id, &l);
		if (rc == 0 && strcmp(l.contact_id, contact_id) != 0)
			rc = err_set(ERR_NOTFOUND, "no active preference link with this id for this contact");
		if (rc == 0 && !link_role_may_mint(t->policy, role, link_capability_of(&l), l.scope)) {
			*reason = "role_denied";
			return err_set(
				ERR_DENIED,
				"role %s may not revoke a link it could not have minted (%s, scope %s)", role,
				l.capability, l.scope);
		}
		if (rc == 0)
			rc = store_link_revoke(t->c, contact_id, link_id, t->now_us);
		if (rc == 0)
			*count = 1;
	} else if (rc == 0) {
		char purposes[STORE_LIST_CAP];
		role_purposes(t->policy, role, purposes, sizeof purposes);
		bool manage = link_role_may_mint(t->policy, role, LINK_MANAGE, "all");
		rc = store_links_revoke_mintable(t->c, contact_id, manage, purposes, t->now_us, count);
	}
	if (rc != 0)
		*reason = rc == ERR_NOTFOUND ? "unknown_link" : "error";
	return rc;
}

int link_revoke_all(struct txn *t, const char *contact_id)
{
	return store_links_revoke_contact(t->c, contact_id, t->now_us, NULL);
}

void link_client_id(const struct txn *t, const char *ip, char *out, size_t cap)
{
	uint8_t h[FC_HASH_BYTES];
	char hex[2 * 16 + 1];
	if (fieldcrypt_keyed_hash(t->keys, FC_HASH_CLIENT, ip, strlen(ip), h) == 0) {
		hex_encode(h, 16, hex);
		snprintf(out, cap, "h:%s", hex);
	} else {
		snprintf(out, cap, "h:unavailable");
	}
	crypto_wipe(h, sizeof h);
}

int link_csrf_make(const struct txn *t, const struct linktoken *tok, int64_t now_s,
		   char out[LINKTOKEN_CSRF_CAP])
{
	return linktoken_csrf_make(t->keys, tok->id, now_s, out);
}

/* The spent value's key: the link's id, then the nonce. */
static size_t csrf_key(const struct linktoken *tok, const struct linktoken_csrf *csrf,
		       uint8_t key[LINKTOKEN_ID_BYTES + LINKTOKEN_CSRF_NONCE_BYTES])
{
	memcpy(key, tok->id, LINKTOKEN_ID_BYTES);
	memcpy(key + LINKTOKEN_ID_BYTES, csrf->nonce, LINKTOKEN_CSRF_NONCE_BYTES);
	return LINKTOKEN_ID_BYTES + LINKTOKEN_CSRF_NONCE_BYTES;
}

int link_csrf_spent(const struct txn *t, const struct linktoken *tok, const struct linktoken_csrf *csrf,
		    bool *spent)
{
	uint8_t key[LINKTOKEN_ID_BYTES + LINKTOKEN_CSRF_NONCE_BYTES];
	size_t n = csrf_key(tok, csrf, key);
	return store_form_nonce_spent(t->c, key, n, t->now_us, spent);
}

int link_csrf_spend(struct txn *t, const struct linktoken *tok, const struct linktoken_csrf *csrf,
		    int64_t max_age_s)
{
	uint8_t key[LINKTOKEN_ID_BYTES + LINKTOKEN_CSRF_NONCE_BYTES];
	size_t n = csrf_key(tok, csrf, key);
	/* linktoken_csrf_verify refuses a value older than max_age_s, so it
	 * need not be kept longer (a minute more for clocks that differ). */
	int64_t expires_us = (csrf->time_s + max_age_s + 60) * 1000000;
	int rc = store_form_nonce_spend(t->c, key, n, t->now_us, expires_us);
	if (rc == ERR_CONFLICT)
		rc = err_set(ERR_DENIED, "this form was sent already");
	return rc;
}

int link_csrf_check(const struct txn *t, const struct linktoken *tok, const char *text, int64_t now_s,
		    int64_t max_age_s, struct linktoken_csrf *out)
{
	if (linktoken_csrf_parse(text, strlen(text), out) != 0)
		return err_set(ERR_DENIED, "the form token is malformed");
	return linktoken_csrf_verify(t->keys, tok->id, out, now_s, max_age_s);
}
