/*
 * rotation: rewrapping the data keys under a new master key version. See
 * rotation.h for the order of the steps and why.
 */
#include "service/domain/rotation.h"

#include "service/crypto/fieldcrypt.h"
#include "service/store/store.h"

int rotation_open(const char *keys_dir, struct keyring **out, int *old)
{
	int rc = keyring_open(out, keys_dir);
	if (rc != 0)
		return rc;
	*old = keyring_current_version(*out);
	return 0;
}

int rotation_add_version(struct keyring *kr, const char *keys_dir)
{
	return keyring_add_version(kr, keys_dir);
}

static int rewrap_one(void *arg, struct store_contact *ct)
{
	const struct keyring *kr = arg;
	uint8_t dek[FC_KEY_BYTES];
	int rc = fieldcrypt_dek_unwrap(kr, ct->id, ct->key_version, ct->wrapped_key, ct->wrapped_len, dek);
	if (rc == 0)
		rc = fieldcrypt_dek_wrap(kr, ct->id, dek, ct->wrapped_key, &ct->key_version);
	ct->wrapped_len = FC_WRAPPED_DEK_BYTES;
	crypto_wipe(dek, sizeof dek);
	return rc;
}

int rotation_rewrap(struct txn *t, int64_t *count)
{
	return store_contacts_rewrap(t->c, rewrap_one, (void *)t->keys, count);
}

int rotation_version(const struct keyring *kr)
{
	return keyring_current_version(kr);
}

int rotation_retire(struct keyring *kr, const char *keys_dir, int old)
{
	for (int v = 1; v <= old; v++) {
		int rc = keyring_has_version(kr, v) ? keyring_retire_version(kr, keys_dir, v) : 0;
		if (rc != 0)
			return rc;
	}
	return 0;
}
