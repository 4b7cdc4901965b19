/*
 * prefpage: the customer's HTML pages (preference centre, unsubscribe
 * confirmation, erasure confirmation, outcomes and the one "this link does
 * not work" page), rendered on the server in English or Simplified Chinese.
 *
 * Pure: no I/O, no keys, no database. The handler (h_customer.c) gathers a
 * model and gets back a malloc'd NUL-terminated page it then owns.
 *
 * Invariants:
 * - Every value that is not a literal of this file is HTML-escaped
 *   (& < > " '), in text and in attributes alike.
 * - No external assets and no JavaScript: one inline <style> (allowed by
 *   PREFPAGE_CSP), plain forms that POST back to the same page, so the
 *   pages work in any browser, with a keyboard and a screen reader. Every
 *   control has a label or an accessible name that names its purpose and
 *   channel; focus is always visible; text contrast is at least 7:1 and
 *   controls at least 4.5:1 (WCAG 2.1 AA).
 */
#ifndef CONSENTD_PREFPAGE_H
#define CONSENTD_PREFPAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Sent with every customer page. */
#define PREFPAGE_CSP                                                                                         \
	"default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
#define PREFPAGE_CONTENT_TYPE "text/html; charset=utf-8"

enum prefpage_lang { PREFPAGE_EN, PREFPAGE_ZH };

/* Picks the language from an Accept-Language header (NULL: English): the
 * highest-q tag that is zh (any region or script) or en wins; ties go to
 * the first listed; anything else falls back to English. */
enum prefpage_lang prefpage_lang_from(const char *accept_language);
const char *prefpage_lang_tag(enum prefpage_lang lang); /* "en" | "zh-CN" */

/* One (purpose, channel) as the customer sees it. */
struct prefpage_choice {
	char channel[65]; /* "" for purposes without channels */
	char status[24];  /* granted | refused | withdrawn | expired | pending_confirmation | none */
	int64_t at_us, granted_us, withdrawn_us, expires_us;
	char method[65]; /* how it was given: api, preference_centre, gpc, ... */
	char source[256];
	char frequency[16];  /* the person's own frequency choice ("" or "any": none) */
	char receipt_id[40]; /* the current event's receipt ("" none): a download button */
	char blocked[24];    /* the reason of a suppression that stops this use ("" none) */
};

/* An active suppression of the person's address or number, shown for what
 * it is ("You will not receive ...: you reported a message as spam on
 * DATE"). */
struct prefpage_block {
	char kind[8];	      /* email | phone */
	char scope[16];	      /* all | purpose | channel */
	char scope_value[65]; /* the purpose or channel name */
	char reason[24];      /* unsubscribe | withdrawal | bounce | complaint | manual | gpc | ... */
	int64_t at_us;
};

struct prefpage_purpose {
	const char *name, *description, *legal_basis;
	bool consent_required, sale_or_sharing;
	bool frequency_choice; /* offer "how often" on granted channels */
	bool offerable;	       /* collected for it (or a compatible purpose): consent may be given */
	size_t n_choices;
	struct prefpage_choice choices[8];
};

/* What happened just before (a 303 back to the page carries it). */
enum prefpage_done {
	PREFPAGE_DONE_NONE,
	PREFPAGE_DONE_SAVED,
	PREFPAGE_DONE_WITHDRAWN_ALL,
	PREFPAGE_DONE_GPC_BLOCKED,
};

struct prefpage_model {
	enum prefpage_lang lang;
	const char *token; /* the link token: the form action is /p/<token> */
	const char *csrf;  /* the page's CSRF value */
	enum prefpage_done done;
	bool gpc;    /* the browser sent Sec-GPC: 1 */
	bool manage; /* a "manage" link: also grant, download and erase */
	const struct prefpage_purpose *purposes;
	size_t n_purposes;
	const struct prefpage_block *blocks;
	size_t n_blocks;
	size_t more_blocks; /* active suppressions not listed (beyond the page's bound) */
};

/* Who the pages speak for, shown at the top of every page; set once at
 * start, before any page is rendered (the strings are borrowed for the
 * whole run; "" or NULL leaves a detail out). */
void prefpage_set_organisation(const char *name, const char *postal_address, const char *privacy_policy_url,
			       const char *contact_email);

/* Each returns a new page (free it), or NULL when out of memory. */
char *prefpage_centre(const struct prefpage_model *m);
/* The same page for a forged, altered, expired, revoked or erased link. */
char *prefpage_link_invalid(enum prefpage_lang lang);
/* A form that was missing its CSRF value, had a wrong one, or was sent twice. */
char *prefpage_form_expired(enum prefpage_lang lang, const char *token);
/* GET on the unsubscribe URL: a button, nothing changed. */
char *prefpage_unsubscribe_confirm(enum prefpage_lang lang, const char *token);
char *prefpage_unsubscribed(enum prefpage_lang lang, const char *token);
char *prefpage_erase_confirm(enum prefpage_lang lang, const char *token, const char *csrf);
char *prefpage_erased(enum prefpage_lang lang);
/* An erasure the policy holds for a staff member's approval
 * ("erasure_needs_approval"): received, answered by due (YYYY-MM-DD). */
char *prefpage_erase_received(enum prefpage_lang lang, const char *token, const char *due);
/* Withdraw-all asks first: this page's button posts withdraw_all with
 * confirm=yes. */
char *prefpage_withdraw_all_confirm(enum prefpage_lang lang, const char *token, const char *csrf);
/* The public page that mails a manage link to an address on file: its
 * form, the one answer for every address (found or not), and the answer
 * when the client is over its rate limit. */
char *prefpage_request_form(enum prefpage_lang lang);
char *prefpage_request_sent(enum prefpage_lang lang);
char *prefpage_request_busy(enum prefpage_lang lang);
/* Double opt-in (service/domain/optin.h): the page a confirmation link
 * opens (its button posts to /p/confirm/<token>), and the answer. A link
 * that cannot confirm gets prefpage_link_invalid. */
char *prefpage_confirm_ask(enum prefpage_lang lang, const char *token, const char *purpose_text);
char *prefpage_confirmed(enum prefpage_lang lang);

#endif
