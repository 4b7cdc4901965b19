/*
 * log: single writer, group commit, checkpoints. See log.h.
 *
 * Invariants:
 * - Only the commit thread touches the writer connection, head_seq and
 *   head_hash. They change only after a successful COMMIT; a failed batch
 *   leaves them as they were, so the chain in memory always equals the chain
 *   on disk.
 * - A job is never completed twice, and every submitted job is completed,
 *   also at close.
 */
#include "audit/log.h"

#include "audit/checkpoint.h"
#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/base/limits.h"
#include "service/store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct audit_log {
	struct store *st;
	struct store_conn *w;
	struct audit_signer *signer;
	struct audit_hasher *hasher;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct audit_job *head, *tail;
	bool stopping, joined, want_checkpoint;
	char anchor_path[4096]; /* "" when none */
	bool bench_no_audit; /* CONSENTD_BENCH_NO_AUDIT=1: benchmarks only */

	/* commit thread only */
	int64_t head_seq;
	uint8_t head_hash[AUDIT_HASH_BYTES];
	int64_t checkpoint_size;
	int64_t checkpoint_time_us;

	/* under lock */
	struct audit_log_stats stats;
};

/* Copies src into a field of cap bytes; a value that does not fit leaves
 * the field empty and is reported, never cut (a cut id or reason would be
 * a different, wrong record). */
static int fill_one(char *dst, size_t cap, const char *src, const char *name, int rc)
{
	size_t n = strlen(src);
	if (n >= cap) {
		dst[0] = '\0';
		return rc != 0 ? rc : err_set(ERR_TOOBIG, "the audit %s is longer than %zu bytes", name, cap - 1);
	}
	memcpy(dst, src, n + 1);
	return rc;
}

int audit_entry_fill(struct audit_entry *e, const char *actor, const char *role, const char *action,
		     const char *record_id, const char *purpose, const char *channel,
		     const char *decision, const char *reason)
{
	int rc = 0;
	rc = fill_one(e->actor, sizeof e->actor, actor ? actor : "", "actor", rc);
	rc = fill_one(e->role, sizeof e->role, role ? role : "", "role", rc);
	rc = fill_one(e->action, sizeof e->action, action ? action : "", "action", rc);
	rc = fill_one(e->record_id, sizeof e->record_id, record_id ? record_id : "", "record id", rc);
	rc = fill_one(e->purpose, sizeof e->purpose, purpose ? purpose : "", "purpose", rc);
	rc = fill_one(e->channel, sizeof e->channel, channel ? channel : "", "channel", rc);
	rc = fill_one(e->decision, sizeof e->decision, decision ? decision : "none", "decision", rc);
	rc = fill_one(e->reason, sizeof e->reason, reason ? reason : "", "reason", rc);
	return rc;
}

/* Replaces the anchor file atomically: a reader sees the old or the new
 * checkpoint, never a torn one. */
