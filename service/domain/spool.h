/*
 * spool: the results and records a bulk request must hold until it may
 * answer (the upload has ended and its audit entry is durable), kept on
 * disk encrypted so that a large import costs a file, not memory, and
 * nothing it holds reaches the disk in the clear.
 *
 * A spool is written, rewound once, then read (by the request itself, or
 * as the reply's body through spool_reply_read/spool_reply_free, which have
 * the shape of an http reader). It is the crypto spill (service/crypto/
 * spill.h) behind the domain layer: handlers never hold the spill's key or
 * file. Not thread-safe: one thread at a time owns a spool.
 */
#ifndef CONSENTD_DOMAIN_SPOOL_H
#define CONSENTD_DOMAIN_SPOOL_H

#include <stddef.h>
#include <sys/types.h>

struct spool;

/* A new, empty spool in the data directory dir (a file without a name). */
int spool_open(struct spool **out, const char *dir);
/* Appends len bytes. */
int spool_put(struct spool *s, const void *data, size_t len);
/* Appends the text and a newline (one result line). */
int spool_line(struct spool *s, const char *text);
/* Ends writing; reads start at the beginning. */
int spool_rewind(struct spool *s);
/* Exactly len bytes into buf: 1, or 0 at the end (nothing read), or a
 * negative error (also for a record cut short: ERR_CRYPTO or ERR_IO). */
int spool_get(struct spool *s, void *buf, size_t len);
void spool_free(struct spool *s);

/* For streaming a rewound spool as a reply body (the reply then owns it):
 * -1 on any read error, so the connection is cut rather than a body
 * silently shortened. */
ssize_t spool_reply_read(void *spool, char *buf, size_t cap);
void spool_reply_free(void *spool);

#endif
