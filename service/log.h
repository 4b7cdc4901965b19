/*
 * log: the server's log on standard error, as text (the default) or as
 * structured JSON lines (consentd.conf "log_format": "json").
 *
 * Every module logs with fprintf(stderr, "consentd: ...\n") as before. In
 * JSON mode log_setup() puts a stream in place of stderr that turns each
 * line into one object: {"time" (RFC 3339, UTC, microseconds), "level",
 * "message", and the named fields read off the line: "request_id" for
 * "consentd: request ID: ...", "component" for "consentd: audit: ..."}.
 * Lines hold what the text log holds, which by the rules of the code is
 * never personal data (ids, counts, keyed hashes, error messages without
 * values); JSON escaping changes nothing of that. A line longer than
 * LIMIT_LOG_LINE_BYTES goes out as several objects marked "continued".
 * In JSON mode each finished request also gets one line (log_request).
 */
#ifndef CONSENTD_LOG_H
#define CONSENTD_LOG_H

#include <stdbool.h>
#include <stdint.h>

/* json: replace stderr by the JSON stream (once, before threads start);
 * false leaves the text log. */
int log_setup(bool json);
bool log_is_json(void);
/* A finished request: its id, method and status and how long it took.
 * Nothing else of the request (no path: it may hold a link token). Only
 * in JSON mode; the text log has no access lines. */
void log_request(const char *request_id, const char *method, int status, int64_t duration_us);

#endif
