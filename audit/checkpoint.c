/*
 * checkpoint: signs and verifies audit checkpoints with Ed25519 through the
 * OpenSSL EVP interface (EVP_DigestSign with no digest, as Ed25519 requires),
 * and manages the signing key's files. The message layout is documented in
 * checkpoint.h and docs/audit.md.
 *
 * Key files: the private key is created with O_CREAT|O_EXCL and mode 0600, so
 * an existing key is never overwritten and the key is never readable by others,
 * not even for a moment. Loading refuses a key whose mode lets group or others
 * read or write it, as ssh does. PEM text of the private key only ever sits in
 * secure-heap BIOs or stack buffers that are cleansed before return.
 */
#include "audit/checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "service/base/error.h"

struct audit_signer {
	EVP_PKEY *pkey;
	uint8_t key_id[AUDIT_KEY_ID_BYTES];
};

struct audit_pubkey {
	EVP_PKEY *pkey;
	uint8_t key_id[AUDIT_KEY_ID_BYTES];
};

static void put_be64(uint8_t *p, int64_t v)
{
	uint64_t u = (uint64_t)v;
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)(u & 0xff);
		u >>= 8;
	}
}

void audit_checkpoint_message(const struct audit_checkpoint *cp, uint8_t out[AUDIT_CHECKPOINT_MSG_BYTES])
{
	memcpy(out, AUDIT_CHECKPOINT_TAG, AUDIT_CHECKPOINT_TAG_BYTES);
	put_be64(out + AUDIT_CHECKPOINT_TAG_BYTES, cp->size);
	memcpy(out + AUDIT_CHECKPOINT_TAG_BYTES + 8, cp->root, AUDIT_HASH_BYTES);
	put_be64(out + AUDIT_CHECKPOINT_TAG_BYTES + 8 + AUDIT_HASH_BYTES, cp->time_us);
}

/* key_id = SHA-256(raw public key)[0..8). Also checks the key is Ed25519. */
static int key_id_of(EVP_PKEY *pkey, uint8_t out[AUDIT_KEY_ID_BYTES])
{
	uint8_t raw[32], md[32];
	size_t rawlen = sizeof raw;
	unsigned int mdlen = 0;

	if (!EVP_PKEY_is_a(pkey, "ED25519"))
		return err_set(ERR_INVALID, "audit key: not an Ed25519 key");
	if (EVP_PKEY_get_raw_public_key(pkey, raw, &rawlen) != 1 || rawlen != sizeof raw ||
	    EVP_Digest(raw, rawlen, md, &mdlen, EVP_sha256(), NULL) != 1)
		return err_set(ERR_CRYPTO, "audit key: cannot read the public key");
	memcpy(out, md, AUDIT_KEY_ID_BYTES);
	return 0;
}

/* PEM pass-phrase callback that never prompts: an encrypted key is refused. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int audit_signer_generate_file(const char *path)
{
	EVP_PKEY *pkey = NULL;
	BIO *bio = NULL;
	char *pem = NULL;
	long pemlen;
	int fd = -1;
	bool created = false;
	int rc = 0;

	pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	bio = BIO_new(BIO_s_secmem());
	if (pkey == NULL || bio == NULL ||
	    PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL) != 1) {
		rc = err_set(ERR_CRYPTO, "audit key: cannot generate an Ed25519 key");
		goto out;
	}
	pemlen = BIO_get_mem_data(bio, &pem);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		if (errno == EEXIST)
			rc = err_set(ERR_CONFLICT,
				     "audit key: %s already exists; refusing to "
				     "overwrite a signing key",
				     path);
		else
			rc = err_set(ERR_IO, "audit key: cannot create %s: %s", path, strerror(errno));
		goto out;
	}
	created = true;
	/* umask can only narrow 0600, but make the mode explicit anyway. */
	if (fchmod(fd, 0600) != 0 || pemlen <= 0 || write_all(fd, pem, (size_t)pemlen) != 0 ||
	    fsync(fd) != 0) {
		rc = err_set(ERR_IO, "audit key: cannot write %s: %s", path, strerror(errno));
		goto out;
	}
	if (close(fd) != 0) {
		fd = -1;
		rc = err_set(ERR_IO, "audit key: cannot write %s: %s", path, strerror(errno));
		goto out;
	}
	fd = -1;
out:
	if (fd >= 0)
		close(fd);
	if (rc < 0 && created)
		unlink(path);
	BIO_free(bio); /* a secure-heap BIO cleanses its buffer on free */
	EVP_PKEY_free(pkey);
	return rc;
}