static int write_anchor(const char *path, const struct audit_checkpoint *cp)
{
	char line[AUDIT_CHECKPOINT_JSON_MAX + 2], tmp[4200];
	int n = audit_checkpoint_format_json(cp, line, sizeof line - 1);
	if (n < 0)
		return n;
	line[n++] = '\n';
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return err_set(ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
	int rc = 0;
	/* Public by design (auditors compare against it); fixed whatever the umask. */
	if (fchmod(fd, 0644) != 0 || write(fd, line, (size_t)n) != n || fsync(fd) != 0)
		rc = err_set(ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
	close(fd);
	if (rc == 0 && rename(tmp, path) != 0)
		rc = err_set(ERR_IO, "cannot replace %s: %s", path, strerror(errno));
	return rc;
}

static int sign_checkpoint(struct audit_log *log)
{
	struct audit_checkpoint cp;
	int rc;
	if (log->head_seq == 0 || log->head_seq == log->checkpoint_size)
		return 0;
	memset(&cp, 0, sizeof cp);
	cp.size = log->head_seq;
	memcpy(cp.root, log->head_hash, sizeof cp.root);
	cp.time_us = now_us();
	if ((rc = audit_checkpoint_sign(log->signer, &cp)) != 0)
		return rc;
	if ((rc = store_begin(log->w)) != 0)
		return rc;
	if ((rc = store_checkpoint_append(log->w, &cp)) != 0 || (rc = store_commit(log->w)) != 0) {
		store_rollback(log->w);
		return rc;
	}
	log->checkpoint_size = cp.size;
	log->checkpoint_time_us = cp.time_us;
	if (log->anchor_path[0] != '\0' && (rc = write_anchor(log->anchor_path, &cp)) != 0)
		fprintf(stderr, "consentd: audit: cannot write the checkpoint anchor: %s\n", err_msg());
	pthread_mutex_lock(&log->lock);
	log->stats.checkpoints++;
	pthread_mutex_unlock(&log->lock);
	return 0;
}

static int write_batch(struct audit_log *log, struct audit_job *jobs, int64_t *seq,
		       uint8_t hash[AUDIT_HASH_BYTES], uint64_t *entries)
{
	/* Benchmark switch (tests/bench): with CONSENTD_BENCH_NO_AUDIT=1 a batch
	 * without writes touches no database at all, so a benchmark can measure
	 * what auditing costs. It breaks the product's promise; never set it
	 * outside a benchmark (a loud warning is printed at start). */
	if (log->bench_no_audit) {
		bool any_apply = false;
		for (struct audit_job *j = jobs; j != NULL; j = j->next)
			any_apply = any_apply || j->apply != NULL;
		if (!any_apply) {
			for (struct audit_job *j = jobs; j != NULL; j = j->next)
				j->apply_rc = 0;
			return 0;
		}
	}
	int rc = store_begin(log->w);
	if (rc != 0)
		return rc;
	/* Re-read the head inside the transaction: a CLI command (token create,
	 * keys rotate) may have appended entries while the server ran. */
	if ((rc = store_audit_head(log->w, seq, hash)) != 0)
		goto fail;
	for (struct audit_job *j = jobs; j != NULL; j = j->next) {
		j->apply_rc = 0;
		if (j->apply != NULL) {
			if ((rc = store_savepoint(log->w)) != 0)
				goto fail;
			j->apply_rc = j->apply(log->w, j);
			if (j->apply_rc != 0)
				snprintf(j->apply_msg, sizeof j->apply_msg, "%s", err_msg());
			if (j->apply_rc != 0 && (rc = store_rollback_to(log->w)) != 0)
				goto fail;
			if ((rc = store_release(log->w)) != 0)
				goto fail;
		}
		if (j->entry.action[0] == '\0')
			continue;
		j->entry.seq = *seq + 1;
		j->entry.time_us = now_us();
		if ((rc = audit_entry_link(log->hasher, &j->entry, hash)) != 0)
			goto fail;
		if ((rc = store_audit_append(log->w, &j->entry)) != 0)
			goto fail;
		*seq = j->entry.seq;
		memcpy(hash, j->entry.hash, AUDIT_HASH_BYTES);
		(*entries)++;
	}
	if ((rc = store_commit(log->w)) != 0)
		goto fail;
	return 0;
fail:
	fprintf(stderr, "consentd: audit: batch failed, failing closed: %s\n", err_msg());
	store_rollback(log->w);
	return ERR_UNAVAILABLE;
}

static void *commit_thread(void *arg)
{
	struct audit_log *log = arg;
	for (;;) {
		pthread_mutex_lock(&log->lock);
		while (log->head == NULL && !log->stopping && !log->want_checkpoint) {
			struct timespec until;
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += 1;
			pthread_cond_timedwait(&log->wake, &log->lock, &until);
			if (log->head_seq > log->checkpoint_size &&
			    now_us() - log->checkpoint_time_us >= (int64_t)AUDIT_CHECKPOINT_SECONDS * 1000000)
				log->want_checkpoint = true;
		}
		/* Take up to AUDIT_BATCH_MAX jobs. */
		struct audit_job *batch = log->head, *last = NULL;
		int n = 0;
		for (struct audit_job *j = batch; j != NULL && n < AUDIT_BATCH_MAX; j = j->next) {
			last = j;
			n++;
		}
		if (last != NULL) {
			log->head = last->next;
			if (log->head == NULL)
				log->tail = NULL;
			last->next = NULL;
		}
		bool stop = log->stopping && log->head == NULL && batch == NULL;
		bool checkpoint = log->want_checkpoint;
		log->want_checkpoint = false;
		pthread_mutex_unlock(&log->lock);

		if (batch != NULL) {
			int64_t seq = log->head_seq;
			uint8_t hash[AUDIT_HASH_BYTES];
			uint64_t entries = 0;
			memcpy(hash, log->head_hash, sizeof hash);
			int rc = write_batch(log, batch, &seq, hash, &entries);
			if (rc == 0) {
				log->head_seq = seq;
				memcpy(log->head_hash, hash, sizeof hash);
			}
			pthread_mutex_lock(&log->lock);
			log->stats.batches++;
			if (rc == 0) {
				log->stats.entries += entries;
				log->stats.head_seq = seq;
				log->stats.healthy = true;
			} else {
				log->stats.failures++;
				log->stats.healthy = false;
			}
			pthread_mutex_unlock(&log->lock);
			for (struct audit_job *j = batch, *next; j != NULL; j = next) {
				next = j->next;
				j->done(j, rc);
			}
			if (rc == 0 && log->head_seq - log->checkpoint_size >= AUDIT_CHECKPOINT_EVERY)
				checkpoint = true;
		}
		if (checkpoint && sign_checkpoint(log) != 0)
			fprintf(stderr, "consentd: audit: cannot sign a checkpoint: %s\n", err_msg());
		if (stop)
			break;
	}
	if (sign_checkpoint(log) != 0)
		fprintf(stderr, "consentd: audit: cannot sign the final checkpoint: %s\n", err_msg());
	return NULL;
}

int audit_log_open(struct audit_log **out, struct store *st, const char *signing_key_path,
		   const char *anchor_path)
{
	struct audit_log *log = calloc(1, sizeof *log);
	struct audit_checkpoint cp;
	int rc;
	*out = NULL;
	if (log == NULL)
		return err_set(ERR_NOMEM, "out of memory");
	log->st = st;
	if (anchor_path != NULL)
		snprintf(log->anchor_path, sizeof log->anchor_path, "%s", anchor_path);
#ifdef CONSENTD_BENCH
	/* Compiled only into benchmark builds (-DCONSENTD_BENCH=ON): a release
	 * binary has no way to turn auditing off. */
	const char *bench = getenv("CONSENTD_BENCH_NO_AUDIT");
	log->bench_no_audit = bench != NULL && strcmp(bench, "1") == 0;
#endif
	if (log->bench_no_audit)
		fprintf(stderr, "consentd: WARNING: CONSENTD_BENCH_NO_AUDIT=1: read and check requests are "
				"NOT AUDITED. This switch exists for benchmarks only; never use it in "
				"production.\n");
	pthread_mutex_init(&log->lock, NULL);
	pthread_cond_init(&log->wake, NULL);
	if ((rc = audit_signer_load(&log->signer, signing_key_path)) != 0)
		goto fail;
	if ((rc = audit_hasher_new(&log->hasher)) != 0)
		goto fail;
	if ((rc = store_writer_open(st, &log->w)) != 0)
		goto fail;
	if ((rc = store_audit_head(log->w, &log->head_seq, log->head_hash)) != 0)
		goto fail;
	rc = store_checkpoint_latest(log->w, &cp);
	if (rc == 0) {
		log->checkpoint_size = cp.size;
		log->checkpoint_time_us = cp.time_us;
	} else if (rc != ERR_NOTFOUND) {
		goto fail;
	}
	log->checkpoint_time_us = now_us();
	log->stats.head_seq = log->head_seq;
	log->stats.healthy = true;
	if (pthread_create(&log->thread, NULL, commit_thread, log) != 0) {
		rc = err_set(ERR_INTERNAL, "cannot start the audit thread");
		goto fail;
	}
	*out = log;
	return 0;
fail:
	store_conn_free(log->w);
	audit_hasher_free(log->hasher);
	audit_signer_free(log->signer);
	pthread_mutex_destroy(&log->lock);
	pthread_cond_destroy(&log->wake);
	free(log);
	return rc;
}

void audit_log_shutdown(struct audit_log *log)
{
	if (log == NULL)
		return;
	pthread_mutex_lock(&log->lock);
	bool joined = log->joined;
	log->stopping = true;
	log->joined = true;
	pthread_cond_signal(&log->wake);
	pthread_mutex_unlock(&log->lock);
	if (!joined)
		pthread_join(log->thread, NULL);
}

void audit_log_close(struct audit_log *log)
{
	if (log == NULL)
		return;
	audit_log_shutdown(log);
	store_conn_free(log->w);
	audit_hasher_free(log->hasher);
	audit_signer_free(log->signer);
	pthread_mutex_destroy(&log->lock);
	pthread_cond_destroy(&log->wake);
	free(log);
}

int audit_log_submit(struct audit_log *log, struct audit_job *job)
{
	job->next = NULL;
	pthread_mutex_lock(&log->lock);
	if (log->stopping) {
		pthread_mutex_unlock(&log->lock);
		return err_set(ERR_UNAVAILABLE, "the audit log is closing");
	}
	if (log->tail != NULL)
		log->tail->next = job;
	else
		log->head = job;
	log->tail = job;
	pthread_cond_signal(&log->wake);
	pthread_mutex_unlock(&log->lock);
	return 0;
}

struct waiter {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	int rc;
	void (*inner)(struct audit_job *, int);
};

static void wake_waiter(struct audit_job *job, int rc)
{
	struct waiter *w = job->waiter;
	if (w->inner != NULL)
		w->inner(job, rc);
	pthread_mutex_lock(&w->lock);
	w->done = true;
	w->rc = rc;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

int audit_log_run(struct audit_log *log, struct audit_job *job)
{
	struct waiter w = { .done = false, .inner = job->done };
	pthread_mutex_init(&w.lock, NULL);
	pthread_cond_init(&w.cond, NULL);
	job->done = wake_waiter;
	job->waiter = &w;
	int rc = audit_log_submit(log, job);
	if (rc == 0) {
		pthread_mutex_lock(&w.lock);
		while (!w.done)
			pthread_cond_wait(&w.cond, &w.lock);
		rc = w.rc;
		pthread_mutex_unlock(&w.lock);
	}
	job->done = w.inner;
	job->waiter = NULL;
	pthread_mutex_destroy(&w.lock);
	pthread_cond_destroy(&w.cond);
	return rc;
}

int audit_log_checkpoint(struct audit_log *log)
{
	pthread_mutex_lock(&log->lock);
	log->want_checkpoint = true;
	pthread_cond_signal(&log->wake);
	pthread_mutex_unlock(&log->lock);
	return 0;
}

void audit_log_stats(struct audit_log *log, struct audit_log_stats *out)
{
	pthread_mutex_lock(&log->lock);
	*out = log->stats;
	pthread_mutex_unlock(&log->lock);
}
