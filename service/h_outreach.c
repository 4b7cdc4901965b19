/*
 * h_outreach: POST /v1/outreach/filter — a campaign list in, one answer per
 * distinct entry out — and the auditor's question about it afterwards.
 *
 * The list is consumed chunk by chunk as it arrives (service/bulk.c); each
 * entry is decided at once with one query (store_filter_by_*) and the same
 * policy_decide_contact() the single check uses, so the two always agree.
 * libmicrohttpd cannot answer before the upload ends, so result lines go to
 * an encrypted anonymous spill file (service/crypto/spill.c), and after the
 * upload ONE audit entry for the request is committed, together with the
 * release record (which contact ids were allowed) in the same transaction;
 * then the spill is streamed back, decrypted, as the reply.
 *
 *   headers ─> begin: check params, role, media type; open spill, digest
 *   chunk*  ─> digest; bulk_feed ─> on_item: dedupe ─> query ─> decide ─> spill
 *   finish  ─> summary line ─> audit entry + release record (apply) ─> stream
 *
 * Memory is bounded whatever the list size: one line buffer (64 KiB), two
 * spill records (2 x 64 KiB), and two dedupe sets of 8-byte digests (the
 * entries, and the contacts answered allowed, so one person named by id and
 * by email is allowed once), each doubling from 64 Ki slots up to
 * FILTER_DEDUPE_SLOTS_MAX (64 MiB, at most 0.75 full: 6.29 M). A list with
 * more distinct entries is refused with 413 (and audited); split it.
 *
 * Campaign rules on top of the consent decision: a purpose's frequency cap
 * and the person's own frequency choice (release_outreach_held, counted
 * from the release log; recounted on the writer, release_cap_recheck);
 * dry_run=true answers the same and records nothing; only=allowed leaves
 * denied lines out; Accept: text/csv answers CSV with the summary in a
 * header.
 *
 * An entry that cannot be decided (a store error) is denied with reason
 * "error", never allowed.
 */
#include "service/app.h"

#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/bulk.h"
#include "service/domain/consent.h"
#include "service/domain/contact.h"
#include "service/domain/release.h"
#include "service/crypto/spill.h"
#include "service/router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FILTER_DEDUPE_SLOTS_MIN (UINT64_C(1) << 16)
#define FILTER_DEDUPE_SLOTS_MAX (UINT64_C(1) << 23)
#define RELEASE_CHUNK_IDS 4096
#define LINE_CAP (LIMIT_LINE_BYTES * 6 + 512)
#define FILTER_CSV_HEADER "entry,allowed,reason,contact_id,reachable_again,line,error\r\n"

struct dedupe {
	uint64_t *slots;
	uint64_t cap, n;
};

struct filter {
	struct reqctx *ctx;
	char purpose[STORE_NAME_CAP], channel[STORE_NAME_CAP];
	int setup_rc; /* a problem found in begin, answered in finish */
	const char *setup_reason;
	bool role_denied;
	bool dry_run;		       /* answer, but record no release (caps unchanged) */
	bool only_allowed;	       /* only=allowed: leave denied entries out of the reply */
	bool csv_out;		       /* Accept: text/csv: CSV records, the summary in a header */
	int64_t cap_max, cap_per_days; /* the purpose's frequency cap; 0: none */
	bool frequency_choice;	       /* the purpose lets people choose how often */
	enum bulk_format fmt;
	struct bulk_reader *reader;
	struct spill *out, *rel;
	struct spill_digest *digest;
	struct dedupe seen;
	struct dedupe persons; /* contact ids already answered allowed */
	struct txn txn;	       /* the domain's handle: keys and policy; .c set per entry */
	int64_t now_s;
	uint64_t total, allowed, denied, duplicates, invalid, errors, released;
	uint64_t same_person, held_by_cap;
	uint64_t reasons[POLICY_REASON_COUNT];
	char release_id[STORE_ID_CAP];
	char list_hmac_hex[65];
	char *line;	 /* LINE_CAP: one result line */
	json_t *summary; /* the release record's summary, kept for apply */
};

