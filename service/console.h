/*
 * console: the rules of the auditor's console sessions, apart from HTTP.
 *
 * A session starts when a principal whose role may audit.read pastes its
 * token at /console/login. The browser gets a random 256-bit session id in
 * a cookie (HttpOnly; Secure; SameSite=Strict; Path=/console); the database
 * keeps only SHA-256 of that id, next to SHA-256 of the token, the
 * principal's name and role, a CSRF value and two times. Every request
 * checks, in this order:
 *
 *   cookie ─> id hash ─> row? ─> idle < CONSOLE_IDLE_SECONDS
 *          ─> age < CONSOLE_ABSOLUTE_SECONDS ─> principal of the token hash
 *             still exists (auth_principal: revocation ends the session)
 *          ─> its role still may audit.read ─> the page
 *
 * Wrong tokens are counted per client address in memory (per instance); an
 * address with CONSOLE_LOGIN_FAILURES of them inside the window is refused
 * until the window has passed.
 *
 * Secrets (session ids, tokens) are wiped after hashing and never logged.
 */
#ifndef CONSENTD_CONSOLE_H
#define CONSENTD_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "service/store/store.h"

#define CONSOLE_COOKIE "consentd_console"
#define CONSOLE_LOGIN_COOKIE "consentd_console_login"
/* base64url of 32 random bytes, and its NUL. */
#define CONSOLE_SECRET_CAP 44

/* A new random secret (session id or CSRF value) as base64url. */
int console_secret_new(char out[CONSOLE_SECRET_CAP]);
/* SHA-256 of a secret or a token. */
void console_hash(const char *secret, uint8_t out[32]);

/* The value of cookie `name` in a Cookie header, when it is exactly one
 * base64url secret (43 characters); false otherwise (absent, repeated with
 * different values, malformed). */
bool console_cookie_get(const char *cookie_header, const char *name, char out[CONSOLE_SECRET_CAP]);

/* Wipes a secret (a token, a session id, an address) from memory. */
void console_wipe(void *p, size_t n);

/* Constant-time comparison of two NUL-terminated values. */
bool console_secret_equal(const char *a, const char *b);

/* Whether a session is still alive: console_session_alive, in the domain
 * (service/domain/console_session.h). */

/* Login rate limit by client address: console_login_allowed is false while
 * the address is blocked (and *retry_s says for how long); a failure is
 * counted with console_login_failed, and a success clears the address. */
bool console_login_allowed(const char *client, int64_t now_us, int *retry_s);
void console_login_failed(const char *client, int64_t now_us);
void console_login_succeeded(const char *client);

#endif
