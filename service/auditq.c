/*
 * auditq: streams stored entries and stored checkpoints into the verifier,
 * both through cursors, so memory does not grow with the trail; the anchor
 * files and an auditor's own checkpoints (a handful) are read up front.
 */
#include "service/auditq.h"

#include "audit/anchor.h"
#include "audit/checkpoint.h"
#include "service/base/error.h"
#include "service/base/limits.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int next_entry(void *arg, struct audit_entry *out)
{
	return store_audit_cursor_next(arg, out);
}

static int next_cp(void *arg, struct audit_checkpoint *out)
{
	return store_checkpoint_cursor_next(arg, out);
}

int auditq_read_checkpoint(const char *path, struct audit_checkpoint *out)
{
	char line[AUDIT_PEM_MAX + 2 * AUDIT_CHECKPOINT_JSON_MAX];
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return errno == ENOENT ? ERR_NOTFOUND
				       : err_set(ERR_IO, "cannot read %s: %s", path, strerror(errno));
	size_t n = fread(line, 1, sizeof line - 1, f);
	bool more = fgetc(f) != EOF;
	fclose(f);
	if (more)
		return err_set(ERR_INVALID, "%s is larger than a checkpoint or its reply can be", path);
	line[n] = '\0';
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' '))
		line[--n] = '\0';
	/* The reply of GET /v1/audit/checkpoints/latest, as an auditor saves it. */
	json_t *root = json_loadb(line, n, 0, NULL), *cp = json_object_get(root, "checkpoint");
	int rc;
	if (json_is_object(cp)) {
		char *text = json_dumps(cp, JSON_COMPACT);
		rc = text ? audit_checkpoint_from_json(out, text, strlen(text))
			  : err_set(ERR_NOMEM, "out of memory");
		free(text);
	} else {
		rc = audit_checkpoint_from_json(out, line, n);
	}
	json_decref(root);
	if (rc != 0)
		return err_set(ERR_INVALID, "%s does not hold a checkpoint: %s", path, err_msg());
	return 0;
}

static void fail_with(struct audit_verify_result *res, enum audit_fault f, const char *reason)
{
	res->ok = false;
	res->fault = f;
	res->first_bad_seq = 0;
	snprintf(res->reason, sizeof res->reason, "%s", reason);
}

int auditq_verify_from(struct store_conn *c, const char *pub_path, const char *anchor_path,
		       const char *const *extra, size_t n_extra, int64_t from_seq,
		       const uint8_t from_hash[32], struct audit_verify_result *res)
{
	struct audit_pubkey *key = NULL;
	struct store_audit_cursor *cur = NULL;
	struct store_checkpoint_cursor *cps = NULL;
	struct audit_anchor_set *anchors = NULL;
	struct audit_checkpoint *held = NULL, latest;
	struct store_audit_filter all;
	struct audit_verify_input in;
	size_t nheld = 0;
	bool have_db_cp = false;
	int rc;

	memset(&all, 0, sizeof all);
	memset(res, 0, sizeof *res);
	snprintf(res->reason, sizeof res->reason, "verification did not run");
	if ((rc = audit_pubkey_load(&key, pub_path)) != 0)
		return rc;
	anchors = calloc(1, sizeof *anchors);
	held = calloc(AUDIT_ANCHOR_GENERATIONS + 1 + n_extra, sizeof *held);
	if (anchors == NULL || held == NULL) {
		rc = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	/* The database first: the writer puts a checkpoint's anchor on disk
	 * before the checkpoint's row commits, so a row seen here has its anchor
	 * by the time the files are read. */
	rc = store_checkpoint_latest(c, &latest);
	if (rc == 0)
		have_db_cp = true;
	else if (rc != ERR_NOTFOUND)
		goto out;
	if (anchor_path != NULL && (rc = audit_anchor_load(anchor_path, key, anchors)) != 0)
		goto out;
	if (anchors->fault != AUDIT_FAULT_NONE) {
		fail_with(res, anchors->fault, anchors->reason);
		goto out;
	}
	for (size_t i = 0; i < anchors->n; i++)
		held[nheld++] = anchors->all[i];
	for (size_t i = 0; i < n_extra; i++) {
		rc = auditq_read_checkpoint(extra[i], &held[nheld]);
		if (rc == ERR_NOTFOUND)
			rc = err_set(ERR_NOTFOUND, "cannot open %s", extra[i]);
		if (rc != 0)
			goto out;
		nheld++;
	}
	all.after_seq = from_seq;
	if ((rc = store_audit_cursor_open(c, &all, &cur)) != 0 ||
	    (rc = store_checkpoint_cursor_open(c, 0, &cps)) != 0)
		goto out;
	const struct audit_pubkey *keys[1] = { key };
	memset(&in, 0, sizeof in);
	in.next = next_entry;
	in.ctx = cur;
	in.next_cp = next_cp;
	in.cp_ctx = cps;
	in.cps = held;
	in.ncps = nheld;
	in.keys = keys;
	in.nkeys = 1;
	in.start_seq = from_seq;
	if (from_seq > 0)
		memcpy(in.start_hash, from_hash, sizeof in.start_hash);
	/* A database checkpoint newer than this folder's anchor is one another
	 * instance of the fleet signed with the shared key. The run above
	 * checked the chain through the held anchors and through it, so it
	 * extends them: not a fault. An anchor file swapped for an older
	 * generation is caught by audit_anchor_load. */
	if ((rc = audit_verify_run(&in, res)) != 0 || !res->ok)
		goto out;
	if (anchor_path != NULL && have_db_cp && !anchors->have) {
		char reason[AUDIT_REASON_BYTES];
		snprintf(reason, sizeof reason,
			 "the database holds signed checkpoints (the newest for %lld entries) but the "
			 "anchor file %s is missing: it was deleted",
			 (long long)latest.size, anchor_path);
		fail_with(res, AUDIT_FAULT_ANCHOR, reason);
	} else if (res->entries > 0 && res->anchored == 0) {
		char reason[AUDIT_REASON_BYTES];
		snprintf(reason, sizeof reason,
			 "the trail holds %lld entries but no signed checkpoint covers any of them: "
			 "nothing proves they were not rewritten",
			 (long long)res->entries);
		fail_with(res, AUDIT_FAULT_UNANCHORED, reason);
	}
out:
	store_checkpoint_cursor_close(cps);
	store_audit_cursor_close(cur);
	audit_pubkey_free(key);
	free(anchors);
	free(held);
	return rc;
}

int auditq_verify(struct store_conn *c, const char *pub_path, const char *anchor_path,
		  const char *const *extra, size_t n_extra, struct audit_verify_result *res)
{
	return auditq_verify_from(c, pub_path, anchor_path, extra, n_extra, 0, NULL, res);
}
