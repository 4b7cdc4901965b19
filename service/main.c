/*
 * main: the consentd command line. Each verb is one function; every failure
 * goes through exit_for(), the one table from error codes to exit codes:
 *
 *   0  success (audit verify: the trail is intact)
 *   1  runtime failure (I/O, database, crypto)
 *   2  usage error (unknown verb or flag, missing argument)
 *   3  invalid input or configuration (bad policy file, DIR already exists)
 *   4  permission problem (a key file readable by others, missing key, or
 *      keys that do not match the database's key check values)
 *   5  audit verification failed: the trail was altered
 *   6  unavailable (address in use, database locked)
 */
#include "audit/checkpoint.h"
#include "service/writer.h"
#include "audit/verify.h"
#include "policy/policy.h"
#include "service/app.h"
#include "service/auditq.h"
#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/base/limits.h"
#include "service/config.h"
#include "service/crypto/fieldcrypt.h"
#include "service/domain/principal.h"
#include "service/domain/rotation.h"
#include "service/domain/trail.h"
#include "service/keycheck.h"
#include "service/log.h"
#include "service/store/store.h"

#include <errno.h>
#include <jansson.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

extern const char policy_example_json[];

enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1,
	EXIT_USAGE = 2,
	EXIT_INVALID = 3,
	EXIT_PERM = 4,
	EXIT_TAMPERED = 5,
	EXIT_UNAVAILABLE = 6
};

static int exit_for(int code)
{
	switch (code) {
	case ERR_OK: return EXIT_OK;
	case ERR_INVALID:
	case ERR_CONFLICT:
	case ERR_UNPROCESSABLE:
	case ERR_TOOBIG: return EXIT_INVALID;
	case ERR_DENIED:
	case ERR_NOTFOUND: return EXIT_PERM;
	case ERR_UNAVAILABLE: return EXIT_UNAVAILABLE;
	case ERR_AUDIT_ALTERED: return EXIT_TAMPERED;
	default: return EXIT_FAIL;
	}
}

static int fail(int code)
{
	fprintf(stderr, "consentd: %s\n", err_msg());
	return exit_for(code);
}

static const char usage_main[] =
	"usage: consentd <command> [options]\n"
	"\n"
	"commands:\n"
	"  init --data DIR [--listen ADDR:PORT] [--database URI]\n"
	"                                          create a data directory (config, dev TLS\n"
	"                                          certificate, keys, example policy, database)\n"
	"  serve --data DIR [--listen ADDR:PORT]   run the HTTPS service\n"
	"  token create --data DIR --role ROLE --name NAME\n"
	"                                          create an API token (printed once)\n"
	"  keys rotate --data DIR                  new master key version; rewrap every data key\n"
	"  audit verify --data DIR                 check the audit trail against signed checkpoints\n"
	"  audit verify --export FILE --pubkey PEM verify an NDJSON export offline\n"
	"  audit export --data DIR [--format ndjson|csv]\n"
	"                                          write the audit trail to standard output\n"
	"  policy check FILE                       validate a policy file\n"
	"\n"
	"Run 'consentd <command> --help' for details. Exit codes: 0 ok, 1 failure,\n"
	"2 usage, 3 invalid input or configuration, 4 permission, missing key or keys\n"
	"that do not match the database, 5 audit trail altered, 6 unavailable.\n";

struct opts {
	const char *data, *listen, *role, *name, *format, *export_file, *pubkey, *checkpoint;
	const char *database;
	bool help;
};

static int parse_opts(int argc, char **argv, struct opts *o, const char *usage)
{
	static const struct option longopts[] = {
		{ "data", required_argument, NULL, 'd' },
		{ "listen", required_argument, NULL, 'l' },
		{ "role", required_argument, NULL, 'r' },
		{ "name", required_argument, NULL, 'n' },
		{ "format", required_argument, NULL, 'f' },
		{ "export", required_argument, NULL, 'e' },
		{ "pubkey", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ "checkpoint", required_argument, NULL, 'c' },
		{ "database", required_argument, NULL, 'D' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	memset(o, 0, sizeof *o);
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': o->data = optarg; break;
		case 'l': o->listen = optarg; break;
		case 'r': o->role = optarg; break;
		case 'n': o->name = optarg; break;
		case 'f': o->format = optarg; break;
		case 'e': o->export_file = optarg; break;
		case 'p': o->pubkey = optarg; break;
		case 'c': o->checkpoint = optarg; break;
		case 'D': o->database = optarg; break;
		case 'h': o->help = true; break;
		default:
			fprintf(stderr, "consentd: unknown or incomplete option: %s\n%s", argv[optind - 1],
				usage);
			return EXIT_USAGE;
		}
	}
	if (o->help) {
		fputs(usage, stdout);
		return -1;
	}
	return 0;
}

