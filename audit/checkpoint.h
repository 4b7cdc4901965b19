/*
 * checkpoint: Ed25519-signed statements "the audit log had SIZE entries and
 * its head hash was ROOT at TIME", and the signing key's files.
 *
 * Invariants:
 * - The signed message is exactly AUDIT_CHECKPOINT_MSG_BYTES bytes:
 *     "consentd-checkpoint-v1\0" (23 bytes) || size (8 bytes, big-endian)
 *     || root (32 bytes) || time_us (8 bytes, big-endian).
 *   key_id and sig are not signed; key_id only selects the verifying key.
 * - root is the hash of entry number size (the chain head), so a checkpoint
 *   pins every entry from 1 to size.
 * - key_id is the first 8 bytes of SHA-256 of the raw 32-byte public key.
 * - The private key file is PEM (PKCS#8), created with mode 0600 and never
 *   overwritten; a key file that is readable by group or others is refused.
 *   Key bytes in memory are wiped with OPENSSL_cleanse; OpenSSL keeps the key
 *   itself in memory it clears on free.
 */
#ifndef CONSENTD_AUDIT_CHECKPOINT_H
#define CONSENTD_AUDIT_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "audit/audit.h"

#define AUDIT_CHECKPOINT_TAG "consentd-checkpoint-v1"
#define AUDIT_CHECKPOINT_TAG_BYTES 23
#define AUDIT_CHECKPOINT_MSG_BYTES (AUDIT_CHECKPOINT_TAG_BYTES + 8 + AUDIT_HASH_BYTES + 8)
/* The largest JSON audit_checkpoint_format_json writes, NUL included. */
#define AUDIT_CHECKPOINT_JSON_MAX 384
/* A PEM public key is about 113 bytes; private key files are refused above this. */
#define AUDIT_PEM_MAX 4096

/* The private signing key (opaque). */
struct audit_signer;
/* A public verifying key (opaque). */
struct audit_pubkey;

/* Writes the signed message of cp into out. */
void audit_checkpoint_message(const struct audit_checkpoint *cp, uint8_t out[AUDIT_CHECKPOINT_MSG_BYTES]);

/* Generates a new Ed25519 key and writes it as PEM to path with mode 0600.
 * Refuses (ERR_CONFLICT) if path exists; ERR_IO on any file error, in which
 * case no partial file is left behind. */
int audit_signer_generate_file(const char *path);

/* Loads the private key at path. ERR_NOTFOUND if missing, ERR_DENIED if the
 * file is readable or writable by group or others, ERR_INVALID if it is not a
 * regular file or not an Ed25519 PEM key. The caller owns *out. */
int audit_signer_load(struct audit_signer **out, const char *path);
void audit_signer_free(struct audit_signer *s);

/* The signer's public key as PEM (SubjectPublicKeyInfo), NUL-terminated in
 * buf; returns the length or ERR_TOOBIG. */
int audit_signer_public_pem(const struct audit_signer *s, char *buf, size_t cap);

/* Writes the public key PEM to path (mode 0644), replacing it atomically. */
int audit_signer_save_public(const struct audit_signer *s, const char *path);

/* The signer's key id. */
void audit_signer_key_id(const struct audit_signer *s, uint8_t out[AUDIT_KEY_ID_BYTES]);

/* Signs cp->size, cp->root and cp->time_us; fills cp->key_id and cp->sig. */
int audit_checkpoint_sign(const struct audit_signer *s, struct audit_checkpoint *cp);

/* Public keys: from PEM text, from a .pub file, or from a loaded signer.
 * The caller owns *out. */
int audit_pubkey_from_pem(struct audit_pubkey **out, const char *pem, size_t len);
int audit_pubkey_load(struct audit_pubkey **out, const char *path);
int audit_pubkey_from_signer(struct audit_pubkey **out, const struct audit_signer *s);
void audit_pubkey_free(struct audit_pubkey *k);
void audit_pubkey_key_id(const struct audit_pubkey *k, uint8_t out[AUDIT_KEY_ID_BYTES]);

/* 0 when cp is well formed, cp->key_id is k's id and the signature is valid;
 * ERR_INVALID for a malformed checkpoint, ERR_CRYPTO otherwise. */
int audit_checkpoint_verify(const struct audit_pubkey *k, const struct audit_checkpoint *cp);

/* One checkpoint as a compact JSON object:
 * {"size":N,"root":"<64 hex>","time":"<RFC 3339>","key_id":"<16 hex>","sig":"<128 hex>"}
 * Returns the length written or ERR_TOOBIG / ERR_INVALID. */
int audit_checkpoint_format_json(const struct audit_checkpoint *cp, char *buf, size_t cap);

/* Parses that object strictly (all keys, no others, types and sizes checked).
 * Does not verify the signature. */
int audit_checkpoint_from_json(struct audit_checkpoint *out, const char *line, size_t len);

#endif
