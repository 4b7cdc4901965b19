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
#define LIMIT_JSON_DEPTH 8	   /* nesting of request bodies */
#define LIMIT_STRING_BYTES 4096	   /* one field value */
#define LIMIT_FIELDS 64		   /* keys in one contact object */
#define LIMIT_LIST_ITEMS 64	   /* e.g. collected_for */
#define LIMIT_RELEASES_LISTED 1000 /* releases of one contact an auditor sees at once */
/* Release times one shared-cap count reads per store call (people x the
 * cap's max): 512 KiB of int64 per buffer, and one round trip on
 * PostgreSQL for a whole filter block at small caps. */
#define LIMIT_RELEASE_TIMES_BATCH 65536
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
#define LIMIT_NAME_BYTES 64 /* purpose, channel, role, field names */
/* A staff principal's name (the actor of its entries) counts characters
 * (code points), as the API's maxLength does: 64 of any script, within the
 * 255 bytes an actor field holds (64 CJK characters are 192). */
#define LIMIT_PRINCIPAL_CHARS 64
#define LIMIT_PRINCIPAL_BYTES 255
#define CONTACT_ID_BYTES 22    /* base64url of 16 bytes: a counter, then random */
#define CONTACT_ID_SEQ_BYTES 6 /* the counter's share; 80 random bits remain */
#define LIMIT_LABEL_BYTES 128  /* plaintext labels: source, owner (is_identifier) */
#define LIMIT_ID_RAW_BYTES 16  /* the 128 bits behind a base64url id (CONTACT_ID_BYTES) */

/* A file path consentd is configured with or builds (Linux's PATH_MAX),
 * and room for one with a suffix the code adds (".retired", "-wal", a
 * temporary name, "/t.db"). A longer path is refused, never cut. */
#define LIMIT_FILE_PATH_CAP 4096
#define LIMIT_DERIVED_PATH_CAP (LIMIT_FILE_PATH_CAP + 104)

/* One error message (err_set), per thread: a sentence with a path or a
 * name in it; a longer one is cut by err_set and nowhere else. */
#define LIMIT_ERROR_MESSAGE_BYTES 512

/* Streamed replies (exports, bulk results) are handed to the HTTP layer
 * in blocks of this size: large enough that a 20-million-line answer is
 * not a million small writes, small enough to sit in each worker's stack. */
#define LIMIT_STREAM_BLOCK_BYTES (64 * 1024)

/* The self-signed certificate `consentd init` makes, for development: a
 * year, after which `init` in a new folder (or a real certificate) is due. */
#define LIMIT_DEV_CERT_DAYS 365
/* The TLS certificate and key files read at start: a chain of a few PEM
 * certificates is kilobytes; a megabyte is a wrong file. */
#define LIMIT_PEM_FILE_BYTES (1024 * 1024)

/* Contact addresses, normalised (normalize_email, normalize_phone): an
 * email is at most 254 bytes (RFC 5321's path limit less its angle
 * brackets); a phone is E.164, '+' and 8 to 15 digits. The _CAP sizes hold
 * one with its NUL. */
#define LIMIT_EMAIL_BYTES 254
#define LIMIT_EMAIL_CAP (LIMIT_EMAIL_BYTES + 2)
#define LIMIT_PHONE_DIGITS_MIN 8
#define LIMIT_PHONE_DIGITS 15
#define LIMIT_PHONE_CAP (LIMIT_PHONE_DIGITS + 2)

/* Policy file */
/* Inbound provider events (POST /v1/events/{provider}). */
#define LIMIT_EVENT_BODY_BYTES (1024 * 1024) /* one provider request: a SendGrid batch */
#define LIMIT_EVENT_BATCH 1000		     /* events in one request; more is 413 */
#define LIMIT_EVENT_ID_BYTES 128	     /* a provider's event id or token */
#define LIMIT_EVENT_TOLERANCE_SECONDS 300    /* signed timestamp freshness, either way */
#define LIMIT_EVENT_GROUPS 64		     /* SendGrid group -> purpose table entries */
#define LIMIT_SES_TOPICS 16		     /* events.ses.topic_arns */
#define LIMIT_SES_HOST_BYTES 256	     /* events.ses.cert_host_suffix, a URL's host */
#define LIMIT_SNS_TOLERANCE_SECONDS 3600     /* an SNS Timestamp's age (it stays on retries) */
#define LIMIT_SNS_CERT_BYTES 16384	     /* one fetched SNS signing certificate */
#define LIMIT_SNS_CERT_CACHE 8		     /* signing certificates kept, by URL */
#define LIMIT_SNS_CERT_SECONDS 86400	     /* how long one is kept */
#define LIMIT_SNS_FETCH_SECONDS 5	     /* a certificate fetch or subscription confirmation */

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
/* While the WAL purge waits, each checkpoint try waits this long for a
 * lock and the next try follows this much later: short, so a reader on an
 * old snapshot never holds up the queued writes for the whole bound. */
