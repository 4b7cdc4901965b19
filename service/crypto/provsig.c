/*
 * provsig: provider signature checks (see provsig.h). Only this file and
 * fieldcrypt touch OpenSSL on behalf of the service; the key material never
 * leaves struct provsig and is wiped in provsig_free.
 */
#include "service/crypto/provsig.h"

#include "service/base/error.h"
#include "service/crypto/fieldcrypt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#define PROVSIG_FILE_MAX 16384
#define PROVSIG_SECRET_MAX 512
#define PROVSIG_SNS_SIG_MAX 1024 /* an RSA-8192 signature */
#define PROVSIG_SNS_RSA_MIN_BITS 2048

struct provsig {
	EVP_PKEY *sendgrid;
	unsigned char mailgun[PROVSIG_SECRET_MAX];
	size_t mailgun_len;
	/* SHA-256 of the base64 part of the expected "Basic ..." header. */
	unsigned char postmark[32];
	bool has_postmark;
};

/* Reads a small secret file (mode 0600 or stricter) into buf, NUL-terminated,
 * without trailing whitespace. */
static int read_secret(const char *path, char *buf, size_t cap, size_t *len)
{
	struct stat st;
	int rc = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return err_set(errno == ENOENT ? ERR_NOTFOUND : ERR_IO, "cannot open key file %s: %s", path,
			       strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 || (size_t)st.st_size >= cap) {
		rc = err_set(ERR_INVALID, "key file %s is not a small, non-empty regular file", path);
		goto out;
	}
	if ((rc = crypto_key_file_private(path, st.st_mode)) != 0)
		goto out;
	ssize_t n = read(fd, buf, (size_t)st.st_size);
	if (n != st.st_size) {
		rc = err_set(ERR_IO, "cannot read key file %s", path);
		goto out;
	}
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
		n--;
	buf[n] = '\0';
	*len = (size_t)n;
	if (n == 0)
		rc = err_set(ERR_INVALID, "key file %s is empty", path);
out:
	close(fd);
	return rc;
}

/* Standard base64 (padding optional, whitespace skipped) into out. */
static int b64_decode(const char *in, unsigned char *out, size_t cap, size_t *out_len)
{
	char clean[PROVSIG_FILE_MAX];
	size_t n = 0;
	for (const char *p = in; *p != '\0'; p++) {
		if (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')
			continue;
		if (n + 4 >= sizeof clean)
			return ERR_INVALID;
		clean[n++] = *p;
	}
	size_t pad = 0;
	while (n > 0 && clean[n - 1] == '=') {
		n--;
		pad++;
	}
	if (pad > 2)
		return ERR_INVALID;
	while (n % 4 != 0)
		clean[n++] = '=';
	clean[n] = '\0';
	if (n == 0 || n / 4 * 3 > cap)
		return ERR_INVALID;
	int k = EVP_DecodeBlock(out, (const unsigned char *)clean, (int)n);
	if (k < 0)
		return ERR_INVALID;
	size_t eq = 0;
	for (size_t i = n; i > 0 && clean[i - 1] == '='; i--)
		eq++;
	*out_len = (size_t)k - eq;
	return 0;
}

static int load_sendgrid(struct provsig *p, const char *path)
{
	char text[PROVSIG_FILE_MAX];
	unsigned char der[PROVSIG_FILE_MAX];
	size_t len = 0, der_len = 0;
	EVP_PKEY *key = NULL;
	char group[64] = "";
	int rc = read_secret(path, text, sizeof text, &len);
	if (rc != 0)
		goto out;
	if (strstr(text, "-----BEGIN") != NULL) {
		BIO *bio = BIO_new_mem_buf(text, (int)len);
		key = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
		BIO_free(bio);
	} else if (b64_decode(text, der, sizeof der, &der_len) == 0) {
		const unsigned char *q = der;
		key = d2i_PUBKEY(NULL, &q, (long)der_len);
	}
	if (key == NULL || !EVP_PKEY_is_a(key, "EC") ||
	    EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, NULL) != 1 ||
	    strcmp(group, "prime256v1") != 0) {
		rc = err_set(ERR_INVALID,
			     "%s does not hold an ECDSA P-256 public key (base64 DER as SendGrid shows "
			     "it, or PEM)",
			     path);
		goto out;
	}
	p->sendgrid = key;
	key = NULL;
out:
	EVP_PKEY_free(key);
	OPENSSL_cleanse(text, sizeof text);
	return rc;
}

static int load_mailgun(struct provsig *p, const char *path)
{
	char text[PROVSIG_SECRET_MAX];
	size_t len = 0;
	int rc = read_secret(path, text, sizeof text, &len);
	if (rc == 0) {
		memcpy(p->mailgun, text, len);
		p->mailgun_len = len;
	}
	OPENSSL_cleanse(text, sizeof text);
	return rc;
}

