/*
 * fixture: what the unit tests that need a real store share: a fresh SQLite
 * store in its own temporary folder, with the writer connection and one
 * reader, removed again (folder and all) when the test is done; the same
 * with a keyring and the example policy for the domain tests; and the plain
 * contact record the store tests insert (also used by tests/store/).
 */
#ifndef CONSENTD_TEST_FIXTURE_H
#define CONSENTD_TEST_FIXTURE_H

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "service/store/store.h"

struct keyring;
struct policy;

struct fixture_store {
	char dir[PATH_MAX]; /* the temporary folder; the database is dir/t.db */
	struct store *st;
	struct store_conn *w, *r;
};

/* 0, or -1 when the folder or the store cannot be made (cmocka setup). */
int fixture_store_open(struct fixture_store *f);
/* Closes the store and removes the folder with everything in it. */
void fixture_store_close(struct fixture_store *f);

/* The store fixture plus a new keyring in dir/keys and the example policy
 * (CONSENTD_SOURCE_DIR/policy/example-policy.json), for domain tests. */
struct fixture_domain {
	struct fixture_store s;
	struct keyring *kr;
	struct policy *pol;
};
int fixture_domain_open(struct fixture_domain *f);
void fixture_domain_close(struct fixture_domain *f);

/* A contact record as the store holds it: id, created and updated at
 * 1000 us, collected for "service,marketing", key version 1 and a fake
 * 60-byte wrapped key (the store never opens it). Header-only, so that
 * tests/store/conformance.c shares it without linking this fixture. */
static inline struct store_contact fixture_contact(const char *id)
{
	struct store_contact ct;
	memset(&ct, 0, sizeof ct);
	snprintf(ct.id, sizeof ct.id, "%s", id);
	ct.created_us = ct.updated_us = 1000;
	snprintf(ct.collected_for, sizeof ct.collected_for, "service,marketing");
	ct.key_version = 1;
	ct.wrapped_len = 60;
	memset(ct.wrapped_key, 7, 60);
	return ct;
}

#endif
