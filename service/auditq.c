/*
 * auditq: streams stored entries into the verifier with O(1) memory for the
 * entries; checkpoints are collected first (they are few: one per 10,000
 * entries or per minute of activity).
 */
#include "service/auditq.h"

#include "audit/checkpoint.h"
#include "service/base/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cps {
	struct audit_checkpoint *v;
	size_t n, cap;
};

static int collect(void *arg, const struct audit_checkpoint *cp)
{
	struct cps *c = arg;
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 64;
		struct audit_checkpoint *v = realloc(c->v, cap * sizeof *v);
		if (v == NULL)
			return err_set(ERR_NOMEM, "out of memory");
		c->v = v;
		c->cap = cap;
	}
	c->v[c->n++] = *cp;
	return 0;
}

static int next_entry(void *arg, struct audit_entry *out)
{
	return store_audit_cursor_next(arg, out);
}

int auditq_read_checkpoint(const char *path, struct audit_checkpoint *out)
{
	char line[AUDIT_CHECKPOINT_JSON_MAX + 8];
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return errno == ENOENT ? ERR_NOTFOUND
				       : err_set(ERR_IO, "cannot read %s: %s", path, strerror(errno));
	size_t n = fread(line, 1, sizeof line - 1, f);
	fclose(f);
	line[n] = '\0';
	int rc = audit_checkpoint_from_json(out, line, n);
	if (rc != 0)
		return err_set(ERR_INVALID, "%s does not hold a checkpoint: %s", path, err_msg());
	return 0;
}

int auditq_verify(struct store_conn *c, const char *pub_path, const char *const *extra,
		  size_t n_extra, struct audit_verify_result *res)
{
	struct audit_pubkey *key = NULL;
	struct store_audit_cursor *cur = NULL;
	struct store_audit_filter all;
	struct cps cps = { 0 };
	int rc;
	memset(&all, 0, sizeof all);
	memset(res, 0, sizeof *res);
	if ((rc = audit_pubkey_load(&key, pub_path)) != 0)
		return rc;
	if ((rc = store_checkpoints_each(c, collect, &cps)) != 0)
		goto out;
	for (size_t i = 0; i < n_extra; i++) {
		struct audit_checkpoint cp;
		rc = auditq_read_checkpoint(extra[i], &cp);
		if (rc == ERR_NOTFOUND)
			continue;
		if (rc != 0 || (rc = collect(&cps, &cp)) != 0)
			goto out;
	}
	if ((rc = store_audit_cursor_open(c, &all, &cur)) != 0)
		goto out;
	const struct audit_pubkey *keys[1] = { key };
	rc = audit_verify(next_entry, cur, cps.v, cps.n, keys, 1, res);
out:
	store_audit_cursor_close(cur);
	audit_pubkey_free(key);
	free(cps.v);
	return rc;
}
