/*
 * fieldcrypt: AES-256-GCM field sealing, data-key wrapping, keyed hashes,
 * key files, API tokens and the development TLS certificate.
 *
 * Key files hold 64 hex characters and a newline. They are created with
 * O_CREAT|O_EXCL and mode 0600 and refused at load time when group or others
 * may read or write them. Loaded keys are wiped with OPENSSL_cleanse when the
 * keyring is freed. The keyring has pages of its own, excluded from core
 * dumps (MADV_DONTDUMP) and, where RLIMIT_MEMLOCK allows, kept out of swap.
 */
#include "service/crypto/fieldcrypt.h"

#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/base/limits.h"

#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/pem.h>

#define MAX_VERSIONS 64

struct master_key {
	int version;
	bool retired; /* loaded to read old wraps, never used to wrap */
	uint8_t key[FC_KEY_BYTES];
};

/* A keyring only grows, in place: keyring_refresh() appends master keys
 * that appeared in its folder (after `keys rotate`) while other threads
 * read it. An entry is written before n_masters is raised past it, and
 * entries never move or change, so a reader needs no lock; refreshes are
 * serialised by refresh_lock. */
struct keyring {
	struct master_key masters[MAX_VERSIONS];
	_Atomic int n_masters;
	_Atomic int current;
	char dir[LIMIT_FILE_PATH_CAP];
	pthread_mutex_t refresh_lock;
	/* Versions a reader asked for that were not loaded: each is looked
	 * for on disk once, so a bad version number in a row cannot make every
	 * read scan the folder. */
	int asked[MAX_VERSIONS];
	int n_asked;
	uint8_t derived[FC_HASH_KINDS][FC_KEY_BYTES];
	uint8_t index_kcv[FC_KCV_BYTES]; /* the index key's check value (keyring_check_value) */
	/* Keyed HMAC-SHA256 contexts, one per kind, never used directly: each
	 * hash works on a duplicate, so concurrent threads only read them.
	 * (Duplicating is about 3x cheaper than a one-shot HMAC, which looks up
	 * the digest and processes the key every time; the filter hashes two
	 * values per list entry.) */
	EVP_MAC_CTX *mac[FC_HASH_KINDS];
};

/* The development certificate is valid from an hour ago, so a client
 * whose clock runs a little behind the server's accepts it at once. */
#define TLSCERT_BACKDATE_SECONDS 3600

int crypto_key_file_private(const char *path, unsigned mode)
{
	if (mode & (S_IRWXG | S_IRWXO))
		return err_set(ERR_DENIED,
			       "key file %s is accessible by group or others (mode %03o); run: chmod 600 %s",
			       path, mode & 0777, path);
	return 0;
}

/* SHA-256 is looked up once per process; fetching per call cost more than
 * hashing a token. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static const char *const hash_labels[FC_HASH_KINDS] = {
	[FC_HASH_EMAIL] = "consentd blind index email v1", [FC_HASH_PHONE] = "consentd blind index phone v1",
	[FC_HASH_SUPPRESSION] = "consentd suppression v1", [FC_HASH_LINK] = "consentd preference link v1",
	[FC_HASH_CLIENT] = "consentd client address v1",   [FC_HASH_LIST] = "consentd list digest v1",
	[FC_HASH_EVENT] = "consentd provider event id v1",
};

/* Random bytes are drawn from OpenSSL's generator CRYPTO_RANDOM_POOL_BYTES at
 * a time into a buffer per thread: one RAND_bytes call costs about a
 * microsecond whatever its length (locks, the fork check's getpid, the
 * DRBG's bookkeeping), and an imported contact needs five small draws (id,
 * data key, three nonces). Every byte handed out is wiped from the pool at
 * once, so the pool never holds a byte that was used, and a fork empties
 * every pool (fork_generation), so parent and child never share bytes. */
struct random_pool {
	uint8_t buf[CRYPTO_RANDOM_POOL_BYTES];
	size_t left; /* unused bytes at the end of buf */
	unsigned generation;
};

