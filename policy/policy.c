/*
 * policy: lookups and decisions over a loaded policy (see policy_load.c for
 * how one is built and validated, docs/policy.md for the rules).
 *
 * Every function here only reads the policy, so any number of threads may
 * call them on one policy at once. The only write is the atomic reference
 * count. Decisions are pure functions of (policy, inputs, now): the same
 * question asked twice gets the same answer, which is what lets the audit
 * trail record a decision and a reviewer reproduce it.
 *
 * Decision invariant: every path through policy_decide_* that does not end
 * in GRANTED or NOT_REQUIRED is a denial, and visible_fields is non-zero
 * only for an allowed read.
 */
#include "policy/policy_internal.h"

#include <stdlib.h>
#include <string.h>

#include "service/base/error.h"

/* ---- Life cycle ------------------------------------------------------- */

void policy_destroy(struct policy *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->n_purposes; i++) {
		free(p->purposes[i].name);
		free(p->purposes[i].description);
		free(p->purposes[i].description_zh);
	}
	for (size_t i = 0; i < p->n_fields; i++) {
		free(p->fields[i].name);
		free(p->fields[i].description);
	}
	for (size_t i = 0; i < p->n_roles; i++)
		free(p->roles[i].name);
	for (size_t i = 0; i < p->n_principals; i++)
		free(p->principals[i].name);
	for (size_t i = 0; i < p->n_shared_caps; i++)
		free(p->shared_caps[i].name);
	free(p->shared_caps);
	free(p->purposes);
	free(p->fields);
	free(p->roles);
	free(p->principals);
	free(p->notice_version);
	free(p);
}

struct policy *policy_ref(struct policy *p)
{
	if (p != NULL)
		atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
	return p;
}

void policy_unref(struct policy *p)
{
	if (p == NULL)
		return;
	/* acq_rel so the thread that frees sees every other thread's reads
	 * finished before their unref. */
	if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) == 1)
		policy_destroy(p);
}

void policy_free(struct policy *p)
{
	policy_unref(p);
}

/* ---- Vocabularies ----------------------------------------------------- */

static const char *const action_names[POLICY_ACT_COUNT] = {
	"contacts.create", "contacts.read",	"contacts.update",    "contacts.erase",
	"contacts.import", "consents.read",	"consents.write",     "consent.check",
	"outreach.filter", "suppressions.read", "suppressions.write", "suppressions.delete",
	"links.create",	   "audit.read",	"policy.reload",      "contacts.widen_purposes",
	"webhooks.manage", "requests.read",	"requests.manage",
};

static const char *const channel_names[POLICY_CH_COUNT] = {
	"email", "sms", "phone", "post", "push", "in_app",
};

static const char *const basis_names[POLICY_BASIS_COUNT] = {
	"consent", "contract", "legal_obligation", "vital_interests", "public_task", "legitimate_interests",
};

static const char *const status_names[] = {
	"none", "granted", "refused", "withdrawn", "expired", "pending_confirmation",
};

static const char *const reason_names[POLICY_REASON_COUNT] = {
	"granted",	 "not_required",	 "no_consent",		"refused",	   "withdrawn",
	"expired",	 "purpose_incompatible", "channel_not_allowed", "unknown_contact", "erased",
	"suppressed",	 "suppressed_by_list",	 "role_denied",		"unknown_purpose", "unknown_channel",
	"frequency_cap", "pending_confirmation",
};

static int index_of(const char *const *names, size_t n, const char *name)
{
	if (name == NULL)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return (int)i;
	return -1;
}

int policy_action_from_name(const char *name, enum policy_action *out)
{
	int i = index_of(action_names, POLICY_ACT_COUNT, name);
	if (i < 0)
		return ERR_NOTFOUND;
	*out = (enum policy_action)i;
	return 0;
}

const char *policy_action_name(enum policy_action act)
{
	return (unsigned)act < POLICY_ACT_COUNT ? action_names[act] : "unknown";
}

int policy_channel_from_name(const char *name, enum policy_channel *out)
{
	int i = index_of(channel_names, POLICY_CH_COUNT, name);
	if (i < 0)
		return ERR_NOTFOUND;
	*out = (enum policy_channel)i;
	return 0;
}

const char *policy_channel_name(enum policy_channel ch)
{
	return (unsigned)ch < POLICY_CH_COUNT ? channel_names[ch] : "unknown";
}

const char *policy_legal_basis_name(enum policy_legal_basis b)
{
	return (unsigned)b < POLICY_BASIS_COUNT ? basis_names[b] : "unknown";
}

