/*
 * h_outreach: POST /v1/outreach/filter — a campaign list in, one answer per
 * distinct entry out — and the auditor's question about it afterwards.
 *
 * This file parses the query and headers, feeds the body to the list
 * parser (service/bulk.c) and renders; the entries are decided by the
 * outreach domain (service/domain/outreach.c: blocks of entries, one
 * batched lookup each, the same policy_decide_contact() the single check
 * uses). libmicrohttpd cannot answer before the upload ends, so result
 * lines wait in the domain's encrypted spill, and after the upload ONE
 * audit entry for the request is committed, together with the release
 * record (which contact ids were allowed) in the same transaction; then
 * the spill is streamed back, decrypted, as the reply.
 *
 *   headers ─> begin: check params, role, media type; outreach_new
 *   chunk*  ─> outreach_body (digest); bulk_feed ─> on_item ─> outreach_entry
 *   finish  ─> outreach_end ─> summary line ─> audit entry
 *           ─> outreach_record (apply, writer) ─> stream
 *
 * Memory is bounded whatever the list size (see outreach.h); a list with
 * more distinct entries than the dedupe bound is refused with 413 (and
 * audited); split it.
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
#include "service/domain/outreach.h"
#include "service/domain/release.h"
#include "service/router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FILTER_CSV_HEADER "entry,allowed,reason,contact_id,reachable_again,line,error\r\n"

struct filter {
	struct reqctx *ctx;
	struct outreach_opts opts;
	int setup_rc; /* a problem found in begin, answered in finish */
	const char *setup_reason;
	bool role_denied;
	bool dry_run; /* answer, but record no release (caps unchanged) */
	enum bulk_format fmt;
	struct bulk_reader *reader;
	struct outreach *run;
	struct txn txn;	  /* the domain's handle: keys and policy; .c set per chunk */
	uint64_t counted; /* decided entries already added to the metric */
	char release_id[STORE_ID_CAP];
	char list_hmac_hex[65];
	json_t *summary; /* the release record's summary, kept for apply */
};

static void filter_free(void *p)
{
	struct filter *f = p;
	if (f == NULL)
		return;
	bulk_reader_free(f->reader);
	outreach_free(f->run);
	json_decref(f->summary);
	free(f);
}

static int on_item(void *arg, const struct bulk_item *it)
{
	struct filter *f = arg;
	return outreach_entry(f->run, it->line, it->value, it->error);
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
	f->opts.now_s = now_us() / 1000000;
	f->opts.role = ctx->role;
	f->txn = app_txn(ctx, ctx->rd);
	if (purpose == NULL || !is_name(purpose) || (channel != NULL && !is_name(channel))) {
		f->setup_rc = err_set(ERR_INVALID, "name the campaign: ?purpose=NAME&channel=NAME");
		return f->setup_rc;
	}
	snprintf(f->opts.purpose, sizeof f->opts.purpose, "%s", purpose);
	snprintf(f->opts.channel, sizeof f->opts.channel, "%s", channel ? channel : "");
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
	f->opts.only_allowed = only != NULL;
	f->opts.csv_out = filter_wants_csv(http_header(ctx->http, "Accept"));
	/* Names the policy does not know are 422, as in the single check; only
	 * then is the role's right to the purpose decided. */
	if (policy_purpose_get(ctx->policy, purpose, &pi) != 0) {
		f->setup_rc = err_set(ERR_UNPROCESSABLE, "unknown purpose \"%s\"", purpose);
		f->setup_reason = "unknown_purpose";
		return f->setup_rc;
	}
	f->opts.cap_max = pi.cap_max;
	f->opts.cap_per_days = pi.cap_per_days;
	f->opts.frequency_choice = pi.frequency_choice;
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
	rc = outreach_new(&f->run, &f->txn, &f->opts, ctx->app->cfg.dir);
	if (rc == 0)
		rc = bulk_reader_new(&f->reader, f->fmt, hdr, on_item, f);
	if (rc == 0 && f->opts.csv_out)
		rc = outreach_put(f->run, FILTER_CSV_HEADER, strlen(FILTER_CSV_HEADER));
	if (rc != 0)
		f->setup_rc = rc;
	return rc;
}

/* The metric counts entries as their blocks are decided. */
static void count_decided(struct reqctx *ctx, struct filter *f)
{
	uint64_t now = outreach_counts(f->run)->decided;
	atomic_fetch_add(&ctx->app->metrics.filter_entries, now - f->counted);
	f->counted = now;
}

static int filter_chunk(struct reqctx *ctx, const char *data, size_t len)
{
	struct filter *f = ctx->stream_state;
	f->txn.c = ctx->rd;
	outreach_body(f->run, data, len);
	int rc = bulk_feed(f->reader, data, len);
	count_decided(ctx, f);
	return rc;
}

