/*
 * snscert: SNS certificate fetches and subscription confirmations (see
 * snscert.h). One of the files that include curl/curl.h.
 */
#include "service/snscert.h"

#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/base/limits.h"
#include "service/domain/webhook.h"

#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define SNSCERT_URL_CAP 1024

struct cached {
	char url[SNSCERT_URL_CAP];
	char *pem;
	size_t len;
	int64_t fetched_us, used_us;
};

struct snscert {
	pthread_mutex_t lock;
	struct cached cache[LIMIT_SNS_CERT_CACHE];
	char ca_file[4096];
};

/* What one request collects: the answer up to cap bytes, and whether an
 * address was refused. */
struct fetch {
	char *buf;
	size_t len, cap;
	bool too_big, refused, allow_loopback;
};

int snscert_open(struct snscert **out, const char *ca_file)
{
	struct snscert *sc = calloc(1, sizeof *sc);
	*out = NULL;
	if (sc == NULL)
		return err_set(ERR_NOMEM, "out of memory");
	if (ca_file != NULL && strlen(ca_file) >= sizeof sc->ca_file) {
		free(sc);
		return err_set(ERR_INVALID, "events.ses.ca_file: the path is too long");
	}
	snprintf(sc->ca_file, sizeof sc->ca_file, "%s", ca_file ? ca_file : "");
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		free(sc);
		return err_set(ERR_IO, "cannot initialise libcurl");
	}
	pthread_mutex_init(&sc->lock, NULL);
	*out = sc;
	return 0;
}

void snscert_free(struct snscert *sc)
{
	if (sc == NULL)
		return;
	for (int i = 0; i < LIMIT_SNS_CERT_CACHE; i++)
		free(sc->cache[i].pem);
	pthread_mutex_destroy(&sc->lock);
	free(sc);
	curl_global_cleanup();
}

static curl_socket_t open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct fetch *f = clientp;
	const uint8_t *addr = NULL;
	(void)purpose;
	if (a->family == AF_INET)
		addr = (const uint8_t *)&((const struct sockaddr_in *)&a->addr)->sin_addr;
	else if (a->family == AF_INET6)
		addr = (const uint8_t *)&((const struct sockaddr_in6 *)&a->addr)->sin6_addr;
	bool ok = addr != NULL && (webhook_addr_public(a->family, addr) ||
				   (f->allow_loopback && webhook_addr_loopback(a->family, addr)));
	if (!ok) {
		f->refused = true;
		return CURL_SOCKET_BAD;
	}
	return socket(a->family, a->socktype, a->protocol);
}

static size_t collect(char *p, size_t size, size_t n, void *ctx)
{
	struct fetch *f = ctx;
	size_t add = size * n;
	if (f->buf == NULL)
		return add; /* the answer is not wanted */
	if (add > f->cap - f->len) {
		f->too_big = true;
		return 0; /* curl stops with a write error */
	}
	memcpy(f->buf + f->len, p, add);
	f->len += add;
	return add;
}

/* GETs url; *status the HTTP status (0 when none). */
static int get(struct snscert *sc, const char *url, struct fetch *f, long *status)
{
	CURL *h = curl_easy_init();
	*status = 0;
	if (h == NULL)
		return err_set(ERR_NOMEM, "out of memory");
	f->allow_loopback = sc->ca_file[0] != '\0';
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_PROXY, ""); /* an environment proxy would bypass the address check */
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	if (sc->ca_file[0] != '\0')
		curl_easy_setopt(h, CURLOPT_CAINFO, sc->ca_file);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)LIMIT_SNS_FETCH_SECONDS);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)LIMIT_SNS_FETCH_SECONDS);
	curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_socket);
	curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, f);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "consentd-sns/1");
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, f);
	CURLcode cc = curl_easy_perform(h);
	if (cc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	curl_easy_cleanup(h);
	if (f->too_big)
		return err_set(ERR_TOOBIG, "the SNS certificate is larger than %d bytes",
			       LIMIT_SNS_CERT_BYTES);
	if (cc != CURLE_OK)
		return err_set(ERR_UNAVAILABLE, "%s",
			       f->refused ? "the SNS host resolved to a non-public address"
					  : curl_easy_strerror(cc));
	if (*status < 200 || *status >= 300)
		return err_set(ERR_UNAVAILABLE, "the SNS host answered %ld", *status);
	return 0;
}