int audit_signer_load(struct audit_signer **out, const char *path)
{
	struct audit_signer *s = NULL;
	char pem[AUDIT_PEM_MAX + 1];
	size_t len = 0;
	BIO *bio = NULL;
	struct stat st;
	int fd = -1;
	int rc = 0;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			rc = err_set(ERR_NOTFOUND, "audit key: no signing key at %s", path);
		else
			rc = err_set(ERR_IO, "audit key: cannot open %s: %s", path, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		rc = err_set(ERR_INVALID, "audit key: %s is not a regular file", path);
		goto out;
	}
	if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
		rc = err_set(ERR_DENIED,
			     "audit key: %s is accessible by group or others (mode "
			     "%03o); run chmod 600 on it",
			     path, (unsigned)(st.st_mode & 0777));
		goto out;
	}
	while (len <= AUDIT_PEM_MAX) {
		ssize_t r = read(fd, pem + len, sizeof pem - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = err_set(ERR_IO, "audit key: cannot read %s: %s", path, strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	if (len > AUDIT_PEM_MAX) {
		rc = err_set(ERR_TOOBIG, "audit key: %s is larger than %d bytes", path, AUDIT_PEM_MAX);
		goto out;
	}
	s = calloc(1, sizeof *s);
	bio = BIO_new_mem_buf(pem, (int)len);
	if (s == NULL || bio == NULL) {
		rc = err_set(ERR_NOMEM, "audit key: out of memory");
		goto out;
	}
	s->pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
	if (s->pkey == NULL) {
		rc = err_set(ERR_INVALID, "audit key: %s is not an unencrypted PEM private key", path);
		goto out;
	}
	rc = key_id_of(s->pkey, s->key_id);
	if (rc < 0)
		goto out;
	*out = s;
	s = NULL;
out:
	OPENSSL_cleanse(pem, sizeof pem);
	BIO_free(bio);
	audit_signer_free(s);
	if (fd >= 0)
		close(fd);
	return rc;
}

void audit_signer_free(struct audit_signer *s)
{
	if (s == NULL)
		return;
	EVP_PKEY_free(s->pkey);
	OPENSSL_cleanse(s, sizeof *s);
	free(s);
}

void audit_signer_key_id(const struct audit_signer *s, uint8_t out[AUDIT_KEY_ID_BYTES])
{
	memcpy(out, s->key_id, AUDIT_KEY_ID_BYTES);
}

static int public_pem(EVP_PKEY *pkey, char *buf, size_t cap)
{
	BIO *bio = NULL;
	char *data = NULL;
	long n;
	int rc;

	bio = BIO_new(BIO_s_mem());
	if (bio == NULL || PEM_write_bio_PUBKEY(bio, pkey) != 1) {
		rc = err_set(ERR_CRYPTO, "audit key: cannot encode the public key");
		goto out;
	}
	n = BIO_get_mem_data(bio, &data);
	if (n <= 0 || (size_t)n >= cap) {
		rc = err_set(ERR_TOOBIG, "audit key: public key PEM does not fit in %zu bytes", cap);
		goto out;
	}
	memcpy(buf, data, (size_t)n);
	buf[n] = '\0';
	rc = (int)n;
out:
	BIO_free(bio);
	return rc;
}

int audit_signer_public_pem(const struct audit_signer *s, char *buf, size_t cap)
{
	return public_pem(s->pkey, buf, cap);
}

int audit_signer_save_public(const struct audit_signer *s, const char *path)
{
	char pem[AUDIT_PEM_MAX], tmp[PATH_MAX];
	int fd = -1;
	int rc, n;

	n = public_pem(s->pkey, pem, sizeof pem);
	if (n < 0)
		return n;
	if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp)
		return err_set(ERR_TOOBIG, "audit key: path too long");
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = err_set(ERR_IO, "audit key: cannot create %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (write_all(fd, pem, (size_t)n) != 0 || fsync(fd) != 0) {
		rc = err_set(ERR_IO, "audit key: cannot write %s: %s", tmp, strerror(errno));
		goto out;
	}
	rc = close(fd);
	fd = -1;
	if (rc != 0 || rename(tmp, path) != 0) {
		rc = err_set(ERR_IO, "audit key: cannot write %s: %s", path, strerror(errno));
		goto out;
	}
	return 0;
out:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return rc;
}

int audit_checkpoint_sign(const struct audit_signer *s, struct audit_checkpoint *cp)
{
	uint8_t msg[AUDIT_CHECKPOINT_MSG_BYTES];
	EVP_MD_CTX *ctx = NULL;
	size_t siglen = AUDIT_SIG_BYTES;
	int rc = 0;

	if (cp->size < 1 || cp->time_us < 0)
		return err_set(ERR_INVALID, "audit checkpoint: size or time out of range");
	audit_checkpoint_message(cp, msg);
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL || EVP_DigestSignInit(ctx, NULL, NULL, NULL, s->pkey) != 1 ||
	    EVP_DigestSign(ctx, cp->sig, &siglen, msg, sizeof msg) != 1 || siglen != AUDIT_SIG_BYTES) {
		rc = err_set(ERR_CRYPTO, "audit checkpoint: signing failed");
		goto out;
	}
	memcpy(cp->key_id, s->key_id, AUDIT_KEY_ID_BYTES);
out:
	EVP_MD_CTX_free(ctx);
	return rc;
}