static _Thread_local struct random_pool random_pool;
static atomic_uint fork_generation;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void random_after_fork(void)
{
	atomic_fetch_add(&fork_generation, 1);
}

static void random_fork_hook(void)
{
	pthread_atfork(NULL, NULL, random_after_fork);
}

int crypto_random(void *buf, size_t len)
{
	struct random_pool *p = &random_pool;
	pthread_once(&fork_once, random_fork_hook);
	if (len > sizeof p->buf / 4) {
		if (RAND_bytes(buf, (int)len) != 1)
			return err_set(ERR_CRYPTO, "the random number generator failed");
		return 0;
	}
	unsigned gen = atomic_load(&fork_generation);
	if (p->generation != gen) {
		OPENSSL_cleanse(p->buf, sizeof p->buf);
		p->left = 0;
		p->generation = gen;
	}
	if (p->left < len) {
		if (RAND_bytes(p->buf, (int)sizeof p->buf) != 1) {
			p->left = 0;
			return err_set(ERR_CRYPTO, "the random number generator failed");
		}
		p->left = sizeof p->buf;
	}
	uint8_t *from = p->buf + sizeof p->buf - p->left;
	memcpy(buf, from, len);
	OPENSSL_cleanse(from, len);
	p->left -= len;
	return 0;
}

void crypto_wipe(void *buf, size_t len)
{
	OPENSSL_cleanse(buf, len);
}

bool crypto_equal(const void *a, const void *b, size_t len)
{
	return CRYPTO_memcmp(a, b, len) == 0;
}

int crypto_sha256(const void *data, size_t len, uint8_t out[32])
{
	unsigned int n = 32;
	int rc = 0;
	pthread_once(&sha256_once, sha256_fetch);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (ctx == NULL || sha256_md == NULL || EVP_DigestInit_ex2(ctx, sha256_md, NULL) != 1 ||
	    EVP_DigestUpdate(ctx, data, len) != 1 || EVP_DigestFinal_ex(ctx, out, &n) != 1)
		rc = err_set(ERR_CRYPTO, "SHA-256 failed");
	EVP_MD_CTX_free(ctx);
	return rc;
}

static int write_key_file(const char *path, const uint8_t key[FC_KEY_BYTES])
{
	char hex[2 * FC_KEY_BYTES + 2];
	int rc = 0;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_set(ERR_IO, "cannot create key file %s: %s", path, strerror(errno));
	hex_encode(key, FC_KEY_BYTES, hex);
	hex[2 * FC_KEY_BYTES] = '\n';
	if (write(fd, hex, sizeof hex - 1) != (ssize_t)(sizeof hex - 1) || fsync(fd) != 0)
		rc = err_set(ERR_IO, "cannot write key file %s: %s", path, strerror(errno));
	crypto_wipe(hex, sizeof hex);
	close(fd);
	return rc;
}

static int new_key_file(const char *path)
{
	uint8_t key[FC_KEY_BYTES];
	int rc = crypto_random(key, sizeof key);
	if (rc == 0)
		rc = write_key_file(path, key);
	crypto_wipe(key, sizeof key);
	return rc;
}

static int read_key_file(const char *path, uint8_t key[FC_KEY_BYTES])
{
	char buf[2 * FC_KEY_BYTES + 8];
	struct stat st;
	int rc = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT)
			return err_set(ERR_NOTFOUND, "key file %s is missing", path);
		return err_set(ERR_IO, "cannot open key file %s: %s", path, strerror(errno));
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		rc = err_set(ERR_IO, "key file %s is not a regular file", path);
		goto out;
	}
	if ((rc = crypto_key_file_private(path, st.st_mode)) != 0)
		goto out;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	if (n < 2 * FC_KEY_BYTES) {
		rc = err_set(ERR_INVALID, "key file %s is truncated", path);
		goto out;
	}
	buf[2 * FC_KEY_BYTES] = '\0';
	if (hex_decode(buf, key, FC_KEY_BYTES) != 0)
		rc = err_set(ERR_INVALID, "key file %s does not hold a 256-bit hex key", path);
