/*
 * http: libmicrohttpd (GnuTLS) glue. See http.h for the lifecycle.
 *
 * Invariants:
 * - A normal response is queued on a callback after the first one for its
 *   request: libmicrohttpd 0.9.75 closes a connection whose response was
 *   queued on the first callback, and TLS handshakes then dominate. Only
 *   early refusals (413 on a declared oversized body) answer on the first
 *   callback, where closing the connection is what we want.
 * - Bodies are bounded: the buffered mode keeps at most body_limit bytes and
 *   discards (and flags) the rest; streaming mode hands chunks on and keeps
 *   nothing.
 * - Suspend happens before the request is handed to another thread, so a
 *   resume can never precede its suspend.
 */
#include "service/http.h"
#include "service/log.h"

#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/base/limits.h"
#include "service/crypto/fieldcrypt.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_EXTRA_HEADERS 12
/* A buffered body's first allocation; it doubles up to the route's limit. */
#define HTTP_BODY_FIRST_BYTES 1024
/* Strict-Transport-Security: browsers keep to HTTPS for a year, the
 * period the HSTS preload list asks for. */
#define HTTP_HSTS_MAX_AGE "31536000"

/* TLS 1.3, and TLS 1.2 with forward-secret key exchange and AEAD ciphers
 * only: no CBC suite (padding oracles, Lucky13), no SHA-1 MAC or
 * signature, no static-RSA key exchange. GnuTLS priority syntax; check
 * with `gnutls-cli --priority STRING -l`. */
#define TLS_PRIORITIES                                                                                       \
	"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:"                  \
	"+CHACHA20-POLY1305:-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:-SIGN-RSA-SHA1:"                  \
	"-SIGN-ECDSA-SHA1:-SIGN-DSA-SHA1:%SERVER_PRECEDENCE"

struct http_server {
	struct MHD_Daemon *daemon;
	struct http_callbacks cb;
	void *app;
	uint16_t port;
	uint64_t id_prefix;
	atomic_uint_fast64_t id_counter;
};

enum req_state { R_HEADERS, R_BODY, R_SUSPENDED, R_READY, R_QUEUED };

struct http_request {
	struct http_server *srv;
	struct MHD_Connection *conn;
	const char *method, *path;
	char request_id[40];
	char method_copy[33]; /* for the JSON log's request line */
	int64_t started_us;
	char client[INET6_ADDRSTRLEN];
	enum req_state state;
	bool started;		/* on_access has seen this request */
	const char *bad_target; /* set by log_uri: why the raw target is refused */
	bool deferred;		/* set by http_suspend on the HTTP thread; never by the commit thread */
	bool streaming, too_big, early;
	uint64_t body_limit, body_bytes;
	char *body;
	size_t body_len, body_cap;
	void *app_state;

	/* the pending response */
	struct MHD_Response *response;
	int status;
	int n_headers;
	char *header_names[MAX_EXTRA_HEADERS], *header_values[MAX_EXTRA_HEADERS];
	bool header_dropped; /* one did not fit or could not be copied: the reply is a 500 */
	bool have_response;
};

static void make_request_id(struct http_request *req)
{
	const char *given = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "X-Request-Id");
	if (given != NULL) {
		size_t n = strlen(given);
		bool ok = n > 0 && n < sizeof req->request_id && n <= 64;
		for (size_t i = 0; ok && i < n; i++) {
			char c = given[i];
			ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			     c == '-' || c == '_' || c == '.';
		}
		if (ok) {
			memcpy(req->request_id, given, n + 1);
			return;
		}
	}
	uint64_t n = atomic_fetch_add(&req->srv->id_counter, 1);
	snprintf(req->request_id, sizeof req->request_id, "%08llx%08llx",
		 (unsigned long long)(req->srv->id_prefix & 0xffffffffu), (unsigned long long)n);
}

static void client_address(struct http_request *req)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	strcpy(req->client, "unknown");
	if (ci == NULL || ci->client_addr == NULL)
		return;
	const struct sockaddr *sa = ci->client_addr;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, req->client,
			  sizeof req->client);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, req->client,
			  sizeof req->client);
}

