/*
 * policy: the consent and purpose policy engine.
 *
 * Loads a JSON policy file (purposes, fields, roles, principals), validates it
 * completely, and answers two questions: "may we contact this person for
 * PURPOSE via CHANNEL?" and "may ROLE read this record for PURPOSE, and which
 * fields?". The reference for the file format and the decision procedure is
 * docs/policy.md.
 *
 * Invariants:
 * - A loaded policy is immutable. Every getter and decision function only
 *   reads it, so one policy may be shared by any number of threads. The
 *   reference count is atomic: the server keeps one reference for the live
 *   policy and each request takes its own with policy_ref(), so a SIGHUP
 *   reload can swap the live pointer without stopping requests.
 * - Default deny: an action, purpose, channel, field or role that the file
 *   does not name is refused; a decision that cannot be made is a denial.
 * - An invalid file never yields a policy: the load fails with ERR_INVALID
 *   (or ERR_TOOBIG) and a list of every problem found, each with its JSON
 *   path, so the caller can keep the old policy live.
 * - Strings returned by getters are borrowed from the policy and live as
 *   long as the caller's reference to it.
 * - No I/O other than reading the policy file in policy_load_file(); no
 *   global mutable state.
 */
#ifndef CONSENTD_POLICY_H
#define CONSENTD_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "service/base/limits.h"

struct policy;
struct policy_errors;

/* Bounds on the policy's content, beyond LIMIT_POLICY_BYTES and
 * LIMIT_POLICY_DEPTH. Fields and purposes are at most 64 each so that sets
 * of them fit one uint64_t bitmask. */
#define POLICY_MAX_PURPOSES 64
#define POLICY_MAX_FIELDS 64
#define POLICY_MAX_ROLES 64
#define POLICY_MAX_PRINCIPALS 1024
#define POLICY_MAX_TEXT_BYTES 4096 /* a description */
#define POLICY_MAX_ERRORS 100	   /* errors kept; the rest are counted */
#define POLICY_CAP_MAX 1000	   /* a frequency cap's largest max */
#define POLICY_CAP_MAX_DAYS 366	   /* and its longest window */
#define POLICY_MAX_SHARED_CAPS 16  /* caps shared by several purposes (frequency_caps) */

/* The fixed action vocabulary. Names are the dotted strings in the file. */
enum policy_action {
	POLICY_ACT_CONTACTS_CREATE,	/* "contacts.create" */
	POLICY_ACT_CONTACTS_READ,	/* "contacts.read" */
	POLICY_ACT_CONTACTS_UPDATE,	/* "contacts.update" */
	POLICY_ACT_CONTACTS_ERASE,	/* "contacts.erase" */
	POLICY_ACT_CONTACTS_IMPORT,	/* "contacts.import" */
	POLICY_ACT_CONSENTS_READ,	/* "consents.read" */
	POLICY_ACT_CONSENTS_WRITE,	/* "consents.write" */
	POLICY_ACT_CONSENT_CHECK,	/* "consent.check" */
	POLICY_ACT_OUTREACH_FILTER,	/* "outreach.filter" */
	POLICY_ACT_SUPPRESSIONS_READ,	/* "suppressions.read" */
	POLICY_ACT_SUPPRESSIONS_WRITE,	/* "suppressions.write" */
	POLICY_ACT_SUPPRESSIONS_DELETE, /* "suppressions.delete" */
	POLICY_ACT_LINKS_CREATE,	/* "links.create" */
	POLICY_ACT_AUDIT_READ,		/* "audit.read" */
	POLICY_ACT_POLICY_RELOAD,	/* "policy.reload" */
	/* "contacts.widen_purposes": add purposes to a contact's collected_for
	 * (the gate of purpose limitation). contacts.update alone may only
	 * narrow it; a role holding this must hold contacts.update too. */
	POLICY_ACT_CONTACTS_WIDEN_PURPOSES,
	POLICY_ACT_WEBHOOKS_MANAGE, /* "webhooks.manage": outbound webhook endpoints */
	POLICY_ACT_REQUESTS_READ,   /* "requests.read": data-subject requests and their history */
	/* "requests.manage": record a data-subject request for a person and
	 * move it through its states; a role holding it must hold
	 * requests.read too. */
	POLICY_ACT_REQUESTS_MANAGE,
	POLICY_ACT_COUNT
};

