/*
 * limits: every bound consentd enforces, in one place. Input beyond a bound is
 * refused with ERR_TOOBIG (413/431) before it can cost memory or time.
 */
#ifndef CONSENTD_LIMITS_H
#define CONSENTD_LIMITS_H

/* HTTP */
#define LIMIT_CONNECTION_MEMORY (32 * 1024)  /* per connection: request line + headers */
#define LIMIT_BODY_BYTES (64 * 1024)	     /* ordinary JSON request bodies */
#define LIMIT_STREAM_BODY_BYTES (2ULL << 30) /* bulk import / filter bodies */
#define LIMIT_CONNECTIONS 1024u
#define LIMIT_CONNECTIONS_PER_IP 256u
#define LIMIT_IDLE_SECONDS 30u
#define LIMIT_PATH_BYTES 1024
#define LIMIT_QUERY_VALUE_BYTES 512

/* JSON */
#define LIMIT_JSON_DEPTH 8	       /* nesting of request bodies */
#define LIMIT_STRING_BYTES 4096	       /* one field value */
#define LIMIT_FIELDS 64		       /* keys in one contact object */
#define LIMIT_LIST_ITEMS 64	       /* e.g. collected_for */
#define LIMIT_RELEASES_LISTED 1000     /* releases of one contact an auditor sees at once */
#define LIMIT_IMPORT_CONSENTS 64       /* consents of one imported contact */
#define LIMIT_LINE_BYTES (64 * 1024)   /* one NDJSON / CSV line */
#define LIMIT_BULK_ENTRIES 20000000ULL /* entries in one filter or import */
/* The outreach filter decides entries in blocks (service/domain/outreach.c):
 * entries per block, the block's arena of echoed entries (at least two of
 * the longest echoes, 6 x LIMIT_LINE_BYTES each), and the dedupe set's
 * slots (8 bytes each, at most 3/4 full: 6.29 M distinct entries). */
#define LIMIT_FILTER_BLOCK 2048
#define LIMIT_FILTER_ARENA_BYTES (4 * 1024 * 1024)
#define LIMIT_FILTER_DEDUPE_SLOTS (1ULL << 23)

/* Time */
#define LIMIT_CLOCK_AHEAD_SECONDS 300 /* how far a claimed `at` may run ahead of ours */

/* Identifiers */
#define LIMIT_NAME_BYTES 64    /* purpose, channel, role, field names */
#define CONTACT_ID_BYTES 22    /* base64url of 16 bytes: a counter, then random */
#define CONTACT_ID_SEQ_BYTES 6 /* the counter's share; 80 random bits remain */
#define LIMIT_LABEL_BYTES 128  /* plaintext labels: source, owner (is_identifier) */

/* Policy file */
/* Inbound provider events (POST /v1/events/{provider}). */
#define LIMIT_EVENT_BODY_BYTES (1024 * 1024) /* one provider request: a SendGrid batch */
#define LIMIT_EVENT_BATCH 1000		     /* events in one request; more is 413 */
#define LIMIT_EVENT_ID_BYTES 128	     /* a provider's event id or token */
#define LIMIT_EVENT_TOLERANCE_SECONDS 300    /* signed timestamp freshness, either way */
#define LIMIT_EVENT_GROUPS 64		     /* SendGrid group -> purpose table entries */

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
#define CONSOLE_PAGE_ENTRIES 50	   /* entries per console search page */
#define CONSOLE_SCAN_MAX 100000	   /* entries one page may look at before it offers "next" */
#define CONSOLE_REPORT_ENTRIES 500 /* entries in one access report page */
#define CONSOLE_CAMPAIGNS_MAX 200  /* filter requests one page or report looks at */
#define CONSOLE_CHART_DAYS 30	   /* days shown in the charts */
#define CONSOLE_PHONE_MATCHES 20   /* contacts listed for one shared phone number */

/* Erasure. An erasure's reply waits this long for readers on an older
 * snapshot before its WAL purge gives up (503). The WAL keeps at most this
 * many bytes (stale frames included) after each reset (journal_size_limit). */
#define ERASE_WAL_WAIT_MS 2000
#define STORE_WAL_KEEP_BYTES (8 * 1024 * 1024)
/* The writer connection's page cache, KiB. It fills only as the database
 * grows; at 1,000,000 contacts 64 MiB keeps the random-keyed email blind
 * index cached during an import (32 MiB: 10,903 contacts/s; 64: 26,445). */
#define STORE_WRITER_CACHE_KIB (64 * 1024)

/* Mail (service/mail.c). The worker looks for queued mail this often (and
 * at once when a job queues one), takes at most MAIL_BATCH a round, and
 * gives a message up after MAIL_ATTEMPTS_MAX failed deliveries. */
#define MAIL_POLL_MS 500
#define MAIL_BATCH 32
#define MAIL_ATTEMPTS_MAX 20
#define MAIL_ADDRESS_CAP 320 /* an address on the To: line, with its NUL */
#define MAIL_BODY_CAP 8192   /* one composed message */

/* The public "ask for a link" page (/p/request). A self-requested manage
 * link lives LINK_SELF_TTL_DAYS. Per address (keyed hash) at most
 * LINK_REQUEST_PER_ADDRESS mails per window, per client address at most
 * LINK_REQUEST_PER_CLIENT requests; each table holds LINK_REQUEST_SLOTS
 * keys, in memory, per instance. */
#define LINK_SELF_TTL_DAYS 7
#define LINK_REQUEST_WINDOW_SECONDS 3600
#define LINK_REQUEST_PER_ADDRESS 3
#define LINK_REQUEST_PER_CLIENT 20
#define LINK_REQUEST_SLOTS 1024

/* Outbound webhooks (service/outbound.c, service/domain/webhook.c). */
#define LIMIT_WEBHOOK_URL_BYTES 1024	       /* an endpoint's target URL */
#define LIMIT_WEBHOOK_ENDPOINTS 64	       /* endpoints that may exist at once */
#define LIMIT_WEBHOOK_BODY_BYTES 4096	       /* one event's JSON body (thin payloads) */
#define LIMIT_WEBHOOK_LIST 100		       /* deliveries one GET lists */
#define LIMIT_WEBHOOK_BATCH 32		       /* due deliveries the worker takes per pass */
#define LIMIT_WEBHOOK_TIMEOUT_SECONDS 10       /* a whole delivery attempt */
#define LIMIT_WEBHOOK_CONNECT_SECONDS 5	       /* its connection and TLS handshake */
#define LIMIT_WEBHOOK_MAX_BACKOFF_SECONDS 3600 /* the longest wait between two attempts */

/* PostgreSQL backend: connections one instance opens in all (readers and
 * the writer). A request that finds none free is answered 503, so a burst
 * cannot exhaust the server's max_connections across a fleet. */
#define LIMIT_PG_CONNS 16

#endif
