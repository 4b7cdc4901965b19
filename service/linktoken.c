/*
 * linktoken: see linktoken.h for the formats. Parsing is strict and
 * allocation-free; everything secret goes through fieldcrypt.
 */
#include "service/linktoken.h"

#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/crypto/fieldcrypt.h"

#include <string.h>

static const char LINK_TAG[] = "consentd-link-v1"; /* sizeof includes the NUL */
static const char CSRF_TAG[] = "consentd-csrf-v1";

static void put_be64(uint8_t *p, int64_t v)
{
	uint64_t u = (uint64_t)v;
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)(u & 0xff);
		u >>= 8;
	}
}

static int64_t get_be64(const uint8_t *p)
{
	uint64_t u = 0;
	for (int i = 0; i < 8; i++)
		u = u << 8 | p[i];
	return (int64_t)u;
}

int linktoken_parse(const char *s, size_t len, struct linktoken *out)
{
	if (s == NULL || len == 0 || len >= LINKTOKEN_CAP)
		return err_set(ERR_INVALID, "not a preference token");
	const char *dot = memchr(s, '.', len);
	if (dot == NULL || memchr(dot + 1, '.', len - (size_t)(dot - s) - 1) != NULL)
		return err_set(ERR_INVALID, "not a preference token");
	size_t plen = (size_t)(dot - s), mlen = len - plen - 1;
	uint8_t buf[LINKTOKEN_MAC_BYTES + 4];
	int n = b64url_decode(s, plen, buf, sizeof buf);
	if (n != LINKTOKEN_PAYLOAD_BYTES)
		return err_set(ERR_INVALID, "not a preference token");
	memcpy(out->payload, buf, LINKTOKEN_PAYLOAD_BYTES);
	n = b64url_decode(dot + 1, mlen, buf, sizeof buf);
	if (n != LINKTOKEN_MAC_BYTES)
		return err_set(ERR_INVALID, "not a preference token");
	memcpy(out->mac, buf, LINKTOKEN_MAC_BYTES);
	out->version = out->payload[0];
	if (out->version != LINKTOKEN_VERSION)
		return err_set(ERR_INVALID, "unknown preference token version");
	memcpy(out->id, out->payload + 1, LINKTOKEN_ID_BYTES);
	out->expires_s = get_be64(out->payload + 1 + LINKTOKEN_ID_BYTES);
	if (out->expires_s <= 0)
		return err_set(ERR_INVALID, "not a preference token");
	return 0;
}

static int link_mac(const struct keyring *kr, const uint8_t payload[LINKTOKEN_PAYLOAD_BYTES],
		    uint8_t mac[LINKTOKEN_MAC_BYTES])
{
	uint8_t msg[sizeof LINK_TAG + LINKTOKEN_PAYLOAD_BYTES];
	memcpy(msg, LINK_TAG, sizeof LINK_TAG);
	memcpy(msg + sizeof LINK_TAG, payload, LINKTOKEN_PAYLOAD_BYTES);
	return fieldcrypt_keyed_hash(kr, FC_HASH_LINK, msg, sizeof msg, mac);
}

int linktoken_make(const struct keyring *kr, const uint8_t id[LINKTOKEN_ID_BYTES], int64_t expires_s,
		   char out[LINKTOKEN_CAP])
{
	uint8_t payload[LINKTOKEN_PAYLOAD_BYTES], mac[LINKTOKEN_MAC_BYTES];
	payload[0] = LINKTOKEN_VERSION;
	memcpy(payload + 1, id, LINKTOKEN_ID_BYTES);
	put_be64(payload + 1 + LINKTOKEN_ID_BYTES, expires_s);
	int rc = link_mac(kr, payload, mac);
	if (rc != 0)
		return rc;
	size_t n = b64url_encode(payload, sizeof payload, out);
	out[n++] = '.';
	b64url_encode(mac, sizeof mac, out + n);
	return 0;
}

