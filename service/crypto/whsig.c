/*
 * whsig: Standard Webhooks signing (see whsig.h). The signed content is
 * fed to HMAC in three parts, so the body is never copied.
 */
#include "service/crypto/whsig.h"

#include "service/base/error.h"
#include "service/crypto/fieldcrypt.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>

#define WHSIG_PREFIX "whsec_"

int whsig_secret_new(char out[WHSIG_SECRET_CAP])
{
	uint8_t key[WHSIG_KEY_BYTES];
	int rc = crypto_random(key, sizeof key);
	if (rc == 0) {
		memcpy(out, WHSIG_PREFIX, 6);
		EVP_EncodeBlock((unsigned char *)out + 6, key, sizeof key);
	}
	crypto_wipe(key, sizeof key);
	return rc;
}

int whsig_secret_key(const char *secret, uint8_t key[WHSIG_KEY_MAX], size_t *key_len)
{
	uint8_t buf[WHSIG_SECRET_CAP];
	size_t n = secret ? strlen(secret) : 0;
	int rc = 0;
	if (n <= 6 || strncmp(secret, WHSIG_PREFIX, 6) != 0 || (n - 6) % 4 != 0 || n >= WHSIG_SECRET_CAP)
		return err_set(ERR_INVALID, "a webhook secret is whsec_ followed by base64");
	int len = EVP_DecodeBlock(buf, (const unsigned char *)secret + 6, (int)(n - 6));
	/* EVP_DecodeBlock counts the padding as zero bytes; take them off. */
	if (len > 0 && secret[n - 1] == '=')
		len--;
	if (len > 0 && secret[n - 2] == '=')
		len--;
	if (len <= 0 || len > WHSIG_KEY_MAX) {
		rc = err_set(ERR_INVALID, "a webhook secret is whsec_ followed by base64");
		goto out;
	}
	memcpy(key, buf, (size_t)len);
	*key_len = (size_t)len;
out:
	crypto_wipe(buf, sizeof buf);
	return rc;
}

int whsig_sign(const uint8_t *key, size_t key_len, const char *id, int64_t timestamp, const char *body,
	       size_t body_len, char out[WHSIG_SIG_CAP])
{
	char head[160];
	unsigned char mac[32];
	size_t mac_len = 0;
	int rc = 0;
	EVP_MAC *alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = alg ? EVP_MAC_CTX_new(alg) : NULL;
	OSSL_PARAM params[] = { OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
				OSSL_PARAM_construct_end() };
	int n = snprintf(head, sizeof head, "%s.%" PRId64 ".", id, timestamp);
	if (n < 0 || (size_t)n >= sizeof head) {
		rc = err_set(ERR_INVALID, "the webhook id is too long to sign");
		goto out;
	}
	if (ctx == NULL || EVP_MAC_init(ctx, key, key_len, params) != 1 ||
	    EVP_MAC_update(ctx, (const unsigned char *)head, (size_t)n) != 1 ||
	    EVP_MAC_update(ctx, (const unsigned char *)body, body_len) != 1 ||
	    EVP_MAC_final(ctx, mac, &mac_len, sizeof mac) != 1 || mac_len != sizeof mac) {
		rc = err_set(ERR_CRYPTO, "cannot compute the webhook signature");
		goto out;
	}
	memcpy(out, "v1,", 3);
	EVP_EncodeBlock((unsigned char *)out + 3, mac, sizeof mac);
out:
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(alg);
	crypto_wipe(mac, sizeof mac);
	return rc;
}
