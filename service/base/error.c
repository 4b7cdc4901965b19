/*
 * error: a per-thread last-error message, libgit2 style. The message buffer is
 * thread-local so worker threads never see each other's messages.
 */
#include "service/base/error.h"
#include "service/base/limits.h"

#include <stdio.h>
#include <string.h>

static _Thread_local char last_msg[LIMIT_ERROR_MESSAGE_BYTES];
static _Thread_local int last_code;

int err_setv(int code, const char *fmt, va_list ap)
{
	/* Format into scratch space first: callers may pass err_msg() itself as
	 * an argument ("field: %s"), which must not overlap the destination. */
	char next[sizeof last_msg];
	vsnprintf(next, sizeof next, fmt, ap);
	memcpy(last_msg, next, sizeof last_msg);
	last_code = code;
	return code;
}

int err_set(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	err_setv(code, fmt, ap);
	va_end(ap);
	return code;
}

const char *err_msg(void)
{
	if (last_msg[0] != '\0')
		return last_msg;
	return err_name(last_code);
}

int err_code(void)
{
	return last_code;
}

void err_clear(void)
{
	last_msg[0] = '\0';
	last_code = 0;
}

const char *err_name(int code)
{
	switch (code) {
	case ERR_OK: return "ok";
	case ERR_INVALID: return "invalid";
	case ERR_NOTFOUND: return "not_found";
	case ERR_DENIED: return "denied";
	case ERR_UNAUTHENTICATED: return "unauthenticated";
	case ERR_CONFLICT: return "conflict";
	case ERR_GONE: return "gone";
	case ERR_TOOBIG: return "too_big";
	case ERR_UNAVAILABLE: return "unavailable";
	case ERR_AUDIT_ALTERED: return "audit_altered";
	case ERR_RATE_LIMITED: return "rate_limited";
	case ERR_NOMEM: return "out_of_memory";
	case ERR_IO: return "io_error";
	case ERR_CRYPTO: return "crypto_error";
	case ERR_UNSUPPORTED: return "unsupported";
	case ERR_INTERNAL: return "internal";
	case ERR_UNPROCESSABLE: return "unprocessable";
	}
	return "unknown";
}
