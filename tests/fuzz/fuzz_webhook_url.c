/*
 * fuzz_webhook_url: the webhook target checks (service/domain/webhook.c),
 * the guard against server-side request forgery: webhook_check_url on the
 * URL an admin gives, webhook_addr_public and webhook_addr_loopback on every
 * address the delivery workers are about to connect to.
 *
 * Input: the first byte holds flags (bit 0: allow_private_targets); the
 * bytes after it are the URL, and their first 4 and 16 bytes are also
 * judged as an IPv4 and an IPv6 address.
 *
 * Invariants checked (abort on violation):
 * - both address checks agree with a reference written here independently,
 *   as a table of the non-public prefixes (IANA special-purpose registries);
 *   only global unicast IPv6 is public, IPv4-mapped and 6to4 are judged by
 *   the IPv4 address inside them;
 * - webhook_check_url answers 0 or ERR_INVALID; a URL it accepts is printable
 *   ASCII within LIMIT_WEBHOOK_URL_BYTES, is https:// (http:// only with
 *   allow_private_targets, and then to a loopback host), holds no
 *   credentials, and a literal address in it is public unless
 *   allow_private_targets; what it accepts without the switch it accepts
 *   with it.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "service/base/error.h"
#include "service/base/limits.h"
#include "service/domain/webhook.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct prefix {
	uint8_t addr[16];
	int bits;
};

static bool in_prefix(const uint8_t *a, const struct prefix *p)
{
	for (int i = 0; i < p->bits; i++) {
		int byte = i / 8, bit = 7 - i % 8;
		if (((a[byte] >> bit) & 1) != ((p->addr[byte] >> bit) & 1))
			return false;
	}
	return true;
}

static const struct prefix v4_private[] = {
	{ { 0 }, 8 },	       /* this network */
	{ { 10 }, 8 },	       /* private */
	{ { 100, 64 }, 10 },   /* shared address space */
	{ { 127 }, 8 },	       /* loopback */
	{ { 169, 254 }, 16 },  /* link-local, cloud metadata */
	{ { 172, 16 }, 12 },   /* private */
	{ { 192, 0, 0 }, 24 }, /* IETF protocol assignments */
	{ { 192, 0, 2 }, 24 }, /* TEST-NET-1 */
	{ { 192, 168 }, 16 },  /* private */
	{ { 198, 18 }, 15 },   /* benchmarking */
	{ { 224 }, 4 },	       /* multicast */
	{ { 240 }, 4 },	       /* reserved, broadcast */
};

static const struct prefix v6_private[] = {
	{ { 0x20, 0x01, 0x00, 0x00 }, 32 }, /* Teredo */
	{ { 0x20, 0x01, 0x00, 0x10 }, 28 }, /* ORCHID */
	{ { 0x20, 0x01, 0x0d, 0xb8 }, 32 }, /* documentation */
	{ { 0x3f, 0xff }, 20 },		    /* documentation */
};

static bool ref_public4(const uint8_t *a)
{
	for (size_t i = 0; i < sizeof v4_private / sizeof v4_private[0]; i++)
		if (in_prefix(a, &v4_private[i]))
			return false;
	return true;
}

static bool ref_public6(const uint8_t *a)
{
	static const struct prefix mapped = { { [10] = 0xff, [11] = 0xff }, 96 };
	static const struct prefix global = { { 0x20 }, 3 };
	static const struct prefix six_to_four = { { 0x20, 0x02 }, 16 };
	if (in_prefix(a, &mapped))
		return ref_public4(a + 12);
	if (!in_prefix(a, &global))
		return false;
	if (in_prefix(a, &six_to_four))
		return ref_public4(a + 2);
	for (size_t i = 0; i < sizeof v6_private / sizeof v6_private[0]; i++)
		if (in_prefix(a, &v6_private[i]))
			return false;
	return true;
}

static bool ref_loopback(int family, const uint8_t *a)
{
	static const struct prefix loop6 = { { [15] = 1 }, 128 };
	static const struct prefix mapped_loop = { { [10] = 0xff, [11] = 0xff, [12] = 127 }, 104 };
	if (family == AF_INET)
		return a[0] == 127;
	return in_prefix(a, &loop6) || in_prefix(a, &mapped_loop);
}

/* The host of an accepted URL, by a parse of its own: the authority ends at
 * the first / ? or #, a bracketed IPv6 literal at its ]. */
static void url_host(const char *url, char *host, size_t cap)
{
	const char *p = strstr(url, "://") + 3;
	size_t alen = strcspn(p, "/?#"), n;
	if (p[0] == '[') {
		const char *end = memchr(p, ']', alen);
		if (end == NULL)
			abort(); /* accepted with an unclosed bracket */
		p++;
		n = (size_t)(end - p);
	} else {
		const char *colon = memchr(p, ':', alen);
		n = colon ? (size_t)(colon - p) : alen;
	}
	if (n == 0 || n >= cap)
		abort(); /* accepted without a host */
	memcpy(host, p, n);
	host[n] = '\0';
}

static void check_url(const char *url, bool allow_private)
{
	err_clear();
	int rc = webhook_check_url(url, allow_private);
	if (rc != 0) {
		if (rc != ERR_INVALID || err_code() != ERR_INVALID)
			abort();
		return;
	}
	size_t n = strlen(url);
	if (n == 0 || n > LIMIT_WEBHOOK_URL_BYTES)
		abort();
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)url[i] <= 0x20 || (unsigned char)url[i] >= 0x7f)
			abort();
	bool http = strncmp(url, "http://", 7) == 0;
	if (!http && strncmp(url, "https://", 8) != 0)
		abort();
	if (http && !allow_private)
		abort();
	const char *auth = strstr(url, "://") + 3;
	if (memchr(auth, '@', strcspn(auth, "/?#")) != NULL)
		abort();
	char host[256];
	uint8_t a[16];
	url_host(url, host, sizeof host);
	int family = inet_pton(AF_INET, host, a) == 1	 ? AF_INET
		     : inet_pton(AF_INET6, host, a) == 1 ? AF_INET6
							 : 0;
	if (family != 0 && !allow_private && !(family == AF_INET ? ref_public4(a) : ref_public6(a)))
		abort();
	if (http && !(family != 0 ? ref_loopback(family, a) : strcmp(host, "localhost") == 0))
		abort();
	if (!allow_private && webhook_check_url(url, true) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t a[16] = { 0 };
	if (size == 0)
		return 0;
	bool allow_private = data[0] & 1;
	const uint8_t *rest = data + 1;
	size_t n = size - 1;
	memcpy(a, rest, n < 16 ? n : 16);
	if (webhook_addr_public(AF_INET, a) != ref_public4(a) ||
	    webhook_addr_public(AF_INET6, a) != ref_public6(a))
		abort();
	if (webhook_addr_loopback(AF_INET, a) != ref_loopback(AF_INET, a) ||
	    webhook_addr_loopback(AF_INET6, a) != ref_loopback(AF_INET6, a))
		abort();
	/* The URL is a C string; bytes past a NUL are not part of it. */
	char *url = malloc(n + 1);
	if (url == NULL)
		return 0;
	memcpy(url, rest, n);
	url[n] = '\0';
	check_url(url, allow_private);
	free(url);
	return 0;
}
