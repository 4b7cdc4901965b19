/*
 * http: the HTTPS server, and the only module that includes microhttpd.h.
 *
 * It turns libmicrohttpd's callbacks into a small request lifecycle for the
 * application (service/app.c):
 *
 *   headers in ──> on_headers ──(may respond early, e.g. 413)──┐
 *        │                                                     │
 *        v                                                     │
 *   body chunks ──> buffered (bounded) or on_body (streaming)  │
 *        │                                                     │
 *        v                                                     │
 *   on_complete ──> respond now, or http_suspend() and later   │
 *        │          http_resume() from another thread once the │
 *        │          audit entry is durable                     │
 *        v                                                     v
 *   response queued on a callback after the first, so keep-alive holds
 *
 * Every response carries X-Request-Id and the security headers. TLS 1.2 and
 * 1.3 only; there is no plain-HTTP listener.
 */
#ifndef CONSENTD_HTTP_H
#define CONSENTD_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct http_request;
struct http_server;

struct http_callbacks {
	/* Headers are in. Return 0 to go on; the callback may instead respond
	 * (an early error), and the body is then discarded. */
	void (*on_headers)(struct http_request *req, void *app);
	/* A chunk of body, for requests put in streaming mode by on_headers. */
	void (*on_body)(struct http_request *req, const char *data, size_t len, void *app);
	/* The whole request is in: respond or suspend. */
	void (*on_complete)(struct http_request *req, void *app);
	/* The request is finished (sent, failed or the client went away). */
	void (*on_free)(struct http_request *req, void *app);
};

struct http_config {
	const char *address; /* IPv4 or IPv6 literal */
	uint16_t port;
	const char *cert_pem; /* contents, not paths */
	const char *key_pem;
	unsigned threads;
	struct http_callbacks cb;
	void *app;
};

int http_start(struct http_server **out, const struct http_config *cfg);
void http_stop(struct http_server *srv);
uint16_t http_port(const struct http_server *srv);

/* Request accessors; strings are borrowed for the request's lifetime. */
const char *http_method(const struct http_request *req);
const char *http_path(const struct http_request *req);
const char *http_query(const struct http_request *req, const char *name);
/* Calls cb for every query argument, in order (value is NULL for "?key"
 * without "="); stops at the first non-zero return of cb and returns it. */
typedef int (*http_query_cb)(void *ctx, const char *name, const char *value);
int http_query_each(const struct http_request *req, http_query_cb cb, void *ctx);
const char *http_header(const struct http_request *req, const char *name);
const char *http_client(const struct http_request *req);
const char *http_request_id(const struct http_request *req);
/* The buffered body (NUL-terminated), or NULL in streaming mode. */
const char *http_body(const struct http_request *req, size_t *len);
/* True when a buffered body went over its limit (the rest was discarded). */
bool http_body_too_big(const struct http_request *req);

void http_set_state(struct http_request *req, void *state);
void *http_state(const struct http_request *req);
void http_set_body_limit(struct http_request *req, uint64_t bytes);
void http_set_streaming(struct http_request *req);

/* Responding. Each takes ownership of what it is given. A request gets one
 * response; a second is ignored. */
/* Adds a reply header (copied). Never dropped silently: past the limit (or
 * out of memory) the whole reply becomes a 500, logged. */
void http_add_header(struct http_request *req, const char *name, const char *value);
void http_respond(struct http_request *req, int status, const char *content_type, char *body, size_t len);
/* Streams a body of unknown length (chunked). read returns bytes written to
 * buf, 0 at the end, or -1 on error (the connection is then cut). */
typedef ssize_t (*http_reader)(void *ctx, char *buf, size_t cap);
void http_respond_stream(struct http_request *req, int status, const char *content_type, http_reader read,
			 void *ctx, void (*free_ctx)(void *));

/* Deferral: call http_suspend from on_complete before handing the request to
 * another thread; that thread responds and then calls http_resume. */
void http_suspend(struct http_request *req);
void http_resume(struct http_request *req);

#endif
