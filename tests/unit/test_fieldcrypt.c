/*
 * test_fieldcrypt: known answers computed independently (Python's
 * `cryptography`: AESGCM, HKDF-SHA256, HMAC-SHA256), and the binding of each
 * ciphertext to its record, field, table and key version.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/crypto/fieldcrypt.h"

static const char kat_id[] = "AAAAAAAAAAAAAAAAAAAAAA";
/* AESGCM(key=00..1f).encrypt(nonce=64..6f, b'"kat@example.org"',
 * aad=b"consentd:1|contact|AAAAAAAAAAAAAAAAAAAAAA|email|1"), with our 0x01|nonce prefix. */
static const char kat_sealed[] =
	"016465666768696a6b6c6d6e6f6a70bf12398c2eff5312338df40a189a60c9b6378977d700c5f8883a3deb99a9cc";

static void kat_key(uint8_t key[32])
{
	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)i;
}

static void test_open_known_answer(void **state)
{
	(void)state;
	uint8_t key[32], sealed[64], out[64];
	size_t n = strlen(kat_sealed) / 2, outlen = 0;
	kat_key(key);
	assert_int_equal(hex_decode(kat_sealed, sealed, n), 0);
	assert_int_equal(fieldcrypt_open(key, "contact", kat_id, "email", sealed, n, out, &outlen), 0);
	assert_int_equal(outlen, 17);
	assert_memory_equal(out, "\"kat@example.org\"", 17);
}

static void test_ciphertext_is_bound_to_record_field_and_table(void **state)
{
	(void)state;
	uint8_t key[32], sealed[64], out[64];
	size_t n = strlen(kat_sealed) / 2, outlen;
	kat_key(key);
	hex_decode(kat_sealed, sealed, n);
	assert_int_equal(
		fieldcrypt_open(key, "contact", "BAAAAAAAAAAAAAAAAAAAAA", "email", sealed, n, out, &outlen),
		ERR_CRYPTO);
	assert_int_equal(fieldcrypt_open(key, "contact", kat_id, "phone", sealed, n, out, &outlen),
			 ERR_CRYPTO);
	assert_int_equal(fieldcrypt_open(key, "consent", kat_id, "email", sealed, n, out, &outlen),
			 ERR_CRYPTO);
	key[0] ^= 1;
	assert_int_equal(fieldcrypt_open(key, "contact", kat_id, "email", sealed, n, out, &outlen),
			 ERR_CRYPTO);
}

static void test_every_flipped_byte_fails(void **state)
{
	(void)state;
	uint8_t key[32], sealed[64], out[64];
	size_t n = strlen(kat_sealed) / 2, outlen;
	kat_key(key);
	hex_decode(kat_sealed, sealed, n);
	for (size_t i = 0; i < n; i++) {
		sealed[i] ^= 0x20;
		assert_int_equal(fieldcrypt_open(key, "contact", kat_id, "email", sealed, n, out, &outlen),
				 ERR_CRYPTO);
		sealed[i] ^= 0x20;
	}
	assert_int_equal(fieldcrypt_open(key, "contact", kat_id, "email", sealed, n - 1, out, &outlen),
			 ERR_CRYPTO);
	assert_int_equal(fieldcrypt_open(key, "contact", kat_id, "email", sealed, 5, out, &outlen),
			 ERR_CRYPTO);
}

static void test_seal_round_trip_uses_fresh_nonces(void **state)
{
	(void)state;
	uint8_t key[32], a[64], b[64], out[64];
	size_t la, lb, lo;
	fieldcrypt_dek_new(key);
	assert_int_equal(fieldcrypt_seal(key, "contact", kat_id, "name", "Ada", 3, a, &la), 0);
	assert_int_equal(fieldcrypt_seal(key, "contact", kat_id, "name", "Ada", 3, b, &lb), 0);
	assert_int_equal(la, 3 + FC_SEAL_OVERHEAD);
	assert_memory_not_equal(a, b, la);
	assert_int_equal(fieldcrypt_open(key, "contact", kat_id, "name", b, lb, out, &lo), 0);
	assert_memory_equal(out, "Ada", 3);
}

/* The contexts are kept per thread and re-keyed for each value
 * (fieldcrypt.c): a failed open, or a seal under another key, must leave
 * nothing behind that changes the next result, in this thread or another. */