/* A copy of the cached certificate for url, or ERR_NOTFOUND. Under lock. */
static int cache_find(struct snscert *sc, const char *url, int64_t now, char **pem, size_t *len)
{
	for (int i = 0; i < LIMIT_SNS_CERT_CACHE; i++) {
		struct cached *c = &sc->cache[i];
		if (c->pem == NULL || strcmp(c->url, url) != 0)
			continue;
		if (now - c->fetched_us > (int64_t)LIMIT_SNS_CERT_SECONDS * 1000000)
			return ERR_NOTFOUND;
		if ((*pem = malloc(c->len + 1)) == NULL)
			return err_set(ERR_NOMEM, "out of memory");
		memcpy(*pem, c->pem, c->len + 1);
		*len = c->len;
		c->used_us = now;
		return 0;
	}
	return ERR_NOTFOUND;
}

/* Keeps pem for url, in the slot of the same URL, a free one, or the least
 * recently used. Under lock. */
static void cache_put(struct snscert *sc, const char *url, const char *pem, size_t len, int64_t now)
{
	struct cached *slot = NULL;
	for (int i = 0; i < LIMIT_SNS_CERT_CACHE && slot == NULL; i++)
		if (sc->cache[i].pem != NULL && strcmp(sc->cache[i].url, url) == 0)
			slot = &sc->cache[i];
	for (int i = 0; i < LIMIT_SNS_CERT_CACHE && slot == NULL; i++)
		if (sc->cache[i].pem == NULL)
			slot = &sc->cache[i];
	if (slot == NULL) {
		slot = &sc->cache[0];
		for (int i = 1; i < LIMIT_SNS_CERT_CACHE; i++)
			if (sc->cache[i].used_us < slot->used_us)
				slot = &sc->cache[i];
	}
	char *copy = malloc(len + 1);
	if (copy == NULL)
		return; /* not cached: the next message fetches it again */
	memcpy(copy, pem, len + 1);
	free(slot->pem);
	snprintf(slot->url, sizeof slot->url, "%s", url);
	slot->pem = copy;
	slot->len = len;
	slot->fetched_us = slot->used_us = now;
}

int snscert_get(void *ctx, const char *url, char **pem, size_t *len)
{
	struct snscert *sc = ctx;
	struct fetch f = { 0 };
	long status = 0;
	int64_t now = now_us();
	*pem = NULL;
	*len = 0;
	if (sc == NULL || url == NULL || strlen(url) >= SNSCERT_URL_CAP)
		return err_set(ERR_UNAVAILABLE, "no SNS certificate can be fetched");
	pthread_mutex_lock(&sc->lock);
	int rc = cache_find(sc, url, now, pem, len);
	pthread_mutex_unlock(&sc->lock);
	if (rc != ERR_NOTFOUND)
		return rc;
	/* Fetched without the lock: a slow SNS host must not hold up the
	 * messages whose certificate is cached. Two fetches of one URL at
	 * once both land in the same slot. */
	if ((f.buf = malloc(LIMIT_SNS_CERT_BYTES + 1)) == NULL)
		return err_set(ERR_NOMEM, "out of memory");
	f.cap = LIMIT_SNS_CERT_BYTES;
	if ((rc = get(sc, url, &f, &status)) != 0) {
		free(f.buf);
		return rc;
	}
	f.buf[f.len] = '\0';
	pthread_mutex_lock(&sc->lock);
	cache_put(sc, url, f.buf, f.len, now);
	pthread_mutex_unlock(&sc->lock);
	*pem = f.buf;
	*len = f.len;
	return 0;
}

int snscert_confirm(struct snscert *sc, const char *url)
{
	struct fetch f = { 0 }; /* no buffer: the answer is discarded */
	long status = 0;
	if (sc == NULL || url == NULL)
		return err_set(ERR_UNAVAILABLE, "the subscription cannot be confirmed");
	return get(sc, url, &f, &status);
}
