/*
 * anchor: signed checkpoints outside the database, in several generations.
 * See anchor.h for the files and the rules that make a deleted or replaced
 * file detectable.
 */
#include "audit/anchor.h"

#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "service/base/error.h"

static int dir_of(const char *path, char out[PATH_MAX])
{
	if ((size_t)snprintf(out, PATH_MAX, "%s.d", path) >= PATH_MAX)
		return err_set(ERR_TOOBIG, "audit anchor: path too long: %s", path);
	return 0;
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return err_set(ERR_IO, "cannot open %s: %s", dir, strerror(errno));
	int rc = fsync(fd) == 0 ? 0 : err_set(ERR_IO, "cannot sync %s: %s", dir, strerror(errno));
	close(fd);
	return rc;
}

/* Replaces path atomically with one checkpoint line (mode 0644: anchors are
 * public, auditors compare against them). */
static int write_one(const char *path, const struct audit_checkpoint *cp)
{
	char line[AUDIT_CHECKPOINT_JSON_MAX + 2], tmp[PATH_MAX];
	int n = audit_checkpoint_format_json(cp, line, sizeof line - 1);
	if (n < 0)
		return n;
	line[n++] = '\n';
	if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp)
		return err_set(ERR_TOOBIG, "audit anchor: path too long: %s", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return err_set(ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
	int rc = 0;
	if (fchmod(fd, 0644) != 0 || write(fd, line, (size_t)n) != n || fsync(fd) != 0)
		rc = err_set(ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
	close(fd);
	if (rc == 0 && rename(tmp, path) != 0)
		rc = err_set(ERR_IO, "cannot replace %s: %s", path, strerror(errno));
	if (rc != 0)
		unlink(tmp);
	return rc;
}

static int read_one(const char *path, struct audit_checkpoint *out)
{
	char line[AUDIT_CHECKPOINT_JSON_MAX + 8];
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return errno == ENOENT ? ERR_NOTFOUND
				       : err_set(ERR_IO, "cannot read %s: %s", path, strerror(errno));
	size_t n = fread(line, 1, sizeof line - 1, f);
	fclose(f);
	line[n] = '\0';
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	if (audit_checkpoint_from_json(out, line, n) != 0)
		return err_set(ERR_INVALID, "%s does not hold a checkpoint: %s", path, err_msg());
	return 0;
}

/* A generation file name: exactly 20 digits and ".json". */
static bool generation_name(const char *name, long long *size)
{
	if (strlen(name) != 25 || strcmp(name + 20, ".json") != 0)
		return false;
	long long v = 0;
	for (int i = 0; i < 20; i++) {
		if (name[i] < '0' || name[i] > '9' || v > (LLONG_MAX - 9) / 10)
			return false;
		v = v * 10 + (name[i] - '0');
	}
	*size = v;
	return true;
}

static int by_size_desc(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;
	return (x < y) - (x > y);
}

/* Sizes of the generations on disk, largest first; at most cap of them
 * (the rest are counted in *total). */
static int list_generations(const char *dir, long long *sizes, size_t cap, size_t *n, size_t *total)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	long long *all = NULL;
	size_t na = 0, ca = 0;
	*n = 0;
	*total = 0;
	if (d == NULL)
		return errno == ENOENT ? 0 : err_set(ERR_IO, "cannot read %s: %s", dir, strerror(errno));
	while ((de = readdir(d)) != NULL) {
		long long size;
		if (!generation_name(de->d_name, &size))
			continue;
		if (na == ca) {
			size_t nc = ca ? ca * 2 : 16;
			long long *v = realloc(all, nc * sizeof *v);
			if (v == NULL) {
				free(all);
				closedir(d);
				return err_set(ERR_NOMEM, "out of memory");
			}
			all = v;
			ca = nc;
		}
		all[na++] = size;
	}
	closedir(d);
	if (na > 0)
		qsort(all, na, sizeof *all, by_size_desc);
	for (size_t i = 0; i < na && i < cap; i++)
		sizes[i] = all[i];
	*n = na < cap ? na : cap;
	*total = na;
	free(all);
	return 0;
}

int audit_anchor_write(const char *path, const struct audit_checkpoint *cp)
{
	char dir[PATH_MAX], gen[PATH_MAX + 32];
	long long sizes[AUDIT_ANCHOR_GENERATIONS * 4];
	struct audit_checkpoint cur;
	size_t n, total;
	int rc;

	if ((rc = dir_of(path, dir)) != 0)
		return rc;
	/* Monotonic: never move the newest anchor back. */
	rc = read_one(path, &cur);
	if (rc == 0 && cur.size > cp->size)
		return err_set(ERR_CONFLICT,
			       "audit anchor: refusing to replace the anchor for %lld "
			       "entries with one for %lld",
			       (long long)cur.size, (long long)cp->size);
	if (rc != 0 && rc != ERR_NOTFOUND && rc != ERR_INVALID)
		return rc;
	if ((rc = list_generations(dir, sizes, AUDIT_ANCHOR_GENERATIONS * 4, &n, &total)) != 0)
		return rc;
	if (n > 0 && sizes[0] > cp->size)
		return err_set(ERR_CONFLICT,
			       "audit anchor: refusing an anchor for %lld entries below "
			       "the generation for %lld",
			       (long long)cp->size, sizes[0]);
	if ((rc = write_one(path, cp)) != 0)
		return rc;
	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		return err_set(ERR_IO, "cannot create %s: %s", dir, strerror(errno));
	snprintf(gen, sizeof gen, "%s/%020lld.json", dir, (long long)cp->size);
	if ((rc = write_one(gen, cp)) != 0 || (rc = fsync_dir(dir)) != 0)
		return rc;
	/* Keep the newest AUDIT_ANCHOR_GENERATIONS (the one just written is among
	 * them: nothing on disk is larger). */
	if ((rc = list_generations(dir, sizes, AUDIT_ANCHOR_GENERATIONS * 4, &n, &total)) != 0)
		return rc;
	for (size_t i = AUDIT_ANCHOR_GENERATIONS; i < n; i++) {
		snprintf(gen, sizeof gen, "%s/%020lld.json", dir, sizes[i]);
		if (unlink(gen) != 0 && errno != ENOENT)
			return err_set(ERR_IO, "cannot remove %s: %s", gen, strerror(errno));
	}
	return 0;
}

static void fault(struct audit_anchor_set *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fault(struct audit_anchor_set *out, const char *fmt, ...)
{
	va_list ap;
	if (out->fault != AUDIT_FAULT_NONE)
		return; /* keep the first */
	out->fault = AUDIT_FAULT_ANCHOR;
	va_start(ap, fmt);
	vsnprintf(out->reason, sizeof out->reason, fmt, ap);
	va_end(ap);
}

/* Reads one file into out->all and checks its signature. */
static int load_one(const char *file, const struct audit_pubkey *key, struct audit_anchor_set *out,
		    bool *present)
{
	struct audit_checkpoint cp;
	int rc = read_one(file, &cp);
	*present = false;
	if (rc == ERR_NOTFOUND)
		return 0;
	*present = true;
	if (rc == ERR_INVALID) {
		fault(out, "the anchor file %s is damaged: %s", file, err_msg());
		return 0;
	}
	if (rc != 0)
		return rc;
	if (audit_checkpoint_verify(key, &cp) != 0) {
		fault(out, "the anchor file %s is not validly signed by the audit key: %s", file, err_msg());
		return 0;
	}
	if (out->n < sizeof out->all / sizeof out->all[0])
		out->all[out->n++] = cp;
	if (!out->have || cp.size > out->latest.size)
		out->latest = cp;
	out->have = true;
	return 0;
}

int audit_anchor_load(const char *path, const struct audit_pubkey *key, struct audit_anchor_set *out)
{
	char dir[PATH_MAX], gen[PATH_MAX + 32];
	long long sizes[AUDIT_ANCHOR_GENERATIONS];
	size_t n = 0, total = 0;
	bool main_present = false, present;
	int64_t main_size = 0;
	int rc;

	memset(out, 0, sizeof *out);
	if ((rc = dir_of(path, dir)) != 0)
		return rc;
	if ((rc = load_one(path, key, out, &main_present)) != 0)
		return rc;
	if (main_present && out->have)
		main_size = out->latest.size;
	if ((rc = list_generations(dir, sizes, AUDIT_ANCHOR_GENERATIONS, &n, &total)) != 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		snprintf(gen, sizeof gen, "%s/%020lld.json", dir, sizes[i]);
		if ((rc = load_one(gen, key, out, &present)) != 0)
			return rc;
		if (present && out->n > 0 && out->all[out->n - 1].size != sizes[i])
			fault(out, "the anchor generation %s holds a checkpoint for %lld entries, not %lld",
			      gen, (long long)out->all[out->n - 1].size, sizes[i]);
	}
	if (!main_present && n > 0)
		fault(out,
		      "the anchor file %s is missing, but %s holds %zu earlier anchors (the newest "
		      "covers %lld entries): it was deleted",
		      path, dir, total, sizes[0]);
	else if (main_present && n > 0 && main_size < sizes[0] && out->fault == AUDIT_FAULT_NONE)
		fault(out,
		      "the anchor file %s covers %lld entries, but the generation in %s covers "
		      "%lld: it was replaced by an older one",
		      path, (long long)main_size, dir, sizes[0]);
	/* Two anchors for one size must name one root. */
	for (size_t i = 0; i < out->n; i++)
		for (size_t j = i + 1; j < out->n; j++)
			if (out->all[i].size == out->all[j].size &&
			    memcmp(out->all[i].root, out->all[j].root, AUDIT_HASH_BYTES) != 0)
				fault(out, "two anchors for %lld entries name different chain heads",
				      (long long)out->all[i].size);
	return 0;
}
