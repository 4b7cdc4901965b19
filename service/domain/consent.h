/*
 * consent: the consent domain: validating a consent, recording it with its
 * receipt and sealed evidence, the one rule of which event is current, the
 * lists a reader sees, and the consent check.
 *
 * Consent events are append-only (the history); the current state per
 * (contact, purpose, channel) is the event consent_supersedes picks: a
 * claimed `at` orders events but never past the time consentd recorded
 * them, and a later "no" beats a "yes" (the rules are written at the top of
 * consent.c). Expiry is never stored as a status: the policy engine decides
 * it at check time. Statuses are the policy's enum (policy_consent_status,
 * one name table); the store keeps their names.
 */
#ifndef CONSENTD_DOMAIN_CONSENT_H
#define CONSENTD_DOMAIN_CONSENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "policy/policy.h"
#include "service/domain/txn.h"
#include "service/store/store.h"

struct check_req;

/* The status of a stored event as the enum (POLICY_CONSENT_NONE when the
 * name is none of the table's). */
enum policy_consent_status consent_status(const struct store_consent *cs);

/* The ordering rule: min(at, recorded), the time used to order events; and
 * whether next, recorded after cur, replaces cur as the current state. */
/* Whether the person may be offered (and may give) consent for purpose:
 * their data was collected for it or for a purpose the policy declares it
 * compatible with. collected_for is the contact's comma-separated list.
 * Consent to anything else could never be used (purpose_incompatible), so
 * offering it would only mislead. */
bool consent_offerable(const struct policy *p, const char *collected_for, const char *purpose);
int64_t consent_effective_us(const struct store_consent *cs);
bool consent_supersedes(const struct store_consent *next, const struct store_consent *cur);

/* Validates a consent body for purpose into cs (ids excepted; shared with
 * the import, which records consents with their original times); on
 * ERR_UNPROCESSABLE *reason_422 is the policy_reason that explains it. */
int consent_from_json(const struct policy *p, const char *purpose, json_t *body, int64_t now,
		      struct store_consent *cs, int *reason_422);

/* A new random receipt id. */
void consent_new_receipt(char receipt_id[STORE_ID_CAP]);

/* Seals evidence (NULL or JSON null: none) for cs under the contact's data
 * key dek; cs->evidence then borrows *sealed, which the caller frees. */
int consent_seal_evidence(const uint8_t dek[32], const char *contact_id, struct store_consent *cs,
			  json_t *evidence, uint8_t **sealed);

/* On the writer: appends cs (evidence already sealed) to the history and
 * makes it current when consent_supersedes says so; *current (may be NULL)
 * says whether it did. */
int consent_apply(struct txn *t, const struct store_consent *cs, bool *current);

/* On the writer, for a live contact ct: keeps when consent was first given,
 * seals evidence under ct's data key, and applies cs (consent_apply). */
int consent_put(struct txn *t, const struct store_contact *ct, struct store_consent *cs, json_t *evidence,
		bool *current);
/* The same without the double opt-in rule: for consent_confirm only, which
 * records the grant the person confirmed. A grant through consent_put for
 * a double_opt_in purpose's email channel is stored as
 * pending_confirmation, and its confirmation mail queued (optin.h). */
int consent_put_confirmed(struct txn *t, const struct store_contact *ct, struct store_consent *cs,
			  json_t *evidence, bool *current);

/* On the writer, for a live contact ct: the person's own frequency choice
 * for (purpose, channel) (release_choice_set), recorded as evidence with
 * the consent too: a copy of the current event (same status and times)
 * appended to the history only, collection method "frequency_choice",
 * with a new receipt and the choice and link_id as its sealed evidence, so
 * the consent history shows when the person chose what. The current event
 * stays as it is. With no consent for (purpose, channel) only the choice
 * is stored (there is nothing to record it with). */
int consent_frequency_set(struct txn *t, const struct store_contact *ct, const char *purpose,
			  const char *channel, enum policy_frequency f, const char *link_id);

/* One event as the API shows it (with its effective status at now_s). */
json_t *consent_to_json(const struct store_consent *cs, const struct policy *p, int64_t now_s);

/* The current consents and the history of ct, as the API shows them: only
 * the purposes only_role may use (NULL: all), with evidence opened when
 * evidence is true. */
int consent_lists_json(struct txn *t, const struct store_contact *ct, const char *only_role, bool evidence,
		       json_t **current, json_t **history);

/* The one-row lookup behind the check and the outreach filter: the contact
 * (by id, or by email when email is not NULL), its consent for (purpose,
 * channel) and whether a suppression covers that use. */
int consent_lookup(struct txn *t, const char *contact_id, const char *email, const char *purpose,
		   const char *channel, struct store_filter_row *row);

/* The decision for role about a use of (purpose, channel) at now_s, from
 * the lookup's row. */
void consent_decide(const struct txn *t, const char *role, const char *purpose, const char *channel,
		    const struct store_filter_row *row, int64_t now_s, struct policy_decision *d);

/* Tunes t's reader for a whole list of lookups (a larger page cache, given
 * back with the connection). */
int consent_lookup_bulk(struct txn *t);

/* The current event of (contact, purpose, channel) (ERR_NOTFOUND when
 * none), every current event of a contact, and its whole history in
 * effective-time order; evidence stays sealed. */
int consent_current(struct txn *t, const char *contact_id, const char *purpose, const char *channel,
		    struct store_consent *out);
int consent_each(struct txn *t, const char *contact_id, store_consent_cb cb, void *ctx);
int consent_history_each(struct txn *t, const char *contact_id, store_consent_cb cb, void *ctx);

struct consent_decision {
	struct policy_decision d;
	bool known;	      /* the contact exists (erased or not) */
	int64_t reachable_us; /* with POLICY_REASON_FREQUENCY_CAP: when the cap lets go */
	char contact_id[STORE_ID_CAP];
};

/* The consent check of a parsed request for role, on a reader. */
int consent_check(struct txn *t, const char *role, const struct check_req *req, struct consent_decision *out);

/* On the writer: confirms cf (resolved again inside the transaction, so a
 * link confirms once even when two clicks race), appending the granted
 * event into *granted. evidence (borrowed) is what the confirming request
 * showed (user agent); it is sealed. *refusal as for optin_resolve. */
int consent_confirm(struct txn *t, const struct store_confirmation *cf, json_t *evidence,
		    struct store_consent *granted, const char **refusal);

#endif
