/*
 * auth: who is asking. A bearer token is hashed (SHA-256) on arrival and
 * never stored, logged or copied elsewhere; it is looked up by hash in the
 * policy's principals, then in a small cache, then in the store.
 */
#include "service/auth.h"

#include "service/app.h"
#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/crypto/fieldcrypt.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A small cache of principals found in the database, so that the hot path
 * (one consent check per request) does not query for the token each time.
 * Keyed by the token's SHA-256; positive entries only. An entry lives
 * AUTH_CACHE_SECONDS, so `consentd token revoke` takes effect within that
 * time even without a SIGHUP (which empties the cache at once). */
#define AUTH_CACHE_SLOTS 256
#define AUTH_CACHE_SECONDS 10

struct auth_cache {
	pthread_mutex_t lock;
	struct {
		bool used;
		int64_t until_us;
		uint8_t hash[32];
		char actor[STORE_TEXT_CAP];
		char role[STORE_NAME_CAP];
	} slot[AUTH_CACHE_SLOTS];
};

int auth_cache_new(struct auth_cache **out)
{
	struct auth_cache *c = calloc(1, sizeof *c);
	*out = NULL;
	if (c == NULL)
		return err_set(ERR_NOMEM, "out of memory");
	pthread_mutex_init(&c->lock, NULL);
	*out = c;
	return 0;
}

void auth_cache_free(struct auth_cache *c)
{
	if (c == NULL)
		return;
	pthread_mutex_destroy(&c->lock);
	crypto_wipe(c, sizeof *c);
	free(c);
}

static bool auth_cache_get(struct auth_cache *c, const uint8_t hash[32], char *actor, char *role)
{
	bool hit = false;
	if (c == NULL)
		return false;
	unsigned i = hash[0] | (unsigned)hash[1] << 8;
	i %= AUTH_CACHE_SLOTS;
	pthread_mutex_lock(&c->lock);
	if (c->slot[i].used && c->slot[i].until_us > now_us() && crypto_equal(c->slot[i].hash, hash, 32)) {
		memcpy(actor, c->slot[i].actor, STORE_TEXT_CAP);
		memcpy(role, c->slot[i].role, STORE_NAME_CAP);
		hit = true;
	}
	pthread_mutex_unlock(&c->lock);
	return hit;
}

static void auth_cache_put(struct auth_cache *c, const uint8_t hash[32], const char *actor, const char *role)
{
	if (c == NULL)
		return;
	unsigned i = hash[0] | (unsigned)hash[1] << 8;
	i %= AUTH_CACHE_SLOTS;
	pthread_mutex_lock(&c->lock);
	c->slot[i].used = true;
	c->slot[i].until_us = now_us() + AUTH_CACHE_SECONDS * INT64_C(1000000);
	memcpy(c->slot[i].hash, hash, 32);
	snprintf(c->slot[i].actor, STORE_TEXT_CAP, "%s", actor);
	snprintf(c->slot[i].role, STORE_NAME_CAP, "%s", role);
	pthread_mutex_unlock(&c->lock);
}

void auth_cache_clear(struct auth_cache *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&c->lock);
	for (int i = 0; i < AUTH_CACHE_SLOTS; i++)
		c->slot[i].used = false;
	pthread_mutex_unlock(&c->lock);
}

int auth_request(struct reqctx *ctx, const char **reason)
{
	const char *h = http_header(ctx->http, "Authorization");
	uint8_t hash[32];
	if (h == NULL) {
		*reason = "missing_token";
		return err_set(ERR_UNAUTHENTICATED, "send Authorization: Bearer <token>");
	}
	if (strncasecmp(h, "Bearer ", 7) != 0 || strlen(h + 7) < 16 || strlen(h + 7) > 256) {
		*reason = "malformed_token";
		return err_set(ERR_UNAUTHENTICATED, "the Authorization header must be: Bearer <token>");
	}
	crypto_sha256(h + 7, strlen(h + 7), hash);
	int rc = auth_principal(ctx, hash, reason);
	crypto_wipe(hash, sizeof hash);
	return rc;
}

int auth_principal(struct reqctx *ctx, const uint8_t hash[32], const char **reason)
{
	const char *name = NULL, *role = NULL;
	if (policy_principal_find(ctx->policy, hash, &name, &role) == 0) {
		snprintf(ctx->actor, sizeof ctx->actor, "%s", name);
		snprintf(ctx->role, sizeof ctx->role, "%s", role);
	} else if (!auth_cache_get(ctx->app->auth_cache, hash, ctx->actor, ctx->role)) {
		int rc = store_principal_find(ctx->rd, hash, ctx->actor, ctx->role);
		if (rc == ERR_NOTFOUND) {
			*reason = "unknown_token";
			return err_set(ERR_UNAUTHENTICATED, "the token is not valid");
		}
		if (rc != 0) {
			/* The token may well be valid: a failed lookup is the
			 * server's trouble, never a reason to call the client
			 * unauthenticated. */
			*reason = "store_unavailable";
			fprintf(stderr, "consentd: request %s: token lookup failed: %s\n",
				http_request_id(ctx->http), err_msg());
			return err_set(ERR_UNAVAILABLE, "the credentials cannot be checked right now");
		}
		auth_cache_put(ctx->app->auth_cache, hash, ctx->actor, ctx->role);
	}
	/* A principal created before names were checked may have one the audit
	 * trail cannot hold (a control character, too long) or one that passes
	 * for consentd's own actors; it cannot act until it is created again. */
	if (!is_principal_name(ctx->actor)) {
		ctx->actor[0] = ctx->role[0] = '\0';
		*reason = "unusable_principal_name";
		return err_set(ERR_UNAUTHENTICATED, "this token's principal name cannot be recorded; "
						    "create a new token with a valid --name");
	}
	ctx->authenticated = true;
	return 0;
}
