/*
 * fieldcrypt: every cryptographic operation on personal data, and the only
 * module (besides audit's hashing helper) that includes OpenSSL.
 *
 * Key hierarchy:
 *   master key vN (32 bytes, DIR/keys/master-vN.key, mode 0600, outside the DB)
 *     wraps each contact's data key (DEK, 32 random bytes) with AES-256-GCM,
 *     AAD = "consentd:1|dek|<record id>|<master version>".
 *   DEK seals each personal or sensitive field with AES-256-GCM and a random
 *     96-bit nonce, AAD = "consentd:1|<table>|<record id>|<field>|<dek version>",
 *     so a ciphertext moved to another record, field or table fails to open.
 *   index key (32 bytes, DIR/keys/index.key, mode 0600) is never rotated by
 *     `keys rotate`: it derives (HKDF-SHA256) the blind-index keys for email
 *     and phone, the suppression-hash key and the preference-link MAC key,
 *     because suppressions must match the same address forever.
 *
 * Sealed blob layout: 0x01 | nonce (12) | ciphertext | tag (16).
 * Invariants: plaintext keys live only in memory and are wiped on free; no
 * function here logs or prints key material or plaintext.
 */
#ifndef CONSENTD_FIELDCRYPT_H
#define CONSENTD_FIELDCRYPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FC_KEY_BYTES 32
#define FC_NONCE_BYTES 12
#define FC_TAG_BYTES 16
#define FC_SEAL_OVERHEAD (1 + FC_NONCE_BYTES + FC_TAG_BYTES)
#define FC_WRAPPED_DEK_BYTES (FC_KEY_BYTES + FC_SEAL_OVERHEAD)
#define FC_HASH_BYTES 32
#define FC_DEK_VERSION 1

/* Which derived key a keyed hash uses; each is independent. */
enum fc_hash_kind {
	FC_HASH_EMAIL = 0,   /* blind index of a normalised email */
	FC_HASH_PHONE,	     /* blind index of a normalised phone number */
	FC_HASH_SUPPRESSION, /* suppression list entry (email or phone) */
	FC_HASH_LINK,	     /* preference-link MAC */
	FC_HASH_CLIENT,	     /* customer client addresses in the audit trail */
	FC_HASH_LIST,	     /* digest of a campaign list in the audit trail */
	FC_HASH_EVENT,	     /* a provider's event id (dedupe, audit) */
	FC_HASH_KINDS
};

struct keyring;

/* Creates DIR/keys with master-v1.key and index.key (mode 0600, O_EXCL). */
int keyring_init_dir(const char *keys_dir);

/* Loads every master-vN.key in keys_dir (current = highest N), every
 * master-vN.key.retired (for unwrapping only) and index.key.
 * Refuses (ERR_DENIED) a key file readable or writable by group or others,
 * and (ERR_NOTFOUND) a missing one, naming the file. */
int keyring_open(struct keyring **out, const char *keys_dir);
void keyring_free(struct keyring *kr);
int keyring_current_version(const struct keyring *kr);
/* True when the version is loaded and not retired. */
bool keyring_has_version(const struct keyring *kr, int version);

/* Loads master keys that appeared in the keyring's folder since it was
 * opened (after `keys rotate`), in place: the keyring never grows beyond
 * the versions on disk, however often it is refreshed. *added (may be NULL)
 * is how many. Safe while other threads use the keyring. Unwrapping a data
 * key under a version that is not loaded refreshes by itself, once per
 * version. */
int keyring_refresh(struct keyring *kr, int *added);

/* Key check values: for version 0 the index key's, for version N master
 * key version N's (loaded, retired or not). HMAC-SHA256 of a fixed label
 * under a key derived (HKDF) from the key for this purpose only: it tells
 * two keys apart and helps no one find one (the keys are 256 random bits).
 * ERR_NOTFOUND for a version not loaded. */
#define FC_KCV_BYTES 32
int keyring_check_value(const struct keyring *kr, int version, uint8_t out[FC_KCV_BYTES]);
/* The master key versions loaded (live and retired), ascending; *n of them,
 * at most cap. */
void keyring_versions(const struct keyring *kr, int *versions, int cap, int *n);

/* Writes master-v(N+1).key and loads it as current. */
int keyring_add_version(struct keyring *kr, const char *keys_dir);
/* Renames master-vN.key to master-vN.key.retired; it stays loaded for
 * unwrapping until the file is deleted and the keyring reloaded. */
int keyring_retire_version(struct keyring *kr, const char *keys_dir, int version);

/* Data keys. */
int fieldcrypt_dek_new(uint8_t dek[FC_KEY_BYTES]);
int fieldcrypt_dek_wrap(const struct keyring *kr, const char *record_id, const uint8_t dek[FC_KEY_BYTES],
			uint8_t out[FC_WRAPPED_DEK_BYTES], int *version_out);
int fieldcrypt_dek_unwrap(const struct keyring *kr, const char *record_id, int version,
			  const uint8_t *wrapped, size_t wrapped_len, uint8_t dek[FC_KEY_BYTES]);

/* Seals plaintext into out (capacity >= len + FC_SEAL_OVERHEAD). */
int fieldcrypt_seal(const uint8_t dek[FC_KEY_BYTES], const char *table, const char *record_id,
		    const char *field, const void *plain, size_t len, uint8_t *out, size_t *out_len);
/* Opens a sealed blob into out (capacity >= len - FC_SEAL_OVERHEAD);
 * ERR_CRYPTO when the tag, the AAD or the layout does not match. */
int fieldcrypt_open(const uint8_t dek[FC_KEY_BYTES], const char *table, const char *record_id,
		    const char *field, const uint8_t *sealed, size_t len, uint8_t *out, size_t *out_len);

/* HMAC-SHA256 under the derived key of the given kind. */
int fieldcrypt_keyed_hash(const struct keyring *kr, enum fc_hash_kind kind, const void *data, size_t len,
			  uint8_t out[FC_HASH_BYTES]);

/* The one rule for every file that holds a secret (master keys, the TLS
 * key, provider keys): no permission bit for group or others. 0, or
 * ERR_DENIED with a message that names the file and the chmod to run. */
int crypto_key_file_private(const char *path, unsigned mode);

/* Primitives. */
int crypto_random(void *buf, size_t len);
void crypto_wipe(void *buf, size_t len);
bool crypto_equal(const void *a, const void *b, size_t len); /* constant time */
int crypto_sha256(const void *data, size_t len, uint8_t out[32]);

/* API tokens: "cd_" + base64url(32 random bytes); only SHA-256 is stored. */
#define TOKEN_CHARS 46
int token_generate(char out[TOKEN_CHARS + 1]);

/* Self-signed EC P-256 development certificate for localhost and 127.0.0.1,
 * valid for `days`; the key file is created with mode 0600. */
int tlscert_generate(const char *cert_path, const char *key_path, int days);

#endif