static void *seal_and_open_kat(void *arg)
{
	uint8_t key[32], other[32], sealed[64], out[64], bad[64];
	size_t n = strlen(kat_sealed) / 2, outlen = 0, ln = 0;
	(void)arg;
	kat_key(key);
	if (fieldcrypt_dek_new(other) != 0 || hex_decode(kat_sealed, sealed, n) != 0)
		return (void *)1;
	memcpy(bad, sealed, n);
	bad[n - 1] ^= 1;
	for (int i = 0; i < 3; i++) {
		if (fieldcrypt_open(key, "contact", kat_id, "email", bad, n, out, &outlen) != ERR_CRYPTO ||
		    fieldcrypt_seal(other, "contact", kat_id, "name", "Ada", 3, out, &ln) != 0 ||
		    fieldcrypt_open(other, "contact", kat_id, "name", out, ln, out, &ln) != 0 ||
		    fieldcrypt_open(key, "contact", kat_id, "email", sealed, n, out, &outlen) != 0 ||
		    outlen != 17 || memcmp(out, "\"kat@example.org\"", 17) != 0)
			return (void *)1;
	}
	return NULL;
}

static void test_contexts_reused_per_thread_keep_every_answer(void **state)
{
	(void)state;
	pthread_t th;
	void *ret = (void *)1;
	assert_null(seal_and_open_kat(NULL));
	assert_int_equal(pthread_create(&th, NULL, seal_and_open_kat, NULL), 0);
	assert_int_equal(pthread_join(th, &ret), 0);
	assert_null(ret);
}

/* Random bytes come from a pool per thread (crypto_random): draws across
 * many refills never repeat, and a forked child never gets the bytes its
 * parent will get next. */
static void test_random_draws_never_repeat_across_refills_and_forks(void **state)
{
	(void)state;
	enum { DRAWS = 2000 }; /* 2000 x 12 bytes: several refills of the pool */
	static uint8_t seen[DRAWS][12];
	int fds[2];
	for (int i = 0; i < DRAWS; i++)
		assert_int_equal(crypto_random(seen[i], 12), 0);
	for (int i = 0; i < DRAWS; i++)
		for (int j = i + 1; j < DRAWS; j++)
			assert_memory_not_equal(seen[i], seen[j], 12);
	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		uint8_t c[12];
		int ok = crypto_random(c, sizeof c) == 0 && write(fds[1], c, sizeof c) == sizeof c;
		_exit(ok ? 0 : 1);
	}
	uint8_t child[12], mine[12];
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(status, 0);
	assert_int_equal(read(fds[0], child, sizeof child), (ssize_t)sizeof child);
	assert_int_equal(crypto_random(mine, sizeof mine), 0);
	assert_memory_not_equal(child, mine, sizeof mine);
	close(fds[0]);
	close(fds[1]);
}

static char keydir[256];

static int make_keydir(void **state)
{
	(void)state;
	char tmpl[] = "/tmp/fctest-XXXXXX";
	assert_non_null(mkdtemp(tmpl));
	snprintf(keydir, sizeof keydir, "%s/keys", tmpl);
	return keyring_init_dir(keydir);
}

static void write_key(const char *name, const char *hex, mode_t mode)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", keydir, name);
	unlink(path);
	FILE *f = fopen(path, "w");
	fprintf(f, "%s\n", hex);
	fclose(f);
	chmod(path, mode);
}

static void test_blind_index_known_answer(void **state)
{
	(void)state;
	struct keyring *kr = NULL;
	uint8_t out[32];
	char hex[65];
	write_key("index.key", "4242424242424242424242424242424242424242424242424242424242424242", 0600);
	assert_int_equal(keyring_open(&kr, keydir), 0);
	/* HMAC-SHA256(HKDF-SHA256(ikm=0x42*32, salt=none, info="consentd blind index email v1"),
	 * "kat@example.org") */
	assert_int_equal(fieldcrypt_keyed_hash(kr, FC_HASH_EMAIL, "kat@example.org", 15, out), 0);
	hex_encode(out, 32, hex);
	assert_string_equal(hex, "f3f51f2cebe511d9b7bd36e630a338c364e649c53fcbf54a95d6b8dbfd412071");
	/* Different purposes use independent keys. */
	uint8_t other[32];
	fieldcrypt_keyed_hash(kr, FC_HASH_SUPPRESSION, "kat@example.org", 15, other);
	assert_memory_not_equal(out, other, 32);
	keyring_free(kr);
}