static void apply_headers(struct http_request *req)
{
	struct MHD_Response *r = req->response;
	MHD_add_response_header(r, "X-Request-Id", req->request_id);
	MHD_add_response_header(r, "Cache-Control", "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(r, "Strict-Transport-Security", "max-age=" HTTP_HSTS_MAX_AGE);
	for (int i = 0; i < req->n_headers; i++)
		MHD_add_response_header(r, req->header_names[i], req->header_values[i]);
}

static enum MHD_Result queue(struct http_request *req)
{
	if (req->header_dropped) {
		/* A reply without one of its headers (a cookie's flags, a
		 * Retry-After, an Allow) says something else than was meant:
		 * answer that the server failed instead. */
		static const char body[] = "{\"type\":\"https://consentd.dev/problems/internal\","
					   "\"title\":\"Internal error\",\"status\":500}";
		struct MHD_Response *r = MHD_create_response_from_buffer(sizeof body - 1, (void *)body,
									 MHD_RESPMEM_PERSISTENT);
		fprintf(stderr,
			"consentd: request %s: a reply header did not fit (more than %d); "
			"answered 500 instead\n",
			req->request_id, MAX_EXTRA_HEADERS);
		if (r != NULL) {
			MHD_add_response_header(r, "Content-Type", "application/problem+json");
			MHD_destroy_response(req->response);
			req->response = r;
			req->status = 500;
			for (int i = 0; i < req->n_headers; i++) {
				free(req->header_names[i]);
				free(req->header_values[i]);
			}
			req->n_headers = 0;
		}
	}
	apply_headers(req);
	enum MHD_Result ret = MHD_queue_response(req->conn, (unsigned)req->status, req->response);
	MHD_destroy_response(req->response);
	req->response = NULL;
	req->state = R_QUEUED;
	return ret;
}

/* What the header walk found that decides how the body is framed. */
struct framing {
	const char *content_length; /* the first one */
	bool lengths_differ, transfer_encoding, te_not_chunked, bad_name;
};

static bool is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static enum MHD_Result framing_one(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct framing *f = cls;
	(void)kind;
	if (key[0] == '\0')
		f->bad_name = true;
	for (const char *k = key; *k != '\0'; k++)
		f->bad_name = f->bad_name || !is_tchar((unsigned char)*k);
	if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
		if (f->content_length != NULL && strcmp(f->content_length, value) != 0)
			f->lengths_differ = true;
		if (f->content_length == NULL)
			f->content_length = value;
	} else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
		f->te_not_chunked =
			f->te_not_chunked || f->transfer_encoding || strcasecmp(value, "chunked") != 0;
		f->transfer_encoding = true;
	}
	return MHD_YES;
}

/* Behind a proxy, any request two parsers could frame differently is a
 * smuggling vector (RFC 9112 6.3, 11.2): refused, never guessed at. */
static const char *framing_problem(struct http_request *req, const char *version)
{
	struct framing f = { 0 };
	if (req->bad_target != NULL)
		return req->bad_target;
	MHD_get_connection_values(req->conn, MHD_HEADER_KIND, framing_one, &f);
	if (f.bad_name)
		return "a header name may not contain whitespace or separators (nothing before the colon)";
	if (f.transfer_encoding && f.content_length != NULL)
		return "a request may not have both Content-Length and Transfer-Encoding";
	if (f.lengths_differ)
		return "the request has two different Content-Length values";
	if (f.te_not_chunked)
		return "the only Transfer-Encoding accepted is a single chunked";
	if (version != NULL && strcmp(version, MHD_HTTP_VERSION_1_1) == 0 &&
	    MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST) == NULL)
		return "an HTTP/1.1 request needs a Host header";
	return NULL;
}

/* Refusals libmicrohttpd does not make itself, answered as problem+json on
 * the first callback, with the connection closed: its framing (or what is
 * left of its stream) cannot be trusted. An HTTP/1.1 request without Host
 * (RFC 9112 3.2) is one of them. Oversized headers never get here: they do
 * not fit the connection's memory pool and libmicrohttpd answers 431. */
static bool refuse_early(struct http_request *req, const char *version)
{
	const char *why = framing_problem(req, version);
	if (why == NULL)
		return false;
	char *body = NULL;
	if (asprintf(&body,
		     "{\"type\":\"https://consentd.dev/problems/invalid-request\","
		     "\"title\":\"The request is malformed\",\"status\":400,"
		     "\"detail\":\"%s\",\"request_id\":\"%s\"}",
		     why, req->request_id) < 0)
		return false;
	http_respond(req, 400, "application/problem+json", body, strlen(body));
	http_add_header(req, MHD_HTTP_HEADER_CONNECTION, "close");
	return true;
}

