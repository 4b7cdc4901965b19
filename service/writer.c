/*
 * writer: single writer, group commit, checkpoints. See writer.h.
 *
 * Invariants:
 * - Only the commit thread touches the writer connection, head_seq and
 *   head_hash. They change only after a successful COMMIT; a failed batch
 *   leaves them as they were, so the chain in memory always equals the chain
 *   on disk.
 * - A job is never completed twice, and every submitted job is completed,
 *   also at close.
 */
#include "service/writer.h"

#include "audit/anchor.h"
#include "audit/checkpoint.h"
#include "audit/verify.h"
#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/base/limits.h"
#include "service/store/store.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct writer {
	struct store *st;
	struct store_conn *w;
	struct audit_signer *signer;
	struct audit_pubkey *pub;
	struct audit_hasher *hasher;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct writer_job *head, *tail;
	bool stopping, joined, want_checkpoint;
	char anchor_path[LIMIT_FILE_PATH_CAP]; /* "" when none */
	bool bench_no_audit;		       /* CONSENTD_BENCH_NO_AUDIT=1: benchmarks only */
	int test_commit_delay_ms;	       /* tests only: see writer_open */
	bool purge_pending;		       /* commit thread only: an erasure's WAL purge is owed */

	/* commit thread only */
	int64_t head_seq;
	uint8_t head_hash[AUDIT_HASH_BYTES];
	int64_t checkpoint_size;
	int64_t checkpoint_time_us;
	/* The newest checkpoint proven at open or signed since: the chain we
	 * append to must still reach it. size 0 when none. */
	struct audit_checkpoint proven;
	/* Set once, never cleared: the chain on disk is not the one this log
	 * holds, so it appends nothing more and signs nothing more. */
	enum audit_fault fault;
	int64_t batch_lock_us; /* the last committed batch's lock hold time */

	/* under lock */
	struct writer_stats stats;
};

static void raise_fault(struct writer *log, enum audit_fault f, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Stops appending for good and says why, once: every later batch is refused,
 * so each audited request is answered 503, and /readyz reports the fault. */
static void raise_fault(struct writer *log, enum audit_fault f, const char *fmt, ...)
{
	char reason[AUDIT_REASON_BYTES];
	va_list ap;
	if (log->fault != AUDIT_FAULT_NONE)
		return;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof reason, fmt, ap);
	va_end(ap);
	log->fault = f;
	fprintf(stderr,
		"consentd: audit: ALARM (%s): %s; appending stopped, audited requests are "
		"refused until an operator investigates (docs/operations.md)\n",
		audit_fault_name(f), reason);
	pthread_mutex_lock(&log->lock);
	log->stats.fault = f;
	snprintf(log->stats.fault_reason, sizeof log->stats.fault_reason, "%s", reason);
	log->stats.healthy = false;
	pthread_mutex_unlock(&log->lock);
}

static int next_entry(void *arg, struct audit_entry *out)
{
	return store_audit_cursor_next(arg, out);
}

static int next_cp(void *arg, struct audit_checkpoint *out)
{
	return store_checkpoint_cursor_next(arg, out);
}

/*
 * Checks the stored chain after entry from_seq (whose hash is from_hash,
 * proven by a checkpoint or held in memory) to the stored head: every link,
 * every hash, every stored checkpoint past from_seq. On success *seq/hash are
 * the stored head. On a verdict of "not ok" the fault is raised and
 * ERR_UNAVAILABLE returned; other errors pass up unchanged.
 */
