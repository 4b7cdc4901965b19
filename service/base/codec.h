/*
 * codec: small pure helpers shared by every module: hex and base64url,
 * normalisation of emails and phone numbers, identifiers, and time.
 */
#ifndef CONSENTD_CODEC_H
#define CONSENTD_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

void hex_encode(const uint8_t *in, size_t len, char *out);    /* out: 2*len+1 */
int hex_decode(const char *in, uint8_t *out, size_t out_len); /* exact length */

/* base64url without padding; out needs 4*ceil(len/3)+1. Returns chars written. */
size_t b64url_encode(const uint8_t *in, size_t len, char *out);
/* Returns bytes written, or ERR_INVALID. */
int b64url_decode(const char *in, size_t in_len, uint8_t *out, size_t out_cap);

/* Lower-cases and trims an email into out (cap >= 255); ERR_INVALID unless it
 * has one '@', a non-empty local part and a dotted domain, no spaces or
 * control characters, and at most 254 bytes. */
int normalize_email(const char *in, size_t len, char *out, size_t cap);
/* Keeps '+' and digits, drops spaces, dots, dashes and parentheses; requires
 * E.164 form: '+' then 8 to 15 digits. */
int normalize_phone(const char *in, size_t len, char *out, size_t cap);

/* Whether a Content-Type header names the media type want (letter case
 * aside; leading spaces and parameters allowed: "text/csv; header=present").
 * *params, when params is not NULL, points after the type. NULL is false. */
bool media_type_is(const char *header, const char *want, const char **params);

/* The value of one hex digit, or -1; _lower refuses A-F (for the formats
 * that allow one text per value: the audit trail, policy token hashes). */
int hex_digit(int c);
int hex_digit_lower(int c);
/* True when in (len bytes) is exactly 2*n lowercase hex digits, decoded
 * into out; sets no error message (the caller says what was wrong). */
bool hex_decode_lower(const char *in, size_t len, uint8_t *out, size_t n);

/* Nesting depth of a JSON text counted over brackets outside strings; false
 * as soon as it passes max. Malformed text is left to the parser: this only
 * guarantees the parser never recurses deeper than max. */
bool json_depth_within(const char *s, size_t len, int max);

/* Decodes %XX escapes in place and returns the new length. A decoded control
 * byte (NUL included) becomes DEL (0x7f), which every validator refuses, so
 * "%00" can never truncate a path or a value into something else. */
size_t percent_decode(char *s);

/* [a-z][a-z0-9_]{0,63}: purposes, channels, roles, field names. */
bool is_name(const char *s);
/* Exactly CONTACT_ID_BYTES base64url characters. */
bool is_contact_id(const char *s);
/* Valid UTF-8 with no control characters other than tab, CR, LF. */
bool is_clean_utf8(const char *s, size_t len);

/* Identifier-like metadata stored in plaintext (a contact's source and owner,
 * a consent's source, notice_version and collection_method, a suppression's
 * source): 1 to max bytes of [A-Za-z0-9._:@/+-]. No spaces, quotes, commas or
 * control characters, so such a value can never carry a sentence of
 * personal data, and it is the same text in JSON, CSV and the audit trail. */
bool is_identifier(const char *s, size_t max);

/* The number of code points in n bytes of valid UTF-8 (bytes that do not
 * continue a sequence). */
size_t utf8_chars(const char *s, size_t n);

/* An actor as an auditor names it in a filter: 1 to LIMIT_PRINCIPAL_CHARS
 * characters (at most LIMIT_PRINCIPAL_BYTES bytes) of clean UTF-8 without
 * control characters. Looser than is_principal_name: older principals and
 * consentd's own actors (customer, system) are found too. */
bool is_actor_name(const char *s);

/* A staff principal's name (token create), which becomes the actor of
 * audit entries: 1 to LIMIT_PRINCIPAL_CHARS characters (code points; at
 * most LIMIT_PRINCIPAL_BYTES bytes) of printable UTF-8 (quotes,
 * commas, spaces and any script are fine: exports escape and quote them),
 * without control characters (tab, CR, LF included), invisible or
 * reordering characters (LRM/RLM, U+2028/9, bidi controls, BOM), leading or
 * trailing spaces, and not one of the actor names consentd itself writes
 * (customer, operator, system, in any letter case), so an entry's actor
 * always says who acted. */
bool is_principal_name(const char *s);

/* Overwrites len bytes of buf in a way the compiler may not drop, for
 * copies of tokens and personal data in handler memory (keys themselves are
 * wiped by the crypto layer with OPENSSL_cleanse). */
void mem_wipe(void *buf, size_t len);

int64_t now_us(void);
/* Moves the clock now_us reads by s seconds, for tests only (frequency caps
 * and expiry without sleeping); set once at start, before any thread. */
void clock_set_test_offset_s(int64_t s);
/* RFC 3339 UTC with microseconds (2024-05-01T12:34:56.123456Z): out needs
 * 32 bytes. The one time formatter: the audit trail's canonical times
 * (audit_time_format) are this text for the times the trail accepts. */
void format_time_us(int64_t us, char *out, size_t cap);
/* Days since 1970-01-01 of a proleptic Gregorian date, and back. */
int64_t days_from_civil(int y, int m, int d);
void civil_from_days(int64_t days, int *y, int *m, int *d);
/* Parses RFC 3339 (Z or offset; fraction optional) into microseconds. */
int parse_time(const char *s, int64_t *us_out);

#endif
