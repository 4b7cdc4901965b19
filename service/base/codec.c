/*
 * codec: pure helpers with no state and no allocation. Every function bounds
 * its output by the capacity it is given.
 */
#include "service/base/codec.h"

#include "service/base/error.h"
#include "service/base/limits.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const char hexdig[] = "0123456789abcdef";

void hex_encode(const uint8_t *in, size_t len, char *out)
{
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = hexdig[in[i] >> 4];
		out[2 * i + 1] = hexdig[in[i] & 15];
	}
	out[2 * len] = '\0';
}

int hex_digit_lower(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static bool hex_decode_with(int (*digit)(int), const char *in, size_t len, uint8_t *out, size_t n)
{
	if (len != 2 * n)
		return false;
	for (size_t i = 0; i < n; i++) {
		int hi = digit((unsigned char)in[2 * i]), lo = digit((unsigned char)in[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return true;
}

bool hex_decode_lower(const char *in, size_t len, uint8_t *out, size_t n)
{
	return hex_decode_with(hex_digit_lower, in, len, out, n);
}

int hex_digit(int c)
{
	return hex_digit_lower(c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c);
}

bool media_type_is(const char *header, const char *want, const char **params)
{
	if (header == NULL)
		return false;
	size_t n = strlen(want);
	while (*header == ' ')
		header++;
	if (strncasecmp(header, want, n) != 0 || (header[n] != '\0' && header[n] != ';' && header[n] != ' '))
		return false;
	if (params != NULL)
		*params = header + n;
	return true;
}

int hex_decode(const char *in, uint8_t *out, size_t out_len)
{
	size_t len = strlen(in);
	if (len != 2 * out_len)
		return err_set(ERR_INVALID, "expected %zu hex characters", 2 * out_len);
	if (!hex_decode_with(hex_digit, in, len, out, out_len))
		return err_set(ERR_INVALID, "not a hex string");
	return 0;
}

static const char b64u[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t b64url_encode(const uint8_t *in, size_t len, char *out)
{
	size_t o = 0, i = 0;
	for (; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = b64u[v >> 18 & 63];
		out[o++] = b64u[v >> 12 & 63];
		out[o++] = b64u[v >> 6 & 63];
		out[o++] = b64u[v & 63];
	}
	if (len - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;
		out[o++] = b64u[v >> 18 & 63];
		out[o++] = b64u[v >> 12 & 63];
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		out[o++] = b64u[v >> 18 & 63];
		out[o++] = b64u[v >> 12 & 63];
		out[o++] = b64u[v >> 6 & 63];
	}
	out[o] = '\0';
	return o;
}

static int b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

int b64url_decode(const char *in, size_t in_len, uint8_t *out, size_t out_cap)
{
	if (in_len % 4 == 1)
		return err_set(ERR_INVALID, "bad base64url length");
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < in_len; i++) {
		int v = b64val((unsigned char)in[i]);
		if (v < 0)
			return err_set(ERR_INVALID, "bad base64url character");
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o >= out_cap)
				return err_set(ERR_TOOBIG, "base64url value too long");
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	/* Non-canonical trailing bits would let two strings decode alike. */
	if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
		return err_set(ERR_INVALID, "non-canonical base64url");
	return (int)o;
}

int normalize_email(const char *in, size_t len, char *out, size_t cap)
{
	while (len > 0 && (in[0] == ' ' || in[0] == '\t')) {
		in++;
		len--;
	}
	while (len > 0 && (in[len - 1] == ' ' || in[len - 1] == '\t'))
		len--;
	if (len == 0 || len > LIMIT_EMAIL_BYTES || len + 1 > cap)
		return err_set(ERR_INVALID, "email must be 1 to %d characters", LIMIT_EMAIL_BYTES);
	size_t at = len;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c <= 0x20 || c == 0x7f || c == '<' || c == '>' || c == ',' || c == ';' || c == '"' ||
		    c == '\\')
			return err_set(ERR_INVALID, "email contains a character that is not allowed");
		if (c == '@') {
			if (at != len)
				return err_set(ERR_INVALID, "email must contain exactly one '@'");
			at = i;
		}
		out[i] = (char)(c < 0x80 ? tolower(c) : c);
	}
	out[len] = '\0';
	if (at == len || at == 0 || at == len - 1)
		return err_set(ERR_INVALID, "email needs a local part and a domain");
	const char *domain = out + at + 1;
	const char *dot = strchr(domain, '.');
	if (dot == NULL || dot == domain || domain[strlen(domain) - 1] == '.' || strstr(domain, "..") != NULL)
		return err_set(ERR_INVALID, "email domain must be a dotted name");
	return 0;
}

int normalize_phone(const char *in, size_t len, char *out, size_t cap)
{
	size_t o = 0, digits = 0;
	/* Room for at least '+' and the terminator; digits check as they go. */
	if (cap < 2)
		return err_set(ERR_INVALID, "phone has too many digits");
	for (size_t i = 0; i < len; i++) {
		char c = in[i];
		if (c == ' ' || c == '-' || c == '.' || c == '(' || c == ')')
			continue;
		if (c == '+' && o == 0) {
			out[o++] = c;
			continue;
		}
		if (c < '0' || c > '9')
			return err_set(
				ERR_INVALID,
				"phone may hold only digits, '+', spaces, dots, dashes and parentheses");
		if (o + 2 > cap || digits >= LIMIT_PHONE_DIGITS)
			return err_set(ERR_INVALID, "phone has too many digits");
		out[o++] = c;
		digits++;
	}
	out[o] = '\0';
	if (o == 0 || out[0] != '+' || digits < LIMIT_PHONE_DIGITS_MIN)
		return err_set(ERR_INVALID, "phone must be in international form: '+' and %d to %d digits",
			       LIMIT_PHONE_DIGITS_MIN, LIMIT_PHONE_DIGITS);
	return 0;
}

bool json_depth_within(const char *s, size_t len, int max)
{
	int depth = 0;
	bool in_string = false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (in_string) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = false;
		} else if (c == '"') {
			in_string = true;
		} else if (c == '{' || c == '[') {
			if (++depth > max)
				return false;
		} else if ((c == '}' || c == ']') && depth > 0) {
			/* Clamped at zero so stray closers cannot buy extra depth. */
			depth--;
		}
	}
	return true;
}