/* Outreach channels. A set of channels is a bitmask of (1u << channel). */
enum policy_channel {
	POLICY_CH_EMAIL,
	POLICY_CH_SMS,
	POLICY_CH_PHONE,
	POLICY_CH_POST,
	POLICY_CH_PUSH,
	POLICY_CH_IN_APP,
	POLICY_CH_COUNT
};

/* GDPR Art. 6(1) legal bases. Only POLICY_BASIS_CONSENT forces
 * consent_required; any purpose may require consent in addition. */
enum policy_legal_basis {
	POLICY_BASIS_CONSENT,
	POLICY_BASIS_CONTRACT,
	POLICY_BASIS_LEGAL_OBLIGATION,
	POLICY_BASIS_VITAL_INTERESTS,
	POLICY_BASIS_PUBLIC_TASK,
	POLICY_BASIS_LEGITIMATE_INTERESTS,
	POLICY_BASIS_COUNT
};

enum policy_field_class { POLICY_CLASS_PERSONAL, POLICY_CLASS_SENSITIVE };

enum policy_field_type {
	POLICY_TYPE_STRING,
	POLICY_TYPE_EMAIL,
	POLICY_TYPE_PHONE,
	POLICY_TYPE_DATE,
	POLICY_TYPE_INTEGER
};

/* Consent status of one (contact, purpose, channel), as stored. */
enum policy_consent_status {
	POLICY_CONSENT_NONE, /* never asked, or no record */
	POLICY_CONSENT_GRANTED,
	POLICY_CONSENT_REFUSED,
	POLICY_CONSENT_WITHDRAWN,
	POLICY_CONSENT_EXPIRED,
	/* Granted for a double_opt_in purpose's email channel, waiting for
	 * the person to confirm from the mailed link: not a grant yet. */
	POLICY_CONSENT_PENDING
};

/* Why a decision came out the way it did. The string names (see
 * policy_reason_name) are stable: they appear in API responses and in the
 * audit trail. Only GRANTED and NOT_REQUIRED allow. */
enum policy_reason {
	POLICY_REASON_GRANTED,		    /* valid consent on record */
	POLICY_REASON_NOT_REQUIRED,	    /* legal basis needs no consent */
	POLICY_REASON_NO_CONSENT,	    /* consent required, none on record */
	POLICY_REASON_REFUSED,		    /* the person said no */
	POLICY_REASON_WITHDRAWN,	    /* the person took consent back */
	POLICY_REASON_EXPIRED,		    /* consent lapsed (checked at call time) */
	POLICY_REASON_PURPOSE_INCOMPATIBLE, /* data was not collected for this purpose */
	POLICY_REASON_CHANNEL_NOT_ALLOWED,  /* purpose does not allow this channel */
	POLICY_REASON_UNKNOWN_CONTACT,	    /* no such contact */
	POLICY_REASON_ERASED,		    /* contact was erased */
	POLICY_REASON_SUPPRESSED,	    /* contact's own suppression applies */
	POLICY_REASON_SUPPRESSED_BY_LIST,   /* address matches the suppression list */
	POLICY_REASON_ROLE_DENIED,	    /* role lacks the action or the purpose */
	POLICY_REASON_UNKNOWN_PURPOSE,	    /* purpose not in the policy */
	POLICY_REASON_UNKNOWN_CHANNEL,	    /* channel not in the vocabulary */
	POLICY_REASON_FREQUENCY_CAP,	    /* the purpose's frequency cap is reached */
	POLICY_REASON_PENDING_CONFIRMATION, /* double opt-in: the person has not confirmed yet */
	POLICY_REASON_COUNT
};

/* One consent state. expires_at is unix seconds; 0 means never expires. */
struct policy_consent {
	enum policy_consent_status status;
	int64_t expires_at;
};

