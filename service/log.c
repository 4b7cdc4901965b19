/*
 * log: structured JSON log lines in place of stderr (log.h).
 *
 * The replacement stream is a glibc cookie stream, line buffered, whose
 * write function collects bytes until a newline and then writes one JSON
 * object with a single write(2) to the original standard error, so lines
 * of different threads never interleave (stdio locks the stream around
 * each fprintf, and the object is written whole). Output that is not a
 * whole line when the process ends is lost, as with any buffered log.
 */
#include "service/log.h"

#include "service/base/error.h"
#include "service/base/limits.h"

#include <ctype.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

struct log_line {
	char buf[LIMIT_LOG_LINE_BYTES];
	size_t n;
	bool continued; /* the line's first part went out already */
};

static struct log_line pending; /* guarded by the stream's own lock */
static int log_fd = -1;
static atomic_bool json_mode;

/* The JSON string value of s[0..n), escaped, into out; returns the bytes
 * written. Control bytes become \u00XX; bytes >= 0x80 pass as they are
 * (the messages are ASCII; any other byte was in the text log too). */
static size_t put_string(char *out, size_t cap, const char *s, size_t n)
{
	size_t o = 0;
	for (size_t i = 0; i < n && o + 7 < cap; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			o += (size_t)snprintf(out + o, cap - o, "\\u%04x", c);
		} else {
			out[o++] = (char)c;
		}
	}
	return o;
}

static void put_time(char *out, size_t cap)
{
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, cap - n, ".%06ldZ", (long)tv.tv_usec);
}

/* The level a text line implies: the code's own wording decides. */
static const char *level_of(const char *m, size_t n)
{
	char low[256];
	size_t k = n < sizeof low - 1 ? n : sizeof low - 1;
	for (size_t i = 0; i < k; i++)
		low[i] = (char)tolower((unsigned char)m[i]);
	low[k] = '\0';
	if (strstr(low, "alarm") != NULL)
		return "critical";
	if (strstr(low, "warning") != NULL || strstr(low, "test clock") != NULL)
		return "warning";
	static const char *const errors[] = { "error",	  "failed",  "failing", "cannot", "refused",
					      "refusing", "invalid", "denied",	"lost" };
	for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++)
		if (strstr(low, errors[i]) != NULL)
			return "error";
	return "info";
}

static void emit(const char *line, size_t n, bool continued)
{
	/* Escaping at most sextuples a byte; the rest is the fixed fields. */
	static char out[LIMIT_LOG_LINE_BYTES * 6 + 512];
	char when[40];
	const char *m = line, *rid = NULL, *comp = NULL;
	size_t mn = n, rn = 0, cn = 0, o = 0;
	if (!continued && mn >= 10 && memcmp(m, "consentd: ", 10) == 0) {
		m += 10;
		mn -= 10;
		if (mn > 8 && memcmp(m, "request ", 8) == 0) {
			const char *end = memchr(m + 8, ':', mn - 8);
			if (end != NULL && end - (m + 8) <= 64) {
				rid = m + 8;
				rn = (size_t)(end - rid);
				mn -= (size_t)(end + 1 - m);
				m = end + 1;
			}
		} else {
			size_t w = 0;
			while (w < mn && w < 16 && (islower((unsigned char)m[w]) || m[w] == '_'))
				w++;
			if (w > 0 && w + 1 < mn && m[w] == ':' && m[w + 1] == ' ') {
				comp = m;
				cn = w;
				m += w + 1;
				mn -= w + 1;
			}
		}
		while (mn > 0 && *m == ' ') {
			m++;
			mn--;
		}
	}
	put_time(when, sizeof when);
	o += (size_t)snprintf(out + o, sizeof out - o, "{\"time\":\"%s\",\"level\":\"%s\",\"message\":\"",
			      when, level_of(m, mn));
	o += put_string(out + o, sizeof out - o, m, mn);
	o += (size_t)snprintf(out + o, sizeof out - o, "\"");
	if (rid != NULL) {
		o += (size_t)snprintf(out + o, sizeof out - o, ",\"request_id\":\"");
		o += put_string(out + o, sizeof out - o, rid, rn);
		o += (size_t)snprintf(out + o, sizeof out - o, "\"");
	}
	if (comp != NULL) {
		o += (size_t)snprintf(out + o, sizeof out - o, ",\"component\":\"");
		o += put_string(out + o, sizeof out - o, comp, cn);
		o += (size_t)snprintf(out + o, sizeof out - o, "\"");
	}
	if (continued)
		o += (size_t)snprintf(out + o, sizeof out - o, ",\"continued\":true");
	o += (size_t)snprintf(out + o, sizeof out - o, "}\n");
	for (size_t done = 0; done < o;) {
		ssize_t w = write(log_fd, out + done, o - done);
		if (w <= 0)
			break; /* nowhere left to say so */
		done += (size_t)w;
	}
}

static ssize_t cookie_write(void *cookie, const char *buf, size_t size)
{
	struct log_line *l = cookie;
	for (size_t i = 0; i < size; i++) {
		if (buf[i] == '\n') {
			emit(l->buf, l->n, l->continued);
			l->n = 0;
			l->continued = false;
			continue;
		}
		if (l->n == sizeof l->buf) {
			emit(l->buf, l->n, l->continued);
			l->n = 0;
			l->continued = true;
		}
		l->buf[l->n++] = buf[i];
	}
	return (ssize_t)size;
}

int log_setup(bool json)
{
	if (!json || atomic_load(&json_mode))
		return 0;
	fflush(stderr);
	log_fd = dup(STDERR_FILENO);
	if (log_fd < 0)
		return err_set(ERR_IO, "cannot set up the JSON log");
	cookie_io_functions_t io = { .write = cookie_write };
	FILE *f = fopencookie(&pending, "w", io);
	if (f == NULL || setvbuf(f, NULL, _IOLBF, LIMIT_LOG_LINE_BYTES) != 0) {
		if (f != NULL)
			fclose(f);
		close(log_fd);
		log_fd = -1;
		return err_set(ERR_IO, "cannot set up the JSON log");
	}
	stderr = f;
	atomic_store(&json_mode, true);
	return 0;
}

bool log_is_json(void)
{
	return atomic_load(&json_mode);
}

void log_request(const char *request_id, const char *method, int status, int64_t duration_us)
{
	if (!atomic_load(&json_mode))
		return;
	char out[1024], when[40], rid[400], meth[200];
	/* A request id is at most 64 bytes (http.c) and a method that long
	 * or longer is answered 405/501 anyway. */
	size_t rn = put_string(rid, sizeof rid, request_id, strnlen(request_id, 64));
	size_t mn = put_string(meth, sizeof meth, method ? method : "", method ? strnlen(method, 32) : 0);
	put_time(when, sizeof when);
	int o = snprintf(
		out, sizeof out,
		"{\"time\":\"%s\",\"level\":\"info\",\"message\":\"request done\",\"request_id\":\"%.*s\","
		"\"method\":\"%.*s\",\"status\":%d,\"duration_ms\":%.3f}\n",
		when, (int)rn, rid, (int)mn, meth, status, (double)duration_us / 1000.0);
	if (o > 0 && (size_t)o < sizeof out) {
		/* The stream's lock keeps this line out of the middle of another. */
		flockfile(stderr);
		ssize_t w = write(log_fd, out, (size_t)o);
		(void)w;
		funlockfile(stderr);
	}
}