const char *policy_field_type_name(enum policy_field_type t)
{
	switch (t) {
	case POLICY_TYPE_STRING: return "string";
	case POLICY_TYPE_EMAIL: return "email";
	case POLICY_TYPE_PHONE: return "phone";
	case POLICY_TYPE_DATE: return "date";
	case POLICY_TYPE_INTEGER: return "integer";
	}
	return "unknown";
}

const char *policy_consent_status_name(enum policy_consent_status s)
{
	return (unsigned)s < sizeof status_names / sizeof status_names[0] ? status_names[s] : "unknown";
}

int policy_consent_status_from_name(const char *name, enum policy_consent_status *out)
{
	int i = index_of(status_names, sizeof status_names / sizeof status_names[0], name);
	if (i < 0)
		return ERR_NOTFOUND;
	*out = (enum policy_consent_status)i;
	return 0;
}

const char *policy_reason_name(enum policy_reason r)
{
	return (unsigned)r < POLICY_REASON_COUNT ? reason_names[r] : "unknown";
}

/* ---- Lookups ---------------------------------------------------------- */

/* Tables hold at most 64 entries, so a linear scan is both simplest and
 * fast enough for the bulk filter, which resolves names once per request. */

int policy_purpose_index(const struct policy *p, const char *name)
{
	if (p == NULL || name == NULL)
		return -1;
	for (size_t i = 0; i < p->n_purposes; i++)
		if (strcmp(p->purposes[i].name, name) == 0)
			return (int)i;
	return -1;
}

int policy_field_index(const struct policy *p, const char *name)
{
	if (p == NULL || name == NULL)
		return -1;
	for (size_t i = 0; i < p->n_fields; i++)
		if (strcmp(p->fields[i].name, name) == 0)
			return (int)i;
	return -1;
}

int policy_role_index(const struct policy *p, const char *name)
{
	if (p == NULL || name == NULL)
		return -1;
	for (size_t i = 0; i < p->n_roles; i++)
		if (strcmp(p->roles[i].name, name) == 0)
			return (int)i;
	return -1;
}

bool policy_erasure_needs_approval(const struct policy *p)
{
	return p->erasure_needs_approval;
}

const char *policy_notice_version(const struct policy *p)
{
	return p->notice_version;
}

size_t policy_purpose_count(const struct policy *p)
{
	return p->n_purposes;
}

int policy_purpose_at(const struct policy *p, size_t i, struct policy_purpose_info *out)
{
	if (i >= p->n_purposes)
		return ERR_NOTFOUND;
	const struct policy_purpose *pu = &p->purposes[i];
	*out = (struct policy_purpose_info){
		.name = pu->name,
		.description = pu->description,
		.description_zh = pu->description_zh,
		.legal_basis = pu->legal_basis,
		.consent_required = pu->consent_required,
		.channels = pu->channels,
		.consent_lifetime_days = pu->lifetime_days,
		.sale_or_sharing = pu->sale_or_sharing,
		.cap_max = pu->cap_max,
		.cap_per_days = pu->cap_per_days,
		.frequency_choice = pu->frequency_choice,
		.double_opt_in = pu->double_opt_in,
		.index = i,
	};
	return 0;
}

int policy_purpose_get(const struct policy *p, const char *name, struct policy_purpose_info *out)
{
	int i = policy_purpose_index(p, name);
	return i < 0 ? ERR_NOTFOUND : policy_purpose_at(p, (size_t)i, out);
}

static const char *const frequency_names[POLICY_FREQ_COUNT] = { "any", "weekly", "monthly", "important" };

const char *policy_frequency_name(enum policy_frequency f)
{
	return (unsigned)f < POLICY_FREQ_COUNT ? frequency_names[f] : "unknown";
}

int policy_frequency_from_name(const char *name, enum policy_frequency *out)
{
	int i = index_of(frequency_names, POLICY_FREQ_COUNT, name);
	if (i < 0)
		return ERR_NOTFOUND;
	*out = (enum policy_frequency)i;
	return 0;
}

void policy_frequency_cap(enum policy_frequency f, int64_t *max, int64_t *per_days)
{
	*max = 0;
	*per_days = 0;
	if (f == POLICY_FREQ_WEEKLY) {
		*max = 1;
		*per_days = 7;
	} else if (f == POLICY_FREQ_MONTHLY) {
		*max = 1;
		*per_days = 30;
	} else if (f == POLICY_FREQ_IMPORTANT) {
		*max = -1;
	}
}

size_t policy_shared_cap_count(const struct policy *p)
{
	return p != NULL ? p->n_shared_caps : 0;
}

