/*
 * audit: one entry of the tamper-evident audit trail, its canonical byte
 * encoding, the SHA-256 hash chain that links entries, and the renderings an
 * auditor sees (NDJSON, CSV) together with the strict NDJSON parser that lets
 * an exported file be verified offline.
 *
 * Invariants:
 * - An entry never holds plaintext personal data. Callers log record ids,
 *   principal names, purposes and keyed hashes, never an email, a phone number,
 *   a name or a field value. This module cannot tell a name from an id, so the
 *   rule is the caller's; it only enforces the shape below.
 * - Every string is NUL-terminated inside its fixed array, at most its
 *   AUDIT_*_MAX bytes, valid UTF-8, and free of control characters
 *   (U+0000..U+001F, U+007F). detail is empty or a canonical flat JSON object
 *   (see audit_entry_check). decision is "allow", "deny", "error" or "none".
 * - hash = SHA-256("consentd-audit-v1\0" || prev_hash || encoding), where the
 *   encoding is the exact byte layout documented at audit_entry_encode and in
 *   docs/audit.md. The first entry (seq 1) has 32 zero bytes as prev_hash.
 * - Nothing here keeps global state: the OpenSSL digest state lives in a
 *   struct audit_hasher, one per thread.
 */
#ifndef CONSENTD_AUDIT_H
#define CONSENTD_AUDIT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "service/base/limits.h"

#include "service/base/auditrec.h"

/* The largest NDJSON line audit_entry_format_json writes (without newline,
 * with NUL): every string byte may be escaped to two, plus keys and hashes. */
#define AUDIT_JSON_MAX (2 * AUDIT_ENCODED_MAX + 512)
/* The largest CSV row audit_entry_format_csv writes (with CRLF and NUL):
 * quotes double, plus a guard quote and two enclosing quotes per cell. */
#define AUDIT_CSV_MAX (2 * AUDIT_ENCODED_MAX + 16 * 4 + 256)

/* RFC 3339 UTC with microseconds: "2024-05-01T12:34:56.123456Z" + NUL. */
#define AUDIT_TIME_BYTES 28
/* The largest time that renders with a four-digit year: 9999-12-31T23:59:59.999999Z. */
#define AUDIT_TIME_MAX_US INT64_C(253402300799999999)

/* The domain-separation tag that starts every hashed entry, NUL included. */
#define AUDIT_ENTRY_TAG "consentd-audit-v1"
#define AUDIT_ENTRY_TAG_BYTES 18

/* Checks every invariant listed at the top of this file except the hashes.
 * Returns 0 or ERR_INVALID / ERR_TOOBIG with a message naming the field. */
int audit_entry_check(const struct audit_entry *e);

/*
 * Writes the canonical encoding of e into buf and returns its length, or
 * ERR_TOOBIG if cap is too small, or ERR_INVALID if a string is not
 * terminated inside its array or seq/time is out of range. The layout:
 *
 *   seq      8 bytes, big-endian two's complement
 *   time_us  8 bytes, big-endian two's complement
 *   then, for actor, role, action, record_id, purpose, channel, decision,
 *   reason, fields, request_id, client, detail in that order:
 *            4 bytes big-endian length, then that many bytes (no NUL)
 *
 * The tag and prev_hash are not part of the encoding; they are hashed in
 * front of it (see audit_entry_link).
 */
int audit_entry_encode(const struct audit_entry *e, uint8_t *buf, size_t cap);

/* A reusable SHA-256 context: the digest is fetched once and the context is
 * reset per entry, which is what makes verification fast. Not thread-safe;
 * use one per thread. */
struct audit_hasher;

int audit_hasher_new(struct audit_hasher **out);
void audit_hasher_free(struct audit_hasher *h);

/* Computes SHA-256(tag || e->prev_hash || encoding(e)) into out. h may be NULL,
 * which builds a temporary hasher (slow; for one-off use). */
int audit_entry_hash(struct audit_hasher *h, const struct audit_entry *e, uint8_t out[AUDIT_HASH_BYTES]);

