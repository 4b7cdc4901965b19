/*
 * keycheck: the key check values of a deployment (keycheck.h).
 *
 * Each value is recorded with "add unless present" and then read back, so
 * two instances starting at once against an empty table agree on one
 * value per name, and the comparison is always against what the database
 * holds. Comparisons are constant time, although the values are no secret.
 */
#include "service/keycheck.h"

#include "audit/checkpoint.h"
#include "service/base/error.h"

#include <stdio.h>
#include <string.h>

#define KEYCHECK_MAX_VERSIONS 64

static int check_one(struct store_conn *c, const char *name, const uint8_t kcv[FC_KCV_BYTES],
		     const char *keys_dir, int *recorded)
{
	uint8_t held[FC_KCV_BYTES];
	int rc = store_key_check_get(c, name, held);
	if (rc == ERR_NOTFOUND) {
		if ((rc = store_key_check_add(c, name, kcv)) != 0 ||
		    (rc = store_key_check_get(c, name, held)) != 0)
			return rc;
		if (recorded != NULL)
			(*recorded)++;
	} else if (rc != 0) {
		return rc;
	}
	if (!crypto_equal(held, kcv, FC_KCV_BYTES))
		return err_set(
			ERR_DENIED,
			"the key %s in %s does not match the database: this data folder's keys are not "
			"the deployment's. Copy keys/ from a folder of an instance of this deployment "
			"(docs/operations.md, \"Several instances\")",
			name, keys_dir);
	return 0;
}

static int signing_value(const char *path, uint8_t out[FC_KCV_BYTES])
{
	static const char label[] = "consentd signing key check v1\n";
	struct audit_signer *s = NULL;
	char pem[AUDIT_PEM_MAX];
	char buf[sizeof label + sizeof pem];
	int rc = audit_signer_load(&s, path);
	if (rc == 0 && (rc = audit_signer_public_pem(s, pem, sizeof pem)) > 0)
		rc = 0; /* the length of the PEM */
	audit_signer_free(s);
	if (rc != 0)
		return rc;
	int n = snprintf(buf, sizeof buf, "%s%s", label, pem);
	return crypto_sha256(buf, (size_t)n, out);
}

int keycheck_verify(struct store *st, const struct keyring *kr, const char *signing_key_path,
		    const char *keys_dir, int *recorded)
{
	struct store_conn *c = NULL;
	uint8_t kcv[FC_KCV_BYTES];
	int have[KEYCHECK_MAX_VERSIONS], used[KEYCHECK_MAX_VERSIONS];
	int n_have = 0, n_used = 0;
	char name[32];
	if (recorded != NULL)
		*recorded = 0;
	int rc = store_conn_get(st, &c);
	if (rc != 0)
		return rc;
	if ((rc = keyring_check_value(kr, 0, kcv)) != 0 ||
	    (rc = check_one(c, "index", kcv, keys_dir, recorded)) != 0)
		goto out;
	if ((rc = signing_value(signing_key_path, kcv)) != 0 ||
	    (rc = check_one(c, "audit-signing", kcv, keys_dir, recorded)) != 0)
		goto out;
	keyring_versions(kr, have, KEYCHECK_MAX_VERSIONS, &n_have);
	for (int i = 0; i < n_have; i++) {
		snprintf(name, sizeof name, "master-v%d", have[i]);
		if ((rc = keyring_check_value(kr, have[i], kcv)) != 0 ||
		    (rc = check_one(c, name, kcv, keys_dir, recorded)) != 0)
			goto out;
	}
	/* A version the folder lacks is refused only while data needs it: the
	 * retired files of older versions may have been deleted on purpose. */
	if ((rc = store_key_versions_in_use(c, used, KEYCHECK_MAX_VERSIONS, &n_used)) != 0)
		goto out;
	for (int i = 0; i < n_used; i++) {
		bool found = false;
		for (int j = 0; j < n_have && !found; j++)
			found = have[j] == used[i];
		if (!found) {
			rc = err_set(
				ERR_DENIED,
				"contacts in the database use master key version %d, which %s lacks: copy "
				"master-v%d.key from the instance that ran `keys rotate`",
				used[i], keys_dir, used[i]);
			goto out;
		}
	}
out:
	store_conn_put(st, c);
	return rc;
}

int keycheck_add_version(struct store_conn *c, const struct keyring *kr, int version)
{
	uint8_t kcv[FC_KCV_BYTES], held[FC_KCV_BYTES];
	char name[32];
	snprintf(name, sizeof name, "master-v%d", version);
	int rc = keyring_check_value(kr, version, kcv);
	if (rc == 0)
		rc = store_key_check_add(c, name, kcv);
	if (rc == 0)
		rc = store_key_check_get(c, name, held);
	if (rc == 0 && !crypto_equal(held, kcv, FC_KCV_BYTES))
		rc = err_set(ERR_DENIED,
			     "master key version %d already exists in the database with another key: another "
			     "instance rotated first; copy its keys/ folder instead",
			     version);
	return rc;
}
