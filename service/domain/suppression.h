/*
 * suppression: the rules of suppressions, shared by every backend.
 *
 * A suppression says "do not contact this address", by keyed hash of the
 * normalised email or phone, for a scope: everything, one purpose, or one
 * channel. The store keeps the rows and answers exact questions; this module
 * decides which scopes cover a use and which suppressions may be lifted, by
 * whom:
 *
 *   - a use of (purpose, channel) is covered by a suppression of scope all,
 *     of scope purpose naming that purpose, or of scope channel naming that
 *     channel;
 *   - an operator may lift any suppression except an erasure's: the person
 *     asked to be forgotten, and only their hash remains to honour that;
 *   - the person's own new consent for a purpose lifts only their own
 *     opt-outs of that purpose (unsubscribe, withdrawal, gpc); a bounce, a
 *     complaint, a manual entry or an erasure stays.
 *
 * Each vocabulary is an enum with one name table.
 */
#ifndef CONSENTD_DOMAIN_SUPPRESSION_H
#define CONSENTD_DOMAIN_SUPPRESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "service/domain/txn.h"
#include "service/store/store.h"

enum suppression_scope {
	SUPPRESSION_SCOPE_ALL,
	SUPPRESSION_SCOPE_PURPOSE,
	SUPPRESSION_SCOPE_CHANNEL,
	SUPPRESSION_SCOPE_COUNT
};

enum suppression_reason {
	SUPPRESSION_REASON_UNSUBSCRIBE,
	SUPPRESSION_REASON_WITHDRAWAL,
	SUPPRESSION_REASON_BOUNCE,
	SUPPRESSION_REASON_COMPLAINT,
	SUPPRESSION_REASON_ERASURE,
	SUPPRESSION_REASON_MANUAL,
	SUPPRESSION_REASON_GPC,
	SUPPRESSION_REASON_COUNT
};

/* Who lifts: an operator (DELETE /v1/suppressions) or the person (a new
 * consent of their own). */
enum suppression_lifter { SUPPRESSION_BY_OPERATOR, SUPPRESSION_BY_SUBJECT };

const char *suppression_scope_name(enum suppression_scope s);
/* ERR_INVALID for a name outside the table. */
int suppression_scope_from_name(const char *name, enum suppression_scope *out);
const char *suppression_reason_name(enum suppression_reason r);
int suppression_reason_from_name(const char *name, enum suppression_reason *out);

/* The keys of which a suppression covers a use of (purpose, channel);
 * purpose or channel "" (or NULL) leaves its slot unused. The strings are
 * borrowed from the arguments and the name table. */
void suppression_covering(const char *purpose, const char *channel, struct store_scope_keys *out);

/* Whether lifter may lift a suppression given for reason. */
bool suppression_may_lift(enum suppression_lifter lifter, enum suppression_reason reason);

/* Whether role may add a suppression with this reason: an erasure's only
 * when the role may erase (ERR_DENIED otherwise), since no one can lift it. */
int suppression_may_add(const struct txn *t, const char *role, const char *reason);

/* The active suppressions of hash, oldest first. */
int suppression_list(struct txn *t, const uint8_t hash[32], store_suppression_cb cb, void *ctx);

/* Adds sp unless the same one is in force: 1 added, 0 already there. */
int suppression_add(struct txn *t, const struct store_suppression *sp);
/* suppression_add for sp[0..n) (an import batch) in one store call for the
 * batch: added[i] says whether sp[i] was added (false: already in force,
 * also when an earlier entry of the batch is the same). Events follow in
 * entry order. */
int suppression_add_many(struct txn *t, const struct store_suppression *sp, size_t n, bool *added);

/* 0 (reason copied, may be NULL) when an unlifted suppression of either
 * hash covers (purpose, channel); ERR_NOTFOUND when none does. */
int suppression_match(struct txn *t, const uint8_t *hash_a, const uint8_t *hash_b, const char *purpose,
		      const char *channel, char reason[STORE_NAME_CAP]);

/* An operator's lift: the active suppressions of hash with scope (NULL: any)
 * and scope_value (NULL: any) that an operator may lift; *lifted how many. */
int suppression_lift(struct txn *t, const uint8_t hash[32], const char *scope, const char *scope_value,
		     const char *by, int64_t *lifted);

/* The person's own consent for purpose: lifts their own opt-outs of it. */
int suppression_lift_by_subject(struct txn *t, const uint8_t hash[32], const char *purpose, const char *by);

/* Every suppression (lifted or not) of ct's email and phone hashes, oldest
 * first: the person's own data export. */
int suppression_subject_each(struct txn *t, const struct store_contact *ct, store_subject_suppression_cb cb,
			     void *ctx);

/* Whether the address of ct (its email or phone suppression hash) was
 * erased before: it carries an unlifted erasure suppression. A new record
 * made by staff or an import stays suppressed and says so
 * (`previously_erased`); only the person, by themselves, could come back. */
int suppression_previously_erased(struct txn *t, const struct store_contact *ct, bool *out);

#endif