size_t percent_decode(char *s)
{
	char *w = s;
	for (char *r = s; *r != '\0'; r++) {
		int hi, lo;
		if (r[0] == '%' && (hi = hex_digit((unsigned char)r[1])) >= 0 &&
		    (lo = hex_digit((unsigned char)r[2])) >= 0) {
			int v = hi << 4 | lo;
			*w++ = (v < 0x20 || v == 0x7f) ? (char)0x7f : (char)v;
			r += 2;
			continue;
		}
		*w++ = *r;
	}
	*w = '\0';
	return (size_t)(w - s);
}

bool is_name(const char *s)
{
	if (s == NULL || !(s[0] >= 'a' && s[0] <= 'z'))
		return false;
	size_t n = 0;
	for (; s[n] != '\0'; n++) {
		char c = s[n];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
			return false;
	}
	return n <= LIMIT_NAME_BYTES;
}

bool is_contact_id(const char *s)
{
	if (s == NULL)
		return false;
	size_t n = 0;
	for (; s[n] != '\0'; n++)
		if (b64val((unsigned char)s[n]) < 0)
			return false;
	return n == CONTACT_ID_BYTES;
}

bool is_clean_utf8(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;
	while (i < len) {
		unsigned char c = s[i];
		if (c < 0x80) {
			if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f)
				return false;
			i++;
			continue;
		}
		size_t n;
		uint32_t cp;
		if ((c & 0xe0) == 0xc0) {
			n = 1;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (i + n >= len)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp < 0xa0))
			return false;
		i += n + 1;
	}
	return true;
}

bool is_identifier(const char *s, size_t max)
{
	size_t n = 0;
	if (s == NULL)
		return false;
	for (; s[n] != '\0'; n++) {
		char c = s[n];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (n >= max || (!alnum && strchr("._:@/+-", c) == NULL))
			return false;
	}
	return n > 0;
}

size_t utf8_chars(const char *s, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80)
			k++;
	return k;
}

