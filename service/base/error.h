/*
 * error: the one error vocabulary of consentd.
 *
 * Every fallible function returns 0 on success or one of the negative codes
 * below, and may set a human-readable message for the current thread with
 * err_set(). Codes travel up unchanged; the HTTP layer maps them to statuses
 * in exactly one table (service/problem.c), and the CLI maps them to exit
 * codes in one table (service/main.c). Messages never contain secrets or
 * personal data: they name fields, paths and limits, never values.
 */
#ifndef CONSENTD_ERROR_H
#define CONSENTD_ERROR_H

#include <stdarg.h>

enum err {
	ERR_OK = 0,
	ERR_INVALID = -1,	  /* malformed or semantically invalid input */
	ERR_NOTFOUND = -2,	  /* no such record, route or key */
	ERR_DENIED = -3,	  /* authenticated but not allowed */
	ERR_UNAUTHENTICATED = -4, /* missing or unknown credentials */
	ERR_CONFLICT = -5,	  /* duplicate, or state does not allow it */
	ERR_GONE = -6,		  /* existed, was erased */
	ERR_TOOBIG = -7,	  /* a bound in limits.h was exceeded */
	ERR_UNAVAILABLE = -8,	  /* cannot serve safely now (audit, disk) */
	ERR_NOMEM = -9,
	ERR_IO = -10,		 /* file or database I/O failed */
	ERR_CRYPTO = -11,	 /* authentication tag mismatch, bad key */
	ERR_UNSUPPORTED = -12,	 /* method or media type not supported */
	ERR_INTERNAL = -13,	 /* a bug: an invariant did not hold */
	ERR_UNPROCESSABLE = -14, /* well-formed but names unknown things (422) */
	ERR_AUDIT_ALTERED = -15, /* the audit trail is not the one that was signed */
	ERR_RATE_LIMITED = -16,	 /* too many attempts from this client; retry later */
};

/* Sets the current thread's error message and returns code, so that
 * `return err_set(ERR_INVALID, "...")` reads naturally. */
int err_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int err_setv(int code, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* The current thread's last message, or the code's generic text if none was
 * set since err_clear(). Borrowed; valid until the next err_set on this thread. */
const char *err_msg(void);
int err_code(void);
void err_clear(void);

/* A short stable name for a code ("invalid", "not_found", ...). */
const char *err_name(int code);

#endif