/*
 * What the caller knows about the person, gathered from the store. All
 * pointers are borrowed for the duration of the call.
 * - collected_for: the purposes the record was collected for. Names the
 *   policy does not know are ignored (they can grant nothing), and so are
 *   entries beyond LIMIT_LIST_ITEMS.
 * - consent: for policy_decide_contact, the state for exactly (purpose,
 *   channel); for policy_decide_read, the best state across the purpose's
 *   channels (policy_consent_best() computes it).
 * - suppressed: the contact's own suppression covers this purpose/channel.
 * - suppressed_by_list: the normalised address matched the suppression list
 *   (keyed hash), which also covers people who were erased or never known.
 */
struct policy_subject {
	bool exists;
	bool erased;
	bool suppressed;
	bool suppressed_by_list;
	const char *const *collected_for;
	size_t n_collected_for;
	struct policy_consent consent;
};

/* A decision. visible_fields has bit i set when the field at index i (see
 * policy_field_at) may be shown; it is 0 for contact decisions and for every
 * denial. */
struct policy_decision {
	bool allowed;
	enum policy_reason reason;
	uint64_t visible_fields;
};

/* Borrowed views of a purpose and a field. */
struct policy_purpose_info {
	const char *name;
	const char *description;    /* plain-language English */
	const char *description_zh; /* Simplified Chinese */
	enum policy_legal_basis legal_basis;
	bool consent_required;
	unsigned channels; /* bitmask of (1u << enum policy_channel) */
	int64_t consent_lifetime_days;
	bool sale_or_sharing;
	/* The purpose's frequency cap: at most cap_max releases to one person
	 * per channel within cap_per_days; 0 and 0 when it has none. */
	int64_t cap_max;
	int64_t cap_per_days;
	bool frequency_choice; /* the person may choose how often (policy_frequency) */
	/* "double_opt_in": a grant for the email channel waits for the
	 * person's confirmation from a mailed link (service/domain/optin.h). */
	bool double_opt_in;
	size_t index;
};

/* The frequencies a person may choose on the preference page for a
 * purpose with frequency_choice. Names (policy_frequency_name): any,
 * weekly, monthly, important. */
enum policy_frequency {
	POLICY_FREQ_ANY,       /* no choice of their own: the policy's cap only */
	POLICY_FREQ_WEEKLY,    /* at most one a week */
	POLICY_FREQ_MONTHLY,   /* at most one a month (30 days) */
	POLICY_FREQ_IMPORTANT, /* only important messages: no campaign reaches them */
	POLICY_FREQ_COUNT
};
const char *policy_frequency_name(enum policy_frequency f);
int policy_frequency_from_name(const char *name, enum policy_frequency *out);
/* The person's choice as a cap: *max releases per *per_days (max 0: none
 * of their own; IMPORTANT: max -1, every campaign is held back). */
void policy_frequency_cap(enum policy_frequency f, int64_t *max, int64_t *per_days);

/* A cap shared by several purposes (the policy's "frequency_caps"): one
 * person may be released at most max times per channel within per_days,
 * counted over all the listed purposes together ("all our marketing, at
 * most three a week"). It applies on top of each purpose's own cap. */
struct policy_shared_cap {
	const char *name; /* borrowed from the policy */
	int64_t max;
	int64_t per_days;
	size_t n_purposes;
	const char *purposes[POLICY_MAX_PURPOSES]; /* borrowed purpose names */
};
/* How many shared caps the policy has, and the i-th (ERR_NOTFOUND past the
 * end). */
size_t policy_shared_cap_count(const struct policy *p);
int policy_shared_cap_get(const struct policy *p, size_t i, struct policy_shared_cap *out);
/* Whether the shared cap counts releases for purpose. */
bool policy_shared_cap_covers(const struct policy_shared_cap *cap, const char *purpose);

struct policy_field_info {
	const char *name;
	enum policy_field_class field_class;
	enum policy_field_type type;
	const char *description;
	size_t index; /* bit position in policy_decision.visible_fields */
};

/* ---- Loading ---------------------------------------------------------- */

/*
 * Loads and validates a policy. On success returns 0 and *out holds a new
 * policy with one reference. On failure *out is NULL and the return is
 * ERR_INVALID (the file is wrong), ERR_TOOBIG (over a bound), ERR_IO or
 * ERR_NOMEM; err_set() has a one-line summary. If errs is not NULL, *errs
 * receives the full error list on failure (and NULL on success); the caller
 * frees it with policy_errors_free(). source_name is used in messages only.
 */