static int write_secret_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return err_set(ERR_IO, "cannot create %s: %s", path, strerror(errno));
	size_t n = strlen(text);
	int rc = 0;
	if (write(fd, text, n) != (ssize_t)n || fsync(fd) != 0)
		rc = err_set(ERR_IO, "cannot write %s: %s", path, strerror(errno));
	close(fd);
	return rc;
}

/* ---- init ---- */

/* The database setting as printed: a URI's password (user:secret@host) is
 * replaced by "***", so the init summary never shows it. */
static const char *shown_location(const char *loc, char *out, size_t cap)
{
	const char *scheme = strstr(loc, "://");
	const char *at = scheme ? strchr(scheme + 3, '@') : NULL;
	const char *colon = scheme ? strchr(scheme + 3, ':') : NULL;
	if (at == NULL || colon == NULL || colon > at)
		return loc;
	snprintf(out, cap, "%.*s:***%s", (int)(colon - loc), loc, at);
	return out;
}

static const char usage_init[] =
	"usage: consentd init --data DIR [--listen ADDR:PORT] [--database URI]\n"
	"Creates DIR (which must not exist or be empty) with consentd.conf, a self-signed\n"
	"development certificate for localhost and 127.0.0.1, the master key, the index key\n"
	"and the audit signing key (all mode 0600), the example policy and an empty database.\n"
	"--database postgresql://USER@HOST/DB (libpq conninfo) puts the data in PostgreSQL\n"
	"instead of DIR/consentd.db and creates or upgrades its schema there; a copy of DIR\n"
	"with another --listen is a further instance on the same database. On a database\n"
	"whose schema exists, DIR's new keys do not match the deployment's key check values\n"
	"and init exits 4: make further instances from a copy instead.\n"
	"The default listen address is " CONFIG_DEFAULT_LISTEN ".\n";

