/*
 * link: the preference-link domain. A link is a customer's signed bearer
 * credential for one contact: it reaches only the purposes its creator's
 * role may use, and either withdraws only (optout) or manages everything
 * (manage). This module mints, resolves and revokes links and holds the
 * rule of which links a role may mint (and so revoke).
 */
#ifndef CONSENTD_DOMAIN_LINK_H
#define CONSENTD_DOMAIN_LINK_H

#include <stdbool.h>
#include <stdint.h>

#include "service/domain/txn.h"
#include "service/linktoken.h"
#include "service/store/store.h"

enum link_capability { LINK_OPTOUT, LINK_MANAGE, LINK_CAPABILITY_COUNT };

const char *link_capability_name(enum link_capability c);
/* LINK_OPTOUT for any name but "manage": an unknown capability may only
 * withdraw. */
enum link_capability link_capability_of(const struct store_link *l);

/* Whether role could mint a link of this capability and scope: its scope
 * must be one of the role's purposes (or all), and a manage link (grant,
 * download every field and consent, erase) needs a role that may do all of
 * that itself, for every purpose. */
bool link_role_may_mint(const struct policy *p, const char *role, enum link_capability cap,
			const char *scope);

/* A new link for contact_id (checked by the caller) created by actor at
 * t->now_us, valid ttl_days; token receives its text (wipe it after use). */
int link_mint(const struct txn *t, const char *contact_id, const char *scope, enum link_capability cap,
	      int64_t ttl_days, const char *actor, struct store_link *out, char token[LINKTOKEN_CAP]);
/* On the writer: records a minted link. */
int link_insert(struct txn *t, const struct store_link *l);
/* Manage links are never handed to the caller: whoever holds the token can
 * act as the person. This records l and, in the same transaction, queues
 * the mail that hands the token to the person's own address (mailq.h),
 * written in lang ("en", "zh-CN"; NULL: English). */
int link_insert_mailed_lang(struct txn *t, const struct store_link *l, const char *lang);
/* Whether ct has an email address a link could be mailed to. */
bool link_mailable(const struct store_contact *ct);

/* The creator of a link the person asked for themselves (/p/request). It is
 * a reserved principal name (is_principal_name refuses it), so no staff
 * caller can be it; such a link reaches every purpose, as the person's own. */
#define LINK_CREATOR_SELF "customer"

/* Whether a link made by creator_role (from link_resolve) reaches purpose. */
bool link_covers_purpose(const struct policy *p, const char *creator_role, const char *purpose);

/* The keyed hash of a normalised email address for audit entries and rate
 * limits ("h:" and 32 hex digits); ERR_INVALID when it is no address. */
int link_address_id(const struct txn *t, const char *email, char *out, size_t cap);

/* On a reader, for the public page: the live contact whose email is email,
 * and a new manage link for it made by LINK_CREATOR_SELF (insert it with
 * link_insert_mailed_lang). *outcome is "mailed" (out filled), or "no_match"
 * (no live contact has this address); negative when the store could not
 * answer. The token is made and wiped here: it only ever goes by mail. */
int link_request_mint(struct txn *t, const char *email, struct store_link *out, const char **outcome);

/* Resolves a token at now_s on a reader: its MAC, its link row, the link's
 * state and expiry, its creator's role (policy principals first, then the
 * store) and the live contact. 0 with *refusal NULL: usable; 0 with
 * *refusal set: refuse it for that reason (malformed, expired_or_forged,
 * forged, unknown_link, revoked, expired, creator_unknown, erased); a
 * negative code when the store could not answer. */
/* The one-click opt-out's resolve (RFC 8058: the mechanism must keep
 * working long after the mail was sent). An authentic token of an optout
 * link unsubscribes whatever its expiry or revocation: those limit what the
 * preference page shows, never the opt-out. After erasure it resolves with
 * *erased true (the person is suppressed anyway; nothing is to be written).
 * A link of any other capability is resolved exactly as link_resolve does.
 * Same returns as link_resolve. */
int link_resolve_optout(struct txn *t, const char *token, int64_t now_s, struct linktoken *tok,
			struct store_link *link, char role[STORE_NAME_CAP], struct store_contact *ct,
			bool *erased, const char **refusal);
int link_resolve(struct txn *t, const char *token, int64_t now_s, struct linktoken *tok,
		 struct store_link *link, char role[STORE_NAME_CAP], struct store_contact *ct,
		 const char **refusal);

/* On the writer, for role: revokes link_id of contact_id, or ("" link_id)
 * every link of contact_id the role could have minted (*count how many).
 * *reason is the audit reason on failure (unknown_contact, unknown_link,
 * role_denied, error). */
int link_revoke(struct txn *t, const char *contact_id, const char *link_id, const char *role, int64_t *count,
		const char **reason);
/* On the writer: revokes every link of contact_id (erasure). */
int link_revoke_all(struct txn *t, const char *contact_id);

/* A form token for the preference page of tok, made at now_s; and the
 * check of one sent back (its shape, its MAC for this link, its age). */
int link_csrf_make(const struct txn *t, const struct linktoken *tok, int64_t now_s,
		   char out[LINKTOKEN_CSRF_CAP]);
int link_csrf_check(const struct txn *t, const struct linktoken *tok, const char *text, int64_t now_s,
		    int64_t max_age_s, struct linktoken_csrf *out);

/* A form value is accepted once by the whole fleet: its nonce (with the
 * link's id) is spent in the database, in the transaction of what the form
 * does, and kept until the value expires (max_age_s after it was made,
 * and a minute for clocks that differ). link_csrf_spent reads whether it
 * was (a replay, answered before anything is done); link_csrf_spend, on
 * the writer, spends it: ERR_DENIED when it was spent already, by a post
 * of the same form that committed first on this or another instance. */
int link_csrf_spent(const struct txn *t, const struct linktoken *tok, const struct linktoken_csrf *csrf,
		    bool *spent);
int link_csrf_spend(struct txn *t, const struct linktoken *tok, const struct linktoken_csrf *csrf,
		    int64_t max_age_s);

/* The keyed hash of a customer's client address for the audit entry:
 * "h:" and 32 hex digits, or "h:unavailable". */
void link_client_id(const struct txn *t, const char *ip, char *out, size_t cap);

#endif