int policy_load_file(struct policy **out, const char *path, struct policy_errors **errs);
int policy_load_buffer(struct policy **out, const char *json, size_t len, const char *source_name,
		       struct policy_errors **errs);

/* Reference counting (atomic). policy_ref returns its argument; policy_unref
 * frees on the last reference. policy_free is policy_unref. Both accept NULL. */
struct policy *policy_ref(struct policy *p);
void policy_unref(struct policy *p);
void policy_free(struct policy *p);

/* ---- Validation errors ------------------------------------------------ */

size_t policy_errors_count(const struct policy_errors *errs);
/* The file name given at load; borrowed. */
const char *policy_errors_source(const struct policy_errors *errs);
/* JSON path of error i, e.g. "$.roles.marketing.fields.care[1]"; borrowed,
 * NULL when i is out of range. */
const char *policy_errors_path(const struct policy_errors *errs, size_t i);
/* Reason of error i in plain English; borrowed, NULL when out of range. */
const char *policy_errors_reason(const struct policy_errors *errs, size_t i);
/* Formats error i as "FILE: $.path: reason" into buf (always terminated);
 * returns the length snprintf would have written, or -1 if i is out of range. */
int policy_errors_format(const struct policy_errors *errs, size_t i, char *buf, size_t len);
/* Writes every error, one per line, in the format above. */
void policy_errors_print(const struct policy_errors *errs, FILE *f);
void policy_errors_free(struct policy_errors *errs);

/* ---- Vocabularies ----------------------------------------------------- */

/* Name <-> enum. The _from_name functions return 0, or ERR_NOTFOUND for an
 * unknown or NULL name. The _name functions return a static string, or
 * "unknown" for an out-of-range value. */
int policy_action_from_name(const char *name, enum policy_action *out);
const char *policy_action_name(enum policy_action act);
int policy_channel_from_name(const char *name, enum policy_channel *out);
const char *policy_channel_name(enum policy_channel ch);
const char *policy_legal_basis_name(enum policy_legal_basis b);
const char *policy_field_type_name(enum policy_field_type t);
const char *policy_consent_status_name(enum policy_consent_status s);
int policy_consent_status_from_name(const char *name, enum policy_consent_status *out);
const char *policy_reason_name(enum policy_reason r);

/* ---- Lookups ---------------------------------------------------------- */

const char *policy_notice_version(const struct policy *p);
/* Whether an erasure the person asks for on the preference page waits for
 * a staff member's approval (the policy's "erasure_needs_approval";
 * false when absent). */
bool policy_erasure_needs_approval(const struct policy *p);

/* Purposes, in file order. _get and _at return 0 or ERR_NOTFOUND. */
size_t policy_purpose_count(const struct policy *p);
int policy_purpose_at(const struct policy *p, size_t i, struct policy_purpose_info *out);
int policy_purpose_get(const struct policy *p, const char *name, struct policy_purpose_info *out);

/*
 * The frequency cap rule, pure. A person may be reached at most max times
 * per per_days days (max 0: no cap). recent is how many releases to that
 * person for the purpose and channel fall within the window ending at
 * now_us (the caller counts at most max of them, newest first), and
 * kth_us is the time of the max-th newest (when recent >= max). Returns
 * true when the cap holds the person back; *reachable_us is then the time
 * that release leaves the window, when the person may be reached again.
 */
bool policy_cap_reached(int64_t max, int64_t per_days, int64_t recent, int64_t kth_us, int64_t *reachable_us);
/* The start of the cap's window at now_us (releases after it count). */
int64_t policy_cap_window_start(int64_t per_days, int64_t now_us);
/* True when the purpose exists and allows the channel. */
bool policy_purpose_allows_channel(const struct policy *p, const char *purpose, const char *channel);
/* True when data collected for `from` may be used for `to`: from == to, or
 * `to` is in from's compatible_with. Not transitive. */
bool policy_purpose_compatible(const struct policy *p, const char *from, const char *to);
/* Names of the purposes with sale_or_sharing true (the ones a Global
 * Privacy Control signal opts out of). Writes up to max borrowed names into
 * names and returns how many there are in total. */
size_t policy_purposes_for_gpc(const struct policy *p, const char **names, size_t max);