/* Sees the request target as it arrived, before any decoding: a NUL byte
 * (which would silently end the C string every later stage sees), an
 * encoded slash (which would change how the path splits into segments
 * after decoding) or an encoded NUL in the path are refused. Returns the
 * request's state, which on_access then finds in *con_cls. */
static void *log_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	(void)cls;
	(void)conn;
	struct http_request *req = calloc(1, sizeof *req);
	if (req == NULL)
		return NULL; /* on_access allocates (and refuses nothing here) */
	size_t n = strlen(uri);
	/* libmicrohttpd ends the target with the NUL that replaced the space
	 * before the version, so the version must follow at once. */
	if (strncmp(uri + n + 1, "HTTP/", 5) != 0)
		req->bad_target = "the request target contains a NUL byte";
	const char *query = strchr(uri, '?');
	size_t path_len = query != NULL ? (size_t)(query - uri) : n;
	for (size_t i = 0; req->bad_target == NULL && i + 2 < path_len; i++) {
		if (uri[i] != '%')
			continue;
		if (uri[i + 1] == '2' && (uri[i + 2] == 'f' || uri[i + 2] == 'F'))
			req->bad_target = "the path contains an encoded slash (%2F)";
		else if (uri[i + 1] == '0' && uri[i + 2] == '0')
			req->bad_target = "the path contains an encoded NUL (%00)";
	}
	return req;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				 const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	struct http_server *srv = cls;
	struct http_request *req = *con_cls;

	if (req == NULL || !req->started) {
		if (req == NULL && (req = calloc(1, sizeof *req)) == NULL)
			return MHD_NO;
		req->started = true;
		req->srv = srv;
		req->conn = conn;
		req->method = method;
		req->path = url;
		req->body_limit = LIMIT_BODY_BYTES;
		make_request_id(req);
		if (log_is_json()) {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			req->started_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
			snprintf(req->method_copy, sizeof req->method_copy, "%s", method);
		}
		client_address(req);
		*con_cls = req;
		if (!refuse_early(req, version))
			srv->cb.on_headers(req, srv->app);
		if (req->have_response) {
			req->early = true;
			return queue(req);
		}
		req->state = R_BODY;
		return MHD_YES;
	}

	if (*upload_size != 0) {
		size_t len = *upload_size;
		*upload_size = 0;
		if (req->early || req->have_response)
			return MHD_YES;
		req->body_bytes += len;
		if (req->streaming) {
			if (req->body_bytes > req->body_limit) {
				req->too_big = true;
				return MHD_YES;
			}
			srv->cb.on_body(req, upload, len, srv->app);
			return MHD_YES;
		}
		if (req->too_big || req->body_len + len > req->body_limit) {
			req->too_big = true;
			return MHD_YES;
		}
		if (req->body_len + len + 1 > req->body_cap) {
			size_t cap = req->body_cap ? req->body_cap : HTTP_BODY_FIRST_BYTES;
			while (cap < req->body_len + len + 1)
				cap *= 2;
			char *n = realloc(req->body, cap);
			if (n == NULL)
				return MHD_NO;
			req->body = n;
			req->body_cap = cap;
		}
		memcpy(req->body + req->body_len, upload, len);
		req->body_len += len;
		req->body[req->body_len] = '\0';
		return MHD_YES;
	}

	switch (req->state) {
	case R_BODY:
		srv->cb.on_complete(req, srv->app);
		/* Deferred: the commit thread may already have resumed it (and set
		 * state), but the reply is queued only on the resumed callback. */
		if (req->deferred)
			return MHD_YES;
		if (!req->have_response) {
			/* A handler that neither answered nor deferred is a bug. */
			static const char body[] = "{\"type\":\"https://consentd.dev/problems/internal\","
						   "\"title\":\"Internal error\",\"status\":500}";
			http_respond(req, 500, "application/problem+json", strdup(body), sizeof body - 1);
		}
		return queue(req);
	case R_READY:
	case R_SUSPENDED:
		/* The resumed callback; http_resume set the reply before resuming,
		 * and MHD_resume_connection's lock publishes it to this thread. */
		if (req->have_response)
			return queue(req);
		return MHD_NO;
	default: return MHD_NO;
	}
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct http_server *srv = cls;
	struct http_request *req = *con_cls;
	(void)conn;
	(void)toe;
	if (req == NULL)
		return;
	if (req->started_us != 0) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		log_request(req->request_id, req->method_copy, req->status,
			    (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000 - req->started_us);
	}
	srv->cb.on_free(req, srv->app);
	if (req->response != NULL)
		MHD_destroy_response(req->response);
	for (int i = 0; i < req->n_headers; i++) {
		free(req->header_names[i]);
		free(req->header_values[i]);
	}
	free(req->body);
	free(req);
	*con_cls = NULL;
}

