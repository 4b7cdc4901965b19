/*
 * policy_internal: the in-memory form of a loaded policy, shared by
 * policy_load.c (which builds it) and policy.c (which answers questions from
 * it). Nothing outside policy/ includes this header.
 *
 * Invariants once policy_load_* returns it:
 * - every name is unique within its table and matches its grammar;
 * - every cross-reference has been resolved to an index, so the bitmasks
 *   below never name a purpose, field or channel that does not exist;
 * - nothing is modified again until the last reference is dropped.
 */
#ifndef CONSENTD_POLICY_INTERNAL_H
#define CONSENTD_POLICY_INTERNAL_H

#include <stdatomic.h>

#include "policy/policy.h"

struct policy_purpose {
	char *name;
	char *description;
	char *description_zh;
	enum policy_legal_basis legal_basis;
	bool consent_required;
	unsigned channels; /* bit per enum policy_channel */
	int64_t lifetime_days;
	uint64_t compatible_with; /* bit per purpose index */
	bool sale_or_sharing;
	int64_t cap_max, cap_per_days; /* frequency_cap; 0: none */
	bool frequency_choice;
	bool double_opt_in;
};

struct policy_shared_cap_def {
	char *name;
	uint64_t purposes; /* bit per purpose index; at least two */
	int64_t max, per_days;
};

struct policy_field {
	char *name;
	enum policy_field_class field_class;
	enum policy_field_type type;
	char *description;
};

struct policy_role {
	char *name;
	uint32_t actions;			/* bit per enum policy_action */
	uint64_t purposes;			/* bit per purpose index */
	uint64_t fields[POLICY_MAX_PURPOSES];	/* per purpose index: bit per field index */
	unsigned metadata[POLICY_MAX_PURPOSES]; /* per purpose index: POLICY_META_* bits */
};

struct policy_principal {
	char *name;
	size_t role; /* index into roles */
	uint8_t token_sha256[32];
};

struct policy {
	atomic_ulong refs;
	char *notice_version;
	bool erasure_needs_approval;
	struct policy_purpose *purposes;
	size_t n_purposes;
	struct policy_field *fields;
	size_t n_fields;
	struct policy_role *roles;
	size_t n_roles;
	struct policy_principal *principals;
	size_t n_principals;
	struct policy_shared_cap_def *shared_caps; /* frequency_caps */
	size_t n_shared_caps;
};

/* Frees a policy's contents and the policy itself, ignoring the count. */
void policy_destroy(struct policy *p);

/* Index lookups; -1 when absent or name is NULL. */
int policy_purpose_index(const struct policy *p, const char *name);
int policy_field_index(const struct policy *p, const char *name);
int policy_role_index(const struct policy *p, const char *name);

#endif