out:
	crypto_wipe(buf, sizeof buf);
	close(fd);
	return rc;
}

int keyring_init_dir(const char *keys_dir)
{
	char path[LIMIT_FILE_PATH_CAP];
	if (mkdir(keys_dir, 0700) != 0 && errno != EEXIST)
		return err_set(ERR_IO, "cannot create %s: %s", keys_dir, strerror(errno));
	snprintf(path, sizeof path, "%s/master-v1.key", keys_dir);
	int rc = new_key_file(path);
	if (rc != 0)
		return rc;
	snprintf(path, sizeof path, "%s/index.key", keys_dir);
	return new_key_file(path);
}

static int derive(const uint8_t root[FC_KEY_BYTES], const char *label, uint8_t out[FC_KEY_BYTES])
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
	size_t len = FC_KEY_BYTES;
	int rc = 0;
	if (ctx == NULL || EVP_PKEY_derive_init(ctx) <= 0 ||
	    EVP_PKEY_CTX_set_hkdf_md(ctx, EVP_sha256()) <= 0 ||
	    EVP_PKEY_CTX_set1_hkdf_key(ctx, root, FC_KEY_BYTES) <= 0 ||
	    EVP_PKEY_CTX_add1_hkdf_info(ctx, (const unsigned char *)label, (int)strlen(label)) <= 0 ||
	    EVP_PKEY_derive(ctx, out, &len) <= 0)
		rc = err_set(ERR_CRYPTO, "key derivation failed");
	EVP_PKEY_CTX_free(ctx);
	return rc;
}

static int mac_template(const uint8_t key[FC_KEY_BYTES], EVP_MAC_CTX **out)
{
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
	OSSL_PARAM params[] = { OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
				OSSL_PARAM_construct_end() };
	EVP_MAC_free(mac); /* the context keeps its own reference */
	if (ctx == NULL || EVP_MAC_init(ctx, key, FC_KEY_BYTES, params) != 1) {
		EVP_MAC_CTX_free(ctx);
		return err_set(ERR_CRYPTO, "cannot set up HMAC-SHA256");
	}
	*out = ctx;
	return 0;
}

/* See keyring_check_value: the labels are fixed, so equal keys give equal
 * values on every instance and every version of consentd. */
static int check_value(const uint8_t key[FC_KEY_BYTES], uint8_t out[FC_KCV_BYTES])
{
	static const char label[] = "consentd key check value v1";
	uint8_t k[FC_KEY_BYTES];
	size_t len = FC_KCV_BYTES;
	int rc = derive(key, "consentd key check", k);
	if (rc == 0 &&
	    EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, k, sizeof k, (const unsigned char *)label,
		      sizeof label - 1, out, FC_KCV_BYTES, &len) == NULL)
		rc = err_set(ERR_CRYPTO, "cannot compute a key check value");
	crypto_wipe(k, sizeof k);
	return rc;
}

int keyring_check_value(const struct keyring *kr, int version, uint8_t out[FC_KCV_BYTES])
{
	if (version == 0) {
		memcpy(out, kr->index_kcv, FC_KCV_BYTES);
		return 0;
	}
	for (int i = 0; i < kr->n_masters; i++)
		if (kr->masters[i].version == version)
			return check_value(kr->masters[i].key, out);
	return err_set(ERR_NOTFOUND, "master key version %d is not loaded", version);
}

void keyring_versions(const struct keyring *kr, int *versions, int cap, int *n)
{
	*n = 0;
	for (int i = 0; i < kr->n_masters && *n < cap; i++) {
		int v = kr->masters[i].version, j = (*n)++;
		for (; j > 0 && versions[j - 1] > v; j--)
			versions[j] = versions[j - 1];
		versions[j] = v;
	}
}

