/*
 * policy_load: parses and validates a policy file into a struct policy.
 *
 * The file is untrusted until proven otherwise. Its size is checked before
 * parsing and its nesting depth is checked by a scan of the raw bytes, so
 * jansson never sees a document over LIMIT_POLICY_BYTES or deeper than
 * LIMIT_POLICY_DEPTH. Duplicate keys are refused by the parser, because the
 * second of two "fields" keys silently winning is exactly the kind of typo
 * that opens access.
 *
 * Validation never stops at the first problem: every section is checked and
 * every error is recorded with its JSON path, so an operator fixes a file in
 * one round. A policy is handed out only when the error list is empty.
 *
 * Cross-references are resolved in this order, so that each pass only needs
 * what earlier passes built: fields, purpose names, purposes (whose
 * compatible_with names other purposes), roles (naming actions, purposes and
 * fields), principals (naming roles).
 */
#include "policy/policy_internal.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "service/base/codec.h"
#include "service/base/error.h"

struct policy_error {
	char *path;
	char *reason;
};

struct policy_errors {
	char *source;
	size_t n;
	size_t dropped;
	struct policy_error items[POLICY_MAX_ERRORS];
};

#define PATH_BYTES 1024
#define PATH_KEY_SHOWN 64 /* bytes of an odd key shown in a path */

/* The loader's working state. path always holds the JSON path of the value
 * being checked; helpers extend it and restore the previous length. */
struct loader {
	struct policy *p;
	struct policy_errors *errs;
	char path[PATH_BYTES];
	size_t plen;
	bool nomem;
};

/* ---- Error list ------------------------------------------------------- */

static void add_error(struct loader *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void add_error(struct loader *L, const char *fmt, ...)
{
	struct policy_errors *e = L->errs;
	if (e->n == POLICY_MAX_ERRORS) {
		e->dropped++;
		return;
	}
	char reason[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof reason, fmt, ap);
	va_end(ap);
	char *path = strdup(L->path);
	char *r = strdup(reason);
	if (path == NULL || r == NULL) {
		free(path);
		free(r);
		L->nomem = true;
		e->dropped++;
		return;
	}
	e->items[e->n].path = path;
	e->items[e->n].reason = r;
	e->n++;
}

size_t policy_errors_count(const struct policy_errors *errs)
{
	return errs ? errs->n : 0;
}

const char *policy_errors_source(const struct policy_errors *errs)
{
	return errs ? errs->source : NULL;
}

const char *policy_errors_path(const struct policy_errors *errs, size_t i)
{
	return errs && i < errs->n ? errs->items[i].path : NULL;
}

const char *policy_errors_reason(const struct policy_errors *errs, size_t i)
{
	return errs && i < errs->n ? errs->items[i].reason : NULL;
}

int policy_errors_format(const struct policy_errors *errs, size_t i, char *buf, size_t len)
{
	if (errs == NULL || i >= errs->n) {
		if (len > 0)
			buf[0] = '\0';
		return -1;
	}
	return snprintf(buf, len, "%s: %s: %s", errs->source, errs->items[i].path, errs->items[i].reason);
}

void policy_errors_print(const struct policy_errors *errs, FILE *f)
{
	if (errs == NULL)
		return;
	for (size_t i = 0; i < errs->n; i++)
		fprintf(f, "%s: %s: %s\n", errs->source, errs->items[i].path, errs->items[i].reason);
	if (errs->dropped > 0)
		fprintf(f, "%s: %zu more errors not shown\n", errs->source, errs->dropped);
}

void policy_errors_free(struct policy_errors *errs)
{
	if (errs == NULL)
		return;
	for (size_t i = 0; i < errs->n; i++) {
		free(errs->items[i].path);
		free(errs->items[i].reason);
	}
	free(errs->source);
	free(errs);
}

/* ---- JSON paths ------------------------------------------------------- */

static size_t path_append(struct loader *L, const char *s)
{
	size_t mark = L->plen;
	size_t n = strlen(s);
	if (L->plen + n >= PATH_BYTES) {
		/* Cannot happen within LIMIT_POLICY_DEPTH and PATH_KEY_SHOWN,
		 * but a truncated path beats an overflow. */
		n = PATH_BYTES - 1 - L->plen;
	}
	memcpy(L->path + L->plen, s, n);
	L->plen += n;
	L->path[L->plen] = '\0';
	return mark;
}

static bool is_plain_key(const char *k)
{
	size_t n = 0;
	for (; k[n] != '\0'; n++) {
		char c = k[n];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
			return false;
	}
	return n > 0 && n <= PATH_KEY_SHOWN;
}

/* Extends the path with .key, or ["key"] with odd bytes escaped, so an error
 * message never carries control characters from the file. */
static size_t path_key(struct loader *L, const char *key)
{
	if (is_plain_key(key)) {
		size_t mark = path_append(L, ".");
		path_append(L, key);
		return mark;
	}
	char buf[PATH_KEY_SHOWN * 4 + 16];
	size_t o = 0;
	buf[o++] = '[';
	buf[o++] = '"';
	size_t i = 0;
	for (; key[i] != '\0' && i < PATH_KEY_SHOWN; i++) {
		unsigned char c = (unsigned char)key[i];
		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
			buf[o++] = (char)c;
		else
			o += (size_t)snprintf(buf + o, sizeof buf - o, "\\x%02x", c);
	}
	if (key[i] != '\0') {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o++] = '"';
	buf[o++] = ']';
	buf[o] = '\0';
	return path_append(L, buf);
}

static size_t path_index(struct loader *L, size_t i)
{
	char buf[32];
	snprintf(buf, sizeof buf, "[%zu]", i);
	return path_append(L, buf);
}

static void path_pop(struct loader *L, size_t mark)
{
	L->plen = mark;
	L->path[mark] = '\0';
}

/* ---- Value checks ----------------------------------------------------- */

static const char *json_kind(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	case JSON_NULL: return "null";
	}
	return "unknown";
}

