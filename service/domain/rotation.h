/*
 * rotation: moving every contact's data key to a new master key version
 * (`consentd keys rotate`). The steps, in order:
 *
 *   rotation_open     open the keyring (the caller then checks that its keys
 *                     are the deployment's: keycheck_verify)
 *   rotation_add_version  add master key version N+1
 *   rotation_rewrap   on the writer, in one transaction with the operator's
 *                     audit entry: rewrap every live contact's data key
 *                     under the newest version
 *   rotation_retire   after that commit: retire versions 1..N
 *
 * A failure before the commit leaves every contact on its old version (the
 * new one is unused and harmless); retiring only after the commit means no
 * data key is ever left under a retired version.
 */
#ifndef CONSENTD_DOMAIN_ROTATION_H
#define CONSENTD_DOMAIN_ROTATION_H

#include <stdint.h>

#include "service/domain/txn.h"

struct keyring;

/* Opens the keyring of keys_dir into *out (free it with keyring_free, also
 * on failure); *old is the version that is current. */
int rotation_open(const char *keys_dir, struct keyring **out, int *old);
/* Adds master key version N+1 to kr and its file to keys_dir. */
int rotation_add_version(struct keyring *kr, const char *keys_dir);

/* On the writer: rewraps every live contact's data key under the current
 * version of t->keys; *count is how many. */
int rotation_rewrap(struct txn *t, int64_t *count);

/* The version new data keys are wrapped under. */
int rotation_version(const struct keyring *kr);

/* Retires every version up to old that the keyring still holds. */
int rotation_retire(struct keyring *kr, const char *keys_dir, int old);

#endif