static int load_master(struct keyring *kr, const char *keys_dir, int version, bool retired)
{
	char path[LIMIT_FILE_PATH_CAP];
	if (kr->n_masters >= MAX_VERSIONS)
		return err_set(ERR_TOOBIG, "more than %d master key versions in %s", MAX_VERSIONS, keys_dir);
	snprintf(path, sizeof path, "%s/master-v%d.key%s", keys_dir, version, retired ? ".retired" : "");
	struct master_key *m = &kr->masters[kr->n_masters];
	int rc = read_key_file(path, m->key);
	if (rc != 0)
		return rc;
	m->version = version;
	m->retired = retired;
	kr->n_masters++;
	if (!retired && version > kr->current)
		kr->current = version;
	return 0;
}

static size_t keyring_map_size(void)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	return (sizeof(struct keyring) + page - 1) / page * page;
}

/* Zeroed pages that a core dump (even one the operator allowed) leaves out.
 * Refused rather than handed out without the exclusion. */
static struct keyring *keyring_map(void)
{
	size_t size = keyring_map_size();
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	if (madvise(p, size, MADV_DONTDUMP) != 0) {
		munmap(p, size);
		return NULL;
	}
	(void)mlock(p, size); /* best effort: RLIMIT_MEMLOCK may be small */
	return p;
}

int keyring_open(struct keyring **out, const char *keys_dir)
{
	struct keyring *kr = NULL;
	DIR *d = NULL;
	uint8_t index_root[FC_KEY_BYTES];
	char path[LIMIT_FILE_PATH_CAP];
	int rc = 0;

	*out = NULL;
	kr = keyring_map();
	if (kr == NULL)
		return err_set(ERR_NOMEM, "cannot map the keyring's memory: %s", strerror(errno));
	pthread_mutex_init(&kr->refresh_lock, NULL);
	if ((size_t)snprintf(kr->dir, sizeof kr->dir, "%s", keys_dir) >= sizeof kr->dir) {
		rc = err_set(ERR_TOOBIG, "key directory path is longer than %zu bytes", sizeof kr->dir - 1);
		goto fail;
	}
	d = opendir(keys_dir);
	if (d == NULL) {
		rc = err_set(ERR_NOTFOUND, "key directory %s is missing: %s", keys_dir, strerror(errno));
		goto fail;
	}
	/* Retired versions still on disk are loaded for reading only: a contact
	 * wrapped by a running server between `keys rotate` and its reload
	 * stays readable until the operator deletes the retired file. */
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		int version;
		char tail[16];
		if (sscanf(e->d_name, "master-v%d.%15s", &version, tail) != 2 || version <= 0)
			continue;
		bool live = strcmp(tail, "key") == 0, retired = strcmp(tail, "key.retired") == 0;
		if ((live || retired) && (rc = load_master(kr, keys_dir, version, retired)) != 0)
			goto fail;
	}
	if (kr->current == 0) {
		rc = err_set(ERR_NOTFOUND, "no master key (master-vN.key) in %s", keys_dir);
		goto fail;
	}
	snprintf(path, sizeof path, "%s/index.key", keys_dir);
	if ((rc = read_key_file(path, index_root)) != 0)
		goto fail;
	for (int k = 0; k < FC_HASH_KINDS; k++)
		if ((rc = derive(index_root, hash_labels[k], kr->derived[k])) != 0 ||
		    (rc = mac_template(kr->derived[k], &kr->mac[k])) != 0)
			goto fail;
	if ((rc = check_value(index_root, kr->index_kcv)) != 0)
		goto fail;
	closedir(d);
	crypto_wipe(index_root, sizeof index_root);
	*out = kr;
	return 0;
fail:
	if (d != NULL)
		closedir(d);
	crypto_wipe(index_root, sizeof index_root);
	keyring_free(kr);
	return rc;
}

