/*
 * principal: the API clients, for the CLI. See principal.h.
 */
#include "service/domain/principal.h"

#include "service/store/store.h"

int principal_create(struct txn *t, const char *name, const char *role, const uint8_t token_hash[32])
{
	return store_principal_insert(t->c, name, role, token_hash, t->now_us);
}

int principal_revoke(struct txn *t, const char *name)
{
	return store_principal_revoke(t->c, name, t->now_us);
}