static void filter_free(void *p)
{
	struct filter *f = p;
	if (f == NULL)
		return;
	bulk_reader_free(f->reader);
	spill_free(f->out);
	spill_free(f->rel);
	spill_digest_free(f->digest);
	free(f->seen.slots);
	free(f->persons.slots);
	free(f->line);
	json_decref(f->summary);
	free(f);
}

/* ---- the dedupe set: open addressing over non-zero 64-bit keys ---- */

static int dedupe_grow(struct dedupe *d)
{
	uint64_t cap = d->cap ? d->cap * 2 : FILTER_DEDUPE_SLOTS_MIN;
	if (cap > FILTER_DEDUPE_SLOTS_MAX)
		return err_set(ERR_TOOBIG, "the list has more than %llu distinct entries; split it",
			       (unsigned long long)(FILTER_DEDUPE_SLOTS_MAX / 4 * 3));
	uint64_t *slots = calloc(cap, sizeof *slots);
	if (slots == NULL)
		return err_set(ERR_NOMEM, "out of memory");
	for (uint64_t i = 0; i < d->cap; i++) {
		uint64_t k = d->slots[i];
		if (k == 0)
			continue;
		uint64_t j = k & (cap - 1);
		while (slots[j] != 0)
			j = (j + 1) & (cap - 1);
		slots[j] = k;
	}
	free(d->slots);
	d->slots = slots;
	d->cap = cap;
	return 0;
}

/* 1 when key was already there, 0 when added, or a negative error. */
static int dedupe_add(struct dedupe *d, const uint8_t digest[8])
{
	uint64_t k;
	memcpy(&k, digest, 8);
	if (k == 0)
		k = 1;
	if ((d->n + 1) * 4 > d->cap * 3) {
		int rc = dedupe_grow(d);
		if (rc != 0)
			return rc;
	}
	uint64_t j = k & (d->cap - 1); /* keys are uniform digests */
	while (d->slots[j] != 0) {
		if (d->slots[j] == k)
			return 1;
		j = (j + 1) & (d->cap - 1);
	}
	d->slots[j] = k;
	d->n++;
	return 0;
}

/* ---- result lines ---- */

/* The entry as given, as JSON: strings quoted by hand (the hot path),
 * anything else through jansson; NULL and oversized values become null. */
static size_t echo(json_t *v, char *out, size_t cap)
{
	if (json_is_string(v)) {
		size_t n = bulk_json_quote(json_string_value(v), json_string_length(v), out, cap);
		if (n > 0)
			return n;
	} else if (v != NULL) {
		size_t n = json_dumpb(v, out, cap, JSON_COMPACT | JSON_ENCODE_ANY);
		if (n > 0 && n < cap)
			return n;
	}
	memcpy(out, "null", 4);
	return 4;
}

/* The string to decide: the entry itself, or one of the known keys of an
 * object entry (a CSV row with a header, an NDJSON object). */
static const char *entry_text(json_t *v)
{
	static const char *const keys[] = { "contact_id", "id", "email", "entry", NULL };
	if (json_is_string(v))
		return json_string_value(v);
	if (!json_is_object(v))
		return NULL;
	for (int i = 0; keys[i] != NULL; i++) {
		json_t *s = json_object_get(v, keys[i]);
		if (json_is_string(s))
			return json_string_value(s);
	}
	return NULL;
}

/* One CSV field (RFC 4180): quoted when it holds a comma, a quote or a line
 * break, and formula-safe: a field a spreadsheet would run as a formula
 * (starting with = + - @, a tab or a carriage return) gets a leading
 * apostrophe, so a hostile list cannot plant a formula in the export. */
static size_t csv_field(const char *s, char *out, size_t cap)
{
	size_t n = 0, len = s ? strlen(s) : 0;
	bool quote = len > 0 && strpbrk(s, ",\"\r\n") != NULL;
	bool formula = len > 0 && strchr("=+-@\t\r", s[0]) != NULL;
	if (len * 2 + 4 > cap)
		return 0;
	if (quote)
		out[n++] = '"';
	if (formula)
		out[n++] = '\'';
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '"')
			out[n++] = '"';
		out[n++] = s[i];
	}
	if (quote)
		out[n++] = '"';
	return n;
}

