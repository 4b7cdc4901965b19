/*
 * config: loading and writing DIR/consentd.conf. The file is JSON so that
 * the same strict parser (unknown keys refused) serves it and the API.
 */
#include "service/config.h"

#include "service/base/error.h"
#include "service/base/limits.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Joins dir and path (unless path is absolute) into out. A path that does
 * not fit is an error naming the key: cut short, it could name another
 * file that exists (DIR/././policy.json for DIR/././policy.json.new). */
static int resolve(char *out, const char *dir, const char *path, const char *key)
{
	/* A URI (the database setting's postgresql://...) is no path: it is kept
	 * as written, so the store can tell which backend it names. */
	bool as_is = path[0] == '/' || strstr(path, "://") != NULL;
	int n = as_is ? snprintf(out, CONFIG_PATH_CAP, "%s", path)
		      : snprintf(out, CONFIG_PATH_CAP, "%s/%s", dir, path);
	if (n < 0 || n >= CONFIG_PATH_CAP) {
		out[0] = '\0';
		return err_set(ERR_INVALID, "consentd.conf: the %s path is longer than %d bytes once resolved",
			       key, CONFIG_PATH_CAP - 1);
	}
	return 0;
}

int config_parse_listen(const char *s, char *addr, size_t cap, uint16_t *port)
{
	const char *colon;
	size_t alen;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (close == NULL || close[1] != ':')
			return err_set(ERR_INVALID, "listen address %s: expected [ADDR]:PORT", s);
		s++;
		alen = (size_t)(close - s);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL)
			return err_set(ERR_INVALID, "listen address %s: expected ADDR:PORT", s);
		alen = (size_t)(colon - s);
	}
	if (alen == 0 || alen >= cap)
		return err_set(ERR_INVALID, "listen address %s: bad address", s);
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	char *end;
	long p = strtol(colon + 1, &end, 10);
	if (*end != '\0' || p < 0 || p > 65535 || end == colon + 1)
		return err_set(ERR_INVALID, "listen address %s: bad port", s);
	*port = (uint16_t)p;
	return 0;
}