/* Purpose, field and role names: [a-z][a-z0-9_]{0,63}. */
static bool valid_name(const char *s)
{
	if (s == NULL || !(s[0] >= 'a' && s[0] <= 'z'))
		return false;
	size_t n = 1;
	for (; s[n] != '\0'; n++) {
		char c = s[n];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
			return false;
		if (n >= LIMIT_NAME_BYTES)
			return false;
	}
	return true;
}

/* True when s may be echoed in a message: short printable ASCII, no quotes. */
static bool showable(const char *s)
{
	size_t n = 0;
	for (; s[n] != '\0'; n++)
		if (n >= LIMIT_NAME_BYTES || s[n] < 0x20 || s[n] >= 0x7f || s[n] == '"' || s[n] == '\\')
			return false;
	return true;
}

/* Principal names are labels in logs: [A-Za-z0-9][A-Za-z0-9._@-]{0,63},
 * and not one of consentd's own actor names (is_principal_name). */
static bool valid_principal_name(const char *s)
{
	size_t n = 0;
	for (; s[n] != '\0'; n++) {
		char c = s[n];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (!alnum && (n == 0 || (c != '.' && c != '_' && c != '@' && c != '-')))
			return false;
		if (n >= LIMIT_NAME_BYTES)
			return false;
	}
	return n > 0 && is_principal_name(s);
}

/* Checks that v is an object whose keys are all in `allowed` and that every
 * key in `required` is present. Returns false if v is not an object. */
static bool check_object(struct loader *L, const json_t *v, const char *const *allowed,
			 const char *const *required)
{
	if (!json_is_object(v)) {
		add_error(L, "must be an object, not %s", json_kind(v));
		return false;
	}
	const char *key;
	json_t *val;
	json_object_foreach ((json_t *)v, key, val) {
		bool known = false;
		for (size_t i = 0; allowed[i] != NULL; i++)
			if (strcmp(key, allowed[i]) == 0)
				known = true;
		if (!known) {
			size_t mark = path_key(L, key);
			add_error(L, "unknown key");
			path_pop(L, mark);
		}
	}
	for (size_t i = 0; required[i] != NULL; i++)
		if (json_object_get(v, required[i]) == NULL)
			add_error(L, "missing required key \"%s\"", required[i]);
	return true;
}

/* Copies a text value: a non-empty string of at most max bytes without
 * control characters. Returns NULL (after recording why) otherwise. */
static char *take_text(struct loader *L, const json_t *v, size_t max)
{
	if (!json_is_string(v)) {
		add_error(L, "must be a string, not %s", json_kind(v));
		return NULL;
	}
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);
	if (n == 0) {
		add_error(L, "must not be empty");
		return NULL;
	}
	if (n > max) {
		add_error(L, "is %zu bytes; the limit is %zu", n, max);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f) {
			add_error(L, "must not contain control characters");
			return NULL;
		}
	}
	char *copy = strdup(s);
	if (copy == NULL)
		L->nomem = true;
	return copy;
}

static bool take_bool(struct loader *L, const json_t *v, bool *out)
{
	if (!json_is_boolean(v)) {
		add_error(L, "must be true or false, not %s", json_kind(v));
		return false;
	}
	*out = json_is_true(v);
	return true;
}

/* Runs fn on each element of an array at key `key` of obj, with the path
 * extended by the key and the index. An absent optional key is fine. */
static bool array_at(struct loader *L, const json_t *obj, const char *key, size_t max, const json_t **out)
{
	const json_t *v = json_object_get(obj, key);
	*out = NULL;
	if (v == NULL)
		return false;
	size_t mark = path_key(L, key);
	bool ok = false;
	if (!json_is_array(v))
		add_error(L, "must be an array, not %s", json_kind(v));
	else if (json_array_size(v) > max)
		add_error(L, "has %zu entries; the limit is %zu", json_array_size(v), max);
	else
		ok = true;
	path_pop(L, mark);
	if (ok)
		*out = v;
	return ok;
}

/* Matches a string element against a lookup; records unknown, duplicate and
 * wrongly-typed elements. Returns the index or -1. `seen` tracks duplicates. */
