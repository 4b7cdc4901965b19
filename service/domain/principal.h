/*
 * principal: the API clients (`consentd token create|revoke`). A principal
 * is a name, a role of the policy and the SHA-256 of its token; the token
 * itself is never stored. Both functions run on the writer, inside the
 * operator's audited job, at t->now_us.
 */
#ifndef CONSENTD_DOMAIN_PRINCIPAL_H
#define CONSENTD_DOMAIN_PRINCIPAL_H

#include <stdint.h>

#include "service/domain/txn.h"

/* Adds a principal; ERR_CONFLICT when the name or token hash is taken. */
int principal_create(struct txn *t, const char *name, const char *role, const uint8_t token_hash[32]);

/* Revokes the unrevoked principal with this name (its token stops
 * working); ERR_NOTFOUND when there is none. */
int principal_revoke(struct txn *t, const char *name);

#endif
