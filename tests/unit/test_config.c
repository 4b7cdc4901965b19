/* test_config: the "threads" default of consentd.conf (service/config.c).
 * On SQLite it is one HTTP thread per core the process may run on; on
 * PostgreSQL, where a check waits for its round trip on its HTTP thread,
 * LIMIT_PG_THREADS_PER_CPU per core, capped by the pool's readers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "service/base/limits.h"
#include "service/config.h"

static unsigned cores(void)
{
	cpu_set_t set;
	assert_int_equal(sched_getaffinity(0, sizeof set, &set), 0);
	return (unsigned)CPU_COUNT(&set);
}

/* Loads a consentd.conf holding body (the members inside the braces). */
static unsigned threads_for(const char *body)
{
	char dir[] = "/tmp/test_config-XXXXXX", path[64];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/consentd.conf", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "{%s}\n", body);
	fclose(f);
	struct config *cfg = calloc(1, sizeof *cfg);
	assert_non_null(cfg);
	assert_int_equal(config_load(cfg, dir), 0);
	unsigned n = cfg->threads;
	free(cfg);
	unlink(path);
	rmdir(dir);
	return n;
}

static unsigned min_u(unsigned a, unsigned b)
{
	return a < b ? a : b;
}

static void test_sqlite_default_is_one_thread_per_core(void **state)
{
	(void)state;
	assert_int_equal(threads_for("\"threads\": 0"), cores());
}

static void test_postgresql_default_keeps_the_core_busy_while_reads_wait(void **state)
{
	(void)state;
	unsigned want =
		min_u(min_u(cores() * LIMIT_PG_THREADS_PER_CPU, LIMIT_PG_CONNS - 1), LIMIT_HTTP_THREADS);
	assert_true(want > cores());
	assert_int_equal(threads_for("\"threads\": 0, \"database\": \"postgresql://u@127.0.0.1/db\""), want);
}

static void test_postgresql_default_never_exceeds_the_pools_readers(void **state)
{
	(void)state;
	/* A pool of 3: the writer and two readers. */
	assert_int_equal(threads_for("\"database\": \"postgresql://u@127.0.0.1/db\", \"database_pool\": 3"),
			 min_u(2, cores() * LIMIT_PG_THREADS_PER_CPU));
}

static void test_an_explicit_thread_count_is_kept_on_postgresql(void **state)
{
	(void)state;
	assert_int_equal(threads_for("\"threads\": 3, \"database\": \"postgresql://u@127.0.0.1/db\""), 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sqlite_default_is_one_thread_per_core),
		cmocka_unit_test(test_postgresql_default_keeps_the_core_busy_while_reads_wait),
		cmocka_unit_test(test_postgresql_default_never_exceeds_the_pools_readers),
		cmocka_unit_test(test_an_explicit_thread_count_is_kept_on_postgresql),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