static int array_name(struct loader *L, const json_t *el, const char *what, uint64_t *seen,
		      int (*lookup)(const void *ctx, const char *name), const void *ctx)
{
	if (!json_is_string(el)) {
		add_error(L, "must be a %s name (a string), not %s", what, json_kind(el));
		return -1;
	}
	const char *s = json_string_value(el);
	int idx = lookup(ctx, s);
	if (idx < 0) {
		/* The name is echoed only when it is short and printable, so odd
		 * bytes from the file stay out of messages. */
		if (showable(s))
			add_error(L, "unknown %s \"%s\"", what, s);
		else
			add_error(L, "unknown %s", what);
		return -1;
	}
	if (*seen & (UINT64_C(1) << idx)) {
		add_error(L, "duplicate %s \"%s\"", what, s);
		return -1;
	}
	*seen |= UINT64_C(1) << idx;
	return idx;
}

static int lookup_purpose(const void *ctx, const char *name)
{
	return policy_purpose_index(ctx, name);
}

static int lookup_field(const void *ctx, const char *name)
{
	return policy_field_index(ctx, name);
}

static int lookup_channel(const void *ctx, const char *name)
{
	enum policy_channel ch;
	(void)ctx;
	return policy_channel_from_name(name, &ch) == 0 ? (int)ch : -1;
}

static int lookup_action(const void *ctx, const char *name)
{
	enum policy_action act;
	(void)ctx;
	return policy_action_from_name(name, &act) == 0 ? (int)act : -1;
}

/* ---- Sections --------------------------------------------------------- */

static void load_fields(struct loader *L, const json_t *fields)
{
	static const char *const allowed[] = { "class", "type", "description", NULL };
	static const char *const required[] = { "class", "type", "description", NULL };
	struct policy *p = L->p;

	size_t mark = path_key(L, "fields");
	if (!json_is_object(fields)) {
		add_error(L, "must be an object, not %s", json_kind(fields));
		goto done;
	}
	if (json_object_size(fields) > POLICY_MAX_FIELDS) {
		add_error(L, "has %zu fields; the limit is %d", json_object_size(fields), POLICY_MAX_FIELDS);
		goto done;
	}
	p->fields = calloc(json_object_size(fields) + 1, sizeof *p->fields);
	if (p->fields == NULL) {
		L->nomem = true;
		goto done;
	}
	const char *key;
	json_t *val;
	json_object_foreach ((json_t *)fields, key, val) {
		size_t m2 = path_key(L, key);
		struct policy_field *f = &p->fields[p->n_fields];
		if (!valid_name(key)) {
			add_error(L, "field names must match [a-z][a-z0-9_]{0,63}");
			goto next;
		}
		if (strcmp(key, "collected_for") == 0 || strcmp(key, "source") == 0 ||
		    strcmp(key, "owner") == 0) {
			/* A contact's own plaintext attributes: a sealed field of
			 * that name could never be written or shown. */
			add_error(L, "\"%s\" is a contact attribute, not a field name", key);
			goto next;
		}
		/* The field is kept by name even if its body is wrong, so that
		 * roles naming it do not report a second, misleading error. */
		f->name = strdup(key);
		if (f->name == NULL) {
			L->nomem = true;
			goto next;
		}
		p->n_fields++;
		if (check_object(L, val, allowed, required)) {
			const json_t *v = json_object_get(val, "class");
			if (v != NULL) {
				size_t m3 = path_key(L, "class");
				const char *s = json_string_value(v);
				if (s != NULL && strcmp(s, "personal") == 0)
					f->field_class = POLICY_CLASS_PERSONAL;
				else if (s != NULL && strcmp(s, "sensitive") == 0)
					f->field_class = POLICY_CLASS_SENSITIVE;
				else
					add_error(L, "must be \"personal\" or \"sensitive\"");
				path_pop(L, m3);
			}
			v = json_object_get(val, "type");
			if (v != NULL) {
				size_t m3 = path_key(L, "type");
				const char *s = json_string_value(v);
				int t = 0;
				while (s != NULL && t <= POLICY_TYPE_INTEGER &&
				       strcmp(s, policy_field_type_name((enum policy_field_type)t)) != 0)
					t++;
				if (s == NULL || t > POLICY_TYPE_INTEGER)
					add_error(L, "must be one of string, email, phone, date, integer");
				else
					f->type = (enum policy_field_type)t;
				path_pop(L, m3);
			}
			v = json_object_get(val, "description");
			if (v != NULL) {
				size_t m3 = path_key(L, "description");
				f->description = take_text(L, v, POLICY_MAX_TEXT_BYTES);
				path_pop(L, m3);
			}
		}
	next:
		path_pop(L, m2);
	}
done:
	path_pop(L, mark);
}

/* Longest consent lifetime accepted: 100 years, so days * 86400 never
 * overflows and a typo of extra zeros is caught. */
#define MAX_LIFETIME_DAYS 36500

/* The max and per_days of a cap object (already checked to be an object):
 * both required integers in range; *max and *per_days are set only when
 * both are valid. */
