/*
 * spill: GCM-sealed records in an anonymous temporary file. See spill.h.
 *
 * Invariants:
 * - The key is generated per spill, never leaves memory, and is wiped in
 *   spill_free; plaintext buffers are wiped before they are freed.
 * - Records are numbered from 0 in write order; the reader checks the
 *   number of records against what was written, so truncation is caught.
 */
#include "service/crypto/spill.h"

#include "service/base/error.h"
#include "service/base/limits.h"
#include "service/crypto/fieldcrypt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

struct spill {
	int fd;
	uint8_t key[32];
	EVP_CIPHER_CTX *cx;
	uint8_t *plain;	 /* SPILL_RECORD_BYTES */
	uint8_t *sealed; /* SPILL_RECORD_BYTES + 4 + 16 */
	size_t plen;	 /* bytes in plain (writing) */
	size_t ppos;	 /* read position in plain (reading) */
	uint64_t records, read_records;
	int reading;
};

struct spill_digest {
	EVP_MD_CTX *md;
};

static int open_tmp(const char *dir)
{
#ifdef O_TMPFILE
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
#endif
	char path[LIMIT_DERIVED_PATH_CAP];
	snprintf(path, sizeof path, "%s/.spill-XXXXXX", dir);
	int fd2 = mkostemp(path, O_CLOEXEC);
	if (fd2 >= 0)
		unlink(path);
	return fd2;
}

int spill_open(struct spill **out, const char *dir)
{
	struct spill *s = calloc(1, sizeof *s);
	*out = NULL;
	if (s == NULL)
		return err_set(ERR_NOMEM, "out of memory");
	s->fd = -1;
	s->plain = malloc(SPILL_RECORD_BYTES);
	s->sealed = malloc(SPILL_RECORD_BYTES + 20);
	s->cx = EVP_CIPHER_CTX_new();
	if (s->plain == NULL || s->sealed == NULL || s->cx == NULL) {
		spill_free(s);
		return err_set(ERR_NOMEM, "out of memory");
	}
	if (crypto_random(s->key, sizeof s->key) != 0) {
		spill_free(s);
		return err_set(ERR_CRYPTO, "no randomness for the spill key");
	}
	s->fd = open_tmp(dir);
	if (s->fd < 0) {
		int e = errno;
		spill_free(s);
		return err_set(ERR_UNAVAILABLE, "cannot create a temporary file: %s", strerror(e));
	}
	*out = s;
	return 0;
}

