/*
 * auditwatch: scheduled and requested verification on one thread. See
 * auditwatch.h for the states and the alarm.
 *
 * Invariants:
 * - Only the watch thread verifies and touches its reader connection.
 * - A request is answered exactly once: by a run that started after it was
 *   queued, or with ERR_UNAVAILABLE at stop.
 * - The incremental start point (verified_size, verified_root) only moves to
 *   a checkpoint that a successful verification reached.
 */
#include "service/auditwatch.h"

#include "service/auditq.h"
#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/base/limits.h"
#include "service/store/store.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct watch_req {
	auditwatch_done_fn done;
	void *arg;
	struct watch_req *next;
};

struct auditwatch {
	struct store *st;
	char pub[PATH_MAX], anchor[PATH_MAX];
	unsigned interval_s;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stopping;
	struct watch_req *reqs;		 /* under lock */
	struct auditwatch_status status; /* under lock */
	/* watch thread only */
	int64_t verified_size;
	uint8_t verified_root[32];
	int64_t next_due_us;
};

static void record(struct auditwatch *w, const struct audit_verify_result *res)
{
	pthread_mutex_lock(&w->lock);
	w->status.ran = true;
	w->status.runs++;
	w->status.last_us = now_us();
	w->status.last = *res;
	if (!res->ok) {
		w->status.failures++;
		if (w->status.intact || w->status.first_failure_us == 0) {
			w->status.first_failure = *res;
			w->status.first_failure_us = w->status.last_us;
		}
		w->status.intact = false;
	}
	w->status.verified_size = w->verified_size;
	pthread_mutex_unlock(&w->lock);
	if (!res->ok)
		fprintf(stderr, "consentd: audit: ALARM (%s): verification of the trail failed: %s\n",
			audit_fault_name(res->fault), res->reason);
}

/* One run: from the last verified checkpoint (incremental) or from the
 * start (full). Returns the auditq error, or 0 with *res the verdict. */
static int run(struct auditwatch *w, bool full, struct audit_verify_result *res)
{
	struct store_conn *c = NULL;
	int rc = store_conn_get(w->st, &c);
	if (rc != 0)
		return rc;
	int64_t from = full ? 0 : w->verified_size;
	rc = auditq_verify_from(c, w->pub, w->anchor, NULL, 0, from, w->verified_root, res);
	if (rc == 0 && res->ok && res->anchored > w->verified_size) {
		uint8_t root[32];
		if (store_audit_hash_at(c, res->anchored, root) == 0) {
			w->verified_size = res->anchored;
			memcpy(w->verified_root, root, sizeof root);
		}
	}
	store_conn_put(w->st, c);
	return rc;
}

static void *watch_thread(void *arg)
{
	struct auditwatch *w = arg;
	bool first = true;
	for (;;) {
		pthread_mutex_lock(&w->lock);
		while (!w->stopping && w->reqs == NULL && !first &&
		       (w->interval_s == 0 || now_us() < w->next_due_us)) {
			struct timespec until;
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += 1;
			pthread_cond_timedwait(&w->wake, &w->lock, &until);
		}
		if (w->stopping) {
			pthread_mutex_unlock(&w->lock);
			break;
		}
		struct watch_req *reqs = w->reqs;
		w->reqs = NULL;
		pthread_mutex_unlock(&w->lock);

		struct audit_verify_result res;
		/* Incremental runs cover what was appended; a full one now and then
		 * also catches an edit below the last verified checkpoint. */
		bool full = first || reqs != NULL || w->status.runs % AUDIT_VERIFY_FULL_EVERY == 0;
		int rc = run(w, full, &res);
		if (rc == 0)
			record(w, &res);
		else
			fprintf(stderr, "consentd: audit: verification could not run: %s\n", err_msg());
		first = false;
		w->next_due_us = now_us() + (int64_t)w->interval_s * 1000000;
		for (struct watch_req *r = reqs, *next; r != NULL; r = next) {
			next = r->next;
			r->done(r->arg, rc, &res);
			free(r);
		}
	}
	return NULL;
}

int auditwatch_start(struct auditwatch **out, struct store *st, const char *pub_path, const char *anchor_path,
		     unsigned interval_s)
{
	struct auditwatch *w = calloc(1, sizeof *w);
	*out = NULL;
	if (w == NULL)
		return err_set(ERR_NOMEM, "out of memory");
	if ((size_t)snprintf(w->pub, sizeof w->pub, "%s", pub_path) >= sizeof w->pub ||
	    (size_t)snprintf(w->anchor, sizeof w->anchor, "%s", anchor_path) >= sizeof w->anchor) {
		free(w);
		return err_set(ERR_TOOBIG, "audit key or anchor path too long");
	}
	w->st = st;
	w->interval_s = interval_s;
	w->status.intact = true;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->wake, NULL);
	if (pthread_create(&w->thread, NULL, watch_thread, w) != 0) {
		pthread_mutex_destroy(&w->lock);
		pthread_cond_destroy(&w->wake);
		free(w);
		return err_set(ERR_INTERNAL, "cannot start the audit verification thread");
	}
	*out = w;
	return 0;
}

void auditwatch_stop(struct auditwatch *w)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->lock);
	w->stopping = true;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	struct watch_req *reqs = w->reqs;
	w->reqs = NULL;
	for (struct watch_req *r = reqs, *next; r != NULL; r = next) {
		next = r->next;
		err_set(ERR_UNAVAILABLE, "the server is shutting down");
		r->done(r->arg, ERR_UNAVAILABLE, NULL);
		free(r);
	}
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->wake);
	free(w);
}

int auditwatch_request(struct auditwatch *w, auditwatch_done_fn done, void *arg)
{
	struct watch_req *r = calloc(1, sizeof *r);
	if (r == NULL)
		return err_set(ERR_NOMEM, "out of memory");
	r->done = done;
	r->arg = arg;
	pthread_mutex_lock(&w->lock);
	if (w->stopping) {
		pthread_mutex_unlock(&w->lock);
		free(r);
		return err_set(ERR_UNAVAILABLE, "the server is shutting down");
	}
	/* Appended in order: the first asked is the first answered. */
	struct watch_req **p = &w->reqs;
	while (*p != NULL)
		p = &(*p)->next;
	*p = r;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
	return 0;
}

void auditwatch_status(struct auditwatch *w, struct auditwatch_status *out)
{
	pthread_mutex_lock(&w->lock);
	*out = w->status;
	pthread_mutex_unlock(&w->lock);
}