static int check_extension(struct writer *log, int64_t from_seq, const uint8_t from_hash[AUDIT_HASH_BYTES],
			   int64_t *seq, uint8_t hash[AUDIT_HASH_BYTES])
{
	struct store_audit_cursor *cur = NULL;
	struct store_checkpoint_cursor *cps = NULL;
	struct store_audit_filter f;
	struct audit_verify_input in;
	struct audit_verify_result res;
	int rc;

	memset(&f, 0, sizeof f);
	f.after_seq = from_seq;
	if ((rc = store_audit_cursor_open(log->w, &f, &cur)) != 0 ||
	    (rc = store_checkpoint_cursor_open(log->w, from_seq, &cps)) != 0)
		goto out;
	const struct audit_pubkey *keys[1] = { log->pub };
	memset(&in, 0, sizeof in);
	in.next = next_entry;
	in.ctx = cur;
	in.next_cp = next_cp;
	in.cp_ctx = cps;
	in.keys = keys;
	in.nkeys = 1;
	in.start_seq = from_seq;
	memcpy(in.start_hash, from_hash, AUDIT_HASH_BYTES);
	if ((rc = audit_verify_run(&in, &res)) != 0)
		goto out;
	if (!res.ok) {
		raise_fault(log, res.fault,
			    "the stored chain after entry %lld does not extend the "
			    "chain this server holds: %s",
			    (long long)from_seq, res.reason);
		rc = ERR_UNAVAILABLE;
		goto out;
	}
	*seq = res.entries;
	memcpy(hash, res.head, AUDIT_HASH_BYTES);
out:
	store_checkpoint_cursor_close(cps);
	store_audit_cursor_close(cur);
	return rc;
}

/*
 * Inside a transaction: the stored chain must still be the one held in
 * memory. It must still reach the proven checkpoint with its root, and its
 * head must be the held head, or a verified extension of it (entries that a
 * CLI verb appended while the server ran link to the held head). Anything
 * else (a cut, a rewrite, a head that moved back) raises the fault.
 */
static int reconcile(struct writer *log)
{
	int64_t db_seq = 0;
	uint8_t db_hash[AUDIT_HASH_BYTES], at[AUDIT_HASH_BYTES];
	int rc;

	if (log->fault != AUDIT_FAULT_NONE)
		return ERR_UNAVAILABLE;
	if ((rc = store_audit_head(log->w, &db_seq, db_hash)) != 0)
		return rc;
	if (log->proven.size > 0) {
		rc = store_audit_hash_at(log->w, log->proven.size, at);
		if (rc == ERR_NOTFOUND || (rc == 0 && memcmp(at, log->proven.root, AUDIT_HASH_BYTES) != 0)) {
			raise_fault(log, rc == ERR_NOTFOUND ? AUDIT_FAULT_TRUNCATED : AUDIT_FAULT_REWRITTEN,
				    "the stored chain no longer reaches the signed checkpoint for %lld "
				    "entries with its root",
				    (long long)log->proven.size);
			return ERR_UNAVAILABLE;
		}
		if (rc != 0)
			return rc;
	}
	if (db_seq == log->head_seq && memcmp(db_hash, log->head_hash, AUDIT_HASH_BYTES) == 0)
		return 0;
	if (db_seq <= log->head_seq) {
		raise_fault(log, AUDIT_FAULT_DIVERGED,
			    "the stored head is entry %lld, but this server wrote up to entry %lld: "
			    "entries were removed or replaced behind its back",
			    (long long)db_seq, (long long)log->head_seq);
		return ERR_UNAVAILABLE;
	}
	if ((rc = check_extension(log, log->head_seq, log->head_hash, &db_seq, db_hash)) != 0)
		return rc;
	log->head_seq = db_seq;
	memcpy(log->head_hash, db_hash, AUDIT_HASH_BYTES);
	return 0;
}

