/*
 * h_ops: liveness, readiness and Prometheus metrics. Public (no token) and
 * never audited: they reveal no record and make no decision. Metrics are
 * counts only.
 */
#include "service/app.h"

#include "service/auditwatch.h"
#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/base/limits.h"
#include "service/domain/request.h"
#include "service/mail.h"
#include "service/outbound.h"
#include "service/router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int h_health(struct reqctx *ctx)
{
	reply_json(ctx, 200, json_pack("{s:s}", "status", "ok"));
	app_send(ctx);
	return 0;
}

/* Intact: the writer holds the chain on disk and no verification failed. */
static bool audit_intact(struct app *app, const struct writer_stats *st, struct auditwatch_status *ws)
{
	auditwatch_status(app->watch, ws);
	return st->fault == AUDIT_FAULT_NONE && ws->intact;
}

int h_ready(struct reqctx *ctx)
{
	struct writer_stats st;
	struct auditwatch_status ws;
	writer_stats(ctx->app->writer, &st);
	bool intact = audit_intact(ctx->app, &st, &ws);
	bool ready = atomic_load(&ctx->app->ready) && st.healthy && intact && app_store_reachable(ctx->app);
	/* Fault names only (stable words), never a reason: /readyz is public. */
	const char *fault = st.fault != AUDIT_FAULT_NONE ? audit_fault_name(st.fault)
			    : !ws.intact		 ? audit_fault_name(ws.first_failure.fault)
							 : NULL;
	reply_json(ctx, ready ? 200 : 503,
		   json_pack("{s:s, s:b, s:b, s:s?, s:I}", "status", ready ? "ready" : "not_ready",
			     "audit_healthy", st.healthy, "audit_intact", intact, "audit_fault", fault,
			     "audit_head", (json_int_t)st.head_seq));
	app_send(ctx);
	return 0;
}

/* The sections of /metrics after the core counters, each written to f
 * (one memory stream for the whole reply; h_metrics checks it once). */

static void webhook_metrics(struct app *app, FILE *f)
{
	struct outbound_stats os;
	outbound_stats(app->outbound, &os);
	int64_t age = os.oldest_us > 0 ? (now_us() - os.oldest_us) / 1000000 : 0;
	fprintf(f,
		"# HELP consentd_webhook_deliveries_total Webhook delivery attempts by outcome.\n"
		"# TYPE consentd_webhook_deliveries_total counter\n"
		"consentd_webhook_deliveries_total{outcome=\"delivered\"} %llu\n"
		"consentd_webhook_deliveries_total{outcome=\"retry\"} %llu\n"
		"consentd_webhook_deliveries_total{outcome=\"failed\"} %llu\n"
		"consentd_webhook_deliveries_total{outcome=\"gone\"} %llu\n"
		"# HELP consentd_webhook_refused_total Attempts refused because the target address is not public.\n"
		"# TYPE consentd_webhook_refused_total counter\n"
		"consentd_webhook_refused_total %llu\n"
		"# HELP consentd_webhook_queue_depth Webhook deliveries waiting.\n"
		"# TYPE consentd_webhook_queue_depth gauge\n"
		"consentd_webhook_queue_depth %lld\n"
		"# HELP consentd_webhook_oldest_pending_seconds Age of the oldest waiting webhook delivery.\n"
		"# TYPE consentd_webhook_oldest_pending_seconds gauge\n"
		"consentd_webhook_oldest_pending_seconds %lld\n",
		(unsigned long long)os.delivered, (unsigned long long)os.retried, (unsigned long long)os.dead,
		(unsigned long long)os.gone, (unsigned long long)os.refused, (long long)os.pending,
		(long long)age);
}

/* The write lock histogram (writer_stats). On PostgreSQL this is the chain lock that serialises
 * every instance's batches: its sum over the fleet's instances, divided by
 * wall time, is the share of the database's chain capacity in use
 * (docs/architecture.md). */