static int pubkey_take(struct audit_pubkey **out, EVP_PKEY *pkey)
{
	struct audit_pubkey *k = NULL;
	int rc;

	k = calloc(1, sizeof *k);
	if (k == NULL) {
		EVP_PKEY_free(pkey);
		return err_set(ERR_NOMEM, "audit key: out of memory");
	}
	k->pkey = pkey;
	rc = key_id_of(pkey, k->key_id);
	if (rc < 0) {
		audit_pubkey_free(k);
		return rc;
	}
	*out = k;
	return 0;
}

int audit_pubkey_from_pem(struct audit_pubkey **out, const char *pem, size_t len)
{
	BIO *bio = NULL;
	EVP_PKEY *pkey = NULL;

	*out = NULL;
	if (len > AUDIT_PEM_MAX)
		return err_set(ERR_TOOBIG, "audit key: public key PEM longer than %d bytes", AUDIT_PEM_MAX);
	bio = BIO_new_mem_buf(pem, (int)len);
	if (bio == NULL)
		return err_set(ERR_NOMEM, "audit key: out of memory");
	pkey = PEM_read_bio_PUBKEY(bio, NULL, no_passphrase, NULL);
	BIO_free(bio);
	if (pkey == NULL)
		return err_set(ERR_INVALID, "audit key: not a PEM public key");
	/* pubkey_take owns pkey from here, also on failure. */
	return pubkey_take(out, pkey);
}

int audit_pubkey_load(struct audit_pubkey **out, const char *path)
{
	char pem[AUDIT_PEM_MAX + 1];
	size_t len;
	FILE *f = NULL;

	*out = NULL;
	f = fopen(path, "rbe");
	if (f == NULL) {
		if (errno == ENOENT)
			return err_set(ERR_NOTFOUND, "audit key: no public key at %s", path);
		return err_set(ERR_IO, "audit key: cannot open %s: %s", path, strerror(errno));
	}
	len = fread(pem, 1, sizeof pem, f);
	fclose(f);
	if (len > AUDIT_PEM_MAX)
		return err_set(ERR_TOOBIG, "audit key: %s is larger than %d bytes", path, AUDIT_PEM_MAX);
	return audit_pubkey_from_pem(out, pem, len);
}

int audit_pubkey_from_signer(struct audit_pubkey **out, const struct audit_signer *s)
{
	char pem[AUDIT_PEM_MAX];
	int n;

	*out = NULL;
	n = public_pem(s->pkey, pem, sizeof pem);
	if (n < 0)
		return n;
	return audit_pubkey_from_pem(out, pem, (size_t)n);
}

void audit_pubkey_free(struct audit_pubkey *k)
{
	if (k == NULL)
		return;
	EVP_PKEY_free(k->pkey);
	free(k);
}

void audit_pubkey_key_id(const struct audit_pubkey *k, uint8_t out[AUDIT_KEY_ID_BYTES])
{
	memcpy(out, k->key_id, AUDIT_KEY_ID_BYTES);
}

