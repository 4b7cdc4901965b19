/*
 * release: keys and records of outreach filter releases. See release.h.
 */
#include "service/domain/release.h"

#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/base/limits.h"
#include "service/crypto/fieldcrypt.h"

#include <stdio.h>
#include <string.h>

void release_new_id(char id[STORE_ID_CAP])
{
	uint8_t raw[16];
	crypto_random(raw, sizeof raw);
	b64url_encode(raw, sizeof raw, id);
}

void release_id_key(const char *contact_id, uint8_t key[32])
{
	char tagged[CONTACT_ID_BYTES + 4];
	int n = snprintf(tagged, sizeof tagged, "id:%s", contact_id);
	crypto_sha256(tagged, (size_t)n, key);
}

int release_list_digest(const struct txn *t, uint8_t sha[32], char hex[65])
{
	uint8_t mac[FC_HASH_BYTES];
	int rc = fieldcrypt_keyed_hash(t->keys, FC_HASH_LIST, sha, 32, mac) != 0 ? ERR_CRYPTO : 0;
	hex_encode(mac, sizeof mac, hex);
	crypto_wipe(sha, 32);
	return rc;
}

int release_put(struct txn *t, const char *release_id, int64_t chunk, const uint8_t *ids, size_t n_ids)
{
	return store_release_put(t->c, release_id, chunk, ids, n_ids);
}

int release_count(struct txn *t, const char *release_id, int64_t *out)
{
	return store_release_count(t->c, release_id, out);
}

int release_find(struct txn *t, const char *release_id, const uint8_t id_raw[16])
{
	return store_release_find(t->c, release_id, id_raw);
}
