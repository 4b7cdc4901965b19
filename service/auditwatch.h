/*
 * auditwatch: the server verifies the trail it serves, on its own thread.
 *
 * At start it verifies the whole trail, then every interval seconds it
 * verifies incrementally: from the last checkpoint it verified to the head
 * (every AUDIT_VERIFY_FULL_EVERY-th run verifies from entry 1 again).
 * GET /v1/audit/verify asks it for a full verification, so that a walk over
 * millions of entries never runs on an HTTP worker thread; requests that
 * arrive while one runs wait for the next run. Memory is bounded whatever
 * the trail's size (auditq pulls entries and checkpoints through cursors).
 *
 * A verification that fails raises the alarm: it is logged (the fault and
 * its reason, never an entry's content), /readyz answers 503, the metric
 * consentd_audit_intact drops to 0, and GET /v1/audit/verify reports it. The
 * alarm stays raised until the process restarts.
 *
 *   idle ──interval or request──> verifying ──ok──────> idle
 *                                     └──not ok──> alarm (sticky) ──> idle
 */
#ifndef CONSENTD_AUDITWATCH_H
#define CONSENTD_AUDITWATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "audit/verify.h"

struct store;
struct auditwatch;

struct auditwatch_status {
	bool ran;	       /* at least one verification finished */
	bool intact;	       /* false once any verification failed */
	int64_t last_us;       /* when the last one finished */
	int64_t verified_size; /* the newest checkpoint verified so far */
	int64_t runs, failures;
	struct audit_verify_result last; /* the last verdict (fault and reason) */
	struct audit_verify_result first_failure;
	int64_t first_failure_us;
};

/* Called on the watch thread with a full verification's result; rc is 0
 * when it ran (res is the verdict) or the error that stopped it. */
typedef void (*auditwatch_done_fn)(void *arg, int rc, const struct audit_verify_result *res);

/* Starts the thread; it verifies the whole trail at once. interval 0 means
 * no scheduled runs after the first (requests are still served). The paths
 * are copied. */
int auditwatch_start(struct auditwatch **out, struct store *st, const char *pub_path, const char *anchor_path,
		     unsigned interval_s);
/* Answers every waiting request with ERR_UNAVAILABLE, stops and frees. */
void auditwatch_stop(struct auditwatch *w);

/* Queues a full verification; done runs later on the watch thread, exactly
 * once. ERR_UNAVAILABLE when stopping (done is then not called). */
int auditwatch_request(struct auditwatch *w, auditwatch_done_fn done, void *arg);

void auditwatch_status(struct auditwatch *w, struct auditwatch_status *out);

#endif