static void load_cap_numbers(struct loader *L, const json_t *val, int64_t *max, int64_t *per_days)
{
	const json_t *mx, *pd;
	size_t m;
	mx = json_object_get(val, "max");
	pd = json_object_get(val, "per_days");
	m = path_key(L, "max");
	if (!json_is_integer(mx) || json_integer_value(mx) < 1 || json_integer_value(mx) > POLICY_CAP_MAX)
		add_error(L, "must be an integer between 1 and %d", POLICY_CAP_MAX);
	path_pop(L, m);
	m = path_key(L, "per_days");
	if (!json_is_integer(pd) || json_integer_value(pd) < 1 ||
	    json_integer_value(pd) > POLICY_CAP_MAX_DAYS)
		add_error(L, "must be an integer number of days between 1 and %d", POLICY_CAP_MAX_DAYS);
	path_pop(L, m);
	if (json_is_integer(mx) && json_is_integer(pd) && json_integer_value(mx) >= 1 &&
	    json_integer_value(mx) <= POLICY_CAP_MAX && json_integer_value(pd) >= 1 &&
	    json_integer_value(pd) <= POLICY_CAP_MAX_DAYS) {
		*max = json_integer_value(mx);
		*per_days = json_integer_value(pd);
	}
}

/* A frequency cap: {"max": N, "per_days": D}, both required integers. */
static void load_cap(struct loader *L, struct policy_purpose *pu, const json_t *val)
{
	static const char *const keys[] = { "max", "per_days", NULL };
	if (check_object(L, val, keys, keys))
		load_cap_numbers(L, val, &pu->cap_max, &pu->cap_per_days);
}

/* One cap shared by several purposes: {"name": N, "purposes": [at least two
 * purposes with channels], "max": N, "per_days": D}, every key required.
 * Kept only when all of it is valid. */
static void load_shared_cap(struct loader *L, const json_t *val)
{
	static const char *const keys[] = { "name", "purposes", "max", "per_days", NULL };
	struct policy *p = L->p;
	struct policy_shared_cap_def d = { 0 };
	const json_t *arr = NULL, *v;
	size_t errors = L->errs->n + L->errs->dropped, m;
	if (!check_object(L, val, keys, keys))
		return;
	if ((v = json_object_get(val, "name")) != NULL) {
		m = path_key(L, "name");
		if (!json_is_string(v) || !valid_name(json_string_value(v)))
			add_error(L, "cap names must match [a-z][a-z0-9_]{0,63}");
		else
			for (size_t i = 0; i < p->n_shared_caps; i++)
				if (strcmp(p->shared_caps[i].name, json_string_value(v)) == 0)
					add_error(L, "duplicate cap name \"%s\"", json_string_value(v));
		path_pop(L, m);
	}
	if (json_object_get(val, "purposes") != NULL &&
	    array_at(L, val, "purposes", POLICY_MAX_PURPOSES, &arr)) {
		m = path_key(L, "purposes");
		if (json_array_size(arr) < 2)
			add_error(L,
				  "a shared cap lists at least two purposes (one purpose has frequency_cap)");
		for (size_t i = 0; i < json_array_size(arr); i++) {
			size_t mi = path_index(L, i);
			int idx = array_name(L, json_array_get(arr, i), "purpose", &d.purposes,
					     lookup_purpose, p);
			if (idx >= 0 && p->purposes[idx].channels == 0)
				add_error(L,
					  "a purpose without channels contacts no one: a shared cap counts "
					  "releases per channel");
			path_pop(L, mi);
		}
		path_pop(L, m);
	}
	load_cap_numbers(L, val, &d.max, &d.per_days);
	if (L->errs->n + L->errs->dropped != errors || d.max == 0)
		return;
	d.name = strdup(json_string_value(json_object_get(val, "name")));
	if (d.name == NULL) {
		L->nomem = true;
		return;
	}
	p->shared_caps[p->n_shared_caps++] = d;
}

/* "frequency_caps": caps shared by several purposes. Read after the
 * purposes, which they name. */
static void load_shared_caps(struct loader *L, const json_t *root)
{
	struct policy *p = L->p;
	const json_t *arr = NULL;
	if (!array_at(L, root, "frequency_caps", POLICY_MAX_SHARED_CAPS, &arr))
		return;
	p->shared_caps = calloc(json_array_size(arr) + 1, sizeof *p->shared_caps);
	if (p->shared_caps == NULL) {
		L->nomem = true;
		return;
	}
	size_t mark = path_key(L, "frequency_caps");
	for (size_t i = 0; i < json_array_size(arr); i++) {
		size_t m = path_index(L, i);
		load_shared_cap(L, json_array_get(arr, i));
		path_pop(L, m);
	}
	path_pop(L, mark);
}

