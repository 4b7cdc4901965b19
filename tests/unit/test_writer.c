/* test_writer: the group commit (service/writer.c) on a real SQLite file:
 * jobs queued while a batch runs commit together in the next one, in the
 * order they were submitted; a batch that cannot be written answers every
 * job in it with ERR_UNAVAILABLE and changes nothing; one job's failed write
 * is rolled back alone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit/audit.h"
#include "audit/checkpoint.h"
#include "service/base/error.h"
#include "service/store/store.h"
#include "service/writer.h"

struct fixture {
	char dir[64];
	struct store *st;
	struct writer *wr;
};

/* A gate that holds the commit thread inside one job's apply, so that the
 * test can queue more jobs behind it. */
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static bool gate_entered, gate_open;

struct tjob {
	struct writer_job job; /* first: done gets the job back */
	int order;	       /* which done call this was, 1-based */
	int rc;
	bool done;
};

static int done_count;
static pthread_mutex_t done_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cond = PTHREAD_COND_INITIALIZER;

static void tjob_done(struct writer_job *job, int rc)
{
	struct tjob *t = (struct tjob *)job;
	pthread_mutex_lock(&done_lock);
	t->order = ++done_count;
	t->rc = rc;
	t->done = true;
	pthread_cond_broadcast(&done_cond);
	pthread_mutex_unlock(&done_lock);
}

static void wait_done(struct tjob *t)
{
	pthread_mutex_lock(&done_lock);
	while (!t->done)
		pthread_cond_wait(&done_cond, &done_lock);
	pthread_mutex_unlock(&done_lock);
}

static int apply_gate(struct store_conn *w, struct writer_job *job)
{
	pthread_mutex_lock(&gate_lock);
	gate_entered = true;
	pthread_cond_broadcast(&gate_cond);
	while (!gate_open)
		pthread_cond_wait(&gate_cond, &gate_lock);
	pthread_mutex_unlock(&gate_lock);
	return 0;
}

/* Inserts a principal named after the job's record id. */
static int apply_insert(struct store_conn *w, struct writer_job *job)
{
	uint8_t h[32];
	memset(h, 0, sizeof h);
	snprintf((char *)h, sizeof h, "%s", job->entry.record_id);
	return store_principal_insert(w, job->entry.record_id, "admin", h, 1);
}

/* Sees the principal an earlier job of the same batch inserted. */
static int apply_sees_earlier(struct store_conn *w, struct writer_job *job)
{
	char role[STORE_NAME_CAP];
	return store_principal_role(w, "p1", role);
}

static int apply_fail(struct store_conn *w, struct writer_job *job)
{
	int rc = apply_insert(w, job);
	return rc != 0 ? rc : err_set(ERR_CONFLICT, "refused on purpose");
}