static void test_dek_wrap_rotation_and_binding(void **state)
{
	(void)state;
	struct keyring *kr = NULL;
	uint8_t dek[32], back[32], wrapped[FC_WRAPPED_DEK_BYTES];
	int version;
	assert_int_equal(keyring_open(&kr, keydir), 0);
	fieldcrypt_dek_new(dek);
	assert_int_equal(fieldcrypt_dek_wrap(kr, kat_id, dek, wrapped, &version), 0);
	assert_int_equal(version, 1);
	assert_int_equal(fieldcrypt_dek_unwrap(kr, kat_id, 1, wrapped, sizeof wrapped, back), 0);
	assert_memory_equal(dek, back, 32);
	/* Bound to the record id and the version. */
	assert_int_equal(
		fieldcrypt_dek_unwrap(kr, "BAAAAAAAAAAAAAAAAAAAAA", 1, wrapped, sizeof wrapped, back),
		ERR_CRYPTO);
	assert_int_equal(keyring_add_version(kr, keydir), 0);
	assert_int_equal(keyring_current_version(kr), 2);
	assert_int_equal(fieldcrypt_dek_unwrap(kr, kat_id, 2, wrapped, sizeof wrapped, back), ERR_CRYPTO);
	uint8_t rewrapped[FC_WRAPPED_DEK_BYTES];
	assert_int_equal(fieldcrypt_dek_wrap(kr, kat_id, dek, rewrapped, &version), 0);
	assert_int_equal(version, 2);
	assert_int_equal(keyring_retire_version(kr, keydir, 1), 0);
	assert_false(keyring_has_version(kr, 1));
	/* A retired key still unwraps (for wraps made before a reload) ... */
	assert_int_equal(fieldcrypt_dek_unwrap(kr, kat_id, 1, wrapped, sizeof wrapped, back), 0);
	keyring_free(kr);
	/* ... also after a reload, until its file is deleted. */
	assert_int_equal(keyring_open(&kr, keydir), 0);
	assert_int_equal(keyring_current_version(kr), 2);
	assert_int_equal(fieldcrypt_dek_unwrap(kr, kat_id, 1, wrapped, sizeof wrapped, back), 0);
	keyring_free(kr);
	char path[512];
	snprintf(path, sizeof path, "%s/master-v1.key.retired", keydir);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(keyring_open(&kr, keydir), 0);
	assert_int_equal(fieldcrypt_dek_unwrap(kr, kat_id, 1, wrapped, sizeof wrapped, back), ERR_CRYPTO);
	assert_int_equal(fieldcrypt_dek_unwrap(kr, kat_id, 2, rewrapped, sizeof rewrapped, back), 0);
	assert_memory_equal(dek, back, 32);
	keyring_free(kr);
}

static void test_key_files_readable_by_others_are_refused(void **state)
{
	(void)state;
	struct keyring *kr = NULL;
	write_key("index.key", "4242424242424242424242424242424242424242424242424242424242424242", 0640);
	assert_int_equal(keyring_open(&kr, keydir), ERR_DENIED);
	assert_non_null(strstr(err_msg(), "index.key"));
	write_key("index.key", "4242424242424242424242424242424242424242424242424242424242424242", 0600);
	write_key("index.key", "42", 0600);
	assert_int_equal(keyring_open(&kr, keydir), ERR_INVALID);
	write_key("index.key", "4242424242424242424242424242424242424242424242424242424242424242", 0600);
	assert_int_equal(keyring_open(&kr, keydir), 0);
	keyring_free(kr);
}

static void test_tokens_are_distinct_and_well_formed(void **state)
{
	(void)state;
	char a[TOKEN_CHARS + 1], b[TOKEN_CHARS + 1];
	token_generate(a);
	token_generate(b);
	assert_int_equal(strlen(a), TOKEN_CHARS);
	assert_memory_equal(a, "cd_", 3);
	assert_string_not_equal(a, b);
	assert_true(crypto_equal(a, a, TOKEN_CHARS));
	assert_false(crypto_equal(a, b, TOKEN_CHARS));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_known_answer),
		cmocka_unit_test(test_ciphertext_is_bound_to_record_field_and_table),
		cmocka_unit_test(test_every_flipped_byte_fails),
		cmocka_unit_test(test_seal_round_trip_uses_fresh_nonces),
		cmocka_unit_test(test_contexts_reused_per_thread_keep_every_answer),
		cmocka_unit_test(test_random_draws_never_repeat_across_refills_and_forks),
		cmocka_unit_test(test_blind_index_known_answer),
		cmocka_unit_test(test_dek_wrap_rotation_and_binding),
		cmocka_unit_test(test_key_files_readable_by_others_are_refused),
		cmocka_unit_test(test_tokens_are_distinct_and_well_formed),
	};
	return cmocka_run_group_tests(tests, make_keydir, NULL);
}