static void load_purpose(struct loader *L, struct policy_purpose *pu, const json_t *val)
{
	static const char *const allowed[] = { "description",	   "description_zh",  "legal_basis",
					       "consent_required", "channels",	      "consent_lifetime_days",
					       "compatible_with",  "sale_or_sharing", "frequency_cap",
					       "frequency_choice", "double_opt_in",   NULL };
	static const char *const required[] = { "description", "description_zh",
						"legal_basis", "consent_required",
						"channels",    "sale_or_sharing",
						NULL };
	struct policy *p = L->p;
	if (!check_object(L, val, allowed, required))
		return;

	const json_t *v;
	size_t m;
	if ((v = json_object_get(val, "description")) != NULL) {
		m = path_key(L, "description");
		pu->description = take_text(L, v, POLICY_MAX_TEXT_BYTES);
		path_pop(L, m);
	}
	if ((v = json_object_get(val, "description_zh")) != NULL) {
		m = path_key(L, "description_zh");
		pu->description_zh = take_text(L, v, POLICY_MAX_TEXT_BYTES);
		path_pop(L, m);
	}
	bool basis_ok = false;
	if ((v = json_object_get(val, "legal_basis")) != NULL) {
		m = path_key(L, "legal_basis");
		const char *s = json_string_value(v);
		for (int b = 0; s != NULL && b < POLICY_BASIS_COUNT; b++)
			if (strcmp(s, policy_legal_basis_name((enum policy_legal_basis)b)) == 0) {
				pu->legal_basis = (enum policy_legal_basis)b;
				basis_ok = true;
			}
		if (!basis_ok)
			add_error(L, "must be one of consent, contract, legal_obligation, vital_interests, "
				     "public_task, legitimate_interests");
		path_pop(L, m);
	}
	bool required_ok = false;
	if ((v = json_object_get(val, "consent_required")) != NULL) {
		m = path_key(L, "consent_required");
		required_ok = take_bool(L, v, &pu->consent_required);
		if (required_ok && basis_ok && pu->legal_basis == POLICY_BASIS_CONSENT &&
		    !pu->consent_required)
			add_error(L, "must be true when legal_basis is \"consent\"");
		path_pop(L, m);
	}
	const json_t *arr;
	if (array_at(L, val, "channels", POLICY_CH_COUNT * 2, &arr)) {
		uint64_t seen = 0;
		m = path_key(L, "channels");
		for (size_t i = 0; i < json_array_size(arr); i++) {
			size_t mi = path_index(L, i);
			int ch =
				array_name(L, json_array_get(arr, i), "channel", &seen, lookup_channel, NULL);
			if (ch >= 0)
				pu->channels |= 1u << ch;
			path_pop(L, mi);
		}
		path_pop(L, m);
	}
	if ((v = json_object_get(val, "consent_lifetime_days")) != NULL) {
		m = path_key(L, "consent_lifetime_days");
		if (!json_is_integer(v))
			add_error(L, "must be an integer number of days, not %s", json_kind(v));
		else if (json_integer_value(v) <= 0 || json_integer_value(v) > MAX_LIFETIME_DAYS)
			add_error(L, "must be between 1 and %d days", MAX_LIFETIME_DAYS);
		else
			pu->lifetime_days = json_integer_value(v);
		path_pop(L, m);
	} else if (required_ok && pu->consent_required) {
		add_error(L, "missing required key \"consent_lifetime_days\" (consent_required is true)");
	}
	if (array_at(L, val, "compatible_with", POLICY_MAX_PURPOSES, &arr)) {
		uint64_t seen = 0;
		m = path_key(L, "compatible_with");
		for (size_t i = 0; i < json_array_size(arr); i++) {
			size_t mi = path_index(L, i);
			const json_t *el = json_array_get(arr, i);
			if (json_is_string(el) && strcmp(json_string_value(el), pu->name) == 0) {
				add_error(L, "a purpose is always compatible with itself; do not list it");
			} else {
				int idx = array_name(L, el, "purpose", &seen, lookup_purpose, p);
				if (idx >= 0)
					pu->compatible_with |= UINT64_C(1) << idx;
			}
			path_pop(L, mi);
		}
		path_pop(L, m);
	}
	if ((v = json_object_get(val, "sale_or_sharing")) != NULL) {
		m = path_key(L, "sale_or_sharing");
		take_bool(L, v, &pu->sale_or_sharing);
		path_pop(L, m);
	}
	if ((v = json_object_get(val, "frequency_cap")) != NULL) {
		m = path_key(L, "frequency_cap");
		load_cap(L, pu, v);
		path_pop(L, m);
	}
	if ((v = json_object_get(val, "frequency_choice")) != NULL) {
		m = path_key(L, "frequency_choice");
		if (take_bool(L, v, &pu->frequency_choice) && pu->frequency_choice && pu->channels == 0)
			add_error(L, "a purpose without channels contacts no one: no frequency to choose");
		path_pop(L, m);
	}
	if ((v = json_object_get(val, "double_opt_in")) != NULL) {
		m = path_key(L, "double_opt_in");
		if (take_bool(L, v, &pu->double_opt_in) && pu->double_opt_in &&
		    !(pu->channels & (1u << POLICY_CH_EMAIL)))
			add_error(
				L,
				"double opt-in confirms an email address: the purpose needs the email channel");
		path_pop(L, m);
	}
}

