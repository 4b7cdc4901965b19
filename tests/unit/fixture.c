/*
 * fixture: a fresh store per test. See fixture.h.
 */
#include "tests/unit/fixture.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy/policy.h"
#include "service/crypto/fieldcrypt.h"
#include "service/store/store.h"

int fixture_store_open(struct fixture_store *f)
{
	char path[PATH_MAX + 8];
	memset(f, 0, sizeof *f);
	snprintf(f->dir, sizeof f->dir, "/tmp/consentd-unit-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(path, sizeof path, "%s/t.db", f->dir);
	if (store_open(&f->st, path) != 0 || store_writer_open(f->st, &f->w) != 0 ||
	    store_conn_get(f->st, &f->r) != 0)
		return -1;
	return 0;
}

static int remove_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void fixture_store_close(struct fixture_store *f)
{
	store_conn_put(f->st, f->r);
	store_conn_free(f->w);
	store_close(f->st);
	f->st = NULL;
	f->w = f->r = NULL;
	/* Depth first, without following links: the folder and what is in it. */
	if (f->dir[0] != '\0' && nftw(f->dir, remove_one, 8, FTW_DEPTH | FTW_PHYS) != 0)
		fprintf(stderr, "fixture: cannot remove %s\n", f->dir);
	f->dir[0] = '\0';
}

int fixture_domain_open(struct fixture_domain *f)
{
	char keys[PATH_MAX + 8], pp[PATH_MAX];
	const char *root = getenv("CONSENTD_SOURCE_DIR");
	f->kr = NULL;
	f->pol = NULL;
	if (root == NULL || fixture_store_open(&f->s) != 0)
		return -1;
	snprintf(keys, sizeof keys, "%s/keys", f->s.dir);
	snprintf(pp, sizeof pp, "%s/policy/example-policy.json", root);
	if (keyring_init_dir(keys) != 0 || keyring_open(&f->kr, keys) != 0 ||
	    policy_load_file(&f->pol, pp, NULL) != 0)
		return -1;
	return 0;
}

void fixture_domain_close(struct fixture_domain *f)
{
	fixture_store_close(&f->s);
	if (f->pol != NULL)
		policy_unref(f->pol);
	keyring_free(f->kr);
	f->pol = NULL;
	f->kr = NULL;
}
