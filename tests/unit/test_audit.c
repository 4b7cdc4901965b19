/*
 * test_audit: the audit entry encoding (against known answers computed with
 * Python's hashlib from docs/audit.md), its JSON and CSV renderings, signed
 * checkpoints and key files, and the verifier against each kind of tampering:
 * edit, deletion, insertion, swap, truncation, consistent rewrite and a bad
 * checkpoint signature. A throughput figure for the verifier is printed, never
 * asserted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit/audit.h"
#include "audit/checkpoint.h"
#include "service/writer.h"
#include "audit/verify.h"
#include "service/base/error.h"
#include "service/base/limits.h"

/* The fixed entries of the known-answer test (docs/audit.md shows the same
 * values in the Python sketch's self-check). */
static void kat_entry1(struct audit_entry *e)
{
	memset(e, 0, sizeof *e);
	e->seq = 1;
	e->time_us = INT64_C(1714566896123456); /* 2024-05-01T12:34:56.123456Z */
	strcpy(e->actor, "marketing-app");
	strcpy(e->role, "marketing");
	strcpy(e->action, "consent.check");
	strcpy(e->record_id, "AAECAwQFBgcICQoLDA0ODw");
	strcpy(e->purpose, "newsletter");
	strcpy(e->channel, "email");
	strcpy(e->decision, "allow");
	strcpy(e->reason, "granted");
	strcpy(e->request_id, "req-0001");
	strcpy(e->client, "192.0.2.1");
	strcpy(e->detail, "{\"count\":3,\"list\":\"ab12\"}");
}

static void kat_entry2(struct audit_entry *e)
{
	memset(e, 0, sizeof *e);
	e->seq = 2;
	e->time_us = INT64_C(1714566897000000);
	strcpy(e->actor, "support-1");
	strcpy(e->role, "support");
	strcpy(e->action, "contacts.read");
	strcpy(e->record_id, "AAECAwQFBgcICQoLDA0ODw");
	strcpy(e->purpose, "service");
	strcpy(e->decision, "deny");
	strcpy(e->reason, "purpose_not_allowed");
	strcpy(e->fields, "email,phone");
	strcpy(e->request_id, "req-0002");
	strcpy(e->client, "2001:db8::1");
}

static const char KAT_ENCODING1[] =
	"000000000000000100061763b6c97e400000000d6d61726b6574696e672d617070000000096d61726b"
	"6574696e670000000d636f6e73656e742e636865636b0000001641414543417751464267634943516f"
	"4c4441304f44770000000a6e6577736c657474657200000005656d61696c00000005616c6c6f770000"
	"00076772616e74656400000000000000087265712d30303031000000093139322e302e322e31000000"
	"197b22636f756e74223a332c226c697374223a2261623132227d";
static const char KAT_HASH1[] = "09e66b716bbbc67e0bfc42786d366f7b9dccc5754e42c70d37c3f65e27413dc7";
static const char KAT_HASH2[] = "103427ba65909e0ef047d6846a2e8a9022a6e5a5e952f423349e6802748ee381";

static const uint8_t ZERO[AUDIT_HASH_BYTES];

static void test_encoding_known_answer(void **state)
{
	struct audit_entry e1, e2;
	struct audit_hasher *h = NULL;
	uint8_t buf[AUDIT_ENCODED_MAX];
	char hex[2 * AUDIT_ENCODED_MAX + 1];
	(void)state;

	kat_entry1(&e1);
	kat_entry2(&e2);
	assert_int_equal(audit_entry_check(&e1), 0);
	assert_int_equal(audit_entry_check(&e2), 0);
	int n = audit_entry_encode(&e1, buf, sizeof buf);
	assert_true(n > 0);
	audit_hex_encode(buf, (size_t)n, hex);
	assert_string_equal(hex, KAT_ENCODING1);
	assert_int_equal(audit_entry_encode(&e1, buf, (size_t)n - 1), ERR_TOOBIG);

	assert_int_equal(audit_hasher_new(&h), 0);
	assert_int_equal(audit_entry_link(h, &e1, ZERO), 0);
	audit_hex_encode(e1.hash, AUDIT_HASH_BYTES, hex);
	assert_string_equal(hex, KAT_HASH1);
	assert_int_equal(audit_entry_link(h, &e2, e1.hash), 0);
	audit_hex_encode(e2.hash, AUDIT_HASH_BYTES, hex);
	assert_string_equal(hex, KAT_HASH2);

	/* The one-off path without a hasher gives the same answer. */
	uint8_t again[AUDIT_HASH_BYTES];
	assert_int_equal(audit_entry_hash(NULL, &e2, again), 0);
	assert_memory_equal(again, e2.hash, AUDIT_HASH_BYTES);
	audit_hasher_free(h);
	audit_hasher_free(NULL);
}