/* A result as one CSV record (FILTER_CSV_HEADER's columns); line and error
 * only for an invalid entry, as in the NDJSON. */
static int put_csv(struct filter *f, json_t *entry, bool allowed, const char *reason, int64_t reachable_us,
		   const char *contact_id, uint64_t line, const char *error)
{
	char num[24] = "";
	char when[32] = "";
	const char *text = entry_text(entry);
	size_t n = csv_field(text, f->line, LINE_CAP - 256);
	if (text != NULL && n == 0)
		return err_set(ERR_TOOBIG, "an entry is too long to answer");
	if (reachable_us > 0)
		format_time_us(reachable_us, when, sizeof when);
	if (error != NULL)
		snprintf(num, sizeof num, "%llu", (unsigned long long)line);
	n += (size_t)snprintf(f->line + n, LINE_CAP - n, ",%s,%s,%s,%s,%s,", allowed ? "true" : "false",
			      error ? "invalid" : reason, allowed && contact_id ? contact_id : "", when, num);
	n += csv_field(error, f->line + n, LINE_CAP - n - 2);
	memcpy(f->line + n, "\r\n", 2);
	n += 2;
	return spill_write(f->out, f->line, n);
}

static int put_line_at(struct filter *f, json_t *entry, bool allowed, const char *reason, uint64_t line,
		       const char *error, int64_t reachable_us, const char *contact_id)
{
	size_t n = 0;
	if (f->only_allowed && !allowed)
		return 0;
	if (f->csv_out)
		return put_csv(f, entry, allowed, reason, reachable_us, contact_id, line, error);
	memcpy(f->line, "{\"entry\":", 9);
	n = 9;
	n += echo(entry, f->line + n, LINE_CAP - 256 - n);
	if (error != NULL)
		n += (size_t)snprintf(
			f->line + n, LINE_CAP - n,
			",\"line\":%llu,\"allowed\":false,\"reason\":\"invalid\",\"error\":\"%s\"}\n",
			(unsigned long long)line, error);
	else if (reachable_us > 0) {
		char when[32];
		format_time_us(reachable_us, when, sizeof when);
		n += (size_t)snprintf(f->line + n, LINE_CAP - n,
				      ",\"allowed\":false,\"reason\":\"%s\",\"reachable_again\":\"%s\"}\n",
				      reason, when);
	} else
		n += (size_t)snprintf(f->line + n, LINE_CAP - n, ",\"allowed\":%s,\"reason\":\"%s\"}\n",
				      allowed ? "true" : "false", reason);
	return spill_write(f->out, f->line, n);
}

static int put_line(struct filter *f, json_t *entry, bool allowed, const char *reason, uint64_t line,
		    const char *error)
{
	return put_line_at(f, entry, allowed, reason, line, error, 0, NULL);
}

static int entry_invalid(struct filter *f, const struct bulk_item *it, const char *why)
{
	f->invalid++;
	f->denied++;
	return put_line(f, it->value, false, "invalid", it->line, why);
}

