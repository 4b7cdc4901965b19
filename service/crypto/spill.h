/*
 * spill: an encrypted, anonymous temporary file for results that must wait
 * (the bulk filter computes its answer while the upload is still arriving,
 * but can only send it once the upload has ended and the audit entry is
 * durable). Also a streaming SHA-256 for digests of bulk lists.
 *
 * The file is created with O_TMPFILE in the given directory (or mkstemp +
 * unlink where O_TMPFILE is missing), so it has no name and disappears with
 * the descriptor, also on a crash. Its contents are sealed with a random
 * AES-256-GCM key that lives only in this process's memory and is wiped on
 * free: the plaintext (which may echo emails) never reaches the disk.
 *
 * Layout: records of up to SPILL_RECORD_BYTES plaintext, each
 *   u32 length (little endian) | ciphertext | 16-byte tag,
 * nonce = record number (8 bytes LE) | 0000, so no nonce repeats under the
 * key. A reordered, altered or truncated file fails to read (ERR_CRYPTO).
 *
 * Lifecycle: open -> write* -> rewind -> read* -> free. Not thread-safe;
 * one request owns a spill at a time.
 */
#ifndef CONSENTD_SPILL_H
#define CONSENTD_SPILL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SPILL_RECORD_BYTES (64 * 1024)

struct spill;

int spill_open(struct spill **out, const char *dir);
int spill_write(struct spill *s, const void *data, size_t len);
/* Flushes the last record and starts reading from the beginning. */
int spill_rewind(struct spill *s);
/* Plaintext bytes into buf: > 0, 0 at the end, or a negative error. */
ssize_t spill_read(struct spill *s, void *buf, size_t cap);
void spill_free(struct spill *s);

/* The same as an http reader and its free function (see http.h), for
 * streaming a spill as a reply: -1 on any read error. */
ssize_t spill_reply_read(void *spill, char *buf, size_t cap);
void spill_reply_free(void *spill);

/* Streaming SHA-256. */
struct spill_digest;
int spill_digest_new(struct spill_digest **out);
void spill_digest_update(struct spill_digest *d, const void *data, size_t len);
void spill_digest_final(struct spill_digest *d, uint8_t out[32]);
void spill_digest_free(struct spill_digest *d);

#endif
