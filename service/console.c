/*
 * console: session secrets, cookies, lifetimes and the login rate limit.
 * See console.h for the checks every console request goes through.
 *
 * The rate limit table is a fixed array of CONSOLE_RATE_SLOTS addresses
 * under one mutex. When every slot holds a live address, the oldest window
 * is reused: an attacker spreading over many addresses can make the table
 * forget an address early, never make it refuse one that did nothing.
 */
#include "service/console.h"

#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/base/limits.h"
#include "service/crypto/fieldcrypt.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

int console_secret_new(char out[CONSOLE_SECRET_CAP])
{
	uint8_t raw[32];
	int rc = crypto_random(raw, sizeof raw);
	if (rc != 0)
		return rc;
	b64url_encode(raw, sizeof raw, out);
	crypto_wipe(raw, sizeof raw);
	return 0;
}

void console_hash(const char *secret, uint8_t out[32])
{
	crypto_sha256(secret, strlen(secret), out);
}

static bool secret_shape(const char *s, size_t n)
{
	if (n != CONSOLE_SECRET_CAP - 1)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return false;
	}
	return true;
}

bool console_cookie_get(const char *h, const char *name, char out[CONSOLE_SECRET_CAP])
{
	size_t nlen = strlen(name);
	bool found = false;
	out[0] = '\0';
	while (h != NULL && *h != '\0') {
		while (*h == ' ' || *h == ';')
			h++;
		const char *end = strchr(h, ';');
		size_t len = end ? (size_t)(end - h) : strlen(h);
		if (len > nlen && memcmp(h, name, nlen) == 0 && h[nlen] == '=') {
			const char *v = h + nlen + 1;
			size_t vlen = len - nlen - 1;
			while (vlen > 0 && v[vlen - 1] == ' ')
				vlen--;
			if (!secret_shape(v, vlen))
				return false;
			/* Two cookies of the same name (one planted by a sibling
			 * site with another path) must agree, or neither counts. */
			if (found && (strlen(out) != vlen || memcmp(out, v, vlen) != 0))
				return false;
			memcpy(out, v, vlen);
			out[vlen] = '\0';
			found = true;
		}
		h = end;
	}
	return found;
}

void console_wipe(void *p, size_t n)
{
	crypto_wipe(p, n);
}

bool console_secret_equal(const char *a, const char *b)
{
	size_t n = strlen(a);
	return n == strlen(b) && n > 0 && crypto_equal(a, b, n);
}

/* ---- login rate limit ---- */

static struct {
	char client[64];
	int64_t window_us; /* when the first failure of the window happened; 0: free */
	int failures;
} rate[CONSOLE_RATE_SLOTS];
static pthread_mutex_t rate_lock = PTHREAD_MUTEX_INITIALIZER;

#define WINDOW_US ((int64_t)CONSOLE_LOGIN_WINDOW_SECONDS * 1000000)

/* The slot of client, or -1; expired windows are freed on the way. */
static int rate_find(const char *client, int64_t now)
{
	int at = -1;
	for (int i = 0; i < CONSOLE_RATE_SLOTS; i++) {
		if (rate[i].window_us != 0 && now - rate[i].window_us >= WINDOW_US)
			rate[i].window_us = 0;
		if (rate[i].window_us != 0 && strcmp(rate[i].client, client) == 0)
			at = i;
	}
	return at;
}

bool console_login_allowed(const char *client, int64_t now, int *retry_s)
{
	bool ok = true;
	pthread_mutex_lock(&rate_lock);
	int i = rate_find(client, now);
	if (i >= 0 && rate[i].failures >= CONSOLE_LOGIN_FAILURES) {
		ok = false;
		*retry_s = (int)((rate[i].window_us + WINDOW_US - now) / 1000000) + 1;
	}
	pthread_mutex_unlock(&rate_lock);
	return ok;
}

void console_login_failed(const char *client, int64_t now)
{
	pthread_mutex_lock(&rate_lock);
	int i = rate_find(client, now);
	if (i < 0) {
		int oldest = 0;
		for (int j = 0; j < CONSOLE_RATE_SLOTS; j++) {
			if (rate[j].window_us == 0) {
				oldest = j;
				break;
			}
			if (rate[j].window_us < rate[oldest].window_us)
				oldest = j;
		}
		i = oldest;
		snprintf(rate[i].client, sizeof rate[i].client, "%s", client);
		rate[i].window_us = now;
		rate[i].failures = 0;
	}
	rate[i].failures++;
	pthread_mutex_unlock(&rate_lock);
}

void console_login_succeeded(const char *client)
{
	pthread_mutex_lock(&rate_lock);
	for (int i = 0; i < CONSOLE_RATE_SLOTS; i++)
		if (rate[i].window_us != 0 && strcmp(rate[i].client, client) == 0)
			rate[i].window_us = 0;
	pthread_mutex_unlock(&rate_lock);
}