static int on_item(void *arg, const struct bulk_item *it)
{
	struct filter *f = arg;
	struct reqctx *ctx = f->ctx;
	struct store_filter_row row;
	uint8_t bidx[32], shash[32], key[32];
	int rc;

	f->total++;
	f->txn.c = ctx->rd;
	if (it->error != NULL)
		return entry_invalid(f, it, it->error);
	const char *s = entry_text(it->value);
	if (s == NULL)
		return entry_invalid(f, it, "an entry is a contact id or an email address");
	bool by_id = is_contact_id(s);
	if (by_id) {
		release_id_key(s, key);
	} else {
		if (contact_hash_email(&f->txn, s, bidx, shash) != 0)
			return entry_invalid(f, it, "not an email address or a contact id");
		memcpy(key, bidx, 8);
	}
	rc = dedupe_add(&f->seen, key);
	if (rc < 0)
		return rc;
	if (rc == 1) {
		f->duplicates++;
		return 0;
	}
	atomic_fetch_add(&ctx->app->metrics.filter_entries, 1);
	rc = consent_lookup_hashed(&f->txn, by_id ? s : NULL, bidx, shash, f->purpose, f->channel, &row);
	if (rc != 0) {
		/* Undecidable: denied, never allowed. */
		f->errors++;
		f->denied++;
		return put_line(f, it->value, false, "error", 0, NULL);
	}
	struct policy_decision d;
	int64_t reachable_us = 0;
	consent_decide(&f->txn, ctx->role, f->purpose, f->channel, &row, f->now_s, &d);
	if (d.allowed) {
		/* One person named twice (by id and by email) is answered allowed
		 * once, so a campaign never reaches anyone twice. */
		uint8_t pkey[32];
		release_id_key(row.id, pkey);
		rc = dedupe_add(&f->persons, pkey);
		if (rc < 0)
			return rc;
		if (rc == 1) {
			f->same_person++;
			f->denied++;
			return put_line(f, it->value, false, "duplicate_person", 0, NULL);
		}
	}
	if (d.allowed && (f->cap_max > 0 || f->frequency_choice)) {
		bool held = false;
		if (release_outreach_held(&f->txn, row.id, f->purpose, f->channel, f->cap_max,
					  f->cap_per_days, f->frequency_choice, &held, &reachable_us) != 0) {
			f->errors++;
			f->denied++;
			return put_line(f, it->value, false, "error", 0, NULL);
		}
		if (held) {
			d.allowed = false;
			d.reason = POLICY_REASON_FREQUENCY_CAP;
			f->held_by_cap++;
		}
	}
	f->reasons[d.reason]++;
	if (d.allowed) {
		uint8_t raw[16];
		f->allowed++;
		if (b64url_decode(row.id, strlen(row.id), raw, sizeof raw) == 16) {
			if ((rc = spill_write(f->rel, raw, sizeof raw)) != 0)
				return rc;
			f->released++;
		}
	} else {
		f->denied++;
	}
	return put_line_at(f, it->value, d.allowed, policy_reason_name(d.reason), 0, NULL, reachable_us,
			   row.id);
}

/* ---- the stream ---- */

/* CSV when the client asks for text/csv and not for NDJSON first; NDJSON
 * stays the default (no Accept, * / *, or anything else). */
static bool filter_wants_csv(const char *accept)
{
	if (accept == NULL)
		return false;
	const char *csv = strcasestr(accept, "text/csv");
	const char *nd = strcasestr(accept, "ndjson");
	return csv != NULL && (nd == NULL || csv < nd);
}