/* The release record, in the audit entry's transaction (commit thread). */
static int apply_release(struct store_conn *w, struct writer_job *job)
{
	struct reqctx *ctx = job->ctx;
	struct filter *f = ctx->stream_state;
	struct txn t = app_txn(ctx, w);
	int rc = outreach_record(f->run, &t, f->release_id, f->summary);
	if (rc != 0)
		audit_decide(ctx, false, rc == ERR_CONFLICT ? "cap_conflict" : "error");
	return rc;
}

static int filter_finish(struct reqctx *ctx)
{
	struct filter *f = ctx->stream_state;
	int rc = ctx->stream_rc;
	if (app_stream_refused(ctx, f, f && f->role_denied, POLICY_ACT_OUTREACH_FILTER,
			       f ? f->opts.purpose : NULL, f ? f->setup_rc : 0, f ? f->setup_reason : NULL))
		return 0;
	f->txn.c = ctx->rd;
	if (rc == 0)
		rc = bulk_finish(f->reader);
	/* The last block is decided also when the list broke off, so the
	 * audit entry's counts cover every entry read (nothing is released). */
	int erc = outreach_end(f->run);
	if (rc == 0)
		rc = erc;
	count_decided(ctx, f);
	const struct outreach_counts *n = outreach_counts(f->run);
	/* A campaign list is personal data, and a short one is recovered from a
	 * plain SHA-256 by trying likely addresses; what the trail and the reply
	 * show is keyed like every other hash of personal data: HMAC-SHA256,
	 * under a key derived from the index key, over the body's SHA-256. */
	int drc = outreach_list_digest(f->run, f->list_hmac_hex);
	if (drc != 0 && rc == 0)
		rc = drc;
	release_new_id(f->release_id);

	audit_begin(ctx, "outreach.filter", "", f->opts.purpose, f->opts.channel);
	json_t *detail = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:s, s:s}", "total", (json_int_t)n->total,
				   "allowed", (json_int_t)n->allowed, "denied", (json_int_t)n->denied,
				   "duplicates", (json_int_t)n->duplicates, "invalid", (json_int_t)n->invalid,
				   "errors", (json_int_t)n->errors, "list_hmac", f->list_hmac_hex, "format",
				   f->fmt == BULK_JSON_ARRAY ? "json"
				   : f->fmt == BULK_NDJSON   ? "ndjson"
							     : "csv");
	if (rc != 0) {
		/* The list could not be read to its end: nothing is released. */
		enum decision_reason reason =
			rc == ERR_TOOBIG ? REASON_LIST_TOO_LARGE : REASON_MALFORMED_LIST;
		if (err_code() != rc)
			err_set(rc, "the list could not be read");
		audit_decide_reason(ctx, false, reason);
		audit_detail(ctx, detail);
		return app_reason(ctx, rc, reason);
	}
	json_t *reasons = json_object();
	for (int i = 0; i < POLICY_REASON_COUNT; i++) {
		if (n->reasons[i] == 0)
			continue;
		const char *name = policy_reason_name((enum policy_reason)i);
		char key[80];
		snprintf(key, sizeof key, "reason_%s", name);
		json_object_set_new(detail, key, json_integer((json_int_t)n->reasons[i]));
		json_object_set_new(reasons, name, json_integer((json_int_t)n->reasons[i]));
	}
	if (n->invalid)
		json_object_set_new(reasons, "invalid", json_integer((json_int_t)n->invalid));
	if (n->errors)
		json_object_set_new(reasons, "error", json_integer((json_int_t)n->errors));
	if (f->dry_run) {
		/* A dry run answers the same way but releases no one: no release
		 * id, no record, nothing counted toward a frequency cap. */
		f->release_id[0] = '\0';
		json_object_set_new(detail, "dry_run", json_true());
	} else {
		json_object_set_new(detail, "release_id", json_string(f->release_id));
		json_object_set_new(detail, "released", json_integer((json_int_t)n->released));
	}
	json_object_set_new(detail, "same_person", json_integer((json_int_t)n->same_person));
	json_object_set_new(detail, "held_by_cap", json_integer((json_int_t)n->held_by_cap));
	json_t *summary = json_pack(
		"{s:{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:s, s:s, s:s}}", "summary", "purpose",
		f->opts.purpose, "channel", f->opts.channel, "total", (json_int_t)n->total, "distinct",
		(json_int_t)(n->total - n->duplicates - n->invalid), "allowed", (json_int_t)n->allowed,
		"denied", (json_int_t)n->denied, "duplicates", (json_int_t)n->duplicates, "invalid",
		(json_int_t)n->invalid, "errors", (json_int_t)n->errors, "reasons", reasons, "list_hmac",
		f->list_hmac_hex, "release_id", f->release_id, "request_id", http_request_id(ctx->http));
	json_t *sl = json_object_get(summary, "summary");
	json_object_set_new(sl, "same_person", json_integer((json_int_t)n->same_person));
	json_object_set_new(sl, "held_by_cap", json_integer((json_int_t)n->held_by_cap));
	json_object_set_new(sl, "dry_run", json_boolean(f->dry_run));
	if (f->dry_run)
		json_object_set_new(sl, "release_id", json_null());
	/* What the auditor reads later: the summary without the request id,
	 * plus who ran it. No entry of the list is in it. */
	f->summary = json_deep_copy(sl);
	if (f->summary != NULL) {
		json_object_del(f->summary, "request_id");
		json_object_set_new(f->summary, "release_id", json_string(f->release_id));
		json_object_set_new(f->summary, "released", json_integer((json_int_t)n->released));
		json_object_set_new(f->summary, "actor", json_string(ctx->actor));
	}
	char *text = json_dumps(summary, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(summary);
	if (f->opts.csv_out) {
		/* A CSV has no place for the summary: it travels in a header, as
		 * the same JSON the NDJSON's last line holds. */
		rc = text ? 0 : err_set(ERR_NOMEM, "out of memory");
		if (rc == 0)
			http_add_header(ctx->http, "X-Filter-Summary", text);
	} else {
		rc = text ? outreach_put(f->run, text, strlen(text)) : err_set(ERR_NOMEM, "out of memory");
		if (rc == 0)
			rc = outreach_put(f->run, "\n", 1);
	}
	free(text);
	void *reply = NULL;
	if (rc == 0)
		rc = outreach_reply_take(f->run, &reply);
	if (rc != 0) {
		audit_decide_reason(ctx, false, REASON_ERROR);
		audit_detail(ctx, detail);
		return rc;
	}
	audit_decide(ctx, true, f->dry_run ? "dry_run" : "filtered");
	audit_detail(ctx, detail);
	ctx->status = 200;
	ctx->content_type =
		f->opts.csv_out ? "text/csv; charset=utf-8; header=present" : "application/x-ndjson";

	ctx->stream_read = outreach_reply_read;
	ctx->stream_ctx = reply; /* the reply owns it now */
	ctx->stream_free = outreach_reply_free;
	if (!f->dry_run) {
		http_add_header(ctx->http, "X-Release-Id", f->release_id);
		ctx->job.apply = apply_release;
	}
	app_commit(ctx);
	return 0;
}