int linktoken_verify(const struct keyring *kr, const struct linktoken *t, int64_t now_s)
{
	uint8_t mac[LINKTOKEN_MAC_BYTES];
	int rc = link_mac(kr, t->payload, mac);
	if (rc != 0)
		return rc;
	bool ok = crypto_equal(mac, t->mac, sizeof mac);
	crypto_wipe(mac, sizeof mac);
	if (!ok)
		return err_set(ERR_DENIED, "the preference token's signature does not match");
	if (now_s >= t->expires_s)
		return err_set(ERR_DENIED, "the preference token has expired");
	return 0;
}

void linktoken_id_text(const uint8_t id[LINKTOKEN_ID_BYTES], char out[LINKTOKEN_ID_TEXT_CAP])
{
	b64url_encode(id, LINKTOKEN_ID_BYTES, out);
}

static int csrf_mac(const struct keyring *kr, const uint8_t id[LINKTOKEN_ID_BYTES], const uint8_t *tn,
		    uint8_t mac[LINKTOKEN_CSRF_MAC_BYTES])
{
	uint8_t msg[sizeof CSRF_TAG + LINKTOKEN_ID_BYTES + 8 + LINKTOKEN_CSRF_NONCE_BYTES];
	uint8_t full[FC_HASH_BYTES];
	memcpy(msg, CSRF_TAG, sizeof CSRF_TAG);
	memcpy(msg + sizeof CSRF_TAG, id, LINKTOKEN_ID_BYTES);
	memcpy(msg + sizeof CSRF_TAG + LINKTOKEN_ID_BYTES, tn, 8 + LINKTOKEN_CSRF_NONCE_BYTES);
	int rc = fieldcrypt_keyed_hash(kr, FC_HASH_LINK, msg, sizeof msg, full);
	memcpy(mac, full, LINKTOKEN_CSRF_MAC_BYTES);
	crypto_wipe(full, sizeof full);
	return rc;
}

int linktoken_csrf_make(const struct keyring *kr, const uint8_t id[LINKTOKEN_ID_BYTES], int64_t now_s,
			char out[LINKTOKEN_CSRF_CAP])
{
	uint8_t raw[LINKTOKEN_CSRF_BYTES];
	put_be64(raw, now_s);
	int rc = crypto_random(raw + 8, LINKTOKEN_CSRF_NONCE_BYTES);
	if (rc == 0)
		rc = csrf_mac(kr, id, raw, raw + 8 + LINKTOKEN_CSRF_NONCE_BYTES);
	if (rc != 0)
		return rc;
	b64url_encode(raw, sizeof raw, out);
	return 0;
}

int linktoken_csrf_parse(const char *s, size_t len, struct linktoken_csrf *out)
{
	uint8_t raw[LINKTOKEN_CSRF_BYTES + 4];
	if (s == NULL || len == 0 || len >= LINKTOKEN_CSRF_CAP)
		return err_set(ERR_INVALID, "missing or malformed form token");
	int n = b64url_decode(s, len, raw, sizeof raw);
	if (n != LINKTOKEN_CSRF_BYTES)
		return err_set(ERR_INVALID, "missing or malformed form token");
	out->time_s = get_be64(raw);
	memcpy(out->nonce, raw + 8, LINKTOKEN_CSRF_NONCE_BYTES);
	memcpy(out->mac, raw + 8 + LINKTOKEN_CSRF_NONCE_BYTES, LINKTOKEN_CSRF_MAC_BYTES);
	return 0;
}

int linktoken_csrf_verify(const struct keyring *kr, const uint8_t id[LINKTOKEN_ID_BYTES],
			  const struct linktoken_csrf *c, int64_t now_s, int64_t max_age_s)
{
	uint8_t tn[8 + LINKTOKEN_CSRF_NONCE_BYTES], mac[LINKTOKEN_CSRF_MAC_BYTES];
	put_be64(tn, c->time_s);
	memcpy(tn + 8, c->nonce, LINKTOKEN_CSRF_NONCE_BYTES);
	int rc = csrf_mac(kr, id, tn, mac);
	if (rc != 0)
		return rc;
	if (!crypto_equal(mac, c->mac, sizeof mac))
		return err_set(ERR_DENIED, "the form token does not match this page");
	if (c->time_s > now_s + 60 || now_s - c->time_s > max_age_s)
		return err_set(ERR_DENIED, "the form has expired; reload the page");
	return 0;
}