static int filter_begin(struct reqctx *ctx)
{
	struct filter *f = calloc(1, sizeof *f);
	const char *purpose = http_query(ctx->http, "purpose"), *channel = http_query(ctx->http, "channel");
	enum bulk_csv_header hdr;
	struct policy_purpose_info pi;
	enum policy_channel ch;
	int rc;
	if (f == NULL)
		return err_set(ERR_NOMEM, "out of memory");
	ctx->stream_state = f;
	f->ctx = ctx;
	f->now_s = now_us() / 1000000;
	f->txn = app_txn(ctx, ctx->rd);
	if (purpose == NULL || !is_name(purpose) || (channel != NULL && !is_name(channel))) {
		f->setup_rc = err_set(ERR_INVALID, "name the campaign: ?purpose=NAME&channel=NAME");
		return f->setup_rc;
	}
	snprintf(f->purpose, sizeof f->purpose, "%s", purpose);
	snprintf(f->channel, sizeof f->channel, "%s", channel ? channel : "");
	const char *dry = http_query(ctx->http, "dry_run");
	if (dry != NULL && strcmp(dry, "true") != 0 && strcmp(dry, "false") != 0) {
		f->setup_rc = err_set(ERR_INVALID, "dry_run is true or false");
		return f->setup_rc;
	}
	f->dry_run = dry != NULL && strcmp(dry, "true") == 0;
	const char *only = http_query(ctx->http, "only");
	if (only != NULL && strcmp(only, "allowed") != 0) {
		f->setup_rc = err_set(ERR_INVALID, "only=allowed is the one choice");
		return f->setup_rc;
	}
	f->only_allowed = only != NULL;
	f->csv_out = filter_wants_csv(http_header(ctx->http, "Accept"));
	/* Names the policy does not know are 422, as in the single check; only
	 * then is the role's right to the purpose decided. */
	if (policy_purpose_get(ctx->policy, purpose, &pi) != 0) {
		f->setup_rc = err_set(ERR_UNPROCESSABLE, "unknown purpose \"%s\"", purpose);
		f->setup_reason = "unknown_purpose";
		return f->setup_rc;
	}
	f->cap_max = pi.cap_max;
	f->cap_per_days = pi.cap_per_days;
	f->frequency_choice = pi.frequency_choice;
	/* A purpose that declares no channels (analytics, partner sharing) is
	 * filtered without one; naming one for it is a clear 422. */
	if (pi.channels == 0 && channel != NULL) {
		f->setup_rc =
			err_set(ERR_UNPROCESSABLE, "purpose %s uses no channel; leave channel out", purpose);
		f->setup_reason = "channel_not_allowed";
		return f->setup_rc;
	}
	if (pi.channels != 0 && channel == NULL) {
		f->setup_rc = err_set(ERR_INVALID, "name the campaign: ?purpose=NAME&channel=NAME");
		return f->setup_rc;
	}
	if (channel != NULL && policy_channel_from_name(channel, &ch) != 0) {
		f->setup_rc = err_set(ERR_UNPROCESSABLE, "unknown channel \"%s\"", channel);
		f->setup_reason = "unknown_channel";
		return f->setup_rc;
	}
	if (!policy_role_may(ctx->policy, ctx->role, POLICY_ACT_OUTREACH_FILTER) ||
	    !policy_role_may_purpose(ctx->policy, ctx->role, purpose)) {
		f->role_denied = true;
		return ERR_DENIED;
	}
	if ((rc = bulk_format_from_type(http_header(ctx->http, "Content-Type"), &f->fmt, &hdr)) != 0) {
		f->setup_rc = rc;
		return rc;
	}
	if ((f->line = malloc(LINE_CAP)) == NULL)
		rc = err_set(ERR_NOMEM, "out of memory");
	if (rc == 0)
		rc = bulk_reader_new(&f->reader, f->fmt, hdr, on_item, f);
	if (rc == 0)
		rc = spill_open(&f->out, ctx->app->cfg.dir);
	if (rc == 0)
		rc = spill_open(&f->rel, ctx->app->cfg.dir);
	if (rc == 0 && f->csv_out)
		rc = spill_write(f->out, FILTER_CSV_HEADER, strlen(FILTER_CSV_HEADER));
	if (rc == 0)
		rc = spill_digest_new(&f->digest);
	if (rc == 0)
		rc = dedupe_grow(&f->seen);
	if (rc == 0)
		rc = dedupe_grow(&f->persons);
	if (rc == 0)
		rc = consent_lookup_bulk(&f->txn);
	if (rc != 0)
		f->setup_rc = rc;
	return rc;
}

static int filter_chunk(struct reqctx *ctx, const char *data, size_t len)
{
	struct filter *f = ctx->stream_state;
	spill_digest_update(f->digest, data, len);
	return bulk_feed(f->reader, data, len);
}

static int cmp16(const void *a, const void *b)
{
	return memcmp(a, b, 16);
}

/* The release record, in the audit entry's transaction (commit thread). */
static int apply_release(struct store_conn *w, struct writer_job *job)
{
	struct reqctx *ctx = job->ctx;
	struct filter *f = ctx->stream_state;
	struct txn t = app_txn(ctx, w);
	uint8_t *ids = malloc(RELEASE_CHUNK_IDS * 16);
	int64_t chunk = 0;
	int rc = ids ? spill_rewind(f->rel) : err_set(ERR_NOMEM, "out of memory");
	while (rc == 0) {
		size_t have = 0;
		while (have < RELEASE_CHUNK_IDS * 16) {
			ssize_t n = spill_read(f->rel, ids + have, RELEASE_CHUNK_IDS * 16 - have);
			if (n < 0) {
				rc = (int)n;
				break;
			}
			if (n == 0)
				break;
			have += (size_t)n;
		}
		if (rc != 0 || have == 0)
			break;
		qsort(ids, have / 16, 16, cmp16);
		rc = release_put(&t, f->release_id, chunk++, ids, have / 16);
		if (rc == 0)
			rc = release_cap_recheck(&t, f->purpose, f->channel, f->cap_max, f->cap_per_days, ids,
						 have / 16);
		if (rc == 0)
			rc = release_log_put(&t, f->release_id, f->purpose, f->channel, ids, have / 16);
		if (have < RELEASE_CHUNK_IDS * 16)
			break;
	}
	free(ids);
	if (rc == 0)
		rc = release_summary_put(&t, f->release_id, f->summary);
	if (rc != 0)
		audit_decide(ctx, false, rc == ERR_CONFLICT ? "cap_conflict" : "error");
	return rc;
}