int config_load(struct config *cfg, const char *dir)
{
	char path[CONFIG_PATH_CAP + 32];
	json_error_t jerr;
	json_t *root = NULL;
	int rc = 0;

	memset(cfg, 0, sizeof *cfg);
	if (strlen(dir) >= sizeof cfg->dir - 32)
		return err_set(ERR_INVALID, "the data directory path is longer than %zu bytes", sizeof cfg->dir - 33);
	snprintf(cfg->dir, sizeof cfg->dir, "%s", dir);
	snprintf(path, sizeof path, "%s/consentd.conf", dir);
	root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		if (access(path, F_OK) != 0)
			return err_set(ERR_NOTFOUND, "%s is missing; run: consentd init --data %s", path, dir);
		return err_set(ERR_INVALID, "%s:%d: %s", path, jerr.line, jerr.text);
	}
	const char *listen = "127.0.0.1:8443", *policy = "policy.json", *db = "consentd.db",
		   *keys = "keys", *cert = "tls/cert.pem", *key = "tls/key.pem", *url = NULL;
	json_int_t threads = 0, verify_every = AUDIT_VERIFY_EVERY_SECONDS;
	const char *k;
	json_t *v;
	json_object_foreach(root, k, v) {
		const char **target = NULL;
		if (strcmp(k, "listen") == 0)
			target = &listen;
		else if (strcmp(k, "policy") == 0)
			target = &policy;
		else if (strcmp(k, "database") == 0)
			target = &db;
		else if (strcmp(k, "keys_dir") == 0)
			target = &keys;
		else if (strcmp(k, "tls_cert") == 0)
			target = &cert;
		else if (strcmp(k, "tls_key") == 0)
			target = &key;
		else if (strcmp(k, "public_url") == 0)
			target = &url;
		else if (strcmp(k, "threads") == 0) {
			if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 64) {
				rc = err_set(ERR_INVALID, "%s: threads must be an integer 0..64", path);
				goto out;
			}
			threads = json_integer_value(v);
			continue;
		} else if (strcmp(k, "audit_verify_interval_seconds") == 0) {
			/* 0 turns the schedule off (verification at start still runs). */
			if (!json_is_integer(v) || json_integer_value(v) < 0 ||
			    json_integer_value(v) > 7 * 24 * 3600) {
				rc = err_set(ERR_INVALID, "%s: audit_verify_interval_seconds must be an "
							  "integer 0..604800",
					     path);
				goto out;
			}
			verify_every = json_integer_value(v);
			continue;
		} else if (strcmp(k, "allow_core_dumps") == 0) {
			if (!json_is_boolean(v)) {
				rc = err_set(ERR_INVALID, "%s: allow_core_dumps must be true or false", path);
				goto out;
			}
			cfg->allow_core_dumps = json_is_true(v);
			continue;
		} else {
			rc = err_set(ERR_INVALID, "%s: unknown key \"%s\"", path, k);
			goto out;
		}
		if (!json_is_string(v)) {
			rc = err_set(ERR_INVALID, "%s: %s must be a string", path, k);
			goto out;
		}
		*target = json_string_value(v);
	}
	if ((rc = config_parse_listen(listen, cfg->address, sizeof cfg->address, &cfg->port)) != 0)
		goto out;
	/* One worker per core this process may run on (taskset, cgroups), not
	 * per core the machine has. */
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
		ncpu = CPU_COUNT(&set);
	cfg->threads = threads > 0 ? (unsigned)threads : (unsigned)(ncpu > 0 ? ncpu : 2);
	cfg->audit_verify_every = (unsigned)verify_every;
	if ((rc = resolve(cfg->policy, dir, policy, "policy")) != 0 ||
	    (rc = resolve(cfg->database, dir, db, "database")) != 0 ||
	    (rc = resolve(cfg->keys_dir, dir, keys, "keys_dir")) != 0 ||
	    (rc = resolve(cfg->tls_cert, dir, cert, "tls_cert")) != 0 ||
	    (rc = resolve(cfg->tls_key, dir, key, "tls_key")) != 0 ||
	    (rc = resolve(cfg->signing_key, cfg->keys_dir, "audit-signing.pem", "keys_dir")) != 0 ||
	    (rc = resolve(cfg->signing_pub, cfg->keys_dir, "audit-signing.pub.pem", "keys_dir")) != 0 ||
	    (rc = resolve(cfg->audit_anchor, dir, "audit-anchor.json", "data directory")) != 0)
		goto out;
	cfg->public_url_given = url != NULL;
	if (url != NULL && strlen(url) >= sizeof cfg->public_url) {
		rc = err_set(ERR_INVALID, "%s: public_url is longer than %zu bytes", path, sizeof cfg->public_url - 1);
		goto out;
	}
	if (url != NULL)
		snprintf(cfg->public_url, sizeof cfg->public_url, "%s", url);
	else
		config_default_public_url(cfg, cfg->port);
out:
	json_decref(root);
	return rc;
}

void config_default_public_url(struct config *cfg, uint16_t port)
{
	if (strchr(cfg->address, ':') != NULL)
		snprintf(cfg->public_url, sizeof cfg->public_url, "https://[%s]:%u", cfg->address, port);
	else
		snprintf(cfg->public_url, sizeof cfg->public_url, "https://%s:%u",
			 strcmp(cfg->address, "0.0.0.0") == 0 ? "127.0.0.1" : cfg->address, port);
}

int config_write_default(const char *dir, const char *listen)
{
	return config_write_default_db(dir, listen, "consentd.db");
}

int config_write_default_db(const char *dir, const char *listen, const char *database)
{
	char path[CONFIG_PATH_CAP + 32];
	snprintf(path, sizeof path, "%s/consentd.conf", dir);
	json_t *root = json_pack("{s:s, s:i, s:s, s:s, s:s, s:s, s:s}", "listen", listen, "threads", 0,
				 "policy", "policy.json", "database", database, "keys_dir", "keys",
				 "tls_cert", "tls/cert.pem", "tls_key", "tls/key.pem");
	char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (text == NULL)
		return err_set(ERR_NOMEM, "out of memory");
	int rc = 0;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (fd < 0) {
		rc = err_set(ERR_IO, "cannot create %s: %s", path, strerror(errno));
	} else {
		size_t n = strlen(text);
		if (write(fd, text, n) != (ssize_t)n || write(fd, "\n", 1) != 1 || fsync(fd) != 0)
			rc = err_set(ERR_IO, "cannot write %s: %s", path, strerror(errno));
		close(fd);
	}
	free(text);
	return rc;
}