static void test_entry_check_rejects_bad_shapes(void **state)
{
	struct audit_entry e;
	(void)state;

	kat_entry1(&e);
	strcpy(e.reason, "line\nbreak");
	assert_int_equal(audit_entry_check(&e), ERR_INVALID);
	kat_entry1(&e);
	strcpy(e.decision, "maybe");
	assert_int_equal(audit_entry_check(&e), ERR_INVALID);
	kat_entry1(&e);
	strcpy(e.actor, "\xc3\x28"); /* invalid UTF-8 */
	assert_int_equal(audit_entry_check(&e), ERR_INVALID);
	kat_entry1(&e);
	e.seq = 0;
	assert_int_equal(audit_entry_check(&e), ERR_INVALID);

	static const char *bad_details[] = {
		"{}",
		"{ \"a\":1}",
		"{\"a\":1.5}",
		"{\"a\":{\"b\":1}}",
		"{\"a\":[1]}",
		"[1]",
		"{\"a\":1,\"a\":2}",
		"{\"a\":\"\\u0001\"}",
		"{\"a\":-0}",
		"{\"a\":\"\\u00e9\"}",
		"not json",
	};
	for (size_t i = 0; i < sizeof bad_details / sizeof *bad_details; i++) {
		kat_entry1(&e);
		strcpy(e.detail, bad_details[i]);
		assert_int_not_equal(audit_entry_check(&e), 0);
	}
	kat_entry1(&e);
	strcpy(e.detail, "{\"n\":-12,\"ok\":true,\"x\":null,\"s\":\"caf\xc3\xa9 \\\"q\\\"\"}");
	assert_int_equal(audit_entry_check(&e), 0);

	/* A string that fills its array without a terminator cannot be encoded. */
	kat_entry1(&e);
	memset(e.role, 'r', sizeof e.role);
	uint8_t buf[AUDIT_ENCODED_MAX];
	assert_int_equal(audit_entry_encode(&e, buf, sizeof buf), ERR_INVALID);
	assert_int_equal(audit_entry_check(&e), ERR_TOOBIG);
}