static void load_purposes(struct loader *L, const json_t *purposes)
{
	struct policy *p = L->p;
	size_t mark = path_key(L, "purposes");
	if (!json_is_object(purposes)) {
		add_error(L, "must be an object, not %s", json_kind(purposes));
		goto done;
	}
	if (json_object_size(purposes) > POLICY_MAX_PURPOSES) {
		add_error(L, "has %zu purposes; the limit is %d", json_object_size(purposes),
			  POLICY_MAX_PURPOSES);
		goto done;
	}
	p->purposes = calloc(json_object_size(purposes) + 1, sizeof *p->purposes);
	if (p->purposes == NULL) {
		L->nomem = true;
		goto done;
	}
	/* First pass: names only, so compatible_with may name a purpose that
	 * appears later in the file. */
	const char *key;
	json_t *val;
	json_object_foreach ((json_t *)purposes, key, val) {
		if (!valid_name(key)) {
			size_t m2 = path_key(L, key);
			add_error(L, "purpose names must match [a-z][a-z0-9_]{0,63}");
			path_pop(L, m2);
			continue;
		}
		p->purposes[p->n_purposes].name = strdup(key);
		if (p->purposes[p->n_purposes].name == NULL) {
			L->nomem = true;
			goto done;
		}
		p->n_purposes++;
	}
	json_object_foreach ((json_t *)purposes, key, val) {
		int idx = policy_purpose_index(p, key);
		if (idx < 0)
			continue;
		size_t m2 = path_key(L, key);
		load_purpose(L, &p->purposes[idx], val);
		path_pop(L, m2);
	}
done:
	path_pop(L, mark);
}

static void load_role_fields(struct loader *L, struct policy_role *r, const json_t *fields)
{
	struct policy *p = L->p;
	if (!json_is_object(fields)) {
		add_error(L, "must be an object (purpose -> list of fields), not %s", json_kind(fields));
		return;
	}
	const char *key;
	json_t *val;
	json_object_foreach ((json_t *)fields, key, val) {
		size_t m = path_key(L, key);
		int pidx = policy_purpose_index(p, key);
		if (pidx < 0) {
			add_error(L, "unknown purpose");
		} else if (!(r->purposes & (UINT64_C(1) << pidx))) {
			add_error(L, "purpose \"%s\" is not in this role's purposes", key);
		} else if (!json_is_array(val)) {
			add_error(L, "must be an array of field names, not %s", json_kind(val));
		} else if (json_array_size(val) > POLICY_MAX_FIELDS) {
			add_error(L, "has %zu entries; the limit is %d", json_array_size(val),
				  POLICY_MAX_FIELDS);
		} else {
			uint64_t seen = 0;
			for (size_t i = 0; i < json_array_size(val); i++) {
				size_t mi = path_index(L, i);
				const char *fname = json_string_value(json_array_get(val, i));
				unsigned meta = fname == NULL		       ? 0
						: strcmp(fname, "source") == 0 ? POLICY_META_SOURCE
						: strcmp(fname, "owner") == 0  ? POLICY_META_OWNER
									       : 0;
				if (meta != 0) {
					/* A contact's plaintext labels, shown like fields. */
					if (r->metadata[pidx] & meta)
						add_error(L, "duplicate field \"%s\"", fname);
					r->metadata[pidx] |= meta;
					path_pop(L, mi);
					continue;
				}
				int f = array_name(L, json_array_get(val, i), "field", &seen, lookup_field,
						   p);
				if (f >= 0)
					r->fields[pidx] |= UINT64_C(1) << f;
				path_pop(L, mi);
			}
		}
		path_pop(L, m);
	}
}

static void load_roles(struct loader *L, const json_t *roles)
{
	static const char *const allowed[] = { "actions", "purposes", "fields", NULL };
	static const char *const required[] = { "actions", "purposes", NULL };
	struct policy *p = L->p;
	size_t mark = path_key(L, "roles");
	if (!json_is_object(roles)) {
		add_error(L, "must be an object, not %s", json_kind(roles));
		goto done;
	}
	if (json_object_size(roles) > POLICY_MAX_ROLES) {
		add_error(L, "has %zu roles; the limit is %d", json_object_size(roles), POLICY_MAX_ROLES);
		goto done;
	}
	p->roles = calloc(json_object_size(roles) + 1, sizeof *p->roles);
	if (p->roles == NULL) {
		L->nomem = true;
		goto done;
	}
	const char *key;
	json_t *val;
	json_object_foreach ((json_t *)roles, key, val) {
		size_t m = path_key(L, key);
		struct policy_role *r = &p->roles[p->n_roles];
		if (!valid_name(key)) {
			add_error(L, "role names must match [a-z][a-z0-9_]{0,63}");
			goto next;
		}
		/* Like fields, a role with a bad body is kept by name so that
		 * principals naming it report only the real error. */
		r->name = strdup(key);
		if (r->name == NULL) {
			L->nomem = true;
			goto next;
		}
		p->n_roles++;
		if (!check_object(L, val, allowed, required))
			goto next;
		const json_t *arr;
		if (array_at(L, val, "actions", POLICY_ACT_COUNT * 2, &arr)) {
			uint64_t seen = 0;
			size_t m2 = path_key(L, "actions");
			for (size_t i = 0; i < json_array_size(arr); i++) {
				size_t mi = path_index(L, i);
				int a = array_name(L, json_array_get(arr, i), "action", &seen, lookup_action,
						   NULL);
				if (a >= 0)
					r->actions |= UINT32_C(1) << a;
				path_pop(L, mi);
			}
			/* Widening is an update: a role that may widen but not
			 * update would hold a right no route can use. */
			if ((r->actions & (UINT32_C(1) << POLICY_ACT_CONTACTS_WIDEN_PURPOSES)) &&
			    !(r->actions & (UINT32_C(1) << POLICY_ACT_CONTACTS_UPDATE)))
				add_error(L,
					  "contacts.widen_purposes needs contacts.update in the same role");
			/* Managing requests means reading them first: the state
			 * a transition starts from is read by requests.read. */
			if ((r->actions & (UINT32_C(1) << POLICY_ACT_REQUESTS_MANAGE)) &&
			    !(r->actions & (UINT32_C(1) << POLICY_ACT_REQUESTS_READ)))
				add_error(L, "requests.manage needs requests.read in the same role");
			path_pop(L, m2);
		}
		if (array_at(L, val, "purposes", POLICY_MAX_PURPOSES, &arr)) {
			uint64_t seen = 0;
			size_t m2 = path_key(L, "purposes");
			for (size_t i = 0; i < json_array_size(arr); i++) {
				size_t mi = path_index(L, i);
				int pu = array_name(L, json_array_get(arr, i), "purpose", &seen,
						    lookup_purpose, p);
				if (pu >= 0)
					r->purposes |= UINT64_C(1) << pu;
				path_pop(L, mi);
			}
			path_pop(L, m2);
		}
		const json_t *fields = json_object_get(val, "fields");
		if (fields != NULL) {
			size_t m2 = path_key(L, "fields");
			load_role_fields(L, r, fields);
			path_pop(L, m2);
		}
	next:
		path_pop(L, m);
	}
done:
	path_pop(L, mark);
}