static void filter_finish(struct reqctx *ctx)
{
	struct filter *f = ctx->stream_state;
	int rc = ctx->stream_rc;
	if (app_stream_refused(ctx, f, f && f->role_denied, POLICY_ACT_OUTREACH_FILTER, f ? f->purpose : NULL,
			       f ? f->setup_rc : 0, f ? f->setup_reason : NULL))
		return;
	if (rc == 0)
		rc = bulk_finish(f->reader);
	/* A campaign list is personal data, and a short one is recovered from a
	 * plain SHA-256 by trying likely addresses; what the trail and the reply
	 * show is keyed like every other hash of personal data: HMAC-SHA256,
	 * under a key derived from the index key, over the body's SHA-256. */
	uint8_t sha[32];
	spill_digest_final(f->digest, sha);
	int drc = release_list_digest(&f->txn, sha, f->list_hmac_hex);
	if (drc != 0 && rc == 0)
		rc = drc;
	release_new_id(f->release_id);

	audit_begin(ctx, "outreach.filter", "", f->purpose, f->channel);
	json_t *detail = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:s, s:s}", "total", (json_int_t)f->total,
				   "allowed", (json_int_t)f->allowed, "denied", (json_int_t)f->denied,
				   "duplicates", (json_int_t)f->duplicates, "invalid", (json_int_t)f->invalid,
				   "errors", (json_int_t)f->errors, "list_hmac", f->list_hmac_hex, "format",
				   f->fmt == BULK_JSON_ARRAY ? "json"
				   : f->fmt == BULK_NDJSON   ? "ndjson"
							     : "csv");
	if (rc != 0) {
		/* The list could not be read to its end: nothing is released. */
		const char *reason = rc == ERR_TOOBIG ? "list_too_large" : "malformed_list";
		if (err_code() != rc)
			err_set(rc, "the list could not be read");
		reply_problem(ctx, rc, reason);
		audit_decide(ctx, false, reason);
		audit_detail(ctx, detail);
		app_commit(ctx);
		return;
	}
	json_t *reasons = json_object();
	for (int i = 0; i < POLICY_REASON_COUNT; i++) {
		if (f->reasons[i] == 0)
			continue;
		const char *name = policy_reason_name((enum policy_reason)i);
		char key[80];
		snprintf(key, sizeof key, "reason_%s", name);
		json_object_set_new(detail, key, json_integer((json_int_t)f->reasons[i]));
		json_object_set_new(reasons, name, json_integer((json_int_t)f->reasons[i]));
	}
	if (f->invalid)
		json_object_set_new(reasons, "invalid", json_integer((json_int_t)f->invalid));
	if (f->errors)
		json_object_set_new(reasons, "error", json_integer((json_int_t)f->errors));
	if (f->dry_run) {
		/* A dry run answers the same way but releases no one: no release
		 * id, no record, nothing counted toward a frequency cap. */
		f->release_id[0] = '\0';
		json_object_set_new(detail, "dry_run", json_true());
	} else {
		json_object_set_new(detail, "release_id", json_string(f->release_id));
		json_object_set_new(detail, "released", json_integer((json_int_t)f->released));
	}
	json_object_set_new(detail, "same_person", json_integer((json_int_t)f->same_person));
	json_object_set_new(detail, "held_by_cap", json_integer((json_int_t)f->held_by_cap));
	json_t *summary = json_pack(
		"{s:{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:s, s:s, s:s}}", "summary", "purpose",
		f->purpose, "channel", f->channel, "total", (json_int_t)f->total, "distinct",
		(json_int_t)(f->total - f->duplicates - f->invalid), "allowed", (json_int_t)f->allowed,
		"denied", (json_int_t)f->denied, "duplicates", (json_int_t)f->duplicates, "invalid",
		(json_int_t)f->invalid, "errors", (json_int_t)f->errors, "reasons", reasons, "list_hmac",
		f->list_hmac_hex, "release_id", f->release_id, "request_id", http_request_id(ctx->http));
	json_t *sl = json_object_get(summary, "summary");
	json_object_set_new(sl, "same_person", json_integer((json_int_t)f->same_person));
	json_object_set_new(sl, "held_by_cap", json_integer((json_int_t)f->held_by_cap));
	json_object_set_new(sl, "dry_run", json_boolean(f->dry_run));
	if (f->dry_run)
		json_object_set_new(sl, "release_id", json_null());
	/* What the auditor reads later: the summary without the request id,
	 * plus who ran it. No entry of the list is in it. */
	f->summary = json_deep_copy(sl);
	if (f->summary != NULL) {
		json_object_del(f->summary, "request_id");
		json_object_set_new(f->summary, "release_id", json_string(f->release_id));
		json_object_set_new(f->summary, "released", json_integer((json_int_t)f->released));
		json_object_set_new(f->summary, "actor", json_string(ctx->actor));
	}
	char *text = json_dumps(summary, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(summary);
	if (f->csv_out) {
		/* A CSV has no place for the summary: it travels in a header, as
		 * the same JSON the NDJSON's last line holds. */
		rc = text ? 0 : err_set(ERR_NOMEM, "out of memory");
		if (rc == 0)
			http_add_header(ctx->http, "X-Filter-Summary", text);
	} else {
		rc = text ? spill_write(f->out, text, strlen(text)) : err_set(ERR_NOMEM, "out of memory");
		if (rc == 0)
			rc = spill_write(f->out, "\n", 1);
	}
	free(text);
	if (rc == 0)
		rc = spill_rewind(f->out);
	if (rc != 0) {
		reply_problem(ctx, rc, NULL);
		audit_decide(ctx, false, "error");
		audit_detail(ctx, detail);
		app_commit(ctx);
		return;
	}
	audit_decide(ctx, true, f->dry_run ? "dry_run" : "filtered");
	audit_detail(ctx, detail);
	ctx->status = 200;
	ctx->content_type = f->csv_out ? "text/csv; charset=utf-8; header=present" : "application/x-ndjson";

	ctx->stream_read = spill_reply_read;
	ctx->stream_ctx = f->out;
	ctx->stream_free = spill_reply_free;
	f->out = NULL; /* the reply owns it now */
	if (!f->dry_run) {
		http_add_header(ctx->http, "X-Release-Id", f->release_id);
		ctx->job.apply = apply_release;
	}
	app_commit(ctx);
}

