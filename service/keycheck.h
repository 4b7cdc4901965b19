/*
 * keycheck: do this data folder's keys belong to the deployment's data?
 *
 * The database holds one key check value per key (table key_check): the
 * index key ("index"), each master key version ("master-vN") and the audit
 * signing key ("audit-signing"). A value is derived from its key by a
 * one-way function for this purpose alone (keyring_check_value; for the
 * signing key a hash of its public half), never the key itself.
 *
 * keycheck_verify runs at init (on an existing schema), at serve and before
 * `keys rotate`: values the database lacks are recorded (the first folder
 * to meet a deployment, or a version made by `keys rotate`, defines them);
 * a value that differs, or a master key version that contacts use and the
 * folder lacks, is refused with ERR_DENIED (exit code 4) and a message
 * naming the key, so an instance with a wrong keys/ folder never starts.
 */
#ifndef CONSENTD_KEYCHECK_H
#define CONSENTD_KEYCHECK_H

#include "service/crypto/fieldcrypt.h"
#include "service/store/store.h"

/* *recorded (may be NULL): how many values this call added. */
int keycheck_verify(struct store *st, const struct keyring *kr, const char *signing_key_path,
		    const char *keys_dir, int *recorded);
/* Records master key version's value on c (the rotation's transaction). */
int keycheck_add_version(struct store_conn *c, const struct keyring *kr, int version);

#endif
