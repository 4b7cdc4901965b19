/*
 * auth: authenticating a request's bearer token, and the cache of
 * principals found in the database. See auth.c.
 */
#ifndef CONSENTD_AUTH_H
#define CONSENTD_AUTH_H

#include <stdint.h>

struct auth_cache;
struct reqctx;

int auth_cache_new(struct auth_cache **out);
void auth_cache_free(struct auth_cache *c); /* accepts NULL */
/* Forgets every cached principal (SIGHUP: a revoked token stops at once). */
void auth_cache_clear(struct auth_cache *c);

/* Authenticates ctx from its Authorization header: fills ctx->actor, role
 * and authenticated. ERR_UNAUTHENTICATED with *reason (missing_token,
 * malformed_token, unknown_token, unusable_principal_name), or
 * ERR_UNAVAILABLE (store_unavailable) when the lookup itself failed. */
int auth_request(struct reqctx *ctx, const char **reason);
/* The principal whose token has this SHA-256 (policy principals first, then
 * the database through the cache), as auth_request; the console uses it to
 * check a session's principal on every request. */
int auth_principal(struct reqctx *ctx, const uint8_t hash[32], const char **reason);

#endif
