/*
 * problem: RFC 9457 problem details, and the one table from error codes
 * (service/base/error.h) to HTTP statuses, problem types and titles. Every
 * error reply of consentd is rendered from here (reply_problem in
 * service/reply.c); a code outside the table is a 500 without detail.
 */
#include "service/problem.h"

#include "service/base/error.h"

#include <jansson.h>
#include <stdio.h>

#define PROBLEM_BASE "https://consentd.dev/problems/"

/* The one table from error codes to HTTP. */
static const struct problem problems[] = {
	{ ERR_INVALID, 400, "invalid-request", "The request is malformed" },
	{ ERR_UNAUTHENTICATED, 401, "unauthenticated", "A valid bearer token is required" },
	{ ERR_DENIED, 403, "forbidden", "Not allowed" },
	{ ERR_NOTFOUND, 404, "not-found", "No such resource" },
	{ ERR_CONFLICT, 409, "conflict", "Conflicts with the current state" },
	{ ERR_GONE, 410, "erased", "The contact was erased" },
	{ ERR_TOOBIG, 413, "too-large", "The request is larger than allowed" },
	{ ERR_UNSUPPORTED, 415, "unsupported-media-type", "Unsupported content type" },
	{ ERR_UNPROCESSABLE, 422, "unprocessable", "The request names something unknown" },
	{ ERR_RATE_LIMITED, 429, "too-many-requests", "Too many attempts; try again later" },
	{ ERR_UNAVAILABLE, 503, "unavailable", "Cannot serve this safely right now" },
	{ ERR_AUDIT_ALTERED, 503, "audit-altered", "The audit trail is not intact; nothing is served" },
};

static const struct problem internal = { 0, 500, "internal", "Internal error" };

const struct problem *problem_for(int code)
{
	for (size_t i = 0; i < sizeof problems / sizeof problems[0]; i++)
		if (problems[i].code == code)
			return &problems[i];
	return &internal;
}

int status_for_err(int code)
{
	return problem_for(code)->status;
}

char *problem_json(int status, const char *type, const char *title, const char *detail, const char *reason,
		   const char *instance, const char *request_id)
{
	char uri[128];
	snprintf(uri, sizeof uri, PROBLEM_BASE "%s", type);
	json_t *p = json_pack("{s:s, s:s, s:i}", "type", uri, "title", title, "status", status);
	if (detail != NULL && detail[0] != '\0')
		json_object_set_new(p, "detail", json_string(detail));
	if (reason != NULL)
		json_object_set_new(p, "reason", json_string(reason));
	json_object_set_new(p, "instance", json_string(instance));
	json_object_set_new(p, "request_id", json_string(request_id));
	char *text = json_dumps(p, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(p);
	return text;
}