static const struct stream_ops filter_ops = {
	filter_begin,
	filter_chunk,
	filter_finish,
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

static int h_release_summary(struct reqctx *ctx)
{
	const char *release = ctx->param[0];
	json_t *summary = NULL;
	if (!app_require(ctx, POLICY_ACT_AUDIT_READ, NULL, NULL))
		return 0;
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
		audit_decide_reason(ctx, false, rc == ERR_NOTFOUND ? REASON_NOT_FOUND : REASON_ERROR);
		return rc;
	}
	audit_decide(ctx, true, "read");
	reply_json(ctx, 200, summary);
	app_commit(ctx);
	return 0;
}

/* ---- was contact X released by filter request R? ---- */

static int h_release_get(struct reqctx *ctx)
{
	const char *release = ctx->param[0], *id = ctx->param[1];
	uint8_t raw[16];
	int64_t count = 0;
	json_t *summary = NULL;
	if (!app_require(ctx, POLICY_ACT_AUDIT_READ, id, NULL))
		return 0;
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
			return 0;
		}
	}
	audit_decide_reason(ctx, false, rc == ERR_NOTFOUND ? REASON_NOT_FOUND : REASON_ERROR);
	audit_detail(ctx, json_pack("{s:s}", "release_id", release));
	return rc;
}

/* ---- which releases included contact X? ---- */

static int h_contact_releases(struct reqctx *ctx)
{
	const char *id = ctx->param[0];
	json_t *list = NULL;
	if (!app_require(ctx, POLICY_ACT_AUDIT_READ, id, NULL))
		return 0;
	audit_begin(ctx, "outreach.contact.releases", id, NULL, NULL);
	struct txn t = app_txn(ctx, ctx->rd);
	int rc = release_of_contact_json(&t, id, &list);
	if (rc != 0) {
		audit_decide_reason(ctx, false, REASON_ERROR);
		return rc;
	}
	audit_decide(ctx, true, "read");
	audit_detail(ctx, json_pack("{s:I}", "releases", (json_int_t)json_array_size(list)));
	reply_json(ctx, 200, json_pack("{s:s, s:o}", "contact_id", id, "releases", list));
	app_commit(ctx);
	return 0;
}

const struct route outreach_routes[] = {
	{ "POST", "/v1/outreach/filter", NULL, &filter_ops, false, LIMIT_STREAM_BODY_BYTES,
	  "outreach.filter" },
	{ "GET", "/v1/outreach/releases/{id}", h_release_summary, NULL, false, 0,
	  "outreach.release.summary" },
	{ "GET", "/v1/outreach/releases/{id}/contacts/{id}", h_release_get, NULL, false, 0,
	  "outreach.release.read" },
	{ "GET", "/v1/outreach/contacts/{id}/releases", h_contact_releases, NULL, false, 0,
	  "outreach.contact.releases" },
	{ 0 },
};