static void lock_metrics(const struct writer_stats *st, FILE *f)
{
	static const int64_t bounds[8] = WRITER_LOCK_BUCKETS;
	fputs("# HELP consentd_audit_batch_lock_seconds How long each committed batch held the write lock "
	      "(PostgreSQL: the chain lock shared by every instance).\n"
	      "# TYPE consentd_audit_batch_lock_seconds histogram\n",
	      f);
	for (int b = 0; b < 8; b++)
		fprintf(f, "consentd_audit_batch_lock_seconds_bucket{le=\"%g\"} %llu\n",
			(double)bounds[b] / 1e6, (unsigned long long)st->lock_bucket[b]);
	fprintf(f,
		"consentd_audit_batch_lock_seconds_bucket{le=\"+Inf\"} %llu\n"
		"consentd_audit_batch_lock_seconds_sum %.6f\n"
		"consentd_audit_batch_lock_seconds_count %llu\n"
		"# HELP consentd_audit_batch_lock_max_seconds The longest write lock hold of one batch.\n"
		"# TYPE consentd_audit_batch_lock_max_seconds gauge\n"
		"consentd_audit_batch_lock_max_seconds %.6f\n",
		(unsigned long long)st->lock_count, (double)st->lock_us_sum / 1e6,
		(unsigned long long)st->lock_count, (double)st->lock_us_max / 1e6);
}

/* The mail worker's counters. */
static void mail_metrics(struct app *app, FILE *f)
{
	struct mail_stats ms;
	mail_worker_stats(app->mail, &ms);
	fprintf(f,
		"# HELP consentd_mail_total Mail deliveries by outcome (failed: refused for good or "
		"given up; dropped: no longer to be sent).\n"
		"# TYPE consentd_mail_total counter\n"
		"consentd_mail_total{outcome=\"sent\"} %llu\n"
		"consentd_mail_total{outcome=\"retry\"} %llu\n"
		"consentd_mail_total{outcome=\"failed\"} %llu\n"
		"consentd_mail_total{outcome=\"dropped\"} %llu\n",
		(unsigned long long)ms.sent, (unsigned long long)ms.retried, (unsigned long long)ms.failed,
		(unsigned long long)ms.dropped);
}

/* The open data-subject requests past their deadline and due in the next
 * LIMIT_REQUEST_DUE_SOON_DAYS. When the
 * store cannot answer, the two gauges are left out rather than shown as
 * zero: a scrape that sees no value raises no false all-clear. */
static void request_metrics(struct reqctx *ctx, FILE *f)
{
	int64_t overdue = 0, soon = 0;
	struct txn t = app_txn(ctx, ctx->rd);
	if (ctx->rd == NULL || request_due_counts(&t, &overdue, &soon) != 0)
		return;
	fprintf(f,
		"# HELP consentd_subject_requests_overdue Open data-subject requests past their due date.\n"
		"# TYPE consentd_subject_requests_overdue gauge\n"
		"consentd_subject_requests_overdue %lld\n"
		"# HELP consentd_subject_requests_due_soon Open data-subject requests due within %d days.\n"
		"# TYPE consentd_subject_requests_due_soon gauge\n"
		"consentd_subject_requests_due_soon %lld\n",
		(long long)overdue, LIMIT_REQUEST_DUE_SOON_DAYS, (long long)soon);
}