static int load_postmark(struct provsig *p, const char *path)
{
	char text[PROVSIG_SECRET_MAX];
	unsigned char b64[PROVSIG_SECRET_MAX * 2];
	size_t len = 0;
	int rc = read_secret(path, text, sizeof text, &len);
	if (rc == 0 && (strchr(text, ':') == NULL || text[0] == ':'))
		rc = err_set(ERR_INVALID, "%s must hold user:password", path);
	if (rc == 0) {
		int n = EVP_EncodeBlock(b64, (const unsigned char *)text, (int)len);
		unsigned int dlen = 0;
		if (n <= 0 || EVP_Digest(b64, (size_t)n, p->postmark, &dlen, EVP_sha256(), NULL) != 1)
			rc = err_set(ERR_INTERNAL, "cannot hash the Postmark credentials");
		else
			p->has_postmark = true;
	}
	OPENSSL_cleanse(text, sizeof text);
	OPENSSL_cleanse(b64, sizeof b64);
	return rc;
}

int provsig_open(struct provsig **out, const char *sendgrid_key_file, const char *mailgun_key_file,
		 const char *postmark_auth_file)
{
	int rc = 0;
	struct provsig *p = calloc(1, sizeof *p);
	*out = NULL;
	if (p == NULL)
		return err_set(ERR_NOMEM, "out of memory");
	if (sendgrid_key_file != NULL && sendgrid_key_file[0] != '\0' &&
	    (rc = load_sendgrid(p, sendgrid_key_file)) != 0)
		goto fail;
	if (mailgun_key_file != NULL && mailgun_key_file[0] != '\0' &&
	    (rc = load_mailgun(p, mailgun_key_file)) != 0)
		goto fail;
	if (postmark_auth_file != NULL && postmark_auth_file[0] != '\0' &&
	    (rc = load_postmark(p, postmark_auth_file)) != 0)
		goto fail;
	*out = p;
	return 0;
fail:
	provsig_free(p);
	return rc;
}

void provsig_free(struct provsig *p)
{
	if (p == NULL)
		return;
	EVP_PKEY_free(p->sendgrid);
	OPENSSL_cleanse(p, sizeof *p);
	free(p);
}

bool provsig_has_sendgrid(const struct provsig *p)
{
	return p != NULL && p->sendgrid != NULL;
}

bool provsig_has_mailgun(const struct provsig *p)
{
	return p != NULL && p->mailgun_len > 0;
}

bool provsig_has_postmark(const struct provsig *p)
{
	return p != NULL && p->has_postmark;
}

int provsig_sendgrid_verify(const struct provsig *p, const char *timestamp, const char *body, size_t len,
			    const char *signature_b64)
{
	unsigned char sig[256];
	size_t sig_len = 0;
	int ok = 0;
	if (!provsig_has_sendgrid(p) || timestamp == NULL || signature_b64 == NULL ||
	    strlen(signature_b64) > 2 * sizeof sig ||
	    b64_decode(signature_b64, sig, sizeof sig, &sig_len) != 0)
		return err_set(ERR_UNAUTHENTICATED, "the SendGrid signature is missing or malformed");
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (md != NULL && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, p->sendgrid) == 1 &&
	    EVP_DigestVerifyUpdate(md, timestamp, strlen(timestamp)) == 1 &&
	    (len == 0 || EVP_DigestVerifyUpdate(md, body, len) == 1))
		ok = EVP_DigestVerifyFinal(md, sig, sig_len) == 1;
	EVP_MD_CTX_free(md);
	return ok ? 0 : err_set(ERR_UNAUTHENTICATED, "the SendGrid signature does not verify");
}