int policy_shared_cap_get(const struct policy *p, size_t i, struct policy_shared_cap *out)
{
	memset(out, 0, sizeof *out);
	if (p == NULL || i >= p->n_shared_caps)
		return ERR_NOTFOUND;
	const struct policy_shared_cap_def *d = &p->shared_caps[i];
	out->name = d->name;
	out->max = d->max;
	out->per_days = d->per_days;
	for (size_t k = 0; k < p->n_purposes; k++)
		if (d->purposes & (UINT64_C(1) << k))
			out->purposes[out->n_purposes++] = p->purposes[k].name;
	return 0;
}

bool policy_shared_cap_covers(const struct policy_shared_cap *cap, const char *purpose)
{
	for (size_t i = 0; i < cap->n_purposes; i++)
		if (strcmp(cap->purposes[i], purpose) == 0)
			return true;
	return false;
}

int64_t policy_cap_window_start(int64_t per_days, int64_t now_us)
{
	return now_us - per_days * INT64_C(86400000000);
}

bool policy_cap_reached(int64_t max, int64_t per_days, int64_t recent, int64_t kth_us, int64_t *reachable_us)
{
	*reachable_us = 0;
	if (max <= 0 || recent < max)
		return false;
	/* The max-th newest release is the one whose leaving the window brings
	 * the count below max again. */
	*reachable_us = kth_us + per_days * INT64_C(86400000000);
	return true;
}

bool policy_purpose_allows_channel(const struct policy *p, const char *purpose, const char *channel)
{
	enum policy_channel ch;
	int i = policy_purpose_index(p, purpose);
	if (i < 0 || policy_channel_from_name(channel, &ch) != 0)
		return false;
	return (p->purposes[i].channels & (1u << ch)) != 0;
}

bool policy_purpose_compatible(const struct policy *p, const char *from, const char *to)
{
	int f = policy_purpose_index(p, from), t = policy_purpose_index(p, to);
	if (f < 0 || t < 0)
		return false;
	return f == t || (p->purposes[f].compatible_with & (UINT64_C(1) << t)) != 0;
}

size_t policy_purposes_for_gpc(const struct policy *p, const char **names, size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < p->n_purposes; i++) {
		if (!p->purposes[i].sale_or_sharing)
			continue;
		if (n < max)
			names[n] = p->purposes[i].name;
		n++;
	}
	return n;
}

size_t policy_field_count(const struct policy *p)
{
	return p->n_fields;
}

int policy_field_at(const struct policy *p, size_t i, struct policy_field_info *out)
{
	if (i >= p->n_fields)
		return ERR_NOTFOUND;
	const struct policy_field *f = &p->fields[i];
	*out = (struct policy_field_info){
		.name = f->name,
		.field_class = f->field_class,
		.type = f->type,
		.description = f->description,
		.index = i,
	};
	return 0;
}

int policy_field_get(const struct policy *p, const char *name, struct policy_field_info *out)
{
	int i = policy_field_index(p, name);
	return i < 0 ? ERR_NOTFOUND : policy_field_at(p, (size_t)i, out);
}

const char *policy_field_name(const struct policy *p, size_t i)
{
	return i < p->n_fields ? p->fields[i].name : NULL;
}

bool policy_decision_shows(const struct policy *p, const struct policy_decision *d, const char *field)
{
	int i = policy_field_index(p, field);
	return i >= 0 && d->allowed && (d->visible_fields & (UINT64_C(1) << i)) != 0;
}

bool policy_role_exists(const struct policy *p, const char *role)
{
	return policy_role_index(p, role) >= 0;
}

bool policy_role_may(const struct policy *p, const char *role, enum policy_action act)
{
	int r = policy_role_index(p, role);
	if (r < 0 || (unsigned)act >= POLICY_ACT_COUNT)
		return false;
	return (p->roles[r].actions & (UINT32_C(1) << act)) != 0;
}

bool policy_role_may_purpose(const struct policy *p, const char *role, const char *purpose)
{
	int r = policy_role_index(p, role), pu = policy_purpose_index(p, purpose);
	if (r < 0 || pu < 0)
		return false;
	return (p->roles[r].purposes & (UINT64_C(1) << pu)) != 0;
}

uint64_t policy_role_fields(const struct policy *p, const char *role, const char *purpose)
{
	int r = policy_role_index(p, role), pu = policy_purpose_index(p, purpose);
	if (r < 0 || pu < 0 || !(p->roles[r].purposes & (UINT64_C(1) << pu)))
		return 0;
	return p->roles[r].fields[pu];
}

unsigned policy_role_metadata(const struct policy *p, const char *role, const char *purpose)
{
	int r = policy_role_index(p, role), pu = policy_purpose_index(p, purpose);
	if (r < 0 || pu < 0 || !(p->roles[r].purposes & (UINT64_C(1) << pu)))
		return 0;
	return p->roles[r].metadata[pu];
}