static void load_principals(struct loader *L, const json_t *arr)
{
	static const char *const keys[] = { "name", "role", "token_sha256", NULL };
	struct policy *p = L->p;
	size_t mark = path_key(L, "principals");
	if (!json_is_array(arr)) {
		add_error(L, "must be an array, not %s", json_kind(arr));
		goto done;
	}
	if (json_array_size(arr) > POLICY_MAX_PRINCIPALS) {
		add_error(L, "has %zu entries; the limit is %d", json_array_size(arr), POLICY_MAX_PRINCIPALS);
		goto done;
	}
	p->principals = calloc(json_array_size(arr) + 1, sizeof *p->principals);
	if (p->principals == NULL) {
		L->nomem = true;
		goto done;
	}
	for (size_t i = 0; i < json_array_size(arr); i++) {
		const json_t *el = json_array_get(arr, i);
		size_t m = path_index(L, i);
		struct policy_principal *pr = &p->principals[p->n_principals];
		/* A missing key is already reported by check_object; the entry
		 * is only kept when all three are present and valid. */
		bool ok = check_object(L, el, keys, keys);
		for (size_t k = 0; ok && keys[k] != NULL; k++)
			ok = json_object_get(el, keys[k]) != NULL;
		if (!ok)
			goto next;
		const json_t *v = json_object_get(el, "name");
		if (v != NULL) {
			size_t m2 = path_key(L, "name");
			const char *s = json_string_value(v);
			if (s == NULL || !valid_principal_name(s)) {
				add_error(L, "must be a string matching [A-Za-z0-9][A-Za-z0-9._@-]{0,63} "
					     "and not a reserved actor name (customer, operator, system)");
				ok = false;
			} else {
				for (size_t j = 0; j < p->n_principals; j++)
					if (strcmp(p->principals[j].name, s) == 0) {
						add_error(L, "duplicate principal name \"%s\"", s);
						ok = false;
					}
			}
			path_pop(L, m2);
		}
		v = json_object_get(el, "role");
		if (v != NULL) {
			size_t m2 = path_key(L, "role");
			int r = json_is_string(v) ? policy_role_index(p, json_string_value(v)) : -1;
			if (!json_is_string(v)) {
				add_error(L, "must be a role name (a string), not %s", json_kind(v));
				ok = false;
			} else if (r < 0) {
				add_error(L, "unknown role");
				ok = false;
			} else {
				pr->role = (size_t)r;
			}
			path_pop(L, m2);
		}
		v = json_object_get(el, "token_sha256");
		if (v != NULL) {
			size_t m2 = path_key(L, "token_sha256");
			const char *s = json_string_value(v);
			bool hex_ok =
				s != NULL && hex_decode_lower(s, json_string_length(v), pr->token_sha256,
							      sizeof pr->token_sha256);
			if (!hex_ok) {
				add_error(L, "must be 64 lowercase hexadecimal characters (a SHA-256)");
				ok = false;
			} else {
				for (size_t j = 0; j < p->n_principals; j++)
					if (memcmp(p->principals[j].token_sha256, pr->token_sha256, 32) ==
					    0) {
						add_error(
							L,
							"same token hash as $.principals[%zu]; tokens must be unique",
							j);
						ok = false;
					}
			}
			path_pop(L, m2);
		}
		if (ok) {
			pr->name = strdup(json_string_value(json_object_get(el, "name")));
			if (pr->name == NULL)
				L->nomem = true;
			else
				p->n_principals++;
		}
	next:
		path_pop(L, m);
	}
done:
	path_pop(L, mark);
}

/* ---- Entry points ----------------------------------------------------- */