int provsig_sns_verify(const char *cert_pem, size_t pem_len, int version, const char *msg, size_t len,
		       const char *signature_b64)
{
	unsigned char sig[PROVSIG_SNS_SIG_MAX];
	size_t sig_len = 0;
	int ok = 0;
	BIO *bio = NULL;
	X509 *cert = NULL;
	EVP_PKEY *key = NULL;
	EVP_MD_CTX *md = NULL;
	const EVP_MD *alg = version == 1 ? EVP_sha1() : version == 2 ? EVP_sha256() : NULL;
	if (alg == NULL)
		return err_set(ERR_UNAUTHENTICATED, "the SNS SignatureVersion is not 1 or 2");
	if (signature_b64 == NULL || strlen(signature_b64) > 2 * sizeof sig ||
	    b64_decode(signature_b64, sig, sizeof sig, &sig_len) != 0 || sig_len == 0)
		return err_set(ERR_UNAUTHENTICATED, "the SNS signature is missing or malformed");
	if (cert_pem == NULL || pem_len == 0 || pem_len > PROVSIG_FILE_MAX ||
	    (bio = BIO_new_mem_buf(cert_pem, (int)pem_len)) == NULL ||
	    (cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL ||
	    (key = X509_get_pubkey(cert)) == NULL) {
		err_set(ERR_UNAUTHENTICATED, "the SNS signing certificate is not a PEM certificate");
		goto out;
	}
	/* SNS signs with RSA; a short key, or a key of another kind, is no
	 * signing certificate of theirs. */
	if (EVP_PKEY_base_id(key) != EVP_PKEY_RSA || EVP_PKEY_get_bits(key) < PROVSIG_SNS_RSA_MIN_BITS) {
		err_set(ERR_UNAUTHENTICATED,
			"the SNS signing certificate holds no RSA key of %d bits or more",
			PROVSIG_SNS_RSA_MIN_BITS);
		goto out;
	}
	if ((md = EVP_MD_CTX_new()) != NULL && EVP_DigestVerifyInit(md, NULL, alg, NULL, key) == 1 &&
	    EVP_DigestVerifyUpdate(md, msg, len) == 1)
		ok = EVP_DigestVerifyFinal(md, sig, sig_len) == 1;
	if (!ok)
		err_set(ERR_UNAUTHENTICATED, "the SNS signature does not verify");
out:
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(key);
	X509_free(cert);
	BIO_free(bio);
	return ok ? 0 : ERR_UNAUTHENTICATED;
}

int provsig_hmac_hex(const void *key, size_t key_len, const void *msg, size_t msg_len, char out[65])
{
	unsigned char mac[32];
	unsigned int mac_len = 0;
	static const char hexd[] = "0123456789abcdef";
	if (HMAC(EVP_sha256(), key, (int)key_len, msg, msg_len, mac, &mac_len) == NULL || mac_len != 32)
		return err_set(ERR_INTERNAL, "HMAC failed");
	for (int i = 0; i < 32; i++) {
		out[2 * i] = hexd[mac[i] >> 4];
		out[2 * i + 1] = hexd[mac[i] & 15];
	}
	out[64] = '\0';
	return 0;
}

int provsig_mailgun_verify(const struct provsig *p, const char *timestamp, const char *token,
			   const char *signature_hex)
{
	char msg[512], want[65], got[65];
	int rc = 0;
	if (!provsig_has_mailgun(p) || timestamp == NULL || token == NULL || signature_hex == NULL ||
	    strlen(signature_hex) != 64)
		return err_set(ERR_UNAUTHENTICATED, "the Mailgun signature is missing or malformed");
	int n = snprintf(msg, sizeof msg, "%s%s", timestamp, token);
	if (n < 0 || (size_t)n >= sizeof msg)
		return err_set(ERR_UNAUTHENTICATED, "the Mailgun token is too long");
	if ((rc = provsig_hmac_hex(p->mailgun, p->mailgun_len, msg, (size_t)n, want)) != 0)
		return rc;
	/* Hex digits compare case-insensitively: fold before the constant-time
	 * comparison rather than branch on each character. */
	for (int i = 0; i < 64; i++)
		got[i] = (char)(signature_hex[i] |
				((signature_hex[i] >= 'A' && signature_hex[i] <= 'F') ? 0x20 : 0));
	got[64] = '\0';
	rc = CRYPTO_memcmp(want, got, 64) == 0
		     ? 0
		     : err_set(ERR_UNAUTHENTICATED, "the Mailgun signature does not verify");
	OPENSSL_cleanse(want, sizeof want);
	return rc;
}

int provsig_postmark_verify(const struct provsig *p, const char *authorization)
{
	unsigned char got[32];
	unsigned int dlen = 0;
	if (!provsig_has_postmark(p) || authorization == NULL || strncasecmp(authorization, "Basic ", 6) != 0)
		return err_set(ERR_UNAUTHENTICATED, "HTTP basic authentication is required");
	const char *cred = authorization + 6;
	while (*cred == ' ')
		cred++;
	/* Hashing both sides first makes the comparison independent of the
	 * length of what was sent. */
	if (EVP_Digest(cred, strlen(cred), got, &dlen, EVP_sha256(), NULL) != 1)
		return err_set(ERR_INTERNAL, "cannot hash the credentials");
	return CRYPTO_memcmp(got, p->postmark, 32) == 0
		       ? 0
		       : err_set(ERR_UNAUTHENTICATED, "the basic authentication credentials are wrong");
}