size_t policy_principal_count(const struct policy *p)
{
	return p->n_principals;
}

int policy_principal_role(const struct policy *p, const char *name, const char **role)
{
	for (size_t i = 0; p != NULL && name != NULL && i < p->n_principals; i++)
		if (strcmp(p->principals[i].name, name) == 0) {
			if (role != NULL)
				*role = p->roles[p->principals[i].role].name;
			return 0;
		}
	return err_set(ERR_NOTFOUND, "no principal named %s", name ? name : "(null)");
}

int policy_principal_find(const struct policy *p, const uint8_t token_sha256[32], const char **name,
			  const char **role)
{
	/* Every principal is compared in full, and the match is selected
	 * without a branch on secret data, so timing says nothing about which
	 * hash (if any) matched or how many bytes agreed. */
	size_t found = SIZE_MAX;
	for (size_t i = 0; i < p->n_principals; i++) {
		unsigned diff = 0;
		for (size_t k = 0; k < 32; k++)
			diff |= (unsigned)(p->principals[i].token_sha256[k] ^ token_sha256[k]);
		size_t mask = (size_t)0 - (size_t)(diff == 0);
		found = (found & ~mask) | (i & mask);
	}
	if (found == SIZE_MAX)
		return ERR_NOTFOUND;
	if (name != NULL)
		*name = p->principals[found].name;
	if (role != NULL)
		*role = p->roles[p->principals[found].role].name;
	return 0;
}

/* ---- Decisions -------------------------------------------------------- */

bool policy_consent_valid(const struct policy_consent *c, int64_t now)
{
	return c->status == POLICY_CONSENT_GRANTED && (c->expires_at == 0 || now < c->expires_at);
}

/* Rank of a consent state for policy_consent_best: higher is better for the
 * person asking, and among denials higher is the more specific story. */
static int consent_rank(const struct policy_consent *c, int64_t now)
{
	if (policy_consent_valid(c, now))
		return 5;
	switch (c->status) {
	case POLICY_CONSENT_WITHDRAWN: return 4;
	case POLICY_CONSENT_PENDING:
	case POLICY_CONSENT_REFUSED: return 3;
	case POLICY_CONSENT_GRANTED: /* lapsed */
	case POLICY_CONSENT_EXPIRED: return 2;
	case POLICY_CONSENT_NONE: return 1;
	}
	return 0;
}

struct policy_consent policy_consent_best(const struct policy_consent *states, size_t n, int64_t now)
{
	struct policy_consent best = { .status = POLICY_CONSENT_NONE, .expires_at = 0 };
	int best_rank = 1;
	for (size_t i = 0; i < n; i++) {
		int r = consent_rank(&states[i], now);
		if (r > best_rank) {
			best = states[i];
			best_rank = r;
		}
	}
	if (best.status == POLICY_CONSENT_GRANTED && !policy_consent_valid(&best, now))
		best.status = POLICY_CONSENT_EXPIRED;
	return best;
}

static void deny(struct policy_decision *d, enum policy_reason r)
{
	d->allowed = false;
	d->reason = r;
	d->visible_fields = 0;
}

/* True when data collected for the subject's purposes may be used for
 * purpose index `want`: it is one of them, or one of them lists it in
 * compatible_with. Unknown collected-for names grant nothing. */
static bool collected_allows(const struct policy *p, const struct policy_subject *s, int want)
{
	if (s->collected_for == NULL)
		return false;
	for (size_t i = 0; i < s->n_collected_for && i < LIMIT_LIST_ITEMS; i++) {
		int c = policy_purpose_index(p, s->collected_for[i]);
		if (c < 0)
			continue;
		if (c == want || (p->purposes[c].compatible_with & (UINT64_C(1) << want)))
			return true;
	}
	return false;
}

/* The consent step shared by both decisions. */
static void decide_consent(const struct policy_purpose *pu, const struct policy_consent *c, int64_t now,
			   struct policy_decision *d)
{
	if (!pu->consent_required) {
		d->allowed = true;
		d->reason = POLICY_REASON_NOT_REQUIRED;
		return;
	}
	if (policy_consent_valid(c, now)) {
		d->allowed = true;
		d->reason = POLICY_REASON_GRANTED;
		return;
	}
	switch (c->status) {
	case POLICY_CONSENT_REFUSED: deny(d, POLICY_REASON_REFUSED); return;
	case POLICY_CONSENT_WITHDRAWN: deny(d, POLICY_REASON_WITHDRAWN); return;
	case POLICY_CONSENT_PENDING: deny(d, POLICY_REASON_PENDING_CONFIRMATION); return;
	case POLICY_CONSENT_GRANTED: /* lapsed at `now` */
	case POLICY_CONSENT_EXPIRED: deny(d, POLICY_REASON_EXPIRED); return;
	case POLICY_CONSENT_NONE: deny(d, POLICY_REASON_NO_CONSENT); return;
	}
	/* An out-of-range status from a corrupt caller is no consent. */
	deny(d, POLICY_REASON_NO_CONSENT);
}