static int cmd_init(int argc, char **argv)
{
	struct opts o;
	char path[CONFIG_PATH_CAP + 64];
	struct store *st = NULL;
	int rc = parse_opts(argc, argv, &o, usage_init);
	if (rc != 0)
		return rc < 0 ? EXIT_OK : rc;
	if (o.data == NULL) {
		fputs(usage_init, stderr);
		return EXIT_USAGE;
	}
	const char *listen = o.listen ? o.listen : CONFIG_DEFAULT_LISTEN;
	char addr[64];
	uint16_t port;
	if ((rc = config_parse_listen(listen, addr, sizeof addr, &port)) != 0)
		return fail(rc);
	if (mkdir(o.data, 0700) != 0) {
		if (errno != EEXIST)
			return fail(err_set(ERR_IO, "cannot create %s: %s", o.data, strerror(errno)));
		if (rmdir(o.data) != 0)
			return fail(err_set(ERR_INVALID,
					    "%s already exists and is not empty; refusing to overwrite it",
					    o.data));
		if (mkdir(o.data, 0700) != 0)
			return fail(err_set(ERR_IO, "cannot create %s: %s", o.data, strerror(errno)));
	}
	if ((rc = config_write_default_db(o.data, listen, o.database ? o.database : "consentd.db")) != 0)
		return fail(rc);
	struct config cfg;
	if ((rc = config_load(&cfg, o.data)) != 0)
		return fail(rc);
	if ((rc = keyring_init_dir(cfg.keys_dir)) != 0)
		return fail(rc);
	if ((rc = audit_signer_generate_file(cfg.signing_key)) != 0)
		return fail(rc);
	struct audit_signer *signer = NULL;
	if ((rc = audit_signer_load(&signer, cfg.signing_key)) != 0 ||
	    (rc = audit_signer_save_public(signer, cfg.signing_pub)) != 0) {
		audit_signer_free(signer);
		return fail(rc);
	}
	audit_signer_free(signer);
	snprintf(path, sizeof path, "%s/tls", o.data);
	if (mkdir(path, 0700) != 0)
		return fail(err_set(ERR_IO, "cannot create %s: %s", path, strerror(errno)));
	if ((rc = tlscert_generate(cfg.tls_cert, cfg.tls_key, LIMIT_DEV_CERT_DAYS)) != 0)
		return fail(rc);
	if ((rc = write_secret_file(cfg.policy, policy_example_json, 0640)) != 0)
		return fail(rc);
	if ((rc = store_open(&st, cfg.database)) != 0)
		return fail(rc);
	/* On a database that already has a schema (a further instance), the
	 * new folder's keys must be the deployment's; on a new one they become
	 * them. */
	struct keyring *kr = NULL;
	if ((rc = keyring_open(&kr, cfg.keys_dir)) == 0)
		rc = keycheck_verify(st, kr, cfg.signing_key, cfg.keys_dir, NULL);
	keyring_free(kr);
	store_close(st);
	if (rc != 0) {
		fprintf(stderr,
			"consentd: %s was created, but its new keys cannot serve this database: remove it, "
			"and make a further instance from a copy of an existing instance's folder\n",
			o.data);
		return fail(rc);
	}
	char shown[CONFIG_PATH_CAP];
	printf("Initialised %s\n"
	       "  config:      %s/consentd.conf (listen %s)\n"
	       "  policy:      %s\n"
	       "  database:    %s\n"
	       "  keys:        %s (keep outside backups of the database; mode 0600)\n"
	       "  certificate: %s (self-signed, for development)\n"
	       "Next: consentd token create --data %s --role admin --name me\n"
	       "      consentd serve --data %s\n",
	       o.data, o.data, listen, cfg.policy, shown_location(cfg.database, shown, sizeof shown),
	       cfg.keys_dir, cfg.tls_cert, o.data, o.data);
	return EXIT_OK;
}

/* ---- serve ---- */

static const char usage_serve[] =
	"usage: consentd serve --data DIR [--listen ADDR:PORT]\n"
	"Serves the HTTPS API until SIGTERM or SIGINT. SIGHUP reloads the policy file; an\n"
	"invalid file is refused and the old policy stays live. Refuses to start when a key\n"
	"file is missing or readable by group or others, or when the policy is invalid.\n"
	"Core dumps are off (and the process not dumpable) unless consentd.conf sets\n"
	"\"allow_core_dumps\": true.\n";

/* A core dump of the server holds the master and index keys and whatever
 * personal data requests had in flight; so does a debugger attached by the
 * service user. Unless the configuration says "allow_core_dumps": true, the
 * process is made non-dumpable (no core, no ptrace or /proc/PID/mem by
 * unprivileged users) and its core size limit, soft and hard, set to 0. This
 * runs before any key is read; if it cannot be done the server refuses to
 * start. The config is read here only for the switch: app_open reads it
 * again and reports any error in it. */