bool is_actor_name(const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;
	if (n == 0 || n > LIMIT_PRINCIPAL_BYTES || !is_clean_utf8(s, n) ||
	    utf8_chars(s, n) > LIMIT_PRINCIPAL_CHARS)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

bool is_principal_name(const char *s)
{
	static const char *const reserved[] = { "customer", "operator", "system" };
	/* Invisible or reordering characters that would make one name look
	 * like another in an export: LRM/RLM, line and paragraph separators,
	 * bidi embeddings and isolates, BOM. */
	static const char *const invisible[] = { "\xe2\x80\x8e", "\xe2\x80\x8f", "\xe2\x80\xa8",
						 "\xe2\x80\xa9", "\xe2\x80\xaa", "\xe2\x80\xab",
						 "\xe2\x80\xac", "\xe2\x80\xad", "\xe2\x80\xae",
						 "\xe2\x81\xa6", "\xe2\x81\xa7", "\xe2\x81\xa8",
						 "\xe2\x81\xa9", "\xef\xbb\xbf" };
	if (s == NULL)
		return false;
	size_t n = strlen(s);
	if (n == 0 || n > LIMIT_PRINCIPAL_BYTES || s[0] == ' ' || s[n - 1] == ' ' ||
	    strpbrk(s, "\t\r\n") != NULL || !is_clean_utf8(s, n) || utf8_chars(s, n) > LIMIT_PRINCIPAL_CHARS)
		return false;
	for (size_t i = 0; i < sizeof invisible / sizeof invisible[0]; i++)
		if (strstr(s, invisible[i]) != NULL)
			return false;
	for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
		if (strcasecmp(s, reserved[i]) == 0)
			return false;
	return true;
}

/* Zero in production: only app_test_clock() sets it, and only when the
 * test hooks are enabled (CONSENTD_TEST_FAULTS=1). */
static int64_t clock_offset_us;

void clock_set_test_offset_s(int64_t s)
{
	clock_offset_us = s * 1000000;
}

int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000 + clock_offset_us;
}

/* Days since 1970-01-01 to a proleptic Gregorian date, and back
 * (H. Hinnant's algorithms: exact for every date, before 1970 too). */
void civil_from_days(int64_t z, int *y, int *m, int *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = (int)(yoe + era * 400 + (*m <= 2));
}

int64_t days_from_civil(int y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

void format_time_us(int64_t us, char *out, size_t cap)
{
	/* Floor division, so a time before the epoch still counts forward
	 * from its second (-1 us is 23:59:59.999999 of the day before). */
	int64_t secs = us / 1000000, frac = us % 1000000;
	if (frac < 0) {
		frac += 1000000;
		secs -= 1;
	}
	int64_t days = secs / 86400, sod = secs % 86400;
	if (sod < 0) {
		sod += 86400;
		days -= 1;
	}
	int y, mo, d;
	civil_from_days(days, &y, &mo, &d);
	snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", y, mo, d, (int)(sod / 3600),
		 (int)(sod / 60 % 60), (int)(sod % 60), (long long)frac);
}

static int digits(const char *s, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

int parse_time(const char *s, int64_t *us_out)
{
	int y, mo, d, h, mi, sec;
	if (strlen(s) < 20 || strlen(s) > 40 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) ||
	    s[7] != '-' || digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
	    digits(s + 11, 2, &h) || s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' ||
	    digits(s + 17, 2, &sec))
		return err_set(ERR_INVALID, "time must be RFC 3339, e.g. 2026-01-31T12:00:00Z");
	if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return err_set(ERR_INVALID, "time is out of range");
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	if (d > mdays[mo - 1] || (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)))
		return err_set(ERR_INVALID, "time names a day that does not exist");
	const char *p = s + 19;
	int64_t frac = 0;
	if (*p == '.') {
		p++;
		int n = 0;
		int64_t scale = 100000;
		while (*p >= '0' && *p <= '9') {
			if (n < 6)
				frac += (*p - '0') * scale;
			scale /= 10;
			p++;
			n++;
		}
		if (n == 0 || n > 9)
			return err_set(ERR_INVALID, "time has a bad fraction");
	}
	int offset = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int oh, om;
		if (digits(p + 1, 2, &oh) || p[3] != ':' || digits(p + 4, 2, &om) || oh > 23 || om > 59)
			return err_set(ERR_INVALID, "time has a bad offset");
		offset = (oh * 60 + om) * 60 * (*p == '-' ? -1 : 1);
		p += 6;
	} else {
		return err_set(ERR_INVALID, "time needs a zone: Z or an offset");
	}
	if (*p != '\0')
		return err_set(ERR_INVALID, "time has trailing characters");
	int64_t days = days_from_civil(y, mo, d);
	int64_t secs = days * 86400 + h * 3600 + mi * 60 + (sec == 60 ? 59 : sec) - offset;
	*us_out = secs * 1000000 + frac;
	return 0;
}

void mem_wipe(void *buf, size_t len)
{
	if (buf != NULL)
		explicit_bzero(buf, len);
}