static int sign_checkpoint(struct writer *log)
{
	struct audit_checkpoint cp;
	int rc;
	if (log->fault != AUDIT_FAULT_NONE)
		return err_set(ERR_UNAVAILABLE, "the audit trail is not the one this server holds");
	if (log->head_seq == 0 || log->head_seq == log->checkpoint_size)
		return 0;
	if ((rc = store_begin(log->w)) != 0)
		return rc;
	/* Sign only a head that extends the proven checkpoint: the stored chain
	 * is checked again inside the transaction that records the signature. */
	if ((rc = reconcile(log)) != 0)
		goto fail;
	memset(&cp, 0, sizeof cp);
	cp.size = log->head_seq;
	memcpy(cp.root, log->head_hash, sizeof cp.root);
	cp.time_us = now_us();
	/* The anchor is written before the row commits: every checkpoint in the
	 * database then has its anchor on disk (a database checkpoint without an
	 * anchor file means the file was deleted), and an anchor without its row
	 * (a crash between the two) still names entries that were committed
	 * before it was signed. */
	if ((rc = audit_checkpoint_sign(log->signer, &cp)) != 0)
		goto fail;
	if (log->anchor_path[0] != '\0' && (rc = audit_anchor_write(log->anchor_path, &cp)) != 0) {
		fprintf(stderr,
			"consentd: audit: cannot write the checkpoint anchor, no checkpoint "
			"signed: %s\n",
			err_msg());
		pthread_mutex_lock(&log->lock);
		log->stats.anchor_failures++;
		pthread_mutex_unlock(&log->lock);
		goto fail;
	}
	if ((rc = store_checkpoint_append(log->w, &cp)) != 0 || (rc = store_commit(log->w)) != 0)
		goto fail;
	log->checkpoint_size = cp.size;
	log->checkpoint_time_us = cp.time_us;
	log->proven = cp;
	pthread_mutex_lock(&log->lock);
	log->stats.checkpoints++;
	log->stats.anchored = cp.size;
	pthread_mutex_unlock(&log->lock);
	return 0;
fail:
	store_rollback(log->w);
	return rc;
}