/* libmicrohttpd's URL and argument decoding, replaced by percent_decode():
 * a decoded control byte becomes DEL, which every validator refuses. */
static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
	(void)cls;
	(void)c;
	return percent_decode(s);
}

/* The format attribute lets clang's -Wformat-nonliteral see that fmt is
 * libmicrohttpd's own printf-style format. */
__attribute__((format(printf, 2, 0))) static void log_mhd(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	fputs("consentd: http: ", stderr);
	vfprintf(stderr, fmt, ap);
}

int http_start(struct http_server **out, const struct http_config *cfg)
{
	struct http_server *srv = calloc(1, sizeof *srv);
	struct sockaddr_storage ss;
	socklen_t sslen;
	if (srv == NULL)
		return err_set(ERR_NOMEM, "out of memory");
	memset(&ss, 0, sizeof ss);
	unsigned flags =
		MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_TLS | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	if (inet_pton(AF_INET, cfg->address, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(cfg->port);
		sslen = sizeof *sin;
	} else if (inet_pton(AF_INET6, cfg->address, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(cfg->port);
		sslen = sizeof *sin6;
		flags |= MHD_USE_IPv6;
	} else {
		free(srv);
		return err_set(ERR_INVALID, "listen address %s is not an IP literal", cfg->address);
	}
	(void)sslen;
	srv->cb = cfg->cb;
	srv->app = cfg->app;
	crypto_random(&srv->id_prefix, sizeof srv->id_prefix);
	srv->daemon = MHD_start_daemon(
		flags, cfg->port, NULL, NULL, on_access, srv, MHD_OPTION_EXTERNAL_LOGGER, log_mhd, NULL,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_HTTPS_MEM_CERT, cfg->cert_pem,
		MHD_OPTION_HTTPS_MEM_KEY, cfg->key_pem, MHD_OPTION_HTTPS_PRIORITIES, TLS_PRIORITIES,
		MHD_OPTION_CONNECTION_LIMIT, LIMIT_CONNECTIONS, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
		LIMIT_CONNECTIONS_PER_IP, MHD_OPTION_CONNECTION_TIMEOUT, LIMIT_IDLE_SECONDS,
		/* The pool holds the request line and headers; libmicrohttpd zeroes
		 * it for every request, so it is kept at its default size. */
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)LIMIT_CONNECTION_MEMORY,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
		MHD_OPTION_URI_LOG_CALLBACK, log_uri, NULL,
		/* Last on purpose: with one worker there is no pool (the daemon's
		 * own epoll thread serves), and the option becomes the end marker. */
		cfg->threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, cfg->threads,
		MHD_OPTION_END);
	if (srv->daemon == NULL) {
		free(srv);
		return err_set(ERR_UNAVAILABLE, "cannot listen on %s:%u (in use, or bad certificate)",
			       cfg->address, cfg->port);
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
	srv->port = di ? di->port : cfg->port;
	*out = srv;
	return 0;
}

void http_stop(struct http_server *srv)
{
	if (srv == NULL)
		return;
	MHD_stop_daemon(srv->daemon);
	free(srv);
}

uint16_t http_port(const struct http_server *srv)
{
	return srv->port;
}

const char *http_method(const struct http_request *req)
{
	return req->method;
}
const char *http_path(const struct http_request *req)
{
	return req->path;
}
const char *http_client(const struct http_request *req)
{
	return req->client;
}
const char *http_request_id(const struct http_request *req)
{
	return req->request_id;
}
bool http_body_too_big(const struct http_request *req)
{
	return req->too_big;
}
void http_set_state(struct http_request *req, void *state)
{
	req->app_state = state;
}
void *http_state(const struct http_request *req)
{
	return req->app_state;
}
void http_set_body_limit(struct http_request *req, uint64_t bytes)
{
	req->body_limit = bytes;
}
void http_set_streaming(struct http_request *req)
{
	req->streaming = true;
}
const char *http_query(const struct http_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

struct query_walk {
	http_query_cb cb;
	void *ctx;
	int rc;
};

static enum MHD_Result query_one(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct query_walk *w = cls;
	(void)kind;
	w->rc = w->cb(w->ctx, key, value);
	return w->rc == 0 ? MHD_YES : MHD_NO;
}

int http_query_each(const struct http_request *req, http_query_cb cb, void *ctx)
{
	struct query_walk w = { cb, ctx, 0 };
	MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, query_one, &w);
	return w.rc;
}

const char *http_header(const struct http_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *http_body(const struct http_request *req, size_t *len)
{
	*len = req->body_len;
	return req->body ? req->body : (req->streaming ? NULL : "");
}

void http_add_header(struct http_request *req, const char *name, const char *value)
{
	char *n = NULL, *v = NULL;
	if (req->n_headers >= MAX_EXTRA_HEADERS || (n = strdup(name)) == NULL ||
	    (v = strdup(value)) == NULL) {
		free(n);
		req->header_dropped = true;
		return;
	}
	req->header_names[req->n_headers] = n;
	req->header_values[req->n_headers] = v;
	req->n_headers++;
}

void http_respond(struct http_request *req, int status, const char *content_type, char *body, size_t len)
{
	if (req->have_response) {
		free(body);
		return;
	}
	req->response = MHD_create_response_from_buffer_with_free_callback(len, body, free);
	if (req->response == NULL) {
		free(body);
		return;
	}
	MHD_add_response_header(req->response, "Content-Type", content_type);
	req->status = status;
	req->have_response = true;
}

struct stream_ctx {
	http_reader read;
	void *ctx;
	void (*free_ctx)(void *);
	bool head; /* a HEAD request: the content is never produced */
};

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct stream_ctx *s = cls;
	(void)pos;
	if (s->head)
		return MHD_CONTENT_READER_END_OF_STREAM;
	ssize_t n = s->read(s->ctx, buf, max);
	if (n < 0)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	if (n == 0)
		return MHD_CONTENT_READER_END_OF_STREAM;
	return n;
}

static void stream_free(void *cls)
{
	struct stream_ctx *s = cls;
	if (s->free_ctx)
		s->free_ctx(s->ctx);
	free(s);
}

void http_respond_stream(struct http_request *req, int status, const char *content_type, http_reader read,
			 void *ctx, void (*free_ctx)(void *))
{
	bool head = strcmp(req->method, "HEAD") == 0;
	struct stream_ctx *s = malloc(sizeof *s);
	if (req->have_response || s == NULL) {
		free(s);
		if (free_ctx)
			free_ctx(ctx);
		return;
	}
	s->read = read;
	s->ctx = ctx;
	s->free_ctx = free_ctx;
	s->head = head;
	req->response = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, LIMIT_STREAM_BLOCK_BYTES,
							  stream_read, s, stream_free);
	if (req->response == NULL) {
		stream_free(s);
		return;
	}
	/* HEAD: libmicrohttpd 0.9.75 would send the terminating chunk of a
	 * chunked reply after the headers. Without chunking (the reply ends
	 * when the connection closes) nothing follows the headers, and no
	 * Content-Length claims a size the content does not have. */
	if (head)
		MHD_set_response_options(req->response, MHD_RF_HTTP_1_0_COMPATIBLE_STRICT, MHD_RO_END);
	MHD_add_response_header(req->response, "Content-Type", content_type);
	req->status = status;
	req->have_response = true;
}

void http_suspend(struct http_request *req)
{
	req->deferred = true;
	req->state = R_SUSPENDED;
	MHD_suspend_connection(req->conn);
}

void http_resume(struct http_request *req)
{
	req->state = R_READY;
	MHD_resume_connection(req->conn);
}
