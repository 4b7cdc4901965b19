/*
 * fixture: what the unit tests that need a real store share: a fresh SQLite
 * store in its own temporary folder, with the writer connection and one
 * reader, removed again (folder and all) when the test is done.
 */
#ifndef CONSENTD_TEST_FIXTURE_H
#define CONSENTD_TEST_FIXTURE_H

#include <limits.h>

struct store;
struct store_conn;

struct fixture_store {
	char dir[PATH_MAX]; /* the temporary folder; the database is dir/t.db */
	struct store *st;
	struct store_conn *w, *r;
};

/* 0, or -1 when the folder or the store cannot be made (cmocka setup). */
int fixture_store_open(struct fixture_store *f);
/* Closes the store and removes the folder with everything in it. */
void fixture_store_close(struct fixture_store *f);

#endif