static void test_time_format_and_parse(void **state)
{
	char t[AUDIT_TIME_BYTES];
	int64_t us;
	(void)state;

	assert_int_equal(audit_time_format(0, t), 0);
	assert_string_equal(t, "1970-01-01T00:00:00.000000Z");
	assert_int_equal(audit_time_format(INT64_C(1714566896123456), t), 0);
	assert_string_equal(t, "2024-05-01T12:34:56.123456Z");
	assert_int_equal(audit_time_format(AUDIT_TIME_MAX_US, t), 0);
	assert_string_equal(t, "9999-12-31T23:59:59.999999Z");
	assert_int_equal(audit_time_format(-1, t), ERR_INVALID);
	assert_int_equal(audit_time_parse(t, strlen(t), &us), 0);
	assert_true(us == AUDIT_TIME_MAX_US);
	assert_int_equal(audit_time_parse("2024-02-29T00:00:00.000000Z", 27, &us), 0);
	assert_int_equal(audit_time_format(us, t), 0);
	assert_string_equal(t, "2024-02-29T00:00:00.000000Z");

	static const char *bad[] = {
		"2023-02-29T00:00:00.000000Z", "2024-13-01T00:00:00.000000Z", "2024-01-01T24:00:00.000000Z",
		"2024-01-01T00:00:60.000000Z", "2024-01-01 00:00:00.000000Z", "2024-01-01T00:00:00.000000+",
		"2024-01-01T00:00:00Z",	       "1969-12-31T23:59:59.999999Z", "2024-01-01T00:00:00.00000aZ",
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		assert_int_equal(audit_time_parse(bad[i], strlen(bad[i]), &us), ERR_INVALID);
}

static void test_json_round_trip(void **state)
{
	struct audit_entry e, back;
	char line[AUDIT_JSON_MAX];
	json_t *obj = NULL;
	(void)state;

	kat_entry1(&e);
	strcpy(e.reason, "quote \" and backslash \\ and caf\xc3\xa9");
	strcpy(e.fields, "email,income");
	assert_int_equal(audit_entry_link(NULL, &e, ZERO), 0);
	int n = audit_entry_format_json(&e, line, sizeof line);
	assert_true(n > 0);
	assert_int_equal((size_t)n, strlen(line));
	assert_non_null(strstr(line, "\"time\":\"2024-05-01T12:34:56.123456Z\""));
	assert_non_null(strstr(line, "\"detail\":{\"count\":3,\"list\":\"ab12\"}"));
	assert_non_null(strstr(line, "\"reason\":\"quote \\\" and backslash \\\\ and caf"));
	assert_int_equal(audit_entry_from_json(&back, line, (size_t)n), 0);
	assert_memory_equal(&e, &back, sizeof e);

	/* NDJSON line endings are accepted; an empty detail travels as {}. */
	kat_entry2(&e);
	assert_int_equal(audit_entry_link(NULL, &e, ZERO), 0);
	n = audit_entry_format_json(&e, line, sizeof line);
	assert_non_null(strstr(line, "\"detail\":{}"));
	strcat(line, "\r\n");
	assert_int_equal(audit_entry_from_json(&back, line, strlen(line)), 0);
	assert_memory_equal(&e, &back, sizeof e);

	/* Too small a buffer fails cleanly. */
	assert_int_equal(audit_entry_format_json(&e, line, 40), ERR_TOOBIG);

	assert_int_equal(audit_entry_to_json(&e, &obj), 0);
	assert_true(json_is_object(obj));
	assert_int_equal(json_object_size(obj), 16);
	assert_int_equal(json_integer_value(json_object_get(obj, "seq")), 2);
	assert_true(json_is_object(json_object_get(obj, "detail")));
	json_decref(obj);
}

static void test_json_parse_is_strict(void **state)
{
	struct audit_entry e, back;
	char line[AUDIT_JSON_MAX], bad[AUDIT_JSON_MAX + 64];
	(void)state;

	kat_entry1(&e);
	assert_int_equal(audit_entry_link(NULL, &e, ZERO), 0);
	int n = audit_entry_format_json(&e, line, sizeof line);
	assert_true(n > 0);

	/* Each edit is applied to the valid line: {from, to}. */
	static const char *edits[][2] = {
		{ "\"seq\":1", "\"seq\":0" },
		{ "\"seq\":1", "\"seq\":\"1\"" },
		{ "\"seq\":1", "\"seq\":1.0" },
		{ "\"seq\":1,", "" },
		{ "\"seq\":1", "\"seq\":1,\"extra\":1" },
		{ "\"seq\":1", "\"seq\":1,\"seq\":1" },
		{ "\"actor\":\"marketing-app\"", "\"actor\":null" },
		{ "\"actor\":\"marketing-app\"", "\"actor\":\"a\\u0000b\"" },
		{ "\"actor\":\"marketing-app\"", "\"actor\":\"a\\nb\"" },
		{ "\"decision\":\"allow\"", "\"decision\":\"yes\"" },
		{ "\"detail\":{", "\"detail\":{\"deep\":{\"x\":1}," },
		{ "\"detail\":{\"count\":3,\"list\":\"ab12\"}", "\"detail\":\"text\"" },
		{ "\"detail\":{\"count\":3", "\"detail\":{\"count\":3.5" },
		{ "\"time\":\"2024-05-01T12:34:56.123456Z\"", "\"time\":1714566896123456" },
		{ "\"time\":\"2024-05-01T12:34:56.123456Z\"", "\"time\":\"2024-05-01T12:34:56Z\"" },
		{ "\"prev_hash\":\"00", "\"prev_hash\":\"0" },
		{ "\"prev_hash\":\"00", "\"prev_hash\":\"AA" },
		{ "\"hash\":\"", "\"hash\":\"g" },
	};
	for (size_t i = 0; i < sizeof edits / sizeof *edits; i++) {
		const char *at = strstr(line, edits[i][0]);
		assert_non_null(at);
		size_t pre = (size_t)(at - line);
		snprintf(bad, sizeof bad, "%.*s%s%s", (int)pre, line, edits[i][1], at + strlen(edits[i][0]));
		if (audit_entry_from_json(&back, bad, strlen(bad)) == 0)
			fail_msg("accepted edit %zu: %s", i, bad);
	}
	static const char *junk[] = { "", "[]", "null", "{}", "{\"seq\":1}", "{", "\xff" };
	for (size_t i = 0; i < sizeof junk / sizeof *junk; i++)
		assert_int_not_equal(audit_entry_from_json(&back, junk[i], strlen(junk[i])), 0);
	snprintf(bad, sizeof bad, "%s x", line);
	assert_int_not_equal(audit_entry_from_json(&back, bad, strlen(bad)), 0);

	/* Over-long strings and lines are ERR_TOOBIG. */
	char *huge = malloc(LIMIT_LINE_BYTES + 16);
	assert_non_null(huge);
	memset(huge, ' ', LIMIT_LINE_BYTES + 8);
	huge[0] = '{';
	huge[LIMIT_LINE_BYTES + 7] = '}';
	assert_int_equal(audit_entry_from_json(&back, huge, LIMIT_LINE_BYTES + 8), ERR_TOOBIG);
	free(huge);
	char longactor[AUDIT_ACTOR_MAX + 2];
	memset(longactor, 'a', sizeof longactor - 1);
	longactor[sizeof longactor - 1] = '\0';
	const char *at = strstr(line, "marketing-app");
	snprintf(bad, sizeof bad, "%.*s%s%s", (int)(at - line), line, longactor,
		 at + strlen("marketing-app"));
	assert_int_equal(audit_entry_from_json(&back, bad, strlen(bad)), ERR_TOOBIG);
}

static void test_csv_quoting_and_formula_guard(void **state)
{
	struct audit_entry e;
	char row[AUDIT_CSV_MAX];
	(void)state;

	assert_true(audit_csv_header(row, sizeof row) > 0);
	assert_string_equal(row, "seq,time,actor,role,action,record_id,purpose,channel,decision,"
				 "reason,fields,request_id,client,detail,prev_hash,hash\r\n");

	kat_entry1(&e);
	strcpy(e.actor, "=HYPERLINK(\"http://x\")");
	strcpy(e.role, "+1");
	strcpy(e.action, "-2");
	strcpy(e.purpose, "@SUM(A1)");
	strcpy(e.reason, "a, b");
	strcpy(e.fields, "email,phone");
	strcpy(e.request_id, "not=formula");
	assert_int_equal(audit_entry_link(NULL, &e, ZERO), 0);
	int n = audit_entry_format_csv(&e, row, sizeof row);
	assert_true(n > 0);
	assert_non_null(strstr(row, "1,2024-05-01T12:34:56.123456Z,\"'=HYPERLINK(\"\"http://x\"\")\","
				    "'+1,'-2,AAECAwQFBgcICQoLDA0ODw,'@SUM(A1),email,allow,\"a, b\","
				    "\"email,phone\",not=formula,192.0.2.1,"
				    "\"{\"\"count\"\":3,\"\"list\"\":\"\"ab12\"\"}\","));
	char hex[2 * AUDIT_HASH_BYTES + 1];
	audit_hex_encode(e.hash, AUDIT_HASH_BYTES, hex);
	assert_non_null(strstr(row, hex));
	assert_int_equal(row[n - 2], '\r');
	assert_int_equal(row[n - 1], '\n');
	assert_int_equal(audit_entry_format_csv(&e, row, 30), ERR_TOOBIG);
}

/* A temporary directory for key files, removed by the test that made it. */
static void temp_dir(char *out, size_t cap)
{
	snprintf(out, cap, "/tmp/test_audit.XXXXXX");
	assert_non_null(mkdtemp(out));
}

static void test_key_files(void **state)
{
	char dir[64], key[128], pub[128], pem[AUDIT_PEM_MAX];
	struct audit_signer *s = NULL;
	struct audit_pubkey *k = NULL, *k2 = NULL;
	uint8_t id1[AUDIT_KEY_ID_BYTES], id2[AUDIT_KEY_ID_BYTES];
	struct stat st;
	(void)state;

	temp_dir(dir, sizeof dir);
	snprintf(key, sizeof key, "%s/audit.key", dir);
	snprintf(pub, sizeof pub, "%s/audit.pub", dir);

	assert_int_equal(audit_signer_load(&s, key), ERR_NOTFOUND);
	assert_null(s);
	assert_int_equal(audit_signer_generate_file(key), 0);
	assert_int_equal(stat(key, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(audit_signer_generate_file(key), ERR_CONFLICT);

	assert_int_equal(chmod(key, 0640), 0);
	assert_int_equal(audit_signer_load(&s, key), ERR_DENIED);
	assert_non_null(strstr(err_msg(), "chmod 600"));
	assert_int_equal(chmod(key, 0604), 0);
	assert_int_equal(audit_signer_load(&s, key), ERR_DENIED);
	assert_int_equal(chmod(key, 0600), 0);
	assert_int_equal(audit_signer_load(&s, key), 0);
	assert_non_null(s);

	int n = audit_signer_public_pem(s, pem, sizeof pem);
	assert_true(n > 0);
	assert_non_null(strstr(pem, "-----BEGIN PUBLIC KEY-----"));
	assert_int_equal(audit_signer_public_pem(s, pem, 10), ERR_TOOBIG);
	assert_int_equal(audit_signer_save_public(s, pub), 0);
	assert_int_equal(audit_pubkey_load(&k, pub), 0);
	assert_int_equal(audit_pubkey_from_signer(&k2, s), 0);
	audit_signer_key_id(s, id1);
	audit_pubkey_key_id(k, id2);
	assert_memory_equal(id1, id2, sizeof id1);
	audit_pubkey_key_id(k2, id2);
	assert_memory_equal(id1, id2, sizeof id1);

	/* A public key file is not a private key, and garbage is not a key. */
	struct audit_signer *s2 = NULL;
	assert_int_equal(chmod(pub, 0600), 0);
	assert_int_equal(audit_signer_load(&s2, pub), ERR_INVALID);
	audit_pubkey_free(k2);
	assert_int_equal(audit_pubkey_from_pem(&k2, "junk", 4), ERR_INVALID);
	assert_null(k2);
	assert_int_equal(audit_signer_load(&s2, dir), ERR_INVALID);

	audit_signer_free(s);
	audit_signer_free(NULL);
	audit_pubkey_free(k);
	audit_pubkey_free(NULL);
	unlink(key);
	unlink(pub);
	rmdir(dir);
}

/* One signer for the checkpoint and verifier tests, made once per group. */
struct fixture {
	char dir[64];
	char key[128];
	struct audit_signer *signer;
	struct audit_pubkey *pub;
};

static int setup_signer(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	if (f == NULL)
		return -1;
	temp_dir(f->dir, sizeof f->dir);
	snprintf(f->key, sizeof f->key, "%s/audit.key", f->dir);
	if (audit_signer_generate_file(f->key) != 0 || audit_signer_load(&f->signer, f->key) != 0 ||
	    audit_pubkey_from_signer(&f->pub, f->signer) != 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown_signer(void **state)
{
	struct fixture *f = *state;
	audit_signer_free(f->signer);
	audit_pubkey_free(f->pub);
	unlink(f->key);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void test_checkpoint_sign_verify(void **state)
{
	struct fixture *f = *state;
	struct audit_checkpoint cp = { 0 }, back;
	char json[AUDIT_CHECKPOINT_JSON_MAX];

	cp.size = 42;
	memset(cp.root, 0xab, sizeof cp.root);
	cp.time_us = INT64_C(1714566896123456);
	assert_int_equal(audit_checkpoint_sign(f->signer, &cp), 0);
	assert_int_equal(audit_checkpoint_verify(f->pub, &cp), 0);

	int n = audit_checkpoint_format_json(&cp, json, sizeof json);
	assert_true(n > 0);
	assert_int_equal(audit_checkpoint_from_json(&back, json, (size_t)n), 0);
	assert_memory_equal(&cp, &back, sizeof cp);
	assert_int_equal(audit_checkpoint_verify(f->pub, &back), 0);
	assert_int_not_equal(audit_checkpoint_from_json(&back, "{\"size\":1}", 10), 0);

	/* Any flipped bit in the signature or in a signed field breaks it. */
	for (size_t bit = 0; bit < 8 * AUDIT_SIG_BYTES; bit += 37) {
		back = cp;
		back.sig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		assert_int_equal(audit_checkpoint_verify(f->pub, &back), ERR_CRYPTO);
	}
	back = cp;
	back.root[31] ^= 1;
	assert_int_equal(audit_checkpoint_verify(f->pub, &back), ERR_CRYPTO);
	back = cp;
	back.size++;
	assert_int_equal(audit_checkpoint_verify(f->pub, &back), ERR_CRYPTO);
	back = cp;
	back.time_us++;
	assert_int_equal(audit_checkpoint_verify(f->pub, &back), ERR_CRYPTO);
	back = cp;
	back.key_id[0] ^= 1;
	assert_int_equal(audit_checkpoint_verify(f->pub, &back), ERR_CRYPTO);
	back = cp;
	back.size = 0;
	assert_int_equal(audit_checkpoint_verify(f->pub, &back), ERR_INVALID);
}

/* The verifier tests build a chain of LOG entries, then read it back through
 * an iterator over an index list that each test can edit. LOG spans several
 * of the verifier's reading blocks (VERIFY_BLOCK_ENTRIES). */
#define LOG 400

struct log {
	struct audit_entry *e; /* LOG + 1 slots; slot LOG is for a forged entry */
	int order[LOG + 1];
	int n;
	int fail_at; /* return an error instead of this position (1-based), or 0 */
	struct audit_checkpoint cps[2];
};

static void log_relink(struct log *l, int from)
{
	for (int i = from; i < l->n; i++) {
		struct audit_entry *e = &l->e[l->order[i]];
		const uint8_t *prev = i == 0 ? ZERO : l->e[l->order[i - 1]].hash;
		assert_int_equal(audit_entry_link(NULL, e, prev), 0);
	}
}

static struct log *log_new(struct fixture *f)
{
	struct log *l = calloc(1, sizeof *l);
	assert_non_null(l);
	l->e = calloc(LOG + 1, sizeof *l->e);
	assert_non_null(l->e);
	for (int i = 0; i < LOG; i++) {
		kat_entry1(&l->e[i]);
		l->e[i].seq = i + 1;
		l->e[i].time_us += i * 1000;
		snprintf(l->e[i].request_id, sizeof l->e[i].request_id, "req-%04d", i + 1);
		l->order[i] = i;
	}
	l->n = LOG;
	log_relink(l, 0);
	l->cps[0].size = 20;
	memcpy(l->cps[0].root, l->e[19].hash, AUDIT_HASH_BYTES);
	l->cps[0].time_us = l->e[19].time_us;
	l->cps[1].size = LOG;
	memcpy(l->cps[1].root, l->e[LOG - 1].hash, AUDIT_HASH_BYTES);
	l->cps[1].time_us = l->e[LOG - 1].time_us;
	assert_int_equal(audit_checkpoint_sign(f->signer, &l->cps[0]), 0);
	assert_int_equal(audit_checkpoint_sign(f->signer, &l->cps[1]), 0);
	return l;
}

static void log_free(struct log *l)
{
	free(l->e);
	free(l);
}

struct cursor {
	struct log *l;
	int pos;
};

static int log_next(void *ctx, struct audit_entry *out)
{
	struct cursor *c = ctx;
	if (c->pos >= c->l->n)
		return 0;
	if (c->l->fail_at == c->pos + 1)
		return err_set(ERR_IO, "disk I/O error");
	*out = c->l->e[c->l->order[c->pos++]];
	return 1;
}

static void run_verify(struct fixture *f, struct log *l, struct audit_verify_result *res)
{
	struct cursor c = { l, 0 };
	const struct audit_pubkey *keys[1] = { f->pub };
	assert_int_equal(audit_verify(log_next, &c, l->cps, 2, keys, 1, res), 0);
}

static void expect_fault(struct fixture *f, struct log *l, enum audit_fault fault, int64_t seq)
{
	struct audit_verify_result res;
	run_verify(f, l, &res);
	if (res.ok || res.fault != fault || res.first_bad_seq != seq)
		fail_msg("expected %s at %lld, got %s at %lld: %s", audit_fault_name(fault), (long long)seq,
			 res.ok ? "ok" : audit_fault_name(res.fault), (long long)res.first_bad_seq,
			 res.reason);
	print_message("    %-13s first bad %-3lld %s\n", audit_fault_name(res.fault),
		      (long long)res.first_bad_seq, res.reason);
}

static void test_verify_intact(void **state)
{
	struct fixture *f = *state;
	struct log *l = log_new(f);
	struct audit_verify_result res;
	struct cursor c = { l, 0 };

	run_verify(f, l, &res);
	assert_true(res.ok);
	assert_string_equal(res.reason, "ok");
	assert_int_equal(res.entries, LOG);
	assert_int_equal(res.checkpoints, 2);
	assert_int_equal(res.anchored, LOG);
	assert_int_equal(res.first_bad_seq, 0);
	assert_memory_equal(res.head, l->e[LOG - 1].hash, AUDIT_HASH_BYTES);

	/* Without checkpoints the chain still verifies, unanchored. */
	assert_int_equal(audit_verify(log_next, &c, NULL, 0, NULL, 0, &res), 0);
	assert_true(res.ok);
	assert_int_equal(res.anchored, 0);

	/* Checkpoints may come in any order. */
	struct audit_checkpoint swapped[2] = { l->cps[1], l->cps[0] };
	const struct audit_pubkey *keys[1] = { f->pub };
	c.pos = 0;
	assert_int_equal(audit_verify(log_next, &c, swapped, 2, keys, 1, &res), 0);
	assert_true(res.ok);
	assert_int_equal(res.checkpoints, 2);

	/* An empty log with no checkpoints is trivially consistent. */
	l->n = 0;
	c.pos = 0;
	assert_int_equal(audit_verify(log_next, &c, NULL, 0, NULL, 0, &res), 0);
	assert_true(res.ok);
	assert_int_equal(res.entries, 0);
	log_free(l);
}

/* Checkpoints pulled one at a time, in size order (the database's). */
struct cp_stream {
	const struct audit_checkpoint *v;
	int n, pos;
};

static int cp_next(void *ctx, struct audit_checkpoint *out)
{
	struct cp_stream *c = ctx;
	if (c->pos >= c->n)
		return 0;
	*out = c->v[c->pos++];
	return 1;
}

static void test_verify_run_streams_checkpoints_and_resumes(void **state)
{
	struct fixture *f = *state;
	struct log *l = log_new(f);
	struct audit_verify_result res;
	struct audit_verify_input in;
	const struct audit_pubkey *keys[1] = { f->pub };
	struct cursor c = { l, 0 };
	struct cp_stream cs = { l->cps, 2, 0 };

	/* The same verdict with the checkpoints streamed instead of given. */
	memset(&in, 0, sizeof in);
	in.next = log_next;
	in.ctx = &c;
	in.next_cp = cp_next;
	in.cp_ctx = &cs;
	in.keys = keys;
	in.nkeys = 1;
	assert_int_equal(audit_verify_run(&in, &res), 0);
	assert_true(res.ok);
	assert_int_equal(res.checkpoints, 2);
	assert_int_equal(res.anchored, LOG);

	/* Resumed after the checkpoint at 20: entries 21.. link to its root. */
	c.pos = 20;
	cs.pos = 0;
	in.start_seq = 20;
	memcpy(in.start_hash, l->cps[0].root, AUDIT_HASH_BYTES);
	assert_int_equal(audit_verify_run(&in, &res), 0);
	assert_true(res.ok);
	assert_int_equal(res.entries, LOG);
	assert_int_equal(res.anchored, LOG);

	/* A start hash that is not the checkpoint's root is a rewrite. */
	c.pos = 20;
	cs.pos = 0;
	in.start_hash[0] ^= 1;
	assert_int_equal(audit_verify_run(&in, &res), 0);
	assert_false(res.ok);
	assert_int_equal(res.fault, AUDIT_FAULT_REWRITTEN);

	/* A streamed checkpoint beyond the end: truncated. */
	c.pos = 0;
	cs.pos = 0;
	in.start_seq = 0;
	memset(in.start_hash, 0, sizeof in.start_hash);
	l->n = 25;
	assert_int_equal(audit_verify_run(&in, &res), 0);
	assert_false(res.ok);
	assert_int_equal(res.fault, AUDIT_FAULT_TRUNCATED);

	/* A streamed checkpoint with a bad signature is caught when reached. */
	l->n = LOG;
	struct audit_checkpoint bad[2] = { l->cps[0], l->cps[1] };
	bad[1].sig[0] ^= 1;
	cs.v = bad;
	c.pos = 0;
	cs.pos = 0;
	assert_int_equal(audit_verify_run(&in, &res), 0);
	assert_false(res.ok);
	assert_int_equal(res.fault, AUDIT_FAULT_SIGNATURE);
	log_free(l);
}

static void test_verify_edited_entry(void **state)
{
	struct log *l = log_new(*state);
	strcpy(l->e[29].purpose, "marketing"); /* someone rewrites the purpose of entry 30 */
	expect_fault(*state, l, AUDIT_FAULT_EDITED, 30);
	log_free(l);
}

static void test_verify_deleted_entry(void **state)
{
	struct log *l = log_new(*state);
	memmove(&l->order[29], &l->order[30], (size_t)(LOG - 30) * sizeof l->order[0]);
	l->n--; /* DELETE FROM audit WHERE seq = 30 */
	expect_fault(*state, l, AUDIT_FAULT_DELETED, 30);
	log_free(l);

	/* Deleting several, and renumbering the rest to close the gap. */
	l = log_new(*state);
	memmove(&l->order[29], &l->order[33], (size_t)(LOG - 33) * sizeof l->order[0]);
	l->n -= 4;
	expect_fault(*state, l, AUDIT_FAULT_DELETED, 30);
	for (int i = 29; i < l->n; i++)
		l->e[l->order[i]].seq = i + 1;
	expect_fault(*state, l, AUDIT_FAULT_LINK, 30);
	log_free(l);
}

static void test_verify_inserted_entry(void **state)
{
	struct log *l = log_new(*state);

	/* A forged entry 31, correctly linked to 30, with the rest renumbered:
	 * the old 31 (now 32) no longer links. */
	l->e[LOG] = l->e[30];
	strcpy(l->e[LOG].decision, "allow");
	strcpy(l->e[LOG].reason, "forged");
	memmove(&l->order[31], &l->order[30], (size_t)(LOG - 30) * sizeof l->order[0]);
	l->order[30] = LOG;
	l->n++;
	for (int i = 30; i < l->n; i++)
		l->e[l->order[i]].seq = i + 1;
	assert_int_equal(audit_entry_link(NULL, &l->e[LOG], l->e[29].hash), 0);
	expect_fault(*state, l, AUDIT_FAULT_LINK, 32);
	log_free(l);

	/* The same forged entry slipped in without renumbering. */
	l = log_new(*state);
	l->e[LOG] = l->e[30];
	strcpy(l->e[LOG].reason, "forged");
	assert_int_equal(audit_entry_link(NULL, &l->e[LOG], l->e[29].hash), 0);
	memmove(&l->order[31], &l->order[30], (size_t)(LOG - 30) * sizeof l->order[0]);
	l->order[30] = LOG;
	l->n++;
	expect_fault(*state, l, AUDIT_FAULT_REORDERED, 32);
	log_free(l);
}

static void test_verify_swapped_entries(void **state)
{
	struct log *l = log_new(*state);
	int t = l->order[29];

	/* Two exported lines swapped. */
	l->order[29] = l->order[30];
	l->order[30] = t;
	expect_fault(*state, l, AUDIT_FAULT_REORDERED, 30);
	log_free(l);

	/* Two rows' contents swapped while their seq values stay in place, as an
	 * UPDATE would do it. */
	l = log_new(*state);
	struct audit_entry tmp = l->e[29];
	l->e[29] = l->e[30];
	l->e[30] = tmp;
	l->e[29].seq = 30;
	l->e[30].seq = 31;
	expect_fault(*state, l, AUDIT_FAULT_LINK, 30);
	log_free(l);
}

static void test_verify_truncated_tail(void **state)
{
	struct log *l = log_new(*state);
	l->n = LOG - 5; /* the last five entries are cut off */
	expect_fault(*state, l, AUDIT_FAULT_TRUNCATED, LOG - 4);
	log_free(l);
}

static void test_verify_consistent_rewrite(void **state)
{
	struct log *l = log_new(*state);

	/* Entry 10 is edited and every hash from there on recomputed: the chain
	 * is consistent, but no longer matches the checkpoint at 20. */
	strcpy(l->e[9].fields, "email,income,health");
	log_relink(l, 9);
	expect_fault(*state, l, AUDIT_FAULT_REWRITTEN, 20);
	log_free(l);

	/* A rewrite after the first checkpoint is caught by the second. */
	l = log_new(*state);
	strcpy(l->e[44].decision, "deny");
	log_relink(l, 44);
	expect_fault(*state, l, AUDIT_FAULT_REWRITTEN, LOG);
	log_free(l);
}

static void test_verify_bad_checkpoint(void **state)
{
	struct fixture *f = *state;
	struct log *l = log_new(f);
	struct audit_verify_result res;
	struct cursor c = { l, 0 };

	l->cps[1].sig[17] ^= 0x04;
	expect_fault(f, l, AUDIT_FAULT_SIGNATURE, 0);
	log_free(l);

	/* A checkpoint re-signed by some other key is not accepted. */
	l = log_new(f);
	char dir[64], key[128];
	struct audit_signer *other = NULL;
	temp_dir(dir, sizeof dir);
	snprintf(key, sizeof key, "%s/other.key", dir);
	assert_int_equal(audit_signer_generate_file(key), 0);
	assert_int_equal(audit_signer_load(&other, key), 0);
	assert_int_equal(audit_checkpoint_sign(other, &l->cps[0]), 0);
	expect_fault(f, l, AUDIT_FAULT_SIGNATURE, 0);

	/* No keys at all: checkpoints cannot be trusted. */
	c.l = l;
	assert_int_equal(audit_verify(log_next, &c, l->cps, 2, NULL, 0, &res), 0);
	assert_false(res.ok);
	assert_int_equal(res.fault, AUDIT_FAULT_SIGNATURE);
	audit_signer_free(other);
	unlink(key);
	rmdir(dir);
	log_free(l);
}

/* The reader thread hands entries over in blocks: a fault on either side of
 * a block's edge, a deletion diagnosed by reading on into later blocks, and
 * a read error in a later block are found as within one block. */
static void test_verify_faults_at_block_edges(void **state)
{
	const int edge = VERIFY_BLOCK_ENTRIES;
	struct log *l = log_new(*state);
	int t = l->order[edge - 1];
	l->order[edge - 1] = l->order[edge];
	l->order[edge] = t;
	expect_fault(*state, l, AUDIT_FAULT_REORDERED, edge);
	log_free(l);

	l = log_new(*state);
	memmove(&l->order[edge], &l->order[edge + 1], (size_t)(LOG - edge - 1) * sizeof l->order[0]);
	l->n = LOG - 1;
	expect_fault(*state, l, AUDIT_FAULT_DELETED, edge + 1);
	log_free(l);

	/* Entry edge + 1 moved to the end: found by reading on, blocks later. */
	l = log_new(*state);
	t = l->order[edge];
	memmove(&l->order[edge], &l->order[edge + 1], (size_t)(LOG - edge - 1) * sizeof l->order[0]);
	l->order[LOG - 1] = t;
	expect_fault(*state, l, AUDIT_FAULT_REORDERED, edge + 1);
	log_free(l);

	struct audit_verify_result res;
	l = log_new(*state);
	l->fail_at = 2 * edge + 5;
	run_verify(*state, l, &res);
	assert_false(res.ok);
	assert_int_equal(res.fault, AUDIT_FAULT_READ);
	assert_int_equal(res.entries, 2 * edge + 4);
	assert_non_null(strstr(res.reason, "disk I/O error"));
	log_free(l);
}

static void test_verify_read_error(void **state)
{
	struct log *l = log_new(*state);
	struct audit_verify_result res;
	l->fail_at = 12;
	run_verify(*state, l, &res);
	assert_false(res.ok);
	assert_int_equal(res.fault, AUDIT_FAULT_READ);
	assert_int_equal(res.entries, 11);
	assert_non_null(strstr(res.reason, "disk I/O error"));
	log_free(l);
}

/* Throughput: entries are generated on the fly from precomputed hashes, the
 * way a store cursor copies columns into the caller's entry. */
struct bench {
	struct audit_entry tmpl;
	uint8_t (*hashes)[AUDIT_HASH_BYTES];
	int64_t n, pos;
};

static int bench_next(void *ctx, struct audit_entry *out)
{
	struct bench *b = ctx;
	if (b->pos >= b->n)
		return 0;
	out->seq = b->pos + 1;
	out->time_us = b->tmpl.time_us + b->pos;
	strcpy(out->actor, b->tmpl.actor);
	strcpy(out->role, b->tmpl.role);
	strcpy(out->action, b->tmpl.action);
	strcpy(out->record_id, b->tmpl.record_id);
	strcpy(out->purpose, b->tmpl.purpose);
	strcpy(out->channel, b->tmpl.channel);
	strcpy(out->decision, b->tmpl.decision);
	strcpy(out->reason, b->tmpl.reason);
	strcpy(out->fields, b->tmpl.fields);
	strcpy(out->request_id, b->tmpl.request_id);
	strcpy(out->client, b->tmpl.client);
	strcpy(out->detail, b->tmpl.detail);
	memcpy(out->prev_hash, b->pos == 0 ? ZERO : b->hashes[b->pos - 1], AUDIT_HASH_BYTES);
	memcpy(out->hash, b->hashes[b->pos], AUDIT_HASH_BYTES);
	b->pos++;
	return 1;
}

static void test_verify_throughput(void **state)
{
	struct bench b;
	struct audit_entry e;
	struct audit_hasher *h = NULL;
	struct audit_verify_result res;
	struct timespec t0, t1;
	(void)state;

	const char *env = getenv("AUDIT_BENCH_ENTRIES");
	b.n = env != NULL ? atoll(env) : 200000;
	b.pos = 0;
	kat_entry1(&b.tmpl);
	strcpy(b.tmpl.fields, "email,phone,name");
	b.hashes = malloc((size_t)b.n * AUDIT_HASH_BYTES);
	assert_non_null(b.hashes);
	assert_int_equal(audit_hasher_new(&h), 0);
	memset(&e, 0, sizeof e);
	for (int64_t i = 0; i < b.n; i++) {
		bench_next(&b, &e);
		assert_int_equal(audit_entry_link(h, &e, i == 0 ? ZERO : b.hashes[i - 1]), 0);
		memcpy(b.hashes[i], e.hash, AUDIT_HASH_BYTES);
	}
	b.pos = 0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(audit_verify(bench_next, &b, NULL, 0, NULL, 0, &res), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true(res.ok);
	assert_int_equal(res.entries, b.n);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	print_message("    verified %lld entries in %.3f s: %.0f entries/s (not asserted)\n", (long long)b.n,
		      secs, (double)b.n / secs);
	audit_hasher_free(h);
	free(b.hashes);
}

/* A value longer than its field is reported and left out, never cut. */
static void test_entry_fill_never_cuts(void **state)
{
	(void)state;
	struct audit_entry e;
	char long_id[AUDIT_RECORD_ID_MAX + 2];
	memset(long_id, 'a', sizeof long_id - 1);
	long_id[sizeof long_id - 1] = '\0';
	memset(&e, 0, sizeof e);
	assert_int_equal(audit_entry_fill(&e, "alice", "admin", "contacts.read", "id1", "service", "email",
					  "allow", "ok"),
			 0);
	assert_string_equal(e.record_id, "id1");
	assert_string_equal(e.decision, "allow");
	assert_int_equal(
		audit_entry_fill(&e, "alice", "admin", "contacts.read", long_id, "service", "", NULL, NULL),
		ERR_TOOBIG);
	assert_string_equal(e.record_id, "");
	assert_non_null(strstr(err_msg(), "record id is longer than"));
	assert_string_equal(e.purpose, "service"); /* the rest is still filled */
	assert_string_equal(e.decision, "none");
	long_id[AUDIT_RECORD_ID_MAX] = '\0'; /* exactly the bound fits */
	assert_int_equal(audit_entry_fill(&e, "", "", "a", long_id, "", "", "deny", ""), 0);
	assert_int_equal(strlen(e.record_id), AUDIT_RECORD_ID_MAX);
}

/* An entry's detail is canonical JSON (sorted keys, compact), and one that
 * does not fit is refused and left empty, never cut. */
static void test_detail_is_canonical_and_never_cut(void **state)
{
	(void)state;
	struct audit_entry e;
	memset(&e, 0, sizeof e);
	assert_int_equal(
		audit_entry_set_detail(&e, json_pack("{s:i, s:s}", "key_version", 2, "contacts", "x\t")), 0);
	assert_string_equal(e.detail, "{\"contacts\":\"x\\t\",\"key_version\":2}");
	char big[sizeof e.detail + 1];
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	assert_int_equal(audit_entry_set_detail(&e, json_pack("{s:s}", "k", big)), ERR_TOOBIG);
	assert_string_equal(e.detail, "");
	assert_int_equal(audit_entry_set_detail(&e, NULL), ERR_NOMEM);
}

int main(void)
{
	const struct CMUnitTest pure[] = {
		cmocka_unit_test(test_encoding_known_answer),
		cmocka_unit_test(test_entry_check_rejects_bad_shapes),
		cmocka_unit_test(test_time_format_and_parse),
		cmocka_unit_test(test_json_round_trip),
		cmocka_unit_test(test_json_parse_is_strict),
		cmocka_unit_test(test_csv_quoting_and_formula_guard),
		cmocka_unit_test(test_key_files),
		cmocka_unit_test(test_verify_throughput),
		cmocka_unit_test(test_entry_fill_never_cuts),
	};
	const struct CMUnitTest signed_log[] = {
		cmocka_unit_test(test_checkpoint_sign_verify),
		cmocka_unit_test(test_verify_intact),
		cmocka_unit_test(test_verify_run_streams_checkpoints_and_resumes),
		cmocka_unit_test(test_verify_edited_entry),
		cmocka_unit_test(test_verify_deleted_entry),
		cmocka_unit_test(test_verify_inserted_entry),
		cmocka_unit_test(test_verify_swapped_entries),
		cmocka_unit_test(test_verify_truncated_tail),
		cmocka_unit_test(test_verify_consistent_rewrite),
		cmocka_unit_test(test_verify_bad_checkpoint),
		cmocka_unit_test(test_verify_read_error),
		cmocka_unit_test(test_detail_is_canonical_and_never_cut),
		cmocka_unit_test(test_verify_faults_at_block_edges),
	};
	int failed = cmocka_run_group_tests_name("audit", pure, NULL, NULL);
	failed += cmocka_run_group_tests_name("audit_signed_log", signed_log, setup_signer, teardown_signer);
	return failed == 0 ? 0 : 1;
}