void keyring_free(struct keyring *kr)
{
	if (kr == NULL)
		return;
	for (int k = 0; k < FC_HASH_KINDS; k++)
		EVP_MAC_CTX_free(kr->mac[k]);
	pthread_mutex_destroy(&kr->refresh_lock);
	crypto_wipe(kr, sizeof *kr);
	munlock(kr, keyring_map_size());
	munmap(kr, keyring_map_size());
}

int keyring_current_version(const struct keyring *kr)
{
	return kr->current;
}

static const struct master_key *find_master(const struct keyring *kr, int version)
{
	int n = atomic_load(&kr->n_masters);
	for (int i = 0; i < n; i++)
		if (kr->masters[i].version == version)
			return &kr->masters[i];
	return NULL;
}

/* Loads the master keys in the folder that are not loaded yet; the caller
 * holds refresh_lock. Files that went away stay loaded (until restart). */
static int refresh_locked(struct keyring *kr, int *added)
{
	DIR *d = opendir(kr->dir);
	int rc = 0;
	*added = 0;
	if (d == NULL)
		return err_set(ERR_NOTFOUND, "key directory %s is missing: %s", kr->dir, strerror(errno));
	struct dirent *e;
	/* One bad file does not keep the others out; its error is returned. */
	while ((e = readdir(d)) != NULL) {
		int version, one;
		char tail[16];
		if (sscanf(e->d_name, "master-v%d.%15s", &version, tail) != 2 || version <= 0 ||
		    find_master(kr, version) != NULL)
			continue;
		bool live = strcmp(tail, "key") == 0, retired = strcmp(tail, "key.retired") == 0;
		if (!live && !retired)
			continue;
		if ((one = load_master(kr, kr->dir, version, retired)) == 0)
			(*added)++;
		else if (rc == 0)
			rc = one;
	}
	closedir(d);
	return rc;
}

int keyring_refresh(struct keyring *kr, int *added)
{
	int n = 0;
	pthread_mutex_lock(&kr->refresh_lock);
	int rc = refresh_locked(kr, &n);
	pthread_mutex_unlock(&kr->refresh_lock);
	if (added != NULL)
		*added = n;
	return rc;
}

/* A reader met a version it does not have: a `keys rotate` has run since
 * the keyring was loaded. Looks for it on disk, once per version. The
 * keyring is logically const for its users; only this cache of loaded
 * versions grows. */
static const struct master_key *find_master_or_load(const struct keyring *ckr, int version)
{
	struct keyring *kr = (struct keyring *)ckr;
	const struct master_key *m = find_master(kr, version);
	if (m != NULL)
		return m;
	pthread_mutex_lock(&kr->refresh_lock);
	bool asked = false;
	for (int i = 0; i < kr->n_asked; i++)
		asked = asked || kr->asked[i] == version;
	if (!asked && kr->n_asked < MAX_VERSIONS) {
		int added = 0;
		kr->asked[kr->n_asked++] = version;
		if (refresh_locked(kr, &added) != 0)
			fprintf(stderr, "consentd: cannot load new master keys: %s\n", err_msg());
		else if (added > 0)
			fprintf(stderr, "consentd: loaded %d new master key version(s); current is %d\n",
				added, atomic_load(&kr->current));
	}
	pthread_mutex_unlock(&kr->refresh_lock);
	return find_master(kr, version);
}

bool keyring_has_version(const struct keyring *kr, int version)
{
	const struct master_key *m = find_master(kr, version);
	return m != NULL && !m->retired;
}

int keyring_add_version(struct keyring *kr, const char *keys_dir)
{
	char path[LIMIT_FILE_PATH_CAP];
	int next = kr->current + 1;
	snprintf(path, sizeof path, "%s/master-v%d.key", keys_dir, next);
	int rc = new_key_file(path);
	if (rc != 0)
		return rc;
	return load_master(kr, keys_dir, next, false);
}