static void load_root(struct loader *L, const json_t *root)
{
	static const char *const allowed[] = {
		"version",	  "notice_version",	    "purposes", "fields", "roles", "principals",
		"frequency_caps", "erasure_needs_approval", NULL
	};
	static const char *const required[] = { "version", "notice_version", "purposes",
						"fields",  "roles",	     NULL };
	struct policy *p = L->p;
	if (!check_object(L, root, allowed, required))
		return;

	const json_t *v = json_object_get(root, "version");
	if (v != NULL) {
		size_t m = path_key(L, "version");
		if (!json_is_integer(v) || json_integer_value(v) != 1)
			add_error(L, "must be the integer 1 (the only policy format version)");
		path_pop(L, m);
	}
	v = json_object_get(root, "notice_version");
	if (v != NULL) {
		size_t m = path_key(L, "notice_version");
		p->notice_version = take_text(L, v, LIMIT_NAME_BYTES);
		path_pop(L, m);
	}
	if ((v = json_object_get(root, "erasure_needs_approval")) != NULL) {
		size_t m = path_key(L, "erasure_needs_approval");
		if (!json_is_boolean(v))
			add_error(L, "must be true or false");
		p->erasure_needs_approval = json_is_true(v);
		path_pop(L, m);
	}
	if ((v = json_object_get(root, "fields")) != NULL)
		load_fields(L, v);
	if ((v = json_object_get(root, "purposes")) != NULL)
		load_purposes(L, v);
	if (json_object_get(root, "frequency_caps") != NULL)
		load_shared_caps(L, root);
	if ((v = json_object_get(root, "roles")) != NULL)
		load_roles(L, v);
	if ((v = json_object_get(root, "principals")) != NULL)
		load_principals(L, v);
}

int policy_load_buffer(struct policy **out, const char *json, size_t len, const char *source_name,
		       struct policy_errors **errs)
{
	int rc = ERR_NOMEM;
	json_t *root = NULL;
	struct loader L = { .plen = 1, .path = "$" };

	*out = NULL;
	if (errs != NULL)
		*errs = NULL;
	if (source_name == NULL)
		source_name = "policy";
	L.errs = calloc(1, sizeof *L.errs);
	if (L.errs == NULL)
		goto fail;
	L.errs->source = strdup(source_name);
	L.p = calloc(1, sizeof *L.p);
	if (L.errs->source == NULL || L.p == NULL)
		goto fail;
	atomic_init(&L.p->refs, 1);

	if (json == NULL || len > LIMIT_POLICY_BYTES) {
		add_error(&L, "policy is %zu bytes; the limit is %d", json ? len : 0, LIMIT_POLICY_BYTES);
		rc = ERR_TOOBIG;
		goto fail;
	}
	if (!json_depth_within(json, len, LIMIT_POLICY_DEPTH)) {
		add_error(&L, "nesting is deeper than %d levels", LIMIT_POLICY_DEPTH);
		rc = ERR_TOOBIG;
		goto fail;
	}
	json_error_t jerr;
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		add_error(&L, "not valid JSON: line %d column %d: %s", jerr.line, jerr.column, jerr.text);
		rc = ERR_INVALID;
		goto fail;
	}
	load_root(&L, root);
	if (L.nomem) {
		rc = ERR_NOMEM;
		goto fail;
	}
	if (L.errs->n > 0 || L.errs->dropped > 0) {
		rc = ERR_INVALID;
		goto fail;
	}
	json_decref(root);
	policy_errors_free(L.errs);
	*out = L.p;
	return 0;

fail:
	json_decref(root);
	if (L.errs != NULL && L.errs->n > 0)
		err_set(rc, "policy %s: %zu error(s); first: %s: %s", source_name,
			L.errs->n + L.errs->dropped, L.errs->items[0].path, L.errs->items[0].reason);
	else
		err_set(rc, "policy %s: out of memory while loading", source_name);
	if (L.p != NULL)
		policy_destroy(L.p);
	if (errs != NULL && L.errs != NULL && L.errs->source != NULL)
		*errs = L.errs;
	else
		policy_errors_free(L.errs);
	return rc;
}

int policy_load_file(struct policy **out, const char *path, struct policy_errors **errs)
{
	int rc = ERR_IO;
	FILE *f = NULL;
	char *buf = NULL;
	struct policy_errors *e = NULL;

	*out = NULL;
	if (errs != NULL)
		*errs = NULL;
	f = fopen(path, "rb");
	struct stat st;
	if (f == NULL || fstat(fileno(f), &st) != 0) {
		err_set(ERR_IO, "policy %s: cannot open: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		err_set(ERR_IO, "policy %s: not a regular file", path);
		goto fail;
	}
	/* Read one byte past the limit so an oversized file (even one that
	 * grew after fstat) is recognised without reading all of it. */
	buf = malloc(LIMIT_POLICY_BYTES + 1);
	if (buf == NULL) {
		rc = err_set(ERR_NOMEM, "policy %s: out of memory", path);
		goto fail;
	}
	size_t len = fread(buf, 1, LIMIT_POLICY_BYTES + 1, f);
	if (ferror(f)) {
		err_set(ERR_IO, "policy %s: read error", path);
		goto fail;
	}
	rc = policy_load_buffer(out, buf, len, path, &e);

fail:
	if (f != NULL)
		fclose(f);
	free(buf);
	if (errs != NULL)
		*errs = e;
	else
		policy_errors_free(e);
	return rc;
}