int audit_checkpoint_verify(const struct audit_pubkey *k, const struct audit_checkpoint *cp)
{
	uint8_t msg[AUDIT_CHECKPOINT_MSG_BYTES];
	char want[2 * AUDIT_KEY_ID_BYTES + 1], got[2 * AUDIT_KEY_ID_BYTES + 1];
	EVP_MD_CTX *ctx = NULL;
	int rc = 0;

	if (cp->size < 1 || cp->time_us < 0)
		return err_set(ERR_INVALID, "audit checkpoint: size or time out of range");
	if (memcmp(cp->key_id, k->key_id, AUDIT_KEY_ID_BYTES) != 0) {
		audit_hex_encode(cp->key_id, AUDIT_KEY_ID_BYTES, got);
		audit_hex_encode(k->key_id, AUDIT_KEY_ID_BYTES, want);
		return err_set(ERR_CRYPTO, "audit checkpoint: signed by key %s, not by key %s", got, want);
	}
	audit_checkpoint_message(cp, msg);
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL || EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, k->pkey) != 1) {
		rc = err_set(ERR_CRYPTO, "audit checkpoint: cannot set up verification");
		goto out;
	}
	if (EVP_DigestVerify(ctx, cp->sig, AUDIT_SIG_BYTES, msg, sizeof msg) != 1) {
		rc = err_set(ERR_CRYPTO, "audit checkpoint: bad signature");
		goto out;
	}
out:
	EVP_MD_CTX_free(ctx);
	return rc;
}

int audit_checkpoint_format_json(const struct audit_checkpoint *cp, char *buf, size_t cap)
{
	char root[2 * AUDIT_HASH_BYTES + 1], kid[2 * AUDIT_KEY_ID_BYTES + 1];
	char sig[2 * AUDIT_SIG_BYTES + 1], tbuf[AUDIT_TIME_BYTES];
	int n;

	if (cp->size < 1 || audit_time_format(cp->time_us, tbuf) < 0)
		return err_set(ERR_INVALID, "audit checkpoint: size or time out of range");
	audit_hex_encode(cp->root, AUDIT_HASH_BYTES, root);
	audit_hex_encode(cp->key_id, AUDIT_KEY_ID_BYTES, kid);
	audit_hex_encode(cp->sig, AUDIT_SIG_BYTES, sig);
	n = snprintf(buf, cap,
		     "{\"size\":%lld,\"root\":\"%s\",\"time\":\"%s\",\"key_id\":\"%s\","
		     "\"sig\":\"%s\"}",
		     (long long)cp->size, root, tbuf, kid, sig);
	if (n < 0 || (size_t)n >= cap)
		return err_set(ERR_TOOBIG, "audit checkpoint: JSON does not fit in %zu bytes", cap);
	return n;
}

static int hex_field(json_t *root, const char *key, uint8_t *out, size_t n)
{
	json_t *v = json_object_get(root, key);
	if (!json_is_string(v) || audit_hex_decode(json_string_value(v), json_string_length(v), out, n) < 0)
		return err_set(ERR_INVALID,
			       "audit checkpoint JSON: %s must be %zu lowercase hex "
			       "digits",
			       key, 2 * n);
	return 0;
}

int audit_checkpoint_from_json(struct audit_checkpoint *out, const char *line, size_t len)
{
	json_t *root = NULL, *v;
	json_error_t jerr;
	int rc = 0;

	memset(out, 0, sizeof *out);
	if (len > LIMIT_LINE_BYTES)
		return err_set(ERR_TOOBIG, "audit checkpoint JSON: longer than %d bytes", LIMIT_LINE_BYTES);
	root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(root)) {
		rc = err_set(ERR_INVALID, "audit checkpoint JSON: not a JSON object");
		goto out;
	}
	if (json_object_size(root) != 5) {
		rc = err_set(ERR_INVALID, "audit checkpoint JSON: expected exactly the keys size, "
					  "root, time, key_id, sig");
		goto out;
	}
	v = json_object_get(root, "size");
	if (!json_is_integer(v) || json_integer_value(v) < 1) {
		rc = err_set(ERR_INVALID, "audit checkpoint JSON: size must be an integer of at "
					  "least 1");
		goto out;
	}
	out->size = json_integer_value(v);
	v = json_object_get(root, "time");
	if (!json_is_string(v) ||
	    audit_time_parse(json_string_value(v), json_string_length(v), &out->time_us) < 0) {
		rc = err_set(ERR_INVALID, "audit checkpoint JSON: time must be RFC 3339 UTC");
		goto out;
	}
	/* With five keys present and these five found, no other key can exist. */
	rc = hex_field(root, "root", out->root, AUDIT_HASH_BYTES);
	if (rc == 0)
		rc = hex_field(root, "key_id", out->key_id, AUDIT_KEY_ID_BYTES);
	if (rc == 0)
		rc = hex_field(root, "sig", out->sig, AUDIT_SIG_BYTES);
out:
	json_decref(root);
	return rc;
}
