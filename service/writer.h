/*
 * writer: the transaction manager: the single writer and group commit.
 *
 * It is not part of audit/: audit/ encodes, chains, signs and verifies
 * entries and knows nothing of the store; the writer owns the store's writer
 * connection and appends the entries audit/ links. Every write to the database and every audit entry goes
 * through one thread that owns the store's writer connection. It takes all queued jobs (up to
 * AUDIT_BATCH_MAX), runs each job's write inside a savepoint, appends each
 * job's audit entry with the next sequence number and its hash link, and
 * commits once: one fsync for the whole batch. Only then is each job's
 * `done` called, so a reply built in `done` is sent only after its entry is
 * durable. If anything in the batch cannot be written, the whole batch is
 * rolled back and every job gets ERR_UNAVAILABLE: the caller answers 503 and
 * reveals nothing.
 *
 * Signed checkpoints (size + chain head, Ed25519) are written every
 * AUDIT_CHECKPOINT_EVERY entries, every AUDIT_CHECKPOINT_SECONDS while new
 * entries exist, and at close.
 *
 *   caller thread                 commit thread
 *   ─────────────                 ─────────────
 *   fill job.entry, job.apply
 *   writer_submit ──queue──>   BEGIN IMMEDIATE
 *   (suspend the request)         for each job: SAVEPOINT; apply; RELEASE
 *                                               (ROLLBACK TO on failure)
 *                                               seq, link, INSERT audit
 *                                 COMMIT (fsync)
 *                      <──done──  done(job, 0 | ERR_UNAVAILABLE)
 */
#ifndef CONSENTD_WRITER_H
#define CONSENTD_WRITER_H

#include <stdbool.h>
#include <stdint.h>

#include "audit/audit.h"
#include "audit/verify.h"

struct writer;
struct store;
struct store_conn;

struct writer_job {
	/* Filled by the caller; seq, time and hashes are set by the log. A job
	 * whose entry.action is empty writes no entry (a pure data write). */
	struct audit_entry entry;
	/* Optional write run in the batch's transaction, inside a savepoint.
	 * A negative return rolls back its changes and is kept in apply_rc;
	 * the entry is still written, so set its decision and reason. */
	int (*apply)(struct store_conn *w, struct writer_job *job);
	/* Called on the commit thread after the batch: rc 0 when the entry (and
	 * the write, if apply_rc is 0) is durable, ERR_UNAVAILABLE when not. */
	void (*done)(struct writer_job *job, int rc);
	void *ctx;
	/* Set by an erasure: done is called only once the WAL holds no older
	 * copy of any page (store_wal_truncate). When old readers keep it
	 * from that within ERASE_WAL_WAIT_MS, the committed job gets apply_rc
	 * ERR_UNAVAILABLE, and the purge is retried after every later batch
	 * and at close. */
	bool purge_wal;
	int apply_rc;
	char apply_msg[256];	 /* err_msg() of a failed apply */
	struct writer_job *next; /* the log's own */
	void *waiter;		 /* the log's own (writer_run) */
};

struct writer_stats {
	uint64_t entries, batches, failures, checkpoints, anchor_failures;
	int64_t head_seq;
	int64_t anchored; /* size of the newest proven or signed checkpoint */
	bool healthy;
	enum audit_fault fault; /* AUDIT_FAULT_NONE unless the chain diverged */
	char fault_reason[AUDIT_REASON_BYTES];
	/* How long each committed batch held the write lock (PostgreSQL: the
	 * chain lock every instance's batches queue for), from store_begin's
	 * return to store_commit's: a histogram over WRITER_LOCK_BUCKETS
	 * (microseconds, cumulative as Prometheus wants it), sum and count. */
	uint64_t lock_bucket[8];
	uint64_t lock_us_sum, lock_count, lock_us_max;
};
/* The upper bounds of the lock histogram's buckets, in microseconds; the
 * last bucket (+Inf) is lock_count. */
#define WRITER_LOCK_BUCKETS                                                                                  \
	{                                                                                                    \
		500, 1000, 2000, 5000, 10000, 20000, 50000, 100000                                           \
	}

/* Starts the commit thread. The signing key is loaded from signing_key_path.
 * Each signed checkpoint is also written to anchor_path (when not NULL) and
 * its generations (audit/anchor.h), outside the database.
 *
 * The log never signs a checkpoint or writes an anchor that does not extend
 * the newest checkpoint it proved: at open the stored chain must reach the
 * newest anchor (or database checkpoint) with its root and verify after it;
 * before every batch and every checkpoint the stored head must be the head
 * held in memory or a verified extension of it. When either fails the log
 * raises a fault (writer_fault), logs it, and from then on refuses every
 * job with ERR_UNAVAILABLE: it opens successfully nonetheless, so a server
 * can report the fault; a CLI verb must check writer_fault and stop. */
int writer_open(struct writer **out, struct store *st, const char *signing_key_path, const char *anchor_path);
/* Drains the queue, signs a final checkpoint and stops the thread; later
 * submissions are refused with ERR_UNAVAILABLE. */
void writer_shutdown(struct writer *log);
/* Shuts down (if not yet) and frees. */
void writer_close(struct writer *log);

/* Queues a job; done is called later on the commit thread. ERR_UNAVAILABLE
 * when the log is closing. */
int writer_submit(struct writer *log, struct writer_job *job);
/* Queues a job and waits for it; returns done's rc (the job's done, if any,
 * is called first). */
int writer_run(struct writer *log, struct writer_job *job);
/* Signs a checkpoint now, if entries were added since the last one. */
int writer_checkpoint(struct writer *log);

void writer_stats(struct writer *log, struct writer_stats *out);

/* The fault that stopped appending (AUDIT_FAULT_NONE when none), with its
 * reason copied into reason (may be NULL). */
enum audit_fault writer_fault(struct writer *log, char *reason, size_t cap);

#endif