/* Sets e->prev_hash to prev (32 zero bytes for seq 1) and e->hash to the
 * entry's hash. h may be NULL as above. */
int audit_entry_link(struct audit_hasher *h, struct audit_entry *e, const uint8_t prev[AUDIT_HASH_BYTES]);

/* Formats time_us as RFC 3339 UTC with six fraction digits. Returns 0 or
 * ERR_INVALID when time_us is outside 0..AUDIT_TIME_MAX_US. */
int audit_time_format(int64_t time_us, char out[AUDIT_TIME_BYTES]);

/* Parses exactly the form audit_time_format writes (27 bytes, "Z" suffix,
 * six fraction digits, real calendar date). Returns 0 or ERR_INVALID. */
int audit_time_parse(const char *s, size_t len, int64_t *time_us);

/* Lowercase hex of n bytes into out (2n + 1 bytes with the NUL). */
void audit_hex_encode(const uint8_t *in, size_t n, char *out);

/* Decodes exactly 2n lowercase hex characters into n bytes; 0 or ERR_INVALID. */
int audit_hex_decode(const char *in, size_t len, uint8_t *out, size_t n);

/*
 * Writes e as one compact JSON object, without a trailing newline, into buf
 * (NUL-terminated) and returns its length, ERR_TOOBIG if cap is too small
 * (AUDIT_JSON_MAX always suffices) or ERR_INVALID if e fails audit_entry_check.
 * Keys in this order: seq, time, actor, role, action, record_id, purpose,
 * channel, decision, reason, fields, request_id, client, detail (a JSON
 * object, {} when empty), prev_hash, hash (64 lowercase hex digits each).
 */
int audit_entry_format_json(const struct audit_entry *e, char *buf, size_t cap);

/* The same object as a new jansson value, for responses that embed entries.
 * The caller owns *out (json_decref). */
int audit_entry_to_json(const struct audit_entry *e, json_t **out);

/*
 * Parses one line written by audit_entry_format_json (a trailing "\n" or
 * "\r\n" is allowed). Strict: every key above must be present with its type,
 * no other key is allowed, lengths are bounded (the line by LIMIT_LINE_BYTES),
 * and the result must pass audit_entry_check. The hashes are parsed, not
 * checked: that is audit_verify's job. Returns 0 or ERR_INVALID / ERR_TOOBIG
 * with a message naming the key; *out is undefined on error.
 */
int audit_entry_from_json(struct audit_entry *out, const char *line, size_t len);

/*
 * CSV (RFC 4180): the header row and one row per entry, each ending in CRLF,
 * columns in the JSON key order with time in RFC 3339 and hashes in hex.
 * A cell that contains a comma, a quote, CR or LF is enclosed in quotes with
 * inner quotes doubled. A cell whose text starts with '=', '+', '-' or '@' is
 * prefixed with a single quote (') so that a spreadsheet shows it as text
 * instead of evaluating it as a formula (CSV injection). The CSV export is for
 * people; only NDJSON round-trips to verifiable entries.
 * Return the length written (NUL-terminated), ERR_TOOBIG or ERR_INVALID.
 */
int audit_csv_header(char *buf, size_t cap);
int audit_entry_format_csv(const struct audit_entry *e, char *buf, size_t cap);

/* Sets e->detail to detail (stolen) as canonical flat JSON: compact, keys
 * sorted, escaped by jansson. A detail that does not fit is not cut (cut
 * JSON would stay broken in the trail for good): e->detail is left empty
 * and the call returns ERR_TOOBIG; NULL (a json_pack that failed) or a
 * failed encoding is ERR_NOMEM. The one way an entry's detail is written. */
int audit_entry_set_detail(struct audit_entry *e, json_t *detail);

/* Fills the caller-side parts of an entry; NULL means empty. A string
 * longer than its bound is not cut: that field is left empty and the call
 * returns ERR_TOOBIG naming the first such field (the others are filled). */
int audit_entry_fill(struct audit_entry *e, const char *actor, const char *role, const char *action,
		     const char *record_id, const char *purpose, const char *channel, const char *decision,
		     const char *reason);

#endif