static void tjob_init(struct tjob *t, const char *action, const char *record_id,
		      int (*apply)(struct store_conn *, struct writer_job *))
{
	memset(t, 0, sizeof *t);
	assert_int_equal(
		audit_entry_fill(&t->job.entry, "tester", "admin", action, record_id, "", "", "allow", ""),
		0);
	t->job.apply = apply;
	t->job.done = tjob_done;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	char path[128], key[128];
	setenv("CONSENTD_TEST_FAULTS", "1", 1);
	snprintf(f->dir, sizeof f->dir, "/tmp/writertest-XXXXXX");
	if (f == NULL || mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(path, sizeof path, "%s/t.db", f->dir);
	snprintf(key, sizeof key, "%s/signing.pem", f->dir);
	if (audit_signer_generate_file(key) != 0 || store_open(&f->st, path) != 0 ||
	    writer_open(&f->wr, f->st, key, NULL) != 0)
		return -1;
	gate_entered = gate_open = false;
	done_count = 0;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];
	writer_close(f->wr);
	store_close(f->st);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

/* Submits the gate job and waits until the commit thread is inside it. */
static void hold_commit_thread(struct fixture *f, struct tjob *gate)
{
	tjob_init(gate, "", "", apply_gate);
	assert_int_equal(writer_submit(f->wr, &gate->job), 0);
	pthread_mutex_lock(&gate_lock);
	while (!gate_entered)
		pthread_cond_wait(&gate_cond, &gate_lock);
	pthread_mutex_unlock(&gate_lock);
}

static void release_commit_thread(void)
{
	pthread_mutex_lock(&gate_lock);
	gate_open = true;
	pthread_cond_broadcast(&gate_cond);
	pthread_mutex_unlock(&gate_lock);
}

static int64_t stored_head(struct fixture *f)
{
	struct store_conn *r = NULL;
	int64_t seq = -1;
	uint8_t hash[32];
	assert_int_equal(store_conn_get(f->st, &r), 0);
	assert_int_equal(store_audit_head(r, &seq, hash), 0);
	store_conn_put(f->st, r);
	return seq;
}

static void test_jobs_queued_during_a_batch_commit_together_in_order(void **state)
{
	struct fixture *f = *state;
	struct tjob gate, jobs[3];
	struct writer_stats before, after;

	hold_commit_thread(f, &gate);
	writer_stats(f->wr, &before);
	tjob_init(&jobs[0], "test.insert", "p1", apply_insert);
	tjob_init(&jobs[1], "test.sees", "p2", apply_sees_earlier);
	tjob_init(&jobs[2], "test.plain", "p3", NULL);
	for (int i = 0; i < 3; i++)
		assert_int_equal(writer_submit(f->wr, &jobs[i].job), 0);
	release_commit_thread();
	for (int i = 0; i < 3; i++)
		wait_done(&jobs[i]);
	wait_done(&gate);
	writer_stats(f->wr, &after);

	/* The gate's batch, then one batch for the three queued behind it. */
	assert_int_equal(after.batches - before.batches, 2);
	assert_int_equal(after.entries - before.entries, 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(jobs[i].rc, 0);
		assert_int_equal(jobs[i].job.apply_rc, 0);
		/* Submitted order is sequence order and answer order. */
		assert_int_equal(jobs[i].job.entry.seq, i + 1);
		assert_int_equal(jobs[i].order, i + 2);
	}
	assert_int_equal(gate.order, 1);
	assert_int_equal(stored_head(f), 3);
}

static void test_a_failing_batch_answers_every_job_unavailable(void **state)
{
	struct fixture *f = *state;
	struct tjob gate, jobs[3], later;
	struct writer_stats st;
	struct store_conn *r = NULL;
	char role[STORE_NAME_CAP];

	hold_commit_thread(f, &gate);
	tjob_init(&jobs[0], "test.insert", "p1", apply_insert);
	tjob_init(&jobs[1], "test.insert", "p2", apply_insert);
	tjob_init(&jobs[2], "test.plain", "p3", NULL);
	for (int i = 0; i < 3; i++)
		assert_int_equal(writer_submit(f->wr, &jobs[i].job), 0);
	/* The gate writes no entry, so its own batch commits; the next one
	 * cannot append its entries. */
	store_fault_audit(f->st, true);
	release_commit_thread();
	for (int i = 0; i < 3; i++)
		wait_done(&jobs[i]);
	wait_done(&gate);
	assert_int_equal(gate.rc, 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(jobs[i].rc, ERR_UNAVAILABLE);
	writer_stats(f->wr, &st);
	assert_false(st.healthy);
	assert_int_equal(st.failures, 1);

	/* Nothing of the batch is left: no entry, and no job's write. */
	assert_int_equal(stored_head(f), 0);
	assert_int_equal(store_conn_get(f->st, &r), 0);
	assert_int_equal(store_principal_role(r, "p1", role), ERR_NOTFOUND);
	assert_int_equal(store_principal_role(r, "p2", role), ERR_NOTFOUND);
	store_conn_put(f->st, r);

	/* Once the fault clears, the chain goes on from the unchanged head. */
	store_fault_audit(f->st, false);
	tjob_init(&later, "test.insert", "p1", apply_insert);
	assert_int_equal(writer_run(f->wr, &later.job), 0);
	assert_int_equal(later.job.entry.seq, 1);
	writer_stats(f->wr, &st);
	assert_true(st.healthy);
}

static void test_a_failing_write_is_rolled_back_alone_and_still_audited(void **state)
{
	struct fixture *f = *state;
	struct tjob gate, jobs[3];
	struct store_conn *r = NULL;
	char role[STORE_NAME_CAP];

	hold_commit_thread(f, &gate);
	tjob_init(&jobs[0], "test.insert", "p1", apply_insert);
	tjob_init(&jobs[1], "test.fail", "p2", apply_fail);
	tjob_init(&jobs[2], "test.insert", "p3", apply_insert);
	for (int i = 0; i < 3; i++)
		assert_int_equal(writer_submit(f->wr, &jobs[i].job), 0);
	release_commit_thread();
	for (int i = 0; i < 3; i++)
		wait_done(&jobs[i]);
	for (int i = 0; i < 3; i++)
		assert_int_equal(jobs[i].rc, 0);
	assert_int_equal(jobs[0].job.apply_rc, 0);
	assert_int_equal(jobs[1].job.apply_rc, ERR_CONFLICT);
	assert_string_equal(jobs[1].job.apply_msg, "refused on purpose");
	assert_int_equal(jobs[2].job.apply_rc, 0);
	assert_int_equal(stored_head(f), 3);
	assert_int_equal(store_conn_get(f->st, &r), 0);
	assert_int_equal(store_principal_role(r, "p1", role), 0);
	assert_int_equal(store_principal_role(r, "p2", role), ERR_NOTFOUND);
	assert_int_equal(store_principal_role(r, "p3", role), 0);
	store_conn_put(f->st, r);
}

/* The first job of a batch runs without a SAVEPOINT (writer.c): when it
 * fails, the transaction is rolled back and begun again, and the jobs after
 * it still commit, each with its entry, the failed one's included. */
static void test_a_failing_first_job_is_rolled_back_alone_and_still_audited(void **state)
{
	struct fixture *f = *state;
	struct tjob gate, jobs[3];
	struct store_conn *r = NULL;
	char role[STORE_NAME_CAP];

	hold_commit_thread(f, &gate);
	tjob_init(&jobs[0], "test.fail", "p1", apply_fail);
	tjob_init(&jobs[1], "test.insert", "p2", apply_insert);
	tjob_init(&jobs[2], "test.fail", "p3", apply_fail);
	for (int i = 0; i < 3; i++)
		assert_int_equal(writer_submit(f->wr, &jobs[i].job), 0);
	release_commit_thread();
	for (int i = 0; i < 3; i++)
		wait_done(&jobs[i]);
	for (int i = 0; i < 3; i++)
		assert_int_equal(jobs[i].rc, 0);
	assert_int_equal(jobs[0].job.apply_rc, ERR_CONFLICT);
	assert_int_equal(jobs[1].job.apply_rc, 0);
	assert_int_equal(jobs[2].job.apply_rc, ERR_CONFLICT);
	assert_int_equal(jobs[0].job.entry.seq, 1);
	assert_int_equal(jobs[2].job.entry.seq, 3);
	assert_int_equal(stored_head(f), 3);
	assert_int_equal(store_conn_get(f->st, &r), 0);
	assert_int_equal(store_principal_role(r, "p1", role), ERR_NOTFOUND);
	assert_int_equal(store_principal_role(r, "p2", role), 0);
	assert_int_equal(store_principal_role(r, "p3", role), ERR_NOTFOUND);
	store_conn_put(f->st, r);
}

static void test_a_closed_writer_refuses_jobs(void **state)
{
	struct fixture *f = *state;
	struct tjob j;
	writer_shutdown(f->wr);
	tjob_init(&j, "test.plain", "p1", NULL);
	assert_int_equal(writer_submit(f->wr, &j.job), ERR_UNAVAILABLE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_jobs_queued_during_a_batch_commit_together_in_order,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_failing_batch_answers_every_job_unavailable, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_a_failing_write_is_rolled_back_alone_and_still_audited,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_a_failing_first_job_is_rolled_back_alone_and_still_audited, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_closed_writer_refuses_jobs, setup, teardown),
	};
	return cmocka_run_group_tests_name("writer", tests, NULL, NULL);
}
