/*
 * limits: every bound consentd enforces, in one place. Input beyond a bound is
 * refused with ERR_TOOBIG (413/431) before it can cost memory or time.
 */
#ifndef CONSENTD_LIMITS_H
#define CONSENTD_LIMITS_H

/* HTTP */
#define LIMIT_CONNECTION_MEMORY (32 * 1024)     /* per connection: request line + headers */
#define LIMIT_BODY_BYTES (64 * 1024)	       /* ordinary JSON request bodies */
#define LIMIT_STREAM_BODY_BYTES (2ULL << 30)   /* bulk import / filter bodies */
#define LIMIT_CONNECTIONS 1024u
#define LIMIT_CONNECTIONS_PER_IP 256u
#define LIMIT_IDLE_SECONDS 30u
#define LIMIT_PATH_BYTES 1024
#define LIMIT_QUERY_VALUE_BYTES 512

/* JSON */
#define LIMIT_JSON_DEPTH 8		/* nesting of request bodies */
#define LIMIT_STRING_BYTES 4096		/* one field value */
#define LIMIT_FIELDS 64			/* keys in one contact object */
#define LIMIT_LIST_ITEMS 64		/* e.g. collected_for */
#define LIMIT_IMPORT_CONSENTS 64	/* consents of one imported contact */
#define LIMIT_LINE_BYTES (64 * 1024)	/* one NDJSON / CSV line */
#define LIMIT_BULK_ENTRIES 20000000ULL	/* entries in one filter or import */

/* Time */
#define LIMIT_CLOCK_AHEAD_SECONDS 300	/* how far a claimed `at` may run ahead of ours */

/* Identifiers */
#define LIMIT_NAME_BYTES 64		/* purpose, channel, role, field names */
#define CONTACT_ID_BYTES 22		/* base64url of 16 random bytes */
#define LIMIT_LABEL_BYTES 128		/* plaintext labels: source, owner (is_identifier) */

/* Policy file */
#define LIMIT_POLICY_BYTES (1024 * 1024)
#define LIMIT_POLICY_DEPTH 12

/* Audit */
#define AUDIT_BATCH_MAX 512		/* entries per group commit */
#define AUDIT_CHECKPOINT_EVERY 10000	/* sign a checkpoint every N entries */
#define AUDIT_CHECKPOINT_SECONDS 60	/* ... or every T seconds */
#define AUDIT_ANCHOR_GENERATIONS 8	/* signed anchors kept beside the newest */
#define AUDIT_VERIFY_EVERY_SECONDS 3600 /* default scheduled verification interval */
#define AUDIT_VERIFY_FULL_EVERY 24	/* every Nth scheduled run verifies from entry 1 */
#define AUDIT_PAGE_MAX 1000		/* entries per GET /v1/audit page */

/* The auditor's console (service/console.h). Sessions end after this much
 * idleness, and at the latest this long after sign-in. A client address
 * that sends CONSOLE_LOGIN_FAILURES wrong tokens within the window is
 * refused (429) until the window has passed; the table of addresses is in
 * memory, per instance, and holds CONSOLE_RATE_SLOTS of them. */
#define CONSOLE_IDLE_SECONDS (15 * 60)
#define CONSOLE_ABSOLUTE_SECONDS (8 * 3600)
#define CONSOLE_LOGIN_FAILURES 5
#define CONSOLE_LOGIN_WINDOW_SECONDS 300
#define CONSOLE_RATE_SLOTS 1024
#define CONSOLE_PAGE_ENTRIES 50		/* entries per console search page */
#define CONSOLE_SCAN_MAX 100000		/* entries one page may look at before it offers "next" */
#define CONSOLE_REPORT_ENTRIES 500	/* entries in one access report page */
#define CONSOLE_CAMPAIGNS_MAX 200	/* filter requests one page or report looks at */
#define CONSOLE_CHART_DAYS 30		/* days shown in the charts */
#define CONSOLE_PHONE_MATCHES 20	/* contacts listed for one shared phone number */

/* Erasure. An erasure's reply waits this long for readers on an older
 * snapshot before its WAL purge gives up (503). The WAL keeps at most this
 * many bytes (stale frames included) after each reset (journal_size_limit). */
#define ERASE_WAL_WAIT_MS 2000
#define STORE_WAL_KEEP_BYTES (8 * 1024 * 1024)
/* PostgreSQL backend: connections one instance opens in all (readers and
 * the writer). A request that finds none free is answered 503, so a burst
 * cannot exhaust the server's max_connections across a fleet. */
#define LIMIT_PG_CONNS 16

#endif