int keyring_retire_version(struct keyring *kr, const char *keys_dir, int version)
{
	char from[LIMIT_FILE_PATH_CAP], to[LIMIT_DERIVED_PATH_CAP];
	if (version == kr->current)
		return err_set(ERR_CONFLICT, "cannot retire the current master key version");
	snprintf(from, sizeof from, "%s/master-v%d.key", keys_dir, version);
	snprintf(to, sizeof to, "%s/master-v%d.key.retired", keys_dir, version);
	if (rename(from, to) != 0)
		return err_set(ERR_IO, "cannot retire %s: %s", from, strerror(errno));
	for (int i = 0; i < atomic_load(&kr->n_masters); i++)
		if (kr->masters[i].version == version)
			kr->masters[i].retired = true;
	return 0;
}

/* AES-256-GCM contexts are kept per thread and re-keyed for each value:
 * creating a context and fetching the cipher by name for every field cost
 * more than sealing it (OSSL_PARAM lookups, the provider's setup). A
 * context holds the last key schedule it used until the next use or the
 * thread's end, when it is freed (OpenSSL wipes it). */
static EVP_CIPHER *gcm_cipher;
static pthread_once_t gcm_once = PTHREAD_ONCE_INIT;
static pthread_key_t gcm_key;

struct gcm_ctxs {
	EVP_CIPHER_CTX *seal, *open;
};

static void gcm_ctxs_free(void *p)
{
	struct gcm_ctxs *g = p;
	EVP_CIPHER_CTX_free(g->seal);
	EVP_CIPHER_CTX_free(g->open);
	free(g);
}

static void gcm_setup(void)
{
	gcm_cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	pthread_key_create(&gcm_key, gcm_ctxs_free);
}

/* This thread's context for one direction, set up with the cipher on first
 * use (so later inits only change key and nonce); NULL when out of memory. */
static EVP_CIPHER_CTX *gcm_ctx(bool seal)
{
	pthread_once(&gcm_once, gcm_setup);
	if (gcm_cipher == NULL)
		return NULL;
	struct gcm_ctxs *g = pthread_getspecific(gcm_key);
	if (g == NULL) {
		g = calloc(1, sizeof *g);
		if (g == NULL || pthread_setspecific(gcm_key, g) != 0) {
			free(g);
			return NULL;
		}
	}
	EVP_CIPHER_CTX **slot = seal ? &g->seal : &g->open;
	if (*slot == NULL) {
		EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
		if (ctx == NULL || EVP_CipherInit_ex2(ctx, gcm_cipher, NULL, NULL, seal ? 1 : 0, NULL) != 1) {
			EVP_CIPHER_CTX_free(ctx);
			return NULL;
		}
		*slot = ctx;
	}
	return *slot;
}

/* AES-256-GCM with the layout 0x01 | nonce | ciphertext | tag. */
static int gcm_seal(const uint8_t key[FC_KEY_BYTES], const char *aad, const void *plain, size_t len,
		    uint8_t *out, size_t *out_len)
{
	EVP_CIPHER_CTX *ctx = gcm_ctx(true);
	int n = 0, rc = 0;
	uint8_t *nonce = out + 1, *ct = out + 1 + FC_NONCE_BYTES;
	if (ctx == NULL)
		return err_set(ERR_NOMEM, "out of memory");
	out[0] = 0x01;
	if (crypto_random(nonce, FC_NONCE_BYTES) != 0 ||
	    EVP_EncryptInit_ex2(ctx, NULL, key, nonce, NULL) != 1 ||
	    EVP_EncryptUpdate(ctx, NULL, &n, (const uint8_t *)aad, (int)strlen(aad)) != 1 ||
	    EVP_EncryptUpdate(ctx, ct, &n, plain, (int)len) != 1 ||
	    EVP_EncryptFinal_ex(ctx, ct + n, &n) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, FC_TAG_BYTES, ct + len) != 1)
		rc = err_set(ERR_CRYPTO, "encryption failed");
	*out_len = len + FC_SEAL_OVERHEAD;
	return rc;
}

