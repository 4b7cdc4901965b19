/*
 * consolepage: the look of the auditor's console: its words in English and
 * Simplified Chinese, the page frame (skip link, navigation, sign-out form),
 * its stylesheet, and charts drawn as inline SVG with their numbers in a
 * table beside them. Pure: no I/O; the handler (h_console.c) gathers the
 * data and writes the page's body between consolepage_head and _tail.
 *
 * Invariants:
 * - Every value that is not a literal of this file or of h_console.c is
 *   escaped with page_esc.
 * - No script, no inline style, no external asset: the stylesheet is served
 *   by consentd (GET /console/console.css) under CONSOLE_CSP.
 * - Accessible: one h1 per page, a skip link to main, labelled controls,
 *   table headers with scope, charts with role="img", a title, and the same
 *   numbers as a table.
 */
#ifndef CONSENTD_CONSOLEPAGE_H
#define CONSENTD_CONSOLEPAGE_H

#include <stddef.h>
#include <stdint.h>

#include "service/page.h"
#include "service/prefpage.h"

#define CONSOLE_CSP                                                                                          \
	"default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "                         \
	"frame-ancestors 'none'; base-uri 'none'"

enum ctext {
	C_CONSOLE,
	C_SKIP,
	C_NAV,
	C_HEALTH,
	C_SEARCH,
	C_CAMPAIGNS,
	C_SIGNED_IN_AS,
	C_SIGN_OUT,
	C_SIGN_IN,
	C_SIGN_IN_TEXT,
	C_TOKEN,
	C_SIGN_IN_BTN,
	C_WRONG_TOKEN,
	C_NOT_AUDITOR,
	C_RATE_LIMITED,
	C_FORM_EXPIRED,
	C_SESSION_ENDED,
	C_INTACT,
	C_NOT_INTACT,
	C_NOT_YET_VERIFIED,
	C_LAST_VERIFIED,
	C_VERIFIED_SIZE,
	C_ANCHORED,
	C_HEAD,
	C_CHECKPOINT,
	C_CHECKPOINT_SIZE,
	C_SIGNED_AT,
	C_SIGNATURE,
	C_SIG_VALID,
	C_SIG_INVALID,
	C_NO_CHECKPOINT,
	C_ALARM,
	C_ALARM_TEXT,
	C_FAULT,
	C_REASON,
	C_ENTRIES_PER_DAY,
	C_DENIALS_PER_DAY,
	C_DENIALS_BY_REASON,
	C_ACCESS_BY_ROLE,
	C_LAST_DAYS,
	C_DAY,
	C_COUNT,
	C_DATA,
	C_EVIDENCE,
	C_EVIDENCE_TEXT,
	C_EVIDENCE_BTN,
	C_SEARCH_TEXT,
	C_BY_CONTACT,
	C_CONTACT_ID,
	C_EMAIL,
	C_PHONE,
	C_ACTOR,
	C_ACTION,
	C_PURPOSE,
	C_DECISION,
	C_SINCE,
	C_UNTIL,
	C_ANY,
	C_SEARCH_BTN,
	C_RESULTS,
	C_NO_RESULTS,
	C_NEXT_PAGE,
	C_EXPORT_NDJSON,
	C_EXPORT_CSV,
	C_SEQ,
	C_TIME,
	C_RECORD,
	C_ROLE,
	C_NO_MATCH,
	C_SEVERAL,
	C_ENTRY,
	C_CHANNEL,
	C_FIELDS,
	C_REQUEST,
	C_CLIENT,
	C_DETAIL,
	C_PREV_HASH,
	C_HASH,
	C_LINK_OK,
	C_LINK_BAD,
	C_PREVIOUS,
	C_NEXT,
	C_REPORT,
	C_REPORT_TEXT,
	C_OUTCOME,
	C_WHO_ACCESSED,
	C_CAMPAIGNS_REACHED,
	C_NO_CAMPAIGNS,
	C_RELEASED,
	C_CAMPAIGNS_TEXT,
	C_TOTAL,
	C_ALLOWED,
	C_DENIED,
	C_LIST_DIGEST,
	C_RELEASE,
	C_OPEN_REPORT,
	C_SCAN_LIMIT,
	C_NOT_FOUND,
	C_PRINT_NOTE,
	C_HELD_BY_CAP,
	C_RECENT_RELEASES,
	C_NO_RELEASES,
	C_RELEASE_ID,
	C_COUNT_TEXTS
};

const char *consolepage_tx(enum prefpage_lang lang, enum ctext t);

/* The page up to the start of main's content. nav is the current page
 * (C_HEALTH, C_SEARCH, C_CAMPAIGNS, or C_COUNT_TEXTS for none); actor and
 * csrf are NULL on the signed-out pages (no navigation then). */
void consolepage_head(struct page_buf *b, enum prefpage_lang lang, const char *title, enum ctext nav,
		      const char *actor, const char *role, const char *csrf);
void consolepage_tail(struct page_buf *b);

/* A notice paragraph (role=status, or role=alert when alert is set). */
void consolepage_notice(struct page_buf *b, const char *text, int alert);
/* A <time> with the full RFC 3339 time. */
void consolepage_time(struct page_buf *b, int64_t us);
/* A hidden CSRF field. */
void consolepage_csrf(struct page_buf *b, const char *csrf);

/* A chart: bars with labels (escaped) and values, drawn as columns when
 * the labels are days (label_head C_DAY), else as horizontal bars; id must
 * be unique on the page. The same numbers follow in a table whose first
 * column is headed label_head. */
struct consolepage_bar {
	char label[80];
	int64_t value;
};
void consolepage_chart(struct page_buf *b, enum prefpage_lang lang, const char *id, const char *title,
		       const struct consolepage_bar *bars, size_t n, enum ctext label_head);

/* The stylesheet served at /console/console.css: PAGE_STYLE, then this. */
extern const char CONSOLEPAGE_STYLE[];

#endif
