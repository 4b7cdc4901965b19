/*
 * event: the one hook through which a change becomes an outbound webhook.
 *
 * The consent, suppression and contact modules call event_emit on the txn
 * they write on: inside a writer job that is the batch's transaction, so
 * the outbox row and its deliveries commit together with the change and
 * its audit entry, or not at all (the transactional outbox). The worker in
 * service/outbound.c delivers them later.
 *
 * Payloads are thin: ids, names, statuses, and for contact events the
 * contact's event number `version` (1, 2, ...), which lets a subscriber put
 * one contact's events in order whatever order they arrive in. The body
 * stored holds no personal value. A consent.changed whose purpose lets a
 * subscriber's role see the contact's email or phone also stores those,
 * sealed under the contact's data key; the worker adds them to that
 * subscriber's copy only (webhook_body), if the live policy still lets its
 * role see them and the contact is not erased.
 */
#ifndef CONSENTD_DOMAIN_EVENT_H
#define CONSENTD_DOMAIN_EVENT_H

#include <jansson.h>
#include <stdbool.h>

#include "service/domain/txn.h"

#include <stdint.h>

struct policy;

#define EVENT_CONSENT_CHANGED "consent.changed"
#define EVENT_SUPPRESSION_ADDED "suppression.added"
#define EVENT_SUPPRESSION_LIFTED "suppression.lifted"
#define EVENT_CONTACT_ERASED "contact.erased"

/* Whether name is one of the event types above. */
bool event_type_known(const char *name);

/* The personal fields (email, phone: bits of policy_field_at) a role may
 * see in a payload for purpose. */
uint64_t event_personal_fields(const struct policy *p, const char *role, const char *purpose);

/* Queues the event for every endpoint subscribed to type, on t's
 * connection (a writer job's). contact_id may be "" (suppressions carry no
 * contact); data is stolen, and gets contact_id and version added. Nothing
 * is written when no endpoint subscribes. ERR_TOOBIG when the body would
 * exceed LIMIT_WEBHOOK_BODY_BYTES (never cut). */
int event_emit(struct txn *t, const char *type, const char *contact_id, json_t *data);

/* Whether any endpoint subscribes to type now (inside the writer's
 * transaction, where only this writer changes endpoints): a batch asks once
 * and skips event_emit, and its round trip per row, when none does. */
int event_wanted(struct txn *t, const char *type, bool *out);

#endif