#define ERASE_WAL_TRY_MS 20
#define ERASE_WAL_RETRY_US 5000
/* How long a SQLite connection waits for a lock before SQLITE_BUSY: well
 * over one group commit (AUDIT_BATCH_MAX entries), so a busy moment is a
 * wait and not an error. The background checkpointer waits less: it
 * simply tries again at its next turn. */
#define STORE_BUSY_TIMEOUT_MS 5000
#define STORE_CHECKPOINTER_BUSY_MS 1000
/* The writer connection's page cache, KiB. It fills only as the database
 * grows; at 1,000,000 contacts 64 MiB keeps the random-keyed email blind
 * index cached during an import (32 MiB: 10,903 contacts/s; 64: 26,445). */
#define STORE_WRITER_CACHE_KIB (64 * 1024)

/* Audit verification (audit/verify.c) reads entries on a thread of its own
 * and hands them to the checking thread in blocks of VERIFY_BLOCK_ENTRIES,
 * VERIFY_BLOCKS blocks in flight (an entry is 7 KiB: 3.5 MiB). Blocks of 64
 * cost twice the system time in wake-ups. */
#define VERIFY_BLOCK_ENTRIES 128
#define VERIFY_BLOCKS 4

/* Random bytes are drawn from OpenSSL this many at a time, per thread
 * (crypto_random in service/crypto/fieldcrypt.c); larger requests go to
 * OpenSSL directly. */
#define CRYPTO_RANDOM_POOL_BYTES 4096

/* Mail (service/mail.c). The worker looks for queued mail this often (and
 * at once when a job queues one), takes at most MAIL_BATCH a round, and
 * gives a message up after MAIL_ATTEMPTS_MAX failed deliveries. */
#define MAIL_POLL_MS 500
#define MAIL_BATCH 32
#define MAIL_ATTEMPTS_MAX 20
#define MAIL_ADDRESS_CAP 320 /* an address on the To: line, with its NUL */
#define MAIL_BODY_CAP 8192   /* one composed message's text part */
#define MAIL_HTML_CAP 32768  /* and its HTML part (a purpose's description, escaped, fits) */
/* A failed delivery through the relay is tried again after
 * MAIL_RETRY_BASE_MS (config mail.retry_base_ms), doubling each time up to
 * MAIL_RETRY_MAX_MS. curl gives up on connecting after
 * MAIL_SMTP_CONNECT_TIMEOUT_S and on the whole conversation after
 * MAIL_SMTP_TIMEOUT_S, so one dead relay cannot stall the worker. */
#define MAIL_RETRY_BASE_MS 30000
#define MAIL_RETRY_MAX_MS (6 * 3600 * 1000)
#define MAIL_SMTP_CONNECT_TIMEOUT_S 10
#define MAIL_SMTP_TIMEOUT_S 60
/* Several instances on one database claim a batch of mail before sending
 * it (store_mail_claim), for MAIL_CLAIM_LEASE_MS: a worker starts no
 * delivery that could outlast its claim (MAIL_SMTP_TIMEOUT_S plus a
 * margin), and the claims of an instance killed mid-batch run out after
 * that long, when any instance sends those messages. */
#define MAIL_CLAIM_LEASE_MS (5 * 60 * 1000)

/* The public "ask for a link" page (/p/request). A self-requested manage
 * link lives LINK_SELF_TTL_DAYS. Per address (keyed hash) at most
 * LINK_REQUEST_PER_ADDRESS mails per window, per client address at most
 * LINK_REQUEST_PER_CLIENT requests; each table holds LINK_REQUEST_SLOTS
 * keys, in memory, per instance. */
#define LINK_SELF_TTL_DAYS 7
/* A double opt-in confirmation link (service/domain/optin.h) confirms
 * within this many days, once. */