/* Fields, in file order; index i is bit i of visible_fields. */
size_t policy_field_count(const struct policy *p);
int policy_field_at(const struct policy *p, size_t i, struct policy_field_info *out);
int policy_field_get(const struct policy *p, const char *name, struct policy_field_info *out);
/* Name of field i, or NULL when out of range. */
const char *policy_field_name(const struct policy *p, size_t i);
/* True when bit `field` is set in the decision's visible_fields. */
bool policy_decision_shows(const struct policy *p, const struct policy_decision *d, const char *field);

/* Roles. Unknown roles exist nowhere and may do nothing. */
bool policy_role_exists(const struct policy *p, const char *role);
bool policy_role_may(const struct policy *p, const char *role, enum policy_action act);
bool policy_role_may_purpose(const struct policy *p, const char *role, const char *purpose);
/* Fields the role sees when reading for purpose (0 if none or unknown). */
uint64_t policy_role_fields(const struct policy *p, const char *role, const char *purpose);
/* Plaintext labels of a contact that a role sees when reading for purpose,
 * named like fields in the role's "fields" lists ("source", "owner") but not
 * declared under "fields" because they are not sealed: POLICY_META_* bits,
 * 0 if none or unknown. */
#define POLICY_META_SOURCE 1u
#define POLICY_META_OWNER 2u
unsigned policy_role_metadata(const struct policy *p, const char *role, const char *purpose);

/* Principals declared in the file. Looks up the SHA-256 of a bearer token
 * in constant time over all principals; returns 0 and borrowed name and role
 * (either out pointer may be NULL), or ERR_NOTFOUND. */
size_t policy_principal_count(const struct policy *p);
/* The role of the principal declared with this name; 0 and a borrowed role,
 * or ERR_NOTFOUND. Names are not secret, so this is an ordinary lookup. */
int policy_principal_role(const struct policy *p, const char *name, const char **role);
int policy_principal_find(const struct policy *p, const uint8_t token_sha256[32], const char **name,
			  const char **role);

/* ---- Decisions -------------------------------------------------------- */

/*
 * Whether the consent state is in force at `now`: granted and either
 * expires_at == 0 or now < expires_at. Expiry is always decided here, at
 * call time, never trusted from storage.
 */
bool policy_consent_valid(const struct policy_consent *c, int64_t now);

/*
 * The least restrictive consent state among n (for policy_decide_read,
 * "valid consent on at least one channel"): a valid grant if there is one,
 * else the most telling denial in the order withdrawn, refused, expired,
 * none. A granted-but-lapsed state becomes POLICY_CONSENT_EXPIRED.
 */
struct policy_consent policy_consent_best(const struct policy_consent *states, size_t n, int64_t now);

/*
 * May we contact this person for purpose via channel? Precedence, first match
 * wins (least permissive):
 *  1. role_denied (unknown role, or it holds neither consent.check nor
 *     outreach.filter), unknown_purpose, role_denied (purpose not the
 *     role's), unknown_channel (also for a NULL channel);
 *  2. suppressed, suppressed_by_list, unknown_contact, erased;
 *  3. purpose_incompatible, channel_not_allowed;
 *  4. if the purpose requires consent: refused, withdrawn, expired (status
 *     expired, or granted with expires_at <= now), no_consent, else granted;
 *     if not: not_required.
 * Always fills *out and returns 0; ERR_INVALID only for NULL arguments (and
 * *out, if given, is then a role_denied denial).
 */
int policy_decide_contact(const struct policy *p, const char *role, const char *purpose, const char *channel,
			  const struct policy_subject *subject, int64_t now, struct policy_decision *out);

/*
 * May role read this record for purpose, and which fields? Same precedence
 * without the channel and suppression steps (suppression stops outreach,
 * not reading): role_denied (no contacts.read, or purpose not the role's),
 * unknown_purpose, unknown_contact, erased, purpose_incompatible, then the
 * consent step on subject->consent (pass policy_consent_best over the
 * purpose's channels). When allowed, visible_fields is the role's field set
 * for the purpose.
 */
int policy_decide_read(const struct policy *p, const char *role, const char *purpose,
		       const struct policy_subject *subject, int64_t now, struct policy_decision *out);

#endif