static int gcm_open(const uint8_t key[FC_KEY_BYTES], const char *aad, const uint8_t *in, size_t len,
		    uint8_t *out, size_t *out_len)
{
	if (len < FC_SEAL_OVERHEAD || in[0] != 0x01)
		return err_set(ERR_CRYPTO, "sealed value has a bad layout");
	size_t ct_len = len - FC_SEAL_OVERHEAD;
	const uint8_t *nonce = in + 1, *ct = in + 1 + FC_NONCE_BYTES;
	EVP_CIPHER_CTX *ctx = gcm_ctx(false);
	int n = 0, rc = 0;
	if (ctx == NULL)
		return err_set(ERR_NOMEM, "out of memory");
	if (EVP_DecryptInit_ex2(ctx, NULL, key, nonce, NULL) != 1 ||
	    EVP_DecryptUpdate(ctx, NULL, &n, (const uint8_t *)aad, (int)strlen(aad)) != 1 ||
	    EVP_DecryptUpdate(ctx, out, &n, ct, (int)ct_len) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, FC_TAG_BYTES, (void *)(ct + ct_len)) != 1 ||
	    EVP_DecryptFinal_ex(ctx, out + n, &n) != 1) {
		crypto_wipe(out, ct_len);
		rc = err_set(ERR_CRYPTO, "sealed value failed authentication");
	}
	*out_len = rc == 0 ? ct_len : 0;
	return rc;
}

int fieldcrypt_dek_new(uint8_t dek[FC_KEY_BYTES])
{
	return crypto_random(dek, FC_KEY_BYTES);
}

int fieldcrypt_dek_wrap(const struct keyring *kr, const char *record_id, const uint8_t dek[FC_KEY_BYTES],
			uint8_t out[FC_WRAPPED_DEK_BYTES], int *version_out)
{
	char aad[160];
	size_t n;
	const struct master_key *m = find_master(kr, kr->current);
	if (m == NULL)
		return err_set(ERR_INTERNAL, "current master key missing");
	snprintf(aad, sizeof aad, "consentd:1|dek|%s|%d", record_id, m->version);
	*version_out = m->version;
	return gcm_seal(m->key, aad, dek, FC_KEY_BYTES, out, &n);
}

int fieldcrypt_dek_unwrap(const struct keyring *kr, const char *record_id, int version,
			  const uint8_t *wrapped, size_t wrapped_len, uint8_t dek[FC_KEY_BYTES])
{
	char aad[160];
	size_t n;
	const struct master_key *m = find_master_or_load(kr, version);
	if (m == NULL)
		return err_set(ERR_CRYPTO, "master key version %d is not loaded", version);
	if (wrapped_len != FC_WRAPPED_DEK_BYTES)
		return err_set(ERR_CRYPTO, "wrapped data key has a bad length");
	snprintf(aad, sizeof aad, "consentd:1|dek|%s|%d", record_id, version);
	return gcm_open(m->key, aad, wrapped, wrapped_len, dek, &n);
}

static int field_aad(char *aad, size_t cap, const char *table, const char *record_id, const char *field)
{
	int n = snprintf(aad, cap, "consentd:1|%s|%s|%s|%d", table, record_id, field, FC_DEK_VERSION);
	if (n < 0 || (size_t)n >= cap)
		return err_set(ERR_TOOBIG, "associated data too long");
	return 0;
}

int fieldcrypt_seal(const uint8_t dek[FC_KEY_BYTES], const char *table, const char *record_id,
		    const char *field, const void *plain, size_t len, uint8_t *out, size_t *out_len)
{
	char aad[256];
	int rc = field_aad(aad, sizeof aad, table, record_id, field);
	if (rc != 0)
		return rc;
	return gcm_seal(dek, aad, plain, len, out, out_len);
}

int fieldcrypt_open(const uint8_t dek[FC_KEY_BYTES], const char *table, const char *record_id,
		    const char *field, const uint8_t *sealed, size_t len, uint8_t *out, size_t *out_len)
{
	char aad[256];
	int rc = field_aad(aad, sizeof aad, table, record_id, field);
	if (rc != 0)
		return rc;
	return gcm_open(dek, aad, sealed, len, out, out_len);
}