#define OPTIN_TTL_DAYS 7
/* A confirming request's User-Agent kept as evidence, at most this long
 * (a longer one is left out, not cut). */
#define LIMIT_USER_AGENT_BYTES 512
#define LINK_REQUEST_WINDOW_SECONDS 3600
#define LINK_REQUEST_PER_ADDRESS 3
#define LINK_REQUEST_PER_CLIENT 20
#define LINK_REQUEST_SLOTS 1024

/* Outbound webhooks (service/outbound.c, service/domain/webhook.c). */
#define LIMIT_WEBHOOK_URL_BYTES 1024	 /* an endpoint's target URL */
#define LIMIT_WEBHOOK_ENDPOINTS 64	 /* endpoints that may exist at once */
#define LIMIT_WEBHOOK_BODY_BYTES 4096	 /* one event's JSON body (thin payloads) */
#define LIMIT_WEBHOOK_LIST 100		 /* deliveries one GET lists */
#define LIMIT_WEBHOOK_BATCH 32		 /* due deliveries a worker takes per pass */
#define LIMIT_WEBHOOK_WORKERS 4		 /* delivery workers: requests in flight, in all */
#define LIMIT_WEBHOOK_TIMEOUT_SECONDS 10 /* a whole delivery attempt */
/* A worker claims an endpoint for this long before posting to it
 * (store_webhook_claim): one instance posts to an endpoint at a time, in
 * order; no attempt starts that could outlast the claim, and a killed
 * instance's claim runs out after this long. */
#define LIMIT_WEBHOOK_CLAIM_SECONDS 120
/* webhooks.retry_base_ms (the first retry's wait, doubling after) and
 * webhooks.max_age_seconds (when a delivery is given up): the defaults,
 * and the largest values consentd.conf may set (an hour; thirty days). */
#define LIMIT_WEBHOOK_RETRY_BASE_MS_DEFAULT 30000
#define LIMIT_WEBHOOK_RETRY_BASE_MS_MAX 3600000
#define LIMIT_WEBHOOK_MAX_AGE_SECONDS_DEFAULT (3 * 24 * 3600)
#define LIMIT_WEBHOOK_MAX_AGE_SECONDS_MAX (30 * 24 * 3600)
#define LIMIT_WEBHOOK_CONNECT_SECONDS 5	       /* its connection and TLS handshake */
#define LIMIT_WEBHOOK_MAX_BACKOFF_SECONDS 3600 /* the longest wait between two attempts */

/* PostgreSQL backend: connections one instance opens in all (readers and
 * the writer), by default; consentd.conf's "database_pool" sets it within
 * LIMIT_PG_POOL_MIN..LIMIT_PG_POOL_MAX. A request that finds none free waits
 * up to LIMIT_PG_POOL_WAIT_MS for one and is then answered 503, so a burst
 * cannot exhaust the server's max_connections across a fleet. */
#define LIMIT_PG_CONNS 16
#define LIMIT_PG_POOL_MIN 2   /* the writer and one reader */
#define LIMIT_PG_POOL_MAX 256 /* the array each instance keeps */
#define LIMIT_PG_POOL_WAIT_MS 2000
/* HTTP threads by default on PostgreSQL, per core the process may run on
 * (capped by the pool's readers): a check waits for its round trip on its
 * HTTP thread, and at 8 per core the core stays busy while they wait
 * (docs/operations.md has the figures). */
#define LIMIT_PG_THREADS_PER_CPU 8
/* The most HTTP threads ("threads" in consentd.conf). */
#define LIMIT_HTTP_THREADS 64
/* A structured (JSON) log line's message; a longer one is continued in
 * further objects marked "continued", never cut. */
/* Data-subject requests (service/domain/request.h): a transition's reason
 * (staff text, sealed under the person's data key), the requests one list
 * answers, the steps one request may have, and how many days ahead a due
 * date counts as "due soon" in /metrics. */
#define LIMIT_REQUEST_REASON_BYTES 500
#define LIMIT_REQUEST_LIST 500
#define LIMIT_REQUEST_LIST_DEFAULT 100
#define LIMIT_REQUEST_STEPS 32
#define LIMIT_REQUEST_DUE_SOON_DAYS 7

#define LIMIT_LOG_LINE_BYTES 4096

#endif