int h_metrics(struct reqctx *ctx)
{
	struct app_metrics *m = &ctx->app->metrics;
	struct writer_stats st;
	struct auditwatch_status ws;
	writer_stats(ctx->app->writer, &st);
	bool intact = audit_intact(ctx->app, &st, &ws);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (f == NULL)
		return err_set(ERR_NOMEM, "the metrics do not fit in memory");
	fprintf(f,
		"# HELP consentd_requests_total HTTP requests received.\n"
		"# TYPE consentd_requests_total counter\n"
		"consentd_requests_total %llu\n"
		"# HELP consentd_responses_total HTTP responses by status class.\n"
		"# TYPE consentd_responses_total counter\n"
		"consentd_responses_total{class=\"2xx\"} %llu\n"
		"consentd_responses_total{class=\"4xx\"} %llu\n"
		"consentd_responses_total{class=\"5xx\"} %llu\n"
		"# HELP consentd_auth_failures_total Requests refused for a missing or bad token.\n"
		"# TYPE consentd_auth_failures_total counter\n"
		"consentd_auth_failures_total %llu\n"
		"# HELP consentd_denials_total Requests denied by the policy.\n"
		"# TYPE consentd_denials_total counter\n"
		"consentd_denials_total %llu\n"
		"# HELP consentd_consent_checks_total Consent checks answered.\n"
		"# TYPE consentd_consent_checks_total counter\n"
		"consentd_consent_checks_total %llu\n"
		"# HELP consentd_filter_entries_total Campaign list entries answered by the outreach filter.\n"
		"# TYPE consentd_filter_entries_total counter\n"
		"consentd_filter_entries_total %llu\n"
		"# HELP consentd_audit_unavailable_total Requests answered 503 because the audit trail could not be written.\n"
		"# TYPE consentd_audit_unavailable_total counter\n"
		"consentd_audit_unavailable_total %llu\n"
		"# HELP consentd_audit_entries_total Audit entries committed.\n"
		"# TYPE consentd_audit_entries_total counter\n"
		"consentd_audit_entries_total %llu\n"
		"# HELP consentd_audit_batches_total Group commits.\n"
		"# TYPE consentd_audit_batches_total counter\n"
		"consentd_audit_batches_total %llu\n"
		"# HELP consentd_audit_failures_total Group commits that failed (requests answered 503).\n"
		"# TYPE consentd_audit_failures_total counter\n"
		"consentd_audit_failures_total %llu\n"
		"# HELP consentd_audit_checkpoints_total Signed checkpoints written.\n"
		"# TYPE consentd_audit_checkpoints_total counter\n"
		"consentd_audit_checkpoints_total %llu\n"
		"# HELP consentd_audit_head Sequence number of the last audit entry.\n"
		"# TYPE consentd_audit_head gauge\n"
		"consentd_audit_head %lld\n"
		"# HELP consentd_audit_intact 1 while the trail verifies and the writer holds the stored chain; 0 after an alarm.\n"
		"# TYPE consentd_audit_intact gauge\n"
		"consentd_audit_intact %d\n"
		"# HELP consentd_audit_anchored Entries covered by the newest signed checkpoint.\n"
		"# TYPE consentd_audit_anchored gauge\n"
		"consentd_audit_anchored %lld\n"
		"# HELP consentd_audit_anchor_failures_total Checkpoints not signed because the anchor file could not be written.\n"
		"# TYPE consentd_audit_anchor_failures_total counter\n"
		"consentd_audit_anchor_failures_total %llu\n"
		"# HELP consentd_audit_verifications_total Verifications of the trail the server ran.\n"
		"# TYPE consentd_audit_verifications_total counter\n"
		"consentd_audit_verifications_total %lld\n"
		"# HELP consentd_audit_verification_failures_total Verifications that found the trail altered.\n"
		"# TYPE consentd_audit_verification_failures_total counter\n"
		"consentd_audit_verification_failures_total %lld\n"
		"# HELP consentd_uptime_seconds Seconds since start.\n"
		"# TYPE consentd_uptime_seconds gauge\n"
		"consentd_uptime_seconds %lld\n",
		(unsigned long long)m->requests, (unsigned long long)m->status_2xx,
		(unsigned long long)m->status_4xx, (unsigned long long)m->status_5xx,
		(unsigned long long)m->auth_failures, (unsigned long long)m->denials,
		(unsigned long long)m->checks, (unsigned long long)m->filter_entries,
		(unsigned long long)m->audit_unavailable, (unsigned long long)st.entries,
		(unsigned long long)st.batches, (unsigned long long)st.failures,
		(unsigned long long)st.checkpoints, (long long)st.head_seq, intact ? 1 : 0,
		(long long)st.anchored, (unsigned long long)st.anchor_failures, (long long)ws.runs,
		(long long)ws.failures, (long long)((now_us() - ctx->app->started_us) / 1000000));
	webhook_metrics(ctx->app, f);
	mail_metrics(ctx->app, f);
	lock_metrics(&st, f);
	request_metrics(ctx, f);
	/* A stream that ran out of memory fails its fclose (or its error flag):
	 * nothing partial is sent. */
	bool failed = ferror(f) != 0;
	if (fclose(f) != 0 || failed || buf == NULL) {
		free(buf);
		return err_set(ERR_NOMEM, "the metrics do not fit in memory");
	}
	reply_text(ctx, 200, "text/plain; version=0.0.4", buf, len);
	app_send(ctx);
	return 0;
}

const struct route ops_routes[] = {
	{ "GET", "/healthz", h_health, NULL, true, 0, NULL },
	{ "GET", "/readyz", h_ready, NULL, true, 0, NULL },
	{ "GET", "/metrics", h_metrics, NULL, true, 0, NULL },
	{ 0 },
};