/* TEMPORARY (issue 11): this file still renders its own problems; its
 * handlers are adapted to the route signature until they return codes. */
APP_VOID_HANDLER(filter_finish)

static const struct stream_ops filter_ops = {
	filter_begin,
	filter_chunk,
	filter_finish_route,
	filter_free,
};

/* ---- the auditor's view of a release ---- */

/* A release is known when its summary was recorded, or, for releases made
 * before summaries existed, when it released anyone. Unknown ids are 404,
 * never "not released". */
static int release_known(struct txn *t, const char *release, json_t **summary)
{
	int64_t count = 0;
	int rc = release_summary_get(t, release, summary);
	if (rc != ERR_NOTFOUND)
		return rc;
	rc = release_count(t, release, &count);
	if (rc == 0 && count == 0)
		rc = err_set(ERR_NOTFOUND, "no release %s", release);
	return rc;
}

static void h_release_summary(struct reqctx *ctx)
{
	const char *release = ctx->param[0];
	json_t *summary = NULL;
	if (!app_require(ctx, POLICY_ACT_AUDIT_READ, NULL, NULL))
		return;
	audit_begin(ctx, "outreach.release.summary", "", NULL, NULL);
	audit_detail(ctx, json_pack("{s:s}", "release_id", release));
	struct txn t = app_txn(ctx, ctx->rd);
	int rc = release_known(&t, release, &summary);
	if (rc == 0 && summary == NULL) {
		int64_t count = 0;
		rc = release_count(&t, release, &count);
		summary = json_pack("{s:s, s:I}", "release_id", release, "released", (json_int_t)count);
	}
	if (rc != 0) {
		audit_decide(ctx, false, rc == ERR_NOTFOUND ? "not_found" : "error");
		reply_problem(ctx, rc, NULL);
		app_commit(ctx);
		return;
	}
	audit_decide(ctx, true, "read");
	reply_json(ctx, 200, summary);
	app_commit(ctx);
}

