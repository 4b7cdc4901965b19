/*
 * fuzz_audit_entry: feeds bytes, split into lines, to the audit NDJSON
 * parsers, as `consentd audit verify --export FILE` would read an export from
 * an untrusted party. Each line is tried as an entry, then as a checkpoint.
 * Every accepted entry must render back to JSON and CSV and parse back to the
 * identical entry; the accepted entries and checkpoints are then run through
 * the verifier, with the fixed public key below and without checkpoints.
 *
 * The corpus in tests/fuzz/corpus/audit_entry/ includes a log signed by the
 * private half of FUZZ_PUBKEY (generated once and thrown away), so the fuzzer
 * starts with a valid chain and a valid checkpoint to mutate.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "audit/checkpoint.h"
#include "audit/verify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ENTRIES 16
#define MAX_CHECKPOINTS 8

static const char FUZZ_PUBKEY[] = "-----BEGIN PUBLIC KEY-----\n"
				  "MCowBQYDK2VwAyEA0ehOCnGtIQ0dIX4JDylZF4UQ44zoGuc6iBON5p+5Q3o=\n"
				  "-----END PUBLIC KEY-----\n";

struct feed {
	struct audit_entry *entries;
	size_t n, pos;
};

static int feed_next(void *ctx, struct audit_entry *out)
{
	struct feed *f = ctx;
	if (f->pos >= f->n)
		return 0;
	*out = f->entries[f->pos++];
	return 1;
}

/* Rendering then parsing an accepted entry must give it back unchanged. */
static void round_trip(const struct audit_entry *e, char *buf, struct audit_entry *back)
{
	int n = audit_entry_format_json(e, buf, AUDIT_JSON_MAX);
	if (n < 0 || audit_entry_from_json(back, buf, (size_t)n) != 0 || memcmp(e, back, sizeof *e) != 0)
		abort();
	if (audit_entry_format_csv(e, buf, AUDIT_CSV_MAX) < 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct audit_checkpoint cps[MAX_CHECKPOINTS];
	/* Parsed once: the key is constant and PEM parsing would dominate. */
	static struct audit_pubkey *key;
	struct audit_verify_result res;
	struct audit_entry *back = NULL;
	struct feed f = { 0 };
	char *buf = NULL;
	size_t ncps = 0;

	f.entries = calloc(MAX_ENTRIES, sizeof *f.entries);
	back = calloc(1, sizeof *back);
	buf = malloc(AUDIT_CSV_MAX > AUDIT_JSON_MAX ? AUDIT_CSV_MAX : AUDIT_JSON_MAX);
	if (f.entries == NULL || back == NULL || buf == NULL)
		abort();
	if (key == NULL && audit_pubkey_from_pem(&key, FUZZ_PUBKEY, sizeof FUZZ_PUBKEY - 1) != 0)
		abort();

	const char *p = (const char *)data, *end = p + size;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl != NULL ? (size_t)(nl - p) + 1 : (size_t)(end - p);
		if (f.n < MAX_ENTRIES && audit_entry_from_json(&f.entries[f.n], p, len) == 0) {
			round_trip(&f.entries[f.n], buf, back);
			f.n++;
		} else if (ncps < MAX_CHECKPOINTS && audit_checkpoint_from_json(&cps[ncps], p, len) == 0) {
			int n = audit_checkpoint_format_json(&cps[ncps], buf, AUDIT_CHECKPOINT_JSON_MAX);
			if (n < 0)
				abort();
			ncps++;
		}
		p += len;
	}

	const struct audit_pubkey *keys[1] = { key };
	if (audit_verify(feed_next, &f, cps, ncps, keys, 1, &res) != 0)
		abort();
	if (res.ok && (res.entries != (int64_t)f.n || res.checkpoints != (int64_t)ncps))
		abort();
	f.pos = 0;
	if (audit_verify(feed_next, &f, NULL, 0, NULL, 0, &res) != 0)
		abort();

	free(buf);
	free(back);
	free(f.entries);
	return 0;
}
