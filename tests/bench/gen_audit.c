/*
 * gen_audit: fills a consentd data directory's audit trail with N entries,
 * fast, for the verify benchmark (tests/bench/bench_audit.sh). Not a test.
 *
 * It uses the product's own append path below the group committer: the
 * store's writer connection, audit_entry_link for the hash chain, and
 * store_audit_append, in transactions of 50,000 entries, and signs a
 * checkpoint every AUDIT_CHECKPOINT_EVERY entries and at the end with the
 * directory's audit signing key, as the running service would. The last
 * checkpoint is also written to the directory's anchor file, as the writer
 * does, so that `consentd audit verify` finds the trail anchored. Entries look
 * like consent checks; they hold no personal data.
 *
 * usage: gen_audit DATA_DIR COUNT
 */
#include "audit/anchor.h"
#include "audit/audit.h"
#include "audit/checkpoint.h"
#include "service/writer.h"
#include "service/base/error.h"
#include "service/base/limits.h"
#include "service/store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t wall_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int checkpoint(struct store_conn *w, struct audit_signer *s, const char *anchor, int64_t size,
		      const uint8_t root[AUDIT_HASH_BYTES])
{
	struct audit_checkpoint cp;
	memset(&cp, 0, sizeof cp);
	cp.size = size;
	memcpy(cp.root, root, AUDIT_HASH_BYTES);
	cp.time_us = wall_us();
	int rc = audit_checkpoint_sign(s, &cp);
	if (rc == 0)
		rc = store_checkpoint_append(w, &cp);
	/* Only the last checkpoint goes to the anchor: anchors only grow, and one
	 * fsync'd file per checkpoint would dominate the generation time. */
	return rc != 0 || anchor == NULL ? rc : audit_anchor_write(anchor, &cp);
}

int main(int argc, char **argv)
{
	struct store *st = NULL;
	struct store_conn *w = NULL;
	struct audit_signer *signer = NULL;
	struct audit_hasher *h = NULL;
	struct audit_entry e;
	uint8_t prev[AUDIT_HASH_BYTES];
	char path[4096], anchor[4096];
	int64_t seq = 0;
	int rc;
	if (argc != 3) {
		fprintf(stderr, "usage: gen_audit DATA_DIR COUNT\n");
		return 2;
	}
	long long count = atoll(argv[2]);
	snprintf(path, sizeof path, "%s/consentd.db", argv[1]);
	snprintf(anchor, sizeof anchor, "%s/audit-anchor.json", argv[1]);
	if ((rc = store_open(&st, path)) != 0 || (rc = store_writer_open(st, &w)) != 0)
		goto fail;
	snprintf(path, sizeof path, "%s/keys/audit-signing.pem", argv[1]);
	if ((rc = audit_signer_load(&signer, path)) != 0 || (rc = audit_hasher_new(&h)) != 0 ||
	    (rc = store_audit_head(w, &seq, prev)) != 0)
		goto fail;
	if ((rc = store_begin(w)) != 0)
		goto fail;
	for (long long i = 0; i < count; i++) {
		char rid[32], req[32];
		memset(&e, 0, sizeof e);
		snprintf(rid, sizeof rid, "BENCH%017lld", i % 100000);
		snprintf(req, sizeof req, "bench%016llx", i);
		audit_entry_fill(&e, "marketing-app", "marketing", "consent.check", rid, "marketing", "email",
				 (i % 7) ? "allow" : "deny", (i % 7) ? "granted" : "no_consent");
		snprintf(e.request_id, sizeof e.request_id, "%s", req);
		snprintf(e.client, sizeof e.client, "127.0.0.1");
		e.seq = ++seq;
		e.time_us = wall_us();
		if ((rc = audit_entry_link(h, &e, prev)) != 0 || (rc = store_audit_append(w, &e)) != 0)
			goto fail;
		memcpy(prev, e.hash, sizeof prev);
		if (seq % AUDIT_CHECKPOINT_EVERY == 0 && i + 1 != count &&
		    (rc = checkpoint(w, signer, NULL, seq, prev)) != 0)
			goto fail;
		if (seq % 50000 == 0 && ((rc = store_commit(w)) != 0 || (rc = store_begin(w)) != 0))
			goto fail;
	}
	if ((rc = checkpoint(w, signer, anchor, seq, prev)) != 0 || (rc = store_commit(w)) != 0)
		goto fail;
	printf("gen_audit: %lld entries; head seq %lld\n", count, (long long)seq);
	store_conn_free(w);
	audit_hasher_free(h);
	audit_signer_free(signer);
	store_close(st);
	return 0;
fail:
	fprintf(stderr, "gen_audit: %s\n", err_msg());
	return 1;
}