static int write_batch(struct writer *log, struct writer_job *jobs, int64_t *seq,
		       uint8_t hash[AUDIT_HASH_BYTES], uint64_t *entries)
{
	/* Benchmark switch (tests/bench): with CONSENTD_BENCH_NO_AUDIT=1 a batch
	 * without writes touches no database at all, so a benchmark can measure
	 * what auditing costs. It breaks the product's promise; never set it
	 * outside a benchmark (a loud warning is printed at start). */
	log->batch_lock_us = -1; /* none: the batch took no lock */
	if (log->bench_no_audit) {
		bool any_apply = false;
		for (struct writer_job *j = jobs; j != NULL; j = j->next)
			any_apply = any_apply || j->apply != NULL;
		if (!any_apply) {
			for (struct writer_job *j = jobs; j != NULL; j = j->next)
				j->apply_rc = 0;
			return 0;
		}
	}
	if (log->fault != AUDIT_FAULT_NONE)
		return ERR_UNAVAILABLE;
	if (log->test_commit_delay_ms > 0) {
		struct timespec d = { log->test_commit_delay_ms / 1000,
				      (log->test_commit_delay_ms % 1000) * 1000000L };
		nanosleep(&d, NULL);
	}
	int rc = store_begin(log->w);
	if (rc != 0)
		return rc;
	int64_t locked_us = mono_us();
	/* The head appended to is the head held in memory; a CLI verb (token
	 * create, keys rotate) may have extended it while the server ran, which
	 * reconcile verifies. Any other change raises the fault. */
	if ((rc = reconcile(log)) != 0)
		goto fail;
	*seq = log->head_seq;
	memcpy(hash, log->head_hash, AUDIT_HASH_BYTES);
	for (struct writer_job *j = jobs; j != NULL; j = j->next) {
		j->apply_rc = 0;
		if (j->apply != NULL && j == jobs) {
			/* The first job needs no SAVEPOINT: nothing precedes it in
			 * the transaction, so undoing it is a rollback and a new
			 * BEGIN. A savepoint made SQLite copy every page the job
			 * changed into a sub-journal first, which for an import
			 * batch is thousands of pages. */
			j->apply_rc = j->apply(log->w, j);
			if (j->apply_rc != 0) {
				snprintf(j->apply_msg, sizeof j->apply_msg, "%s", err_msg());
				store_rollback(log->w);
				if ((rc = store_begin(log->w)) != 0 || (rc = reconcile(log)) != 0)
					goto fail;
				*seq = log->head_seq;
				memcpy(hash, log->head_hash, AUDIT_HASH_BYTES);
			}
		} else if (j->apply != NULL) {
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
	log->batch_lock_us = mono_us() - locked_us;
	return 0;
fail:
	fprintf(stderr, "consentd: audit: batch failed, failing closed: %s\n", err_msg());
	store_rollback(log->w);
	return ERR_UNAVAILABLE;
}

/* An erasure's batch has committed, but older versions of the pages it
 * changed (the wrapped key, the sealed values) are still WAL frames, and
 * would be after any PASSIVE checkpoint. The purge copies the newest pages
 * into the database file (where secure_delete zeroed the freed bytes) and
 * truncates the WAL. Until it succeeds the erasure is not acknowledged. */
static void purge_wal(struct writer *log, struct writer_job *batch)
{
	bool owed = false;
	for (struct writer_job *j = batch; j != NULL; j = j->next)
		owed = owed || j->purge_wal;
	if (!owed && !log->purge_pending)
		return;
	/* Only a batch with an erasure waiting on it waits for old readers. */
	log->purge_pending = store_wal_truncate(log->w, owed ? ERASE_WAL_WAIT_MS : 0) != 0;
	if (!log->purge_pending || !owed)
		return;
	fprintf(stderr, "consentd: erasure: %s; will retry\n", err_msg());
	for (struct writer_job *j = batch; j != NULL; j = j->next)
		if (j->purge_wal) {
			j->apply_rc = ERR_UNAVAILABLE;
			snprintf(j->apply_msg, sizeof j->apply_msg,
				 "the contact was erased, but a long-running read still holds older "
				 "copies of its encrypted data; retry to confirm");
		}
}

static void *commit_thread(void *arg)
{
	struct writer *log = arg;
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
		struct writer_job *batch = log->head, *last = NULL;
		int n = 0;
		for (struct writer_job *j = batch; j != NULL && n < AUDIT_BATCH_MAX; j = j->next) {
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
			if (rc == 0 && log->batch_lock_us >= 0) {
				static const int64_t bounds[8] = WRITER_LOCK_BUCKETS;
				for (int b = 0; b < 8; b++)
					log->stats.lock_bucket[b] += log->batch_lock_us <= bounds[b];
				log->stats.lock_us_sum += (uint64_t)log->batch_lock_us;
				log->stats.lock_count++;
				if ((uint64_t)log->batch_lock_us > log->stats.lock_us_max)
					log->stats.lock_us_max = (uint64_t)log->batch_lock_us;
			}
			if (rc == 0) {
				log->stats.entries += entries;
				log->stats.head_seq = seq;
				log->stats.healthy = log->fault == AUDIT_FAULT_NONE;
			} else {
				log->stats.failures++;
				log->stats.healthy = false;
			}
			pthread_mutex_unlock(&log->lock);
			/* The first entries of a trail are anchored before anyone is
			 * answered, so no acknowledged trail is ever unanchored. */
			if (rc == 0 && log->proven.size == 0 && sign_checkpoint(log) != 0)
				fprintf(stderr, "consentd: audit: cannot sign the first checkpoint: %s\n",
					err_msg());
			if (rc == 0)
				purge_wal(log, batch);
			for (struct writer_job *j = batch, *next; j != NULL; j = next) {
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
	if (log->purge_pending && store_wal_truncate(log->w, ERASE_WAL_WAIT_MS) != 0)
		fprintf(stderr, "consentd: erasure: the WAL purge is still owed: %s\n", err_msg());
	return NULL;
}

/*
 * At open: find the newest checkpoint that can be proven (the anchor files
 * outside the database, and the database's own, each checked against the
 * public key), require the stored chain to reach it with its root, and check
 * every entry after it. Only then is the stored head taken as the head to
 * append to. A failure raises the fault (the log opens, but appends nothing:
 * the server answers 503 and /readyz names the fault); only errors that stop
 * the check from running are returned.
 */
static int open_check(struct writer *log)
{
	struct audit_anchor_set anchors;
	struct audit_checkpoint db_cp;
	bool have_db_cp = false;
	int64_t db_seq = 0;
	uint8_t db_hash[AUDIT_HASH_BYTES], at[AUDIT_HASH_BYTES];
	int rc;

	memset(&anchors, 0, sizeof anchors);
	if (log->anchor_path[0] != '\0' &&
	    (rc = audit_anchor_load(log->anchor_path, log->pub, &anchors)) != 0)
		return rc;
	if ((rc = store_audit_head(log->w, &db_seq, db_hash)) != 0)
		return rc;
	rc = store_checkpoint_latest(log->w, &db_cp);
	if (rc == 0)
		have_db_cp = true;
	else if (rc != ERR_NOTFOUND)
		return rc;
	if (anchors.fault != AUDIT_FAULT_NONE) {
		raise_fault(log, anchors.fault, "%s", anchors.reason);
		return 0;
	}
	if (have_db_cp && audit_checkpoint_verify(log->pub, &db_cp) != 0) {
		raise_fault(log, AUDIT_FAULT_SIGNATURE,
			    "the newest checkpoint in the database (%lld "
			    "entries) is not validly signed: %s",
			    (long long)db_cp.size, err_msg());
		return 0;
	}
	if (log->anchor_path[0] != '\0' && !anchors.have && have_db_cp) {
		raise_fault(log, AUDIT_FAULT_ANCHOR,
			    "the database holds signed checkpoints (the newest "
			    "for %lld entries) but the anchor file %s is "
			    "missing: it was deleted",
			    (long long)db_cp.size, log->anchor_path);
		return 0;
	}
	/* A newer checkpoint in the database than this instance's anchor is
	 * what another instance of the fleet signed while this one was stopped
	 * (they share the signing key). It is taken only as an extension of
	 * the anchor: the check below starts at the anchor, so the stored
	 * chain must reach the anchor with its root and every entry and
	 * checkpoint past it must verify, the newer one included; only then
	 * does the anchor advance to it. A rewritten trail fails that check. */
	bool advance = anchors.have && have_db_cp && anchors.latest.size < db_cp.size;
	if (anchors.have)
		log->proven = anchors.latest;
	if (have_db_cp && db_cp.size > log->proven.size && !advance)
		log->proven = db_cp;
	if (log->proven.size == 0 && db_seq > 0 && log->anchor_path[0] != '\0') {
		raise_fault(log, AUDIT_FAULT_UNANCHORED,
			    "the trail holds %lld entries but no signed "
			    "checkpoint and no anchor file",
			    (long long)db_seq);
		return 0;
	}
	if (log->proven.size > 0) {
		rc = store_audit_hash_at(log->w, log->proven.size, at);
		if (rc == ERR_NOTFOUND) {
			raise_fault(log, AUDIT_FAULT_TRUNCATED,
				    "a signed checkpoint covers %lld entries, "
				    "but the trail ends at entry %lld",
				    (long long)log->proven.size, (long long)db_seq);
			return 0;
		}
		if (rc != 0)
			return rc;
		if (memcmp(at, log->proven.root, AUDIT_HASH_BYTES) != 0) {
			raise_fault(log, AUDIT_FAULT_REWRITTEN,
				    "the stored entry %lld is not the one the "
				    "signed checkpoint names",
				    (long long)log->proven.size);
			return 0;
		}
	}
	rc = check_extension(log, log->proven.size, log->proven.root, &log->head_seq, log->head_hash);
	if (rc == ERR_UNAVAILABLE)
		return 0; /* the fault is raised */
	if (rc != 0)
		return rc;
	if (advance) {
		/* Verified from the anchor up to the head: the newer checkpoint
		 * is now proven here too, and the anchor says so. */
		if ((rc = audit_anchor_write(log->anchor_path, &db_cp)) != 0)
			return rc;
		fprintf(stderr,
			"consentd: audit: the anchor advanced from %lld to %lld entries: a checkpoint "
			"another instance signed, verified from the anchor\n",
			(long long)anchors.latest.size, (long long)db_cp.size);
		log->proven = db_cp;
	}
	log->checkpoint_size = log->proven.size;
	return 0;
}

int writer_open(struct writer **out, struct store *st, const char *signing_key_path, const char *anchor_path)
{
	struct writer *log = calloc(1, sizeof *log);
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
	/* Test hook: CONSENTD_TEST_COMMIT_DELAY_MS makes every group commit
	 * that long, so a test can see what waits for a commit and what does
	 * not; honoured only with CONSENTD_TEST_FAULTS=1, like the store's. */
	const char *hooks = getenv("CONSENTD_TEST_FAULTS"), *delay = getenv("CONSENTD_TEST_COMMIT_DELAY_MS");
	if (hooks != NULL && strcmp(hooks, "1") == 0 && delay != NULL) {
		log->test_commit_delay_ms = atoi(delay);
		if (log->test_commit_delay_ms < 0 || log->test_commit_delay_ms > 10000)
			log->test_commit_delay_ms = 0;
	}
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
	if ((rc = audit_pubkey_from_signer(&log->pub, log->signer)) != 0)
		goto fail;
	log->stats.healthy = true;
	if ((rc = open_check(log)) != 0)
		goto fail;
	log->checkpoint_time_us = now_us();
	log->stats.head_seq = log->head_seq;
	log->stats.anchored = log->proven.size;
	if (pthread_create(&log->thread, NULL, commit_thread, log) != 0) {
		rc = err_set(ERR_INTERNAL, "cannot start the audit thread");
		goto fail;
	}
	*out = log;
	return 0;
fail:
	store_conn_free(log->w);
	audit_hasher_free(log->hasher);
	audit_pubkey_free(log->pub);
	audit_signer_free(log->signer);
	pthread_mutex_destroy(&log->lock);
	pthread_cond_destroy(&log->wake);
	free(log);
	return rc;
}

void writer_shutdown(struct writer *log)
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

void writer_close(struct writer *log)
{
	if (log == NULL)
		return;
	writer_shutdown(log);
	store_conn_free(log->w);
	audit_hasher_free(log->hasher);
	audit_pubkey_free(log->pub);
	audit_signer_free(log->signer);
	pthread_mutex_destroy(&log->lock);
	pthread_cond_destroy(&log->wake);
	free(log);
}

int writer_submit(struct writer *log, struct writer_job *job)
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
	void (*inner)(struct writer_job *, int);
};

static void wake_waiter(struct writer_job *job, int rc)
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

int writer_run(struct writer *log, struct writer_job *job)
{
	struct waiter w = { .done = false, .inner = job->done };
	pthread_mutex_init(&w.lock, NULL);
	pthread_cond_init(&w.cond, NULL);
	job->done = wake_waiter;
	job->waiter = &w;
	int rc = writer_submit(log, job);
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

int writer_checkpoint(struct writer *log)
{
	pthread_mutex_lock(&log->lock);
	log->want_checkpoint = true;
	pthread_cond_signal(&log->wake);
	pthread_mutex_unlock(&log->lock);
	return 0;
}

void writer_stats(struct writer *log, struct writer_stats *out)
{
	pthread_mutex_lock(&log->lock);
	*out = log->stats;
	pthread_mutex_unlock(&log->lock);
}

enum audit_fault writer_fault(struct writer *log, char *reason, size_t cap)
{
	pthread_mutex_lock(&log->lock);
	enum audit_fault f = log->stats.fault;
	if (reason != NULL && cap > 0)
		snprintf(reason, cap, "%s", log->stats.fault_reason);
	pthread_mutex_unlock(&log->lock);
	return f;
}
