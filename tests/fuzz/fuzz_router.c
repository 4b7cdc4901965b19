/*
 * fuzz_router: router_match on arbitrary method and path bytes.
 *
 * The input is "METHOD PATH" (the first space or newline splits them; a
 * missing separator means GET). The path is tried as given and again after
 * the same %XX decoding service/http.c applies (a decoded control byte
 * becomes DEL), because the router only ever sees decoded paths.
 *
 * Invariants checked (abort on violation):
 * - 0 means a route whose method equals the request method, and every path
 *   parameter is NUL-terminated inside its buffer and valid for its kind;
 * - ERR_UNSUPPORTED means a non-empty, NUL-terminated Allow list;
 * - anything else is ERR_NOTFOUND with no route;
 * - a path that does not start with '/' or holds a byte outside printable
 *   ASCII never matches a route with a parameter it could smuggle through.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/base/limits.h"
#include "service/router.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool token_ok(const char *v)
{
	size_t n = strlen(v);
	if (n == 0 || n >= ROUTER_PARAM_CAP || v[0] == '.' || strstr(v, "..") != NULL)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = v[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			return false;
	}
	return true;
}

/* Walks the pattern's parameters and checks each captured value. */
static void check_params(const struct route *r, char params[2][ROUTER_PARAM_CAP])
{
	int np = 0;
	for (const char *p = strchr(r->pattern, '{'); p != NULL; p = strchr(p + 1, '{')) {
		if (np >= 2)
			abort();
		const char *v = params[np];
		if (memchr(v, '\0', ROUTER_PARAM_CAP) == NULL)
			abort();
		if (strncmp(p, "{id}", 4) == 0) {
			if (!is_contact_id(v))
				abort();
		} else if (strncmp(p, "{name}", 6) == 0) {
			if (!is_name(v))
				abort();
		} else if (strncmp(p, "{token}", 7) == 0) {
			if (!token_ok(v))
				abort();
		} else {
			abort(); /* a pattern with an unknown parameter kind */
		}
		/* No parameter can carry a separator or a traversal. */
		if (strchr(v, '/') != NULL || strstr(v, "..") != NULL)
			abort();
		np++;
	}
}

static void one(const char *method, const char *path)
{
	const struct route *r = (const struct route *)1;
	char params[2][ROUTER_PARAM_CAP];
	char allow[ROUTER_ALLOW_CAP];
	memset(params, 0x55, sizeof params);
	memset(allow, 0x55, sizeof allow);
	int rc = router_match(method, path, &r, params, allow);
	if (memchr(allow, '\0', sizeof allow) == NULL)
		abort();
	if (rc == 0) {
		/* HEAD is answered by the GET route (RFC 9110), nothing else. */
		bool head_on_get = strcmp(method, "HEAD") == 0 && r != NULL && r->method != NULL &&
				   strcmp(r->method, "GET") == 0;
		if (r == NULL || r->method == NULL || (strcmp(r->method, method) != 0 && !head_on_get) ||
		    path[0] != '/')
			abort();
		check_params(r, params);
	} else if (rc == ERR_UNSUPPORTED) {
		if (r != NULL || allow[0] == '\0')
			abort();
	} else if (rc != ERR_NOTFOUND || r != NULL) {
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 4 * LIMIT_PATH_BYTES)
		return 0;
	char *buf = malloc(size + 1);
	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	const char *method = "GET";
	char *path = buf;
	char *sep = strpbrk(buf, " \n");
	if (sep != NULL) {
		*sep = '\0';
		method = buf;
		path = sep + 1;
	}
	one(method, path);
	percent_decode(path);
	one(method, path);
	free(buf);
	return 0;
}