static int serve_refuse_core_dumps(const char *dir)
{
	struct config cfg;
	if (config_load(&cfg, dir) == 0 && cfg.allow_core_dumps) {
		fprintf(stderr, "consentd: allow_core_dumps is on: a core dump may hold personal data "
				"and working copies of keys\n");
		return 0;
	}
	struct rlimit none = { 0, 0 };
	if (setrlimit(RLIMIT_CORE, &none) != 0 || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		return err_set(ERR_INTERNAL, "cannot turn core dumps off: %s", strerror(errno));
	return 0;
}

static int cmd_serve(int argc, char **argv)
{
	struct opts o;
	struct app app;
	int rc = parse_opts(argc, argv, &o, usage_serve);
	if (rc != 0)
		return rc < 0 ? EXIT_OK : rc;
	if (o.data == NULL) {
		fputs(usage_serve, stderr);
		return EXIT_USAGE;
	}
	/* Signals are taken by sigwait in app_serve; block them before any
	 * thread starts so that every thread inherits the mask. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* The log format first, so every line of the run has it; an invalid
	 * config is reported by app_open below. */
	struct config lc;
	if (config_load(&lc, o.data) == 0 && (rc = log_setup(lc.log_json)) != 0)
		return fail(rc);
	if ((rc = serve_refuse_core_dumps(o.data)) != 0)
		return fail(rc);
	if ((rc = app_open(&app, o.data, o.listen)) != 0) {
		int code = fail(rc);
		app_close(&app);
		return code;
	}
	fprintf(stderr, "consentd: serving %s on https://%s:%u (policy %s, %u threads)\n", o.data,
		app.cfg.address, http_port(app.http), app.cfg.policy, app.cfg.threads);
	app_serve(&app);
	app_close(&app);
	return EXIT_OK;
}

/* ---- token create ---- */

static const char usage_token[] =
	"usage: consentd token create --data DIR --role ROLE --name NAME\n"
	"       consentd token revoke --data DIR --name NAME\n"
	"create: a new API principal with a random token, printed once on standard output;\n"
	"only its SHA-256 is stored. ROLE must be a role of the policy.\n"
	"revoke: the principal's token stops working (within 10 s on a running server, at\n"
	"once after SIGHUP). Both are recorded in the audit trail.\n";

struct token_job {
	const char *name, *role;
	uint8_t hash[32];
};

static int apply_token(struct store_conn *w, struct writer_job *job)
{
	struct token_job *tj = job->ctx;
	struct txn t = { .c = w, .now_us = now_us() };
	return principal_create(&t, tj->name, tj->role, tj->hash);
}

static int open_for_cli(const char *dir, struct config *cfg, struct store **st, struct writer **log)
{
	int rc = config_load(cfg, dir);
	if (rc == 0)
		rc = store_open(st, cfg->database);
	if (rc == 0)
		rc = writer_open(log, *st, cfg->signing_key, cfg->audit_anchor);
	/* A verb that appends to a trail it cannot prove would sign over it. */
	char why[AUDIT_REASON_BYTES];
	if (rc == 0 && writer_fault(*log, why, sizeof why) != AUDIT_FAULT_NONE)
		rc = err_set(ERR_AUDIT_ALTERED,
			     "the audit trail is not intact (%s); nothing was done. "
			     "Run consentd audit verify --data %s",
			     why, dir);
	return rc;
}

/* Runs apply in the audit log's transaction, recorded as the operator's
 * action (client "cli") with detail (stolen; NULL for none, or set by apply).
 * Returns the log's error, or apply's with its message. */
static int operator_job(struct writer *log, const char *action, const char *reason, json_t *detail,
			int (*apply)(struct store_conn *, struct writer_job *), void *ctx)
{
	struct writer_job job;
	memset(&job, 0, sizeof job);
	int rc = audit_entry_fill(&job.entry, "operator", "", action, "", "", "", "allow", reason);
	/* A detail that does not fit is refused, not cut: nothing is done. */
	if (detail != NULL) {
		int drc = audit_entry_set_detail(&job.entry, detail);
		if (drc != 0 && rc == 0)
			rc = drc == ERR_TOOBIG
				     ? err_set(drc,
					       "the audit detail of %s is longer than %zu bytes; nothing was done",
					       action, sizeof job.entry.detail - 1)
				     : drc;
	}
	if (rc != 0)
		return rc;
	snprintf(job.entry.client, sizeof job.entry.client, "cli");
	job.apply = apply;
	job.ctx = ctx;
	rc = writer_run(log, &job);
	if (rc == 0 && job.apply_rc != 0)
		rc = err_set(job.apply_rc, "%s", job.apply_msg);
	return rc;
}

static int apply_revoke(struct store_conn *w, struct writer_job *job)
{
	const char *name = job->ctx;
	struct txn t = { .c = w, .now_us = now_us() };
	int rc = principal_revoke(&t, name);
	if (rc != 0) {
		snprintf(job->entry.decision, sizeof job->entry.decision, "deny");
		snprintf(job->entry.reason, sizeof job->entry.reason, "%s",
			 rc == ERR_NOTFOUND ? "unknown_principal" : "error");
	}
	return rc;
}

static int cmd_token_revoke(int argc, char **argv)
{
	struct opts o;
	struct config cfg;
	struct store *st = NULL;
	struct writer *log = NULL;
	int rc = parse_opts(argc, argv, &o, usage_token);
	if (rc != 0)
		return rc < 0 ? EXIT_OK : rc;
	if (o.data == NULL || o.name == NULL) {
		fputs(usage_token, stderr);
		return EXIT_USAGE;
	}
	/* The name goes into the entry's detail: a control character there
	 * would make the entry unexportable. Older principals may have names
	 * outside today's charset, so only what the trail cannot hold is refused. */
	if (strlen(o.name) == 0 || strlen(o.name) > LIMIT_PRINCIPAL_BYTES ||
	    strpbrk(o.name, "\t\r\n") != NULL || !is_clean_utf8(o.name, strlen(o.name)) ||
	    utf8_chars(o.name, strlen(o.name)) > LIMIT_PRINCIPAL_CHARS)
		return fail(err_set(ERR_INVALID, "--name must be 1 to %d printable characters",
				    LIMIT_PRINCIPAL_CHARS));
	if ((rc = open_for_cli(o.data, &cfg, &st, &log)) != 0)
		goto out;
	rc = operator_job(log, "token.revoke", "revoked", json_pack("{s:s}", "principal", o.name),
			  apply_revoke, (void *)o.name);
	if (rc == 0)
		fprintf(stderr, "consentd: revoked principal %s\n", o.name);
out:
	writer_close(log);
	store_close(st);
	return rc == 0 ? EXIT_OK : fail(rc);
}

static int cmd_token(int argc, char **argv)
{
	struct opts o;
	struct config cfg;
	struct store *st = NULL;
	struct writer *log = NULL;
	struct policy *p = NULL;
	struct policy_errors *errs = NULL;
	char token[TOKEN_CHARS + 1];
	if (argc >= 2 && strcmp(argv[1], "revoke") == 0)
		return cmd_token_revoke(argc - 1, argv + 1);
	if (argc < 2 || strcmp(argv[1], "create") != 0) {
		fputs(usage_token, argc >= 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr);
		return argc >= 2 && strcmp(argv[1], "--help") == 0 ? EXIT_OK : EXIT_USAGE;
	}
	int rc = parse_opts(argc - 1, argv + 1, &o, usage_token);
	if (rc != 0)
		return rc < 0 ? EXIT_OK : rc;
	if (o.data == NULL || o.role == NULL || o.name == NULL) {
		fputs(usage_token, stderr);
		return EXIT_USAGE;
	}
	/* The name becomes the actor of every entry this token writes: a tab or
	 * a newline there would break every later export, and "customer" would
	 * pass staff actions off as the customer's own. */
	if (!is_principal_name(o.name))
		return fail(err_set(ERR_INVALID,
				    "--name must be 1 to %d characters of printable text (no control or "
				    "invisible characters, no leading or trailing space) and not customer, "
				    "operator or system",
				    LIMIT_PRINCIPAL_CHARS));
	if ((rc = config_load(&cfg, o.data)) != 0)
		return fail(rc);
	if ((rc = policy_load_file(&p, cfg.policy, &errs)) != 0) {
		policy_errors_print(errs, stderr);
		policy_errors_free(errs);
		return fail(rc);
	}
	if (!policy_role_exists(p, o.role)) {
		policy_unref(p);
		return fail(err_set(ERR_INVALID, "role \"%s\" is not declared in %s", o.role, cfg.policy));
	}
	policy_unref(p);
	if ((rc = open_for_cli(o.data, &cfg, &st, &log)) != 0)
		goto out;
	struct token_job t = { .name = o.name, .role = o.role };
	if ((rc = token_generate(token)) != 0 || (rc = crypto_sha256(token, strlen(token), t.hash)) != 0)
		goto out;
	rc = operator_job(log, "token.create", "created",
			  json_pack("{s:s, s:s}", "principal", o.name, "role", o.role), apply_token, &t);
	if (rc == 0) {
		printf("%s\n", token);
		fprintf(stderr,
			"consentd: created principal %s with role %s; the token above is shown only once\n",
			o.name, o.role);
	}
out:
	crypto_wipe(token, sizeof token);
	writer_close(log);
	store_close(st);
	return rc == 0 ? EXIT_OK : fail(rc);
}

/* ---- keys rotate ---- */

static const char usage_keys[] =
	"usage: consentd keys rotate --data DIR\n"
	"Creates master key version N+1, rewraps every contact's data key under it in one\n"
	"transaction, and retires the older versions (renamed to master-vN.key.retired;\n"
	"delete them once no backup needs them). A running server loads the new version by\n"
	"itself the first time it meets it (SIGHUP loads it at once).\n";

struct rotate_job {
	struct keyring *kr;
	int64_t count;
};

static int apply_rotate(struct store_conn *w, struct writer_job *job)
{
	struct rotate_job *r = job->ctx;
	struct txn t = { .c = w, .keys = r->kr, .now_us = now_us() };
	/* The new version's key check value commits with the rewrap, so the
	 * deployment never holds data under a version it cannot check. */
	int rc = keycheck_add_version(w, r->kr, rotation_version(r->kr));
	if (rc == 0)
		rc = rotation_rewrap(&t, &r->count);
	int drc =
		audit_entry_set_detail(&job->entry, json_pack("{s:I, s:i}", "contacts", (json_int_t)r->count,
							      "key_version", rotation_version(r->kr)));
	return rc != 0 ? rc : drc;
}

static int cmd_keys(int argc, char **argv)
{
	struct opts o;
	struct config cfg;
	struct store *st = NULL;
	struct writer *log = NULL;
	struct rotate_job r = { 0 };
	if (argc < 2 || strcmp(argv[1], "rotate") != 0) {
		bool help = argc >= 2 && strcmp(argv[1], "--help") == 0;
		fputs(usage_keys, help ? stdout : stderr);
		return help ? EXIT_OK : EXIT_USAGE;
	}
	int rc = parse_opts(argc - 1, argv + 1, &o, usage_keys);
	if (rc != 0)
		return rc < 0 ? EXIT_OK : rc;
	if (o.data == NULL) {
		fputs(usage_keys, stderr);
		return EXIT_USAGE;
	}
	int old = 0;
	if ((rc = config_load(&cfg, o.data)) != 0)
		return fail(rc);
	if ((rc = rotation_open(cfg.keys_dir, &r.kr, &old)) != 0)
		goto out;
	/* Rotating with keys that are not the deployment's would rewrap
	 * nothing it can read; the new version's check value is recorded in
	 * the rotation's own transaction (apply_rotate). */
	if ((rc = open_for_cli(o.data, &cfg, &st, &log)) != 0 ||
	    (rc = keycheck_verify(st, r.kr, cfg.signing_key, cfg.keys_dir, NULL)) != 0)
		goto out;
	if ((rc = rotation_add_version(r.kr, cfg.keys_dir)) != 0)
		goto out;
	if ((rc = operator_job(log, "keys.rotate", "rotated", NULL, apply_rotate, &r)) != 0) {
		err_set(rc, "rewrapping failed, nothing changed: %s", err_msg());
		goto out;
	}
	/* Every live contact now uses the new version; retire the others. */
	if ((rc = rotation_retire(r.kr, cfg.keys_dir, old)) != 0)
		goto out;
	printf("rotated: master key version %d -> %d; %lld data keys rewrapped; old versions retired\n", old,
	       rotation_version(r.kr), (long long)r.count);
out:
	writer_close(log);
	store_close(st);
	keyring_free(r.kr);
	return rc == 0 ? EXIT_OK : fail(rc);
}

/* ---- audit ---- */

static const char usage_audit[] =
	"usage: consentd audit verify --data DIR [--checkpoint FILE]\n"
	"       consentd audit verify --export FILE --pubkey PUBLIC.pem --checkpoint FILE\n"
	"       consentd audit export --data DIR [--format ndjson|csv]\n"
	"verify: recomputes the hash chain and checks every signed checkpoint (those in the\n"
	"database, the anchor file DIR/audit-anchor.json, and FILE: a checkpoint you kept,\n"
	"e.g. from GET /v1/audit/checkpoints/latest); prints the first bad sequence number\n"
	"and why, and exits 5, if anything was edited, deleted, inserted, reordered,\n"
	"truncated or rewritten. An export is verified only against a checkpoint you hold.\n"
	"export: writes every entry to standard output (NDJSON verifies offline; CSV is\n"
	"for people).\n";

struct file_iter {
	FILE *f;
	char *line;
	size_t cap;
	int64_t lineno;
};

static int next_from_file(void *arg, struct audit_entry *out)
{
	struct file_iter *it = arg;
	ssize_t n = getline(&it->line, &it->cap, it->f);
	if (n <= 0)
		return 0;
	it->lineno++;
	int rc = audit_entry_from_json(out, it->line, (size_t)n);
	if (rc != 0)
		return err_set(rc, "line %lld: %s", (long long)it->lineno, err_msg());
	return 1;
}

static int print_verdict(const struct audit_verify_result *res)
{
	char head[65];
	audit_hex_encode(res->head, sizeof res->head, head);
	if (res->ok) {
		printf("ok: %lld entries, %lld signed checkpoints verified (anchored up to %lld); head %s\n",
		       (long long)res->entries, (long long)res->checkpoints, (long long)res->anchored, head);
		if (res->entries > res->anchored)
			printf("note: entries %lld to %lld are not yet covered by a signed checkpoint\n",
			       (long long)res->anchored + 1, (long long)res->entries);
		return EXIT_OK;
	}
	printf("FAILED at seq %lld (%s): %s\n", (long long)res->first_bad_seq, audit_fault_name(res->fault),
	       res->reason);
	return EXIT_TAMPERED;
}

static int cmd_audit(int argc, char **argv)
{
	struct opts o;
	struct config cfg;
	struct store *st = NULL;
	struct store_conn *c = NULL;
	struct audit_verify_result res;
	if (argc < 2 || (strcmp(argv[1], "verify") != 0 && strcmp(argv[1], "export") != 0)) {
		bool help = argc >= 2 && strcmp(argv[1], "--help") == 0;
		fputs(usage_audit, help ? stdout : stderr);
		return help ? EXIT_OK : EXIT_USAGE;
	}
	bool verify = strcmp(argv[1], "verify") == 0;
	int rc = parse_opts(argc - 1, argv + 1, &o, usage_audit);
	if (rc != 0)
		return rc < 0 ? EXIT_OK : rc;
	if (verify && o.export_file != NULL) {
		/* Offline: an NDJSON export; checkpoints come from GET
		 * /v1/audit/checkpoints are not needed to check the chain itself. */
		struct file_iter it = { 0 };
		struct audit_pubkey *key = NULL;
		struct audit_checkpoint cp;
		if (o.pubkey == NULL || o.checkpoint == NULL) {
			/* Without a signed checkpoint an export proves nothing: anyone
			 * can recompute a shortened or rewritten chain. */
			fputs(usage_audit, stderr);
			return EXIT_USAGE;
		}
		if ((rc = auditq_read_checkpoint(o.checkpoint, &cp)) != 0)
			return fail(rc == ERR_NOTFOUND ? err_set(ERR_NOTFOUND, "cannot open %s", o.checkpoint)
						       : rc);
		if ((rc = audit_pubkey_load(&key, o.pubkey)) != 0)
			return fail(rc);
		it.f = strcmp(o.export_file, "-") == 0 ? stdin : fopen(o.export_file, "r");
		if (it.f == NULL) {
			audit_pubkey_free(key);
			return fail(err_set(ERR_NOTFOUND, "cannot open %s", o.export_file));
		}
		const struct audit_pubkey *keys[1] = { key };
		rc = audit_verify(next_from_file, &it, &cp, 1, keys, 1, &res);
		if (it.f != stdin)
			fclose(it.f);
		free(it.line);
		audit_pubkey_free(key);
		return rc == 0 ? print_verdict(&res) : fail(rc);
	}
	if (o.data == NULL) {
		fputs(usage_audit, stderr);
		return EXIT_USAGE;
	}
	if ((rc = config_load(&cfg, o.data)) != 0 || (rc = store_open(&st, cfg.database)) != 0 ||
	    (rc = store_conn_get(st, &c)) != 0) {
		store_close(st);
		return fail(rc);
	}
	int code;
	if (verify) {
		const char *extra[1] = { o.checkpoint };
		rc = auditq_verify(c, cfg.signing_pub, cfg.audit_anchor, extra, o.checkpoint != NULL ? 1 : 0,
				   &res);
		code = rc == 0 ? print_verdict(&res) : fail(rc);
	} else {
		bool csv = o.format != NULL && strcmp(o.format, "csv") == 0;
		if (o.format != NULL && !csv && strcmp(o.format, "ndjson") != 0) {
			store_conn_put(st, c);
			store_close(st);
			fputs(usage_audit, stderr);
			return EXIT_USAGE;
		}
		struct store_audit_filter all;
		struct trail_cursor *cur = NULL;
		struct audit_entry *e = malloc(sizeof *e);
		char *buf = malloc(AUDIT_JSON_MAX > AUDIT_CSV_MAX ? AUDIT_JSON_MAX : AUDIT_CSV_MAX);
		memset(&all, 0, sizeof all);
		rc = (e && buf) ? trail_cursor_open(st, &all, &cur) : err_set(ERR_NOMEM, "out of memory");
		if (rc == 0 && csv && audit_csv_header(buf, AUDIT_CSV_MAX) > 0)
			fputs(buf, stdout);
		while (rc == 0 && (rc = trail_cursor_next(cur, e)) == 1) {
			int n = csv ? audit_entry_format_csv(e, buf, AUDIT_CSV_MAX)
				    : audit_entry_format_json(e, buf, AUDIT_JSON_MAX);
			if (n < 0) {
				rc = n;
				break;
			}
			fputs(buf, stdout);
			if (!csv)
				fputc('\n', stdout);
			rc = 0;
		}
		trail_cursor_close(cur);
		free(e);
		free(buf);
		code = rc == 0 ? EXIT_OK : fail(rc);
	}
	store_conn_put(st, c);
	store_close(st);
	return code;
}

/* ---- policy check ---- */

static const char usage_policy[] =
	"usage: consentd policy check FILE\n"
	"Validates a policy file. Prints OK, or every error as FILE: $.json.path: reason,\n"
	"and exits 3.\n";

static int cmd_policy(int argc, char **argv)
{
	struct policy *p = NULL;
	struct policy_errors *errs = NULL;
	if ((argc >= 2 && strcmp(argv[1], "--help") == 0) || (argc >= 3 && strcmp(argv[2], "--help") == 0)) {
		fputs(usage_policy, stdout);
		return EXIT_OK;
	}
	if (argc != 3 || strcmp(argv[1], "check") != 0) {
		fputs(usage_policy, stderr);
		return EXIT_USAGE;
	}
	int rc = policy_load_file(&p, argv[2], &errs);
	if (rc == 0) {
		printf("OK: %s (%zu purposes, %zu fields)\n", argv[2], policy_purpose_count(p),
		       policy_field_count(p));
		policy_unref(p);
		return EXIT_OK;
	}
	if (errs != NULL && policy_errors_count(errs) > 0)
		policy_errors_print(errs, stdout);
	else
		printf("%s: %s\n", argv[2], err_msg());
	policy_errors_free(errs);
	return exit_for(rc);
}

#ifndef CONSENTD_VERSION
#define CONSENTD_VERSION "unknown"
#endif

int main(int argc, char **argv)
{
	if (argc < 2) {
		fputs(usage_main, stderr);
		return EXIT_USAGE;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
		fputs(usage_main, stdout);
		return EXIT_OK;
	}
	if (strcmp(cmd, "--version") == 0) {
		/* The store backends built in: an operator pointing an instance
		 * at PostgreSQL can see whether this binary can. */
		printf("consentd %s (store backends: sqlite%s)\n", CONSENTD_VERSION,
#ifdef CONSENTD_WITH_POSTGRES
		       ", postgresql"
#else
		       ""
#endif
		);
		return EXIT_OK;
	}
	if (strcmp(cmd, "init") == 0)
		return cmd_init(argc - 1, argv + 1);
	if (strcmp(cmd, "serve") == 0)
		return cmd_serve(argc - 1, argv + 1);
	if (strcmp(cmd, "token") == 0)
		return cmd_token(argc - 1, argv + 1);
	if (strcmp(cmd, "keys") == 0)
		return cmd_keys(argc - 1, argv + 1);
	if (strcmp(cmd, "audit") == 0)
		return cmd_audit(argc - 1, argv + 1);
	if (strcmp(cmd, "policy") == 0)
		return cmd_policy(argc - 1, argv + 1);
	fprintf(stderr, "consentd: unknown command \"%s\"\n%s", cmd, usage_main);
	return EXIT_USAGE;
}
