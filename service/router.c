/*
 * router: a linear walk over a few dozen patterns; segments are compared
 * literally and parameters are validated by kind, so nothing that is not a
 * well-formed id, name or token ever reaches a handler.
 */
#include "service/router.h"

#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/base/limits.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

/* One table a line (tests/integration/test_audit_walk.py reads this list). */
/* clang-format off */
static const struct route *const tables[] = {
	ops_routes,
	contact_routes,
	consent_routes,
	audit_routes,
	suppression_routes,
	outreach_routes,
	import_routes,
	confirm_routes,
	customer_routes,
	console_routes,
	event_routes,
	webhook_routes,
	request_routes,
	receipt_routes,
};
/* clang-format on */

static bool token_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
	       c == '_' || c == '.';
}

static bool param_ok(const char *kind, size_t kind_len, const char *v)
{
	if (kind_len == 2 && memcmp(kind, "id", 2) == 0)
		return is_contact_id(v);
	if (kind_len == 4 && memcmp(kind, "name", 4) == 0)
		return is_name(v);
	if (kind_len == 5 && memcmp(kind, "token", 5) == 0) {
		size_t n = strlen(v);
		/* Any malformed token reaches the handler (one refusal page for
		 * all), but never anything shaped like a path: no leading dot, no "..". */
		if (n == 0 || n >= ROUTER_PARAM_CAP || v[0] == '.' || strstr(v, "..") != NULL)
			return false;
		for (size_t i = 0; i < n; i++)
			if (!token_char(v[i]))
				return false;
		return true;
	}
	return false;
}

/* Matches path against pattern; fills params. */
static bool match(const char *pattern, const char *path, char params[2][ROUTER_PARAM_CAP])
{
	int np = 0;
	const char *p = pattern, *s = path;
	while (*p != '\0') {
		if (*p == '{') {
			const char *close = strchr(p, '}');
			const char *end = strchr(s, '/');
			size_t len = end ? (size_t)(end - s) : strlen(s);
			if (close == NULL || len == 0 || len >= ROUTER_PARAM_CAP || np >= 2)
				return false;
			memcpy(params[np], s, len);
			params[np][len] = '\0';
			if (!param_ok(p + 1, (size_t)(close - p - 1), params[np]))
				return false;
			np++;
			p = close + 1;
			s += len;
			continue;
		}
		if (*p != *s)
			return false;
		p++;
		s++;
	}
	return *s == '\0';
}

/* RFC 9110 section 9.3.2: HEAD is GET without the content, so every GET
 * route answers it with the same status and headers (libmicrohttpd sends
 * the reply's headers and drops its body). A route table may still name
 * HEAD itself; an exact match wins. */
static bool is_head_of(const char *route_method, const char *method)
{
	return strcmp(method, "HEAD") == 0 && strcmp(route_method, "GET") == 0;
}

/* Appends a method to the comma-separated Allow list once. The tables are
 * fixed, so a list that does not fit is a programmer error, not input. */
static void allow_add(char allow[ROUTER_ALLOW_CAP], const char *method)
{
	size_t n = strlen(allow), m = strlen(method);
	for (const char *p = allow; (p = strstr(p, method)) != NULL; p += m)
		if ((p == allow || p[-1] == ' ') && (p[m] == ',' || p[m] == '\0'))
			return;
	int w = snprintf(allow + n, ROUTER_ALLOW_CAP - n, "%s%s", n ? ", " : "", method);
	assert(w > 0 && (size_t)w < ROUTER_ALLOW_CAP - n);
	(void)w;
}

int router_match(const char *method, const char *path, const struct route **out,
		 char params[2][ROUTER_PARAM_CAP], char allow[ROUTER_ALLOW_CAP])
{
	bool path_matched = false;
	const struct route *head = NULL;
	char head_params[2][ROUTER_PARAM_CAP];
	allow[0] = '\0';
	*out = NULL;
	if (path == NULL || path[0] != '/' || strlen(path) > LIMIT_PATH_BYTES)
		return err_set(ERR_NOTFOUND, "no such resource");
	for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++) {
		for (const struct route *r = tables[t]; r->method != NULL; r++) {
			char tmp[2][ROUTER_PARAM_CAP];
			if (!match(r->pattern, path, tmp))
				continue;
			if (strcmp(r->method, method) == 0) {
				memcpy(params, tmp, sizeof tmp);
				*out = r;
				return 0;
			}
			if (head == NULL && is_head_of(r->method, method)) {
				memcpy(head_params, tmp, sizeof tmp);
				head = r;
			}
			allow_add(allow, r->method);
			if (strcmp(r->method, "GET") == 0)
				allow_add(allow, "HEAD");
			path_matched = true;
		}
	}
	if (head != NULL) {
		memcpy(params, head_params, sizeof head_params);
		*out = head;
		return 0;
	}
	if (path_matched)
		return err_set(ERR_UNSUPPORTED, "method %s is not allowed here", method);
	return err_set(ERR_NOTFOUND, "no such resource");
}
