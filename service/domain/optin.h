/*
 * optin: double opt-in. A purpose with "double_opt_in": true in the policy
 * takes a grant for its email channel as pending_confirmation: the consent
 * is stored with that status (so every check and filter answers
 * pending_confirmation, never allowed), and in the same transaction a
 * confirmation row and the mail that carries its link (mailq.h) are
 * queued. When the person opens the link and presses confirm, a granted
 * event is appended (collection method "double_opt_in", the confirmation
 * as its evidence) and the confirmation is spent.
 *
 *   (grant) --> pending_confirmation --confirm within OPTIN_TTL_DAYS--> granted
 *                      |                        (once; audited as the person's)
 *                      +-- a later withdrawal, refusal or grant replaces it:
 *                          the old link then confirms nothing (superseded)
 *
 * A grant while the current state is already a (confirmed) grant needs no
 * new confirmation. The link token is the preference links' format
 * (linktoken.h) over the confirmation's id; it is never stored.
 */
#ifndef CONSENTD_DOMAIN_OPTIN_H
#define CONSENTD_DOMAIN_OPTIN_H

#include <jansson.h>
#include <stdbool.h>

#include "service/domain/txn.h"
#include "service/store/store.h"

/* Whether grant cs must wait for a confirmation: a grant, for the email
 * channel, of a double_opt_in purpose, when prev (NULL: none) is not a
 * grant already. */
bool optin_needed(const struct policy *p, const struct store_consent *cs, const struct store_consent *prev);

/* On the writer, in the job that recorded pending event cs: the
 * confirmation and its mail (in lang; NULL: English). */
int optin_begin(struct txn *t, const struct store_consent *cs, const char *lang);

/* On a reader: the confirmation a link token names. 0 with *refusal NULL:
 * usable; 0 with *refusal set: not ("invalid", "expired", "used",
 * "erased", "superseded"); negative when the store could not answer. */
int optin_resolve(struct txn *t, const char *token, struct store_confirmation *out, const char **refusal);

/* Whether confirmation cf (as read in this transaction) may still be
 * used: 0 with *refusal NULL when it may, *refusal set as for
 * optin_resolve when not; negative when the store could not answer. */
int optin_check(struct txn *t, const struct store_confirmation *cf, const char **refusal);

/* The collection method of a grant given by confirming. */
#define OPTIN_METHOD "double_opt_in"

#endif