/* ---- was contact X released by filter request R? ---- */

static void h_release_get(struct reqctx *ctx)
{
	const char *release = ctx->param[0], *id = ctx->param[1];
	uint8_t raw[16];
	int64_t count = 0;
	json_t *summary = NULL;
	if (!app_require(ctx, POLICY_ACT_AUDIT_READ, id, NULL))
		return;
	audit_begin(ctx, "outreach.release.read", id, NULL, NULL);
	int rc = b64url_decode(id, strlen(id), raw, sizeof raw) == 16 ? 0 : ERR_INVALID;
	struct txn t = app_txn(ctx, ctx->rd);
	if (rc == 0)
		rc = release_known(&t, release, &summary);
	json_decref(summary);
	if (rc == 0)
		rc = release_count(&t, release, &count);
	if (rc == 0) {
		rc = release_find(&t, release, raw);
		if (rc == 0 || rc == ERR_NOTFOUND) {
			bool released = rc == 0;
			audit_decide(ctx, true, released ? "released" : "not_released");
			audit_detail(ctx, json_pack("{s:s}", "release_id", release));
			reply_json(ctx, 200,
				   json_pack("{s:s, s:s, s:b, s:I}", "release_id", release, "contact_id", id,
					     "released", released, "released_total", (json_int_t)count));
			app_commit(ctx);
			return;
		}
	}
	audit_decide(ctx, false, rc == ERR_NOTFOUND ? "not_found" : "error");
	audit_detail(ctx, json_pack("{s:s}", "release_id", release));
	reply_problem(ctx, rc, NULL);
	app_commit(ctx);
}

/* ---- which releases included contact X? ---- */

static void h_contact_releases(struct reqctx *ctx)
{
	const char *id = ctx->param[0];
	json_t *list = NULL;
	if (!app_require(ctx, POLICY_ACT_AUDIT_READ, id, NULL))
		return;
	audit_begin(ctx, "outreach.contact.releases", id, NULL, NULL);
	struct txn t = app_txn(ctx, ctx->rd);
	int rc = release_of_contact_json(&t, id, &list);
	if (rc != 0) {
		audit_decide(ctx, false, "error");
		reply_problem(ctx, rc, NULL);
		app_commit(ctx);
		return;
	}
	audit_decide(ctx, true, "read");
	audit_detail(ctx, json_pack("{s:I}", "releases", (json_int_t)json_array_size(list)));
	reply_json(ctx, 200, json_pack("{s:s, s:o}", "contact_id", id, "releases", list));
	app_commit(ctx);
}

APP_VOID_HANDLER(h_release_summary)
APP_VOID_HANDLER(h_release_get)
APP_VOID_HANDLER(h_contact_releases)

const struct route outreach_routes[] = {
	{ "POST", "/v1/outreach/filter", NULL, &filter_ops, false, LIMIT_STREAM_BODY_BYTES,
	  "outreach.filter" },
	{ "GET", "/v1/outreach/releases/{id}", h_release_summary_route, NULL, false, 0,
	  "outreach.release.summary" },
	{ "GET", "/v1/outreach/releases/{id}/contacts/{id}", h_release_get_route, NULL, false, 0,
	  "outreach.release.read" },
	{ "GET", "/v1/outreach/contacts/{id}/releases", h_contact_releases_route, NULL, false, 0,
	  "outreach.contact.releases" },
	{ 0 },
};