static void nonce_for(uint64_t n, uint8_t iv[12])
{
	memset(iv, 0, 12);
	for (int i = 0; i < 8; i++)
		iv[i] = (uint8_t)(n >> (8 * i));
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return err_set(ERR_UNAVAILABLE, "cannot write the temporary file: %s",
				       w < 0 ? strerror(errno) : "short write");
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int flush_record(struct spill *s)
{
	uint8_t iv[12];
	int outl = 0, fl = 0;
	if (s->plen == 0)
		return 0;
	nonce_for(s->records, iv);
	uint32_t len = (uint32_t)s->plen;
	for (int i = 0; i < 4; i++)
		s->sealed[i] = (uint8_t)(len >> (8 * i));
	if (EVP_EncryptInit_ex(s->cx, EVP_aes_256_gcm(), NULL, s->key, iv) != 1 ||
	    EVP_EncryptUpdate(s->cx, s->sealed + 4, &outl, s->plain, (int)s->plen) != 1 ||
	    EVP_EncryptFinal_ex(s->cx, s->sealed + 4 + outl, &fl) != 1 ||
	    EVP_CIPHER_CTX_ctrl(s->cx, EVP_CTRL_GCM_GET_TAG, 16, s->sealed + 4 + s->plen) != 1)
		return err_set(ERR_CRYPTO, "cannot seal the spill");
	int rc = write_all(s->fd, s->sealed, 4 + s->plen + 16);
	if (rc != 0)
		return rc;
	s->records++;
	crypto_wipe(s->plain, s->plen);
	s->plen = 0;
	return 0;
}

int spill_write(struct spill *s, const void *data, size_t len)
{
	const uint8_t *p = data;
	if (s->reading)
		return err_set(ERR_INTERNAL, "spill: write after rewind");
	while (len > 0) {
		size_t room = SPILL_RECORD_BYTES - s->plen;
		size_t take = len < room ? len : room;
		memcpy(s->plain + s->plen, p, take);
		s->plen += take;
		p += take;
		len -= take;
		if (s->plen == SPILL_RECORD_BYTES) {
			int rc = flush_record(s);
			if (rc != 0)
				return rc;
		}
	}
	return 0;
}

int spill_rewind(struct spill *s)
{
	int rc = flush_record(s);
	if (rc != 0)
		return rc;
	if (lseek(s->fd, 0, SEEK_SET) != 0)
		return err_set(ERR_IO, "cannot rewind the temporary file");
	s->reading = 1;
	s->plen = s->ppos = 0;
	s->read_records = 0;
	return 0;
}

static int read_all(int fd, uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t r = read(fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return err_set(ERR_CRYPTO, "the temporary file is truncated");
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static int load_record(struct spill *s)
{
	uint8_t iv[12];
	int outl = 0, fl = 0;
	int rc = read_all(s->fd, s->sealed, 4);
	if (rc != 0)
		return rc;
	uint32_t len = (uint32_t)s->sealed[0] | (uint32_t)s->sealed[1] << 8 | (uint32_t)s->sealed[2] << 16 |
		       (uint32_t)s->sealed[3] << 24;
	if (len == 0 || len > SPILL_RECORD_BYTES)
		return err_set(ERR_CRYPTO, "the temporary file is corrupt");
	if ((rc = read_all(s->fd, s->sealed + 4, len + 16)) != 0)
		return rc;
	nonce_for(s->read_records, iv);
	if (EVP_DecryptInit_ex(s->cx, EVP_aes_256_gcm(), NULL, s->key, iv) != 1 ||
	    EVP_DecryptUpdate(s->cx, s->plain, &outl, s->sealed + 4, (int)len) != 1 ||
	    EVP_CIPHER_CTX_ctrl(s->cx, EVP_CTRL_GCM_SET_TAG, 16, s->sealed + 4 + len) != 1 ||
	    EVP_DecryptFinal_ex(s->cx, s->plain + outl, &fl) != 1)
		return err_set(ERR_CRYPTO, "the temporary file failed authentication");
	s->read_records++;
	s->plen = len;
	s->ppos = 0;
	return 0;
}

ssize_t spill_read(struct spill *s, void *buf, size_t cap)
{
	if (!s->reading)
		return err_set(ERR_INTERNAL, "spill: read before rewind");
	if (s->ppos == s->plen) {
		crypto_wipe(s->plain, s->plen);
		s->plen = s->ppos = 0;
		if (s->read_records == s->records)
			return 0;
		int rc = load_record(s);
		if (rc != 0)
			return rc;
	}
	size_t n = s->plen - s->ppos;
	if (n > cap)
		n = cap;
	memcpy(buf, s->plain + s->ppos, n);
	s->ppos += n;
	return (ssize_t)n;
}

void spill_free(struct spill *s)
{
	if (s == NULL)
		return;
	if (s->fd >= 0)
		close(s->fd);
	EVP_CIPHER_CTX_free(s->cx);
	if (s->plain != NULL)
		crypto_wipe(s->plain, SPILL_RECORD_BYTES);
	free(s->plain);
	free(s->sealed);
	crypto_wipe(s->key, sizeof s->key);
	free(s);
}

int spill_digest_new(struct spill_digest **out)
{
	struct spill_digest *d = calloc(1, sizeof *d);
	*out = NULL;
	if (d == NULL || (d->md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(d->md, EVP_sha256(), NULL) != 1) {
		if (d != NULL)
			EVP_MD_CTX_free(d->md);
		free(d);
		return err_set(ERR_NOMEM, "cannot start a digest");
	}
	*out = d;
	return 0;
}

void spill_digest_update(struct spill_digest *d, const void *data, size_t len)
{
	EVP_DigestUpdate(d->md, data, len);
}

void spill_digest_final(struct spill_digest *d, uint8_t out[32])
{
	unsigned int n = 32;
	EVP_DigestFinal_ex(d->md, out, &n);
}

void spill_digest_free(struct spill_digest *d)
{
	if (d == NULL)
		return;
	EVP_MD_CTX_free(d->md);
	free(d);
}

ssize_t spill_reply_read(void *spill, char *buf, size_t cap)
{
	ssize_t n = spill_read(spill, buf, cap);
	return n < 0 ? -1 : n;
}

void spill_reply_free(void *spill)
{
	spill_free(spill);
}