int fieldcrypt_keyed_hash(const struct keyring *kr, enum fc_hash_kind kind, const void *data, size_t len,
			  uint8_t out[FC_HASH_BYTES])
{
	size_t n = 0;
	int rc = 0;
	if ((unsigned)kind >= FC_HASH_KINDS)
		return err_set(ERR_INTERNAL, "bad hash kind");
	EVP_MAC_CTX *ctx = EVP_MAC_CTX_dup(kr->mac[kind]);
	if (ctx == NULL || EVP_MAC_update(ctx, data, len) != 1 ||
	    EVP_MAC_final(ctx, out, &n, FC_HASH_BYTES) != 1 || n != FC_HASH_BYTES)
		rc = err_set(ERR_CRYPTO, "HMAC failed");
	EVP_MAC_CTX_free(ctx);
	return rc;
}

int token_generate(char out[TOKEN_CHARS + 1])
{
	uint8_t raw[32];
	int rc = crypto_random(raw, sizeof raw);
	if (rc != 0)
		return rc;
	memcpy(out, "cd_", 3);
	b64url_encode(raw, sizeof raw, out + 3);
	crypto_wipe(raw, sizeof raw);
	return 0;
}

int tlscert_generate(const char *cert_path, const char *key_path, int days)
{
	EVP_PKEY *pkey = NULL;
	X509 *x = NULL;
	X509_EXTENSION *ext = NULL;
	FILE *f = NULL;
	int fd = -1, rc = ERR_CRYPTO;
	uint8_t serial[16];

	pkey = EVP_EC_gen("P-256");
	x = X509_new();
	if (pkey == NULL || x == NULL)
		goto out;
	if (crypto_random(serial, sizeof serial) != 0)
		goto out;
	serial[0] &= 0x7f;
	BIGNUM *bn = BN_bin2bn(serial, sizeof serial, NULL);
	ASN1_INTEGER *sn = bn ? BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) : NULL;
	BN_free(bn);
	if (sn == NULL)
		goto out;
	X509_set_version(x, 2);
	X509_gmtime_adj(X509_getm_notBefore(x), -TLSCERT_BACKDATE_SECONDS);
	X509_gmtime_adj(X509_getm_notAfter(x), (long)days * 86400);
	X509_set_pubkey(x, pkey);
	X509_NAME *name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1, 0);
	X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"consentd development", -1,
				   -1, 0);
	X509_set_issuer_name(x, name);
	X509V3_CTX v3;
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1");
	if (ext == NULL || !X509_add_ext(x, ext, -1))
		goto out;
	X509_EXTENSION_free(ext);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, "critical,CA:FALSE");
	if (ext == NULL || !X509_add_ext(x, ext, -1))
		goto out;
	if (!X509_sign(x, pkey, EVP_sha256()))
		goto out;

	fd = open(key_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
		rc = err_set(ERR_IO, "cannot create %s: %s", key_path, strerror(errno));
		goto out;
	}
	fd = -1;
	if (!PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL) || fclose(f) != 0) {
		f = NULL;
		rc = err_set(ERR_IO, "cannot write %s", key_path);
		goto out;
	}
	f = fopen(cert_path, "wx");
	if (f == NULL) {
		rc = err_set(ERR_IO, "cannot create %s: %s", cert_path, strerror(errno));
		goto out;
	}
	if (!PEM_write_X509(f, x) || fclose(f) != 0) {
		f = NULL;
		rc = err_set(ERR_IO, "cannot write %s", cert_path);
		goto out;
	}
	f = NULL;
	rc = 0;
out:
	if (rc == ERR_CRYPTO)
		err_set(ERR_CRYPTO, "cannot generate the development certificate");
	if (f != NULL)
		fclose(f);
	if (fd >= 0)
		close(fd);
	X509_EXTENSION_free(ext);
	X509_free(x);
	EVP_PKEY_free(pkey);
	return rc;
}