int policy_decide_contact(const struct policy *p, const char *role, const char *purpose, const char *channel,
			  const struct policy_subject *s, int64_t now, struct policy_decision *out)
{
	if (out == NULL)
		return err_set(ERR_INVALID, "policy_decide_contact: no decision to fill");
	deny(out, POLICY_REASON_ROLE_DENIED);
	if (p == NULL || s == NULL)
		return err_set(ERR_INVALID, "policy_decide_contact: missing policy or subject");

	int r = policy_role_index(p, role);
	if (r < 0)
		return 0;
	const struct policy_role *ro = &p->roles[r];
	uint32_t contact_acts =
		(UINT32_C(1) << POLICY_ACT_CONSENT_CHECK) | (UINT32_C(1) << POLICY_ACT_OUTREACH_FILTER);
	if (!(ro->actions & contact_acts))
		return 0;
	int pi = policy_purpose_index(p, purpose);
	if (pi < 0) {
		deny(out, POLICY_REASON_UNKNOWN_PURPOSE);
		return 0;
	}
	if (!(ro->purposes & (UINT64_C(1) << pi)))
		return 0;
	const struct policy_purpose *pu = &p->purposes[pi];
	/* A purpose that declares no channels (analytics, partner sharing) is
	 * decided without one: the question is the use, not a contact. A
	 * purpose with channels always needs one. */
	bool no_channel = channel == NULL || channel[0] == '\0';
	enum policy_channel ch = POLICY_CH_COUNT;
	if (no_channel ? pu->channels != 0 : policy_channel_from_name(channel, &ch) != 0) {
		deny(out, POLICY_REASON_UNKNOWN_CHANNEL);
		return 0;
	}

	/* A suppression is the person's own "stop" (or a hard bounce): the most
	 * telling answer, so it is named before an unknown or erased record. */
	if (s->suppressed)
		deny(out, POLICY_REASON_SUPPRESSED);
	else if (s->suppressed_by_list)
		deny(out, POLICY_REASON_SUPPRESSED_BY_LIST);
	else if (!s->exists)
		deny(out, POLICY_REASON_UNKNOWN_CONTACT);
	else if (s->erased)
		deny(out, POLICY_REASON_ERASED);
	else if (!collected_allows(p, s, pi))
		deny(out, POLICY_REASON_PURPOSE_INCOMPATIBLE);
	else if (!no_channel && !(pu->channels & (1u << ch)))
		deny(out, POLICY_REASON_CHANNEL_NOT_ALLOWED);
	else
		decide_consent(pu, &s->consent, now, out);
	out->visible_fields = 0;
	return 0;
}

int policy_decide_read(const struct policy *p, const char *role, const char *purpose,
		       const struct policy_subject *s, int64_t now, struct policy_decision *out)
{
	if (out == NULL)
		return err_set(ERR_INVALID, "policy_decide_read: no decision to fill");
	deny(out, POLICY_REASON_ROLE_DENIED);
	if (p == NULL || s == NULL)
		return err_set(ERR_INVALID, "policy_decide_read: missing policy or subject");

	int r = policy_role_index(p, role);
	if (r < 0)
		return 0;
	const struct policy_role *ro = &p->roles[r];
	if (!(ro->actions & (UINT32_C(1) << POLICY_ACT_CONTACTS_READ)))
		return 0;
	int pi = policy_purpose_index(p, purpose);
	if (pi < 0) {
		deny(out, POLICY_REASON_UNKNOWN_PURPOSE);
		return 0;
	}
	if (!(ro->purposes & (UINT64_C(1) << pi)))
		return 0;

	if (!s->exists)
		deny(out, POLICY_REASON_UNKNOWN_CONTACT);
	else if (s->erased)
		deny(out, POLICY_REASON_ERASED);
	else if (!collected_allows(p, s, pi))
		deny(out, POLICY_REASON_PURPOSE_INCOMPATIBLE);
	else
		decide_consent(&p->purposes[pi], &s->consent, now, out);
	out->visible_fields = out->allowed ? ro->fields[pi] : 0;
	return 0;
}
