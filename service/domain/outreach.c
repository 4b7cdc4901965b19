/*
 * outreach: the campaign filter's rules, block by block. See outreach.h.
 *
 * An entry is keyed and deduplicated when it arrives (outreach_entry) and
 * its echo (the entry as given, JSON or a CSV field) is copied into the
 * block's arena, since the parsed value is only borrowed for the call. A
 * full block (LIMIT_FILTER_BLOCK entries, or an arena nearly full) is decided:
 *
 *   lookup  e-mail entries sorted by blind index, one store call for all
 *           (store_filter_by_email_many); entries by id one by one
 *   decide  in list order: consent_decide, then the same-person dedupe
 *   caps    the allowed people of the block, sorted by contact id, in one
 *           store call (release_outreach_held_many)
 *   emit    in list order: counters, the released ids, the result lines
 *
 * so the answers, the counters and the reply are those of deciding each
 * entry on its own, in order.
 */
#include "service/domain/outreach.h"

#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/base/limits.h"
#include "service/bulk.h"
#include "service/crypto/fieldcrypt.h"
#include "service/crypto/spill.h"
#include "service/domain/consent.h"
#include "service/domain/contact.h"
#include "service/domain/release.h"
#include "service/domain/suppression.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEDUPE_SLOTS_MIN (UINT64_C(1) << 16)
#define RELEASE_CHUNK_IDS 4096
/* The longest echo of one entry: a line of LIMIT_LINE_BYTES, every byte
 * escaped as \u00XX, plus the rest of its result line. */
#define LINE_CAP (LIMIT_LINE_BYTES * 6 + 512)

enum kind { K_INVALID, K_ID, K_EMAIL };

struct pending {
	enum kind kind;
	uint64_t line;
	size_t echo_off, echo_len; /* in the arena */
	size_t aux_off;		   /* the contact id (K_ID) or the error (K_INVALID), NUL-ended */
	uint8_t bidx[32], shash[32];
	int rc;		       /* the lookup's result */
	uint32_t rowi;	       /* its lookup's row in rows[] */
	char id[STORE_ID_CAP]; /* the contact, once decided */
	struct policy_decision d;
	bool same_person;
	bool capped; /* allowed so far, and a cap or choice applies */
	bool held;   /* held back by a cap or the person's choice */
	int64_t reachable_us;
};

struct dedupe {
	uint64_t *slots;
	uint64_t cap, n;
};

struct outreach {
	struct txn *t;
	struct outreach_opts o;
	struct store_scope_keys keys;
	struct spill *out, *rel;
	struct spill_digest *digest;
	struct dedupe seen, persons;
	struct outreach_counts n;
	struct pending *block;
	size_t nblock;
	char *arena;
	size_t arena_used;
	uint32_t *order; /* LIMIT_FILTER_BLOCK indexes into block, for sorting */
	uint8_t (*bidx)[32], (*shash)[32];
	struct store_filter_row *rows;
	char (*ids)[STORE_ID_CAP]; /* the block's capped people, for the caps */
	bool *held;
	int64_t *reach;
	int *rc_each;
	char *line; /* LINE_CAP: one result line */
};

/* ---- the dedupe set: open addressing over non-zero 64-bit keys ---- */

static int dedupe_grow(struct dedupe *d)
{
	uint64_t cap = d->cap ? d->cap * 2 : DEDUPE_SLOTS_MIN;
	if (cap > LIMIT_FILTER_DEDUPE_SLOTS)
		return err_set(ERR_TOOBIG, "the list has more than %llu distinct entries; split it",
			       (unsigned long long)(LIMIT_FILTER_DEDUPE_SLOTS / 4 * 3));
	uint64_t *slots = calloc(cap, sizeof *slots);
	if (slots == NULL)
		return err_set(ERR_NOMEM, "out of memory");
	for (uint64_t i = 0; i < d->cap; i++) {
		uint64_t k = d->slots[i];
		if (k == 0)
			continue;
		uint64_t j = k & (cap - 1);
		while (slots[j] != 0)
			j = (j + 1) & (cap - 1);
		slots[j] = k;
	}
	free(d->slots);
	d->slots = slots;
	d->cap = cap;
	return 0;
}

/* 1 when key was already there, 0 when added, or a negative error. */
static int dedupe_add(struct dedupe *d, const uint8_t digest[8])
{
	uint64_t k;
	memcpy(&k, digest, 8);
	if (k == 0)
		k = 1;
	if ((d->n + 1) * 4 > d->cap * 3) {
		int rc = dedupe_grow(d);
		if (rc != 0)
			return rc;
	}
	uint64_t j = k & (d->cap - 1); /* keys are uniform digests */
	while (d->slots[j] != 0) {
		if (d->slots[j] == k)
			return 1;
		j = (j + 1) & (d->cap - 1);
	}
	d->slots[j] = k;
	d->n++;
	return 0;
}

/* ---- echoes and result lines ---- */

/* The entry as given, as JSON: strings quoted by hand (the hot path),
 * anything else through jansson; NULL and oversized values become null. */
static size_t echo_json(json_t *v, char *out, size_t cap)
{
	if (json_is_string(v)) {
		size_t n = bulk_json_quote(json_string_value(v), json_string_length(v), out, cap);
		if (n > 0)
			return n;
	} else if (v != NULL) {
		size_t n = json_dumpb(v, out, cap, JSON_COMPACT | JSON_ENCODE_ANY);
		if (n > 0 && n < cap)
			return n;
	}
	memcpy(out, "null", 4);
	return 4;
}

/* The string to decide: the entry itself, or one of the known keys of an
 * object entry (a CSV row with a header, an NDJSON object). */
static const char *entry_text(json_t *v)
{
	static const char *const keys[] = { "contact_id", "id", "email", "entry", NULL };
	if (json_is_string(v))
		return json_string_value(v);
	if (!json_is_object(v))
		return NULL;
	for (int i = 0; keys[i] != NULL; i++) {
		json_t *s = json_object_get(v, keys[i]);
		if (json_is_string(s))
			return json_string_value(s);
	}
	return NULL;
}

/* One CSV field (RFC 4180): quoted when it holds a comma, a quote or a line
 * break, and formula-safe: a field a spreadsheet would run as a formula
 * (starting with = + - @, a tab or a carriage return) gets a leading
 * apostrophe, so a hostile list cannot plant a formula in the export.
 * Returns the bytes written, or 0 when it does not fit. */
static size_t csv_field(const char *s, char *out, size_t cap)
{
	size_t n = 0, len = s ? strlen(s) : 0;
	bool quote = len > 0 && strpbrk(s, ",\"\r\n") != NULL;
	bool formula = len > 0 && strchr("=+-@\t\r", s[0]) != NULL;
	if (len * 2 + 4 > cap)
		return 0;
	if (quote)
		out[n++] = '"';
	if (formula)
		out[n++] = '\'';
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '"')
			out[n++] = '"';
		out[n++] = s[i];
	}
	if (quote)
		out[n++] = '"';
	return n;
}

/* A result as one CSV record (FILTER_CSV_HEADER's columns in h_outreach.c);
 * line and error only for an invalid entry, as in the NDJSON. */
static int put_csv(struct outreach *o, const struct pending *p, bool allowed, const char *reason,
		   const char *error)
{
	char num[24] = "";
	char when[32] = "";
	size_t n = p->echo_len;
	memcpy(o->line, o->arena + p->echo_off, n);
	if (p->reachable_us > 0)
		format_time_us(p->reachable_us, when, sizeof when);
	if (error != NULL)
		snprintf(num, sizeof num, "%llu", (unsigned long long)p->line);
	n += (size_t)snprintf(o->line + n, LINE_CAP - n, ",%s,%s,%s,%s,%s,", allowed ? "true" : "false",
			      error ? "invalid" : reason, allowed ? p->id : "", when, num);
	n += csv_field(error, o->line + n, LINE_CAP - n - 2);
	memcpy(o->line + n, "\r\n", 2);
	n += 2;
	return spill_write(o->out, o->line, n);
}

static int put_line(struct outreach *o, const struct pending *p, bool allowed, const char *reason,
		    const char *error)
{
	size_t n = 0;
	if (o->o.only_allowed && !allowed)
		return 0;
	if (o->o.csv_out)
		return put_csv(o, p, allowed, reason, error);
	memcpy(o->line, "{\"entry\":", 9);
	n = 9;
	memcpy(o->line + n, o->arena + p->echo_off, p->echo_len);
	n += p->echo_len;
	if (error != NULL)
		n += (size_t)snprintf(
			o->line + n, LINE_CAP - n,
			",\"line\":%llu,\"allowed\":false,\"reason\":\"invalid\",\"error\":\"%s\"}\n",
			(unsigned long long)p->line, error);
	else if (p->reachable_us > 0) {
		char when[32];
		format_time_us(p->reachable_us, when, sizeof when);
		n += (size_t)snprintf(o->line + n, LINE_CAP - n,
				      ",\"allowed\":false,\"reason\":\"%s\",\"reachable_again\":\"%s\"}\n",
				      reason, when);
	} else
		n += (size_t)snprintf(o->line + n, LINE_CAP - n, ",\"allowed\":%s,\"reason\":\"%s\"}\n",
				      allowed ? "true" : "false", reason);
	return spill_write(o->out, o->line, n);
}

/* ---- one block ---- */

/* qsort has no context argument; a thread sorts one block at a time. */
static _Thread_local struct outreach *sort_by;

static int cmp_bidx(const void *a, const void *b)
{
	const struct pending *blk = sort_by->block;
	return memcmp(blk[*(const uint32_t *)a].bidx, blk[*(const uint32_t *)b].bidx, 32);
}

static int cmp_id(const void *a, const void *b)
{
	const struct pending *blk = sort_by->block;
	return strcmp(blk[*(const uint32_t *)a].id, blk[*(const uint32_t *)b].id);
}

/* The block's e-mail entries in blind index order, one store call. A store
 * error denies every one of them ("error"). */
static void lookup_block(struct outreach *o)
{
	size_t k = 0, m = 0;
	for (size_t i = 0; i < o->nblock; i++)
		if (o->block[i].kind == K_EMAIL)
			o->order[k++] = (uint32_t)i;
	/* Entries by id take the rows after the e-mail entries' k. */
	for (size_t i = 0; i < o->nblock; i++) {
		struct pending *p = &o->block[i];
		if (p->kind != K_ID)
			continue;
		p->rowi = (uint32_t)(k + m++);
		p->rc = store_filter_by_id(o->t->c, o->arena + p->aux_off, o->o.purpose, o->o.channel,
					   &o->keys, &o->rows[p->rowi]);
	}
	if (k == 0)
		return;
	sort_by = o;
	qsort(o->order, k, sizeof *o->order, cmp_bidx);
	for (size_t j = 0; j < k; j++) {
		memcpy(o->bidx[j], o->block[o->order[j]].bidx, 32);
		memcpy(o->shash[j], o->block[o->order[j]].shash, 32);
	}
	int rc = store_filter_by_email_many(o->t->c, k, (const uint8_t(*)[32])o->bidx,
					    (const uint8_t(*)[32])o->shash, o->o.purpose, o->o.channel,
					    &o->keys, o->rows);
	for (size_t j = 0; j < k; j++) {
		struct pending *p = &o->block[o->order[j]];
		p->rc = rc;
		p->rowi = (uint32_t)j;
	}
	crypto_wipe(o->bidx, k * 32);
	crypto_wipe(o->shash, k * 32);
}

/* The consent decision and the same-person dedupe, in list order. */
static int decide_block(struct outreach *o)
{
	for (size_t i = 0; i < o->nblock; i++) {
		struct pending *p = &o->block[i];
		if (p->kind == K_INVALID || p->rc != 0)
			continue;
		const struct store_filter_row *row = &o->rows[p->rowi];
		consent_decide(o->t, o->o.role, o->o.purpose, o->o.channel, row, o->o.now_s, &p->d);
		if (!p->d.allowed)
			continue;
		memcpy(p->id, row->id, sizeof p->id);
		/* One person named twice (by id and by email) is answered allowed
		 * once, so a campaign never reaches anyone twice. */
		uint8_t pkey[32];
		release_id_key(p->id, pkey);
		int rc = dedupe_add(&o->persons, pkey);
		if (rc < 0)
			return rc;
		p->same_person = rc == 1;
		p->capped = !p->same_person && (o->o.cap_max > 0 || o->o.frequency_choice ||
						policy_shared_cap_count(o->t->policy) > 0);
	}
	return 0;
}

/* Frequency caps for the block's allowed people, in contact id order (the
 * release log's key), so the log's B-tree is walked forward. */
static void caps_block(struct outreach *o)
{
	size_t k = 0;
	for (size_t i = 0; i < o->nblock; i++)
		if (o->block[i].capped)
			o->order[k++] = (uint32_t)i;
	if (k == 0)
		return;
	sort_by = o;
	qsort(o->order, k, sizeof *o->order, cmp_id);
	for (size_t j = 0; j < k; j++)
		memcpy(o->ids[j], o->block[o->order[j]].id, STORE_ID_CAP);
	int rc = release_outreach_held_many(o->t, k, (const char(*)[STORE_ID_CAP])o->ids, o->o.purpose,
					    o->o.channel, o->o.cap_max, o->o.cap_per_days,
					    o->o.frequency_choice, o->held, o->reach, o->rc_each);
	/* Caps shared by several purposes (the policy's frequency_caps): the
	 * stricter answer holds; rc_each chains from the call above. */
	if (rc == 0 && policy_shared_cap_count(o->t->policy) > 0)
		rc = release_shared_held_many(o->t, k, (const char(*)[STORE_ID_CAP])o->ids, o->o.purpose,
					      o->o.channel, o->held, o->reach, o->rc_each);
	for (size_t j = 0; j < k; j++) {
		struct pending *p = &o->block[o->order[j]];
		if (rc != 0 || o->rc_each[j] != 0) {
			/* Undecidable: denied as an error, never allowed. */
			p->rc = rc != 0 ? rc : o->rc_each[j];
			continue;
		}
		p->held = o->held[j];
		p->reachable_us = p->held ? o->reach[j] : 0;
	}
}

/* Counters, released ids and result lines, in list order. */
static int emit_block(struct outreach *o)
{
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < o->nblock; i++) {
		struct pending *p = &o->block[i];
		if (p->kind == K_INVALID) {
			o->n.invalid++;
			o->n.denied++;
			rc = put_line(o, p, false, "invalid", o->arena + p->aux_off);
			continue;
		}
		o->n.decided++;
		if (p->rc != 0) {
			/* Undecidable: denied, never allowed. */
			o->n.errors++;
			o->n.denied++;
			p->reachable_us = 0;
			rc = put_line(o, p, false, "error", NULL);
			continue;
		}
		if (p->same_person) {
			o->n.same_person++;
			o->n.denied++;
			rc = put_line(o, p, false, "duplicate_person", NULL);
			continue;
		}
		if (p->held) {
			p->d.allowed = false;
			p->d.reason = POLICY_REASON_FREQUENCY_CAP;
			o->n.held_by_cap++;
		}
		o->n.reasons[p->d.reason]++;
		if (p->d.allowed) {
			uint8_t raw[16];
			o->n.allowed++;
			if (b64url_decode(p->id, strlen(p->id), raw, sizeof raw) == 16) {
				if ((rc = spill_write(o->rel, raw, sizeof raw)) != 0)
					break;
				o->n.released++;
			}
		} else {
			o->n.denied++;
		}
		rc = put_line(o, p, p->d.allowed, policy_reason_name(p->d.reason), NULL);
	}
	return rc;
}

static int flush_block(struct outreach *o)
{
	int rc = 0;
	if (o->nblock == 0)
		return 0;
	lookup_block(o);
	rc = decide_block(o);
	if (rc == 0) {
		caps_block(o);
		rc = emit_block(o);
	}
	o->nblock = 0;
	o->arena_used = 0;
	return rc;
}

/* ---- the run ---- */

int outreach_new(struct outreach **out, struct txn *t, const struct outreach_opts *opts, const char *dir)
{
	struct outreach *o = calloc(1, sizeof *o);
	int rc = 0;
	*out = NULL;
	if (o == NULL)
		return err_set(ERR_NOMEM, "out of memory");
	o->t = t;
	o->o = *opts;
	suppression_covering(o->o.purpose, o->o.channel, &o->keys);
	o->block = calloc(LIMIT_FILTER_BLOCK, sizeof *o->block);
	o->order = calloc(LIMIT_FILTER_BLOCK, sizeof *o->order);
	o->bidx = calloc(LIMIT_FILTER_BLOCK, sizeof *o->bidx);
	o->shash = calloc(LIMIT_FILTER_BLOCK, sizeof *o->shash);
	o->rows = calloc(LIMIT_FILTER_BLOCK, sizeof *o->rows);
	o->ids = calloc(LIMIT_FILTER_BLOCK, sizeof *o->ids);
	o->held = calloc(LIMIT_FILTER_BLOCK, sizeof *o->held);
	o->reach = calloc(LIMIT_FILTER_BLOCK, sizeof *o->reach);
	o->rc_each = calloc(LIMIT_FILTER_BLOCK, sizeof *o->rc_each);
	o->arena = malloc(LIMIT_FILTER_ARENA_BYTES);
	o->line = malloc(LINE_CAP);
	if (o->block == NULL || o->order == NULL || o->bidx == NULL || o->shash == NULL || o->rows == NULL ||
	    o->ids == NULL || o->held == NULL || o->reach == NULL || o->rc_each == NULL || o->arena == NULL ||
	    o->line == NULL)
		rc = err_set(ERR_NOMEM, "out of memory");
	if (rc == 0)
		rc = spill_open(&o->out, dir);
	if (rc == 0)
		rc = spill_open(&o->rel, dir);
	if (rc == 0)
		rc = spill_digest_new(&o->digest);
	if (rc == 0)
		rc = dedupe_grow(&o->seen);
	if (rc == 0)
		rc = dedupe_grow(&o->persons);
	if (rc == 0)
		rc = consent_lookup_bulk(t);
	if (rc != 0) {
		outreach_free(o);
		return rc;
	}
	*out = o;
	return 0;
}

void outreach_body(struct outreach *o, const void *data, size_t len)
{
	spill_digest_update(o->digest, data, len);
}

/* Copies s (n bytes and a NUL) into the arena; returns its offset. */
static size_t arena_put(struct outreach *o, const char *s, size_t n)
{
	size_t off = o->arena_used;
	memcpy(o->arena + off, s, n);
	o->arena[off + n] = '\0';
	o->arena_used += n + 1;
	return off;
}

/* The entry's echo into the arena: JSON, or the CSV field. */
static int arena_echo(struct outreach *o, struct pending *p, json_t *value)
{
	char *dst = o->arena + o->arena_used;
	size_t n;
	if (o->o.csv_out) {
		const char *text = value ? entry_text(value) : NULL;
		n = csv_field(text, dst, LINE_CAP - 256);
		if (text != NULL && n == 0)
			return err_set(ERR_TOOBIG, "an entry is too long to answer");
	} else {
		n = echo_json(value, dst, LINE_CAP - 256);
	}
	p->echo_off = o->arena_used;
	p->echo_len = n;
	o->arena_used += n;
	return 0;
}

int outreach_entry(struct outreach *o, uint64_t line, json_t *value, const char *error)
{
	uint8_t key[32];
	int rc;
	o->n.total++;
	if (o->nblock == LIMIT_FILTER_BLOCK || o->arena_used + 2 * LINE_CAP > LIMIT_FILTER_ARENA_BYTES) {
		if ((rc = flush_block(o)) != 0)
			return rc;
	}
	struct pending *p = &o->block[o->nblock];
	memset(p, 0, sizeof *p);
	p->line = line;
	p->d.allowed = false;
	p->same_person = p->capped = p->held = false;
	p->reachable_us = 0;
	const char *s = error == NULL ? entry_text(value) : NULL;
	if (error == NULL && s == NULL)
		error = "an entry is a contact id or an email address";
	if (error == NULL) {
		if (is_contact_id(s)) {
			p->kind = K_ID;
			release_id_key(s, key);
		} else if (contact_hash_email(o->t, s, p->bidx, p->shash) == 0) {
			p->kind = K_EMAIL;
			memcpy(key, p->bidx, 8);
		} else {
			error = "not an email address or a contact id";
		}
	}
	if (error != NULL) {
		p->kind = K_INVALID;
	} else {
		rc = dedupe_add(&o->seen, key);
		if (rc < 0)
			return rc;
		if (rc == 1) {
			o->n.duplicates++;
			return 0;
		}
	}
	if ((rc = arena_echo(o, p, value)) != 0)
		return rc;
	if (p->kind == K_INVALID)
		p->aux_off = arena_put(o, error, strlen(error));
	else if (p->kind == K_ID)
		p->aux_off = arena_put(o, s, strlen(s));
	o->nblock++;
	return 0;
}

int outreach_end(struct outreach *o)
{
	return flush_block(o);
}

const struct outreach_counts *outreach_counts(const struct outreach *o)
{
	return &o->n;
}

int outreach_list_digest(struct outreach *o, char hex[65])
{
	uint8_t sha[32];
	spill_digest_final(o->digest, sha);
	return release_list_digest(o->t, sha, hex);
}

int outreach_put(struct outreach *o, const char *text, size_t len)
{
	return spill_write(o->out, text, len);
}

int outreach_reply_take(struct outreach *o, void **reply)
{
	int rc = spill_rewind(o->out);
	if (rc != 0)
		return rc;
	*reply = o->out;
	o->out = NULL; /* the reply owns it now */
	return 0;
}

ssize_t outreach_reply_read(void *reply, char *buf, size_t cap)
{
	return spill_reply_read(reply, buf, cap);
}

void outreach_reply_free(void *reply)
{
	spill_reply_free(reply);
}

static int cmp16(const void *a, const void *b)
{
	return memcmp(a, b, 16);
}

int outreach_record(struct outreach *o, struct txn *w, const char *release_id, json_t *summary)
{
	uint8_t *ids = malloc(RELEASE_CHUNK_IDS * 16);
	int64_t chunk = 0;
	int rc = ids ? spill_rewind(o->rel) : err_set(ERR_NOMEM, "out of memory");
	while (rc == 0) {
		size_t have = 0;
		while (have < RELEASE_CHUNK_IDS * 16) {
			ssize_t n = spill_read(o->rel, ids + have, RELEASE_CHUNK_IDS * 16 - have);
			if (n < 0) {
				rc = (int)n;
				break;
			}
			if (n == 0)
				break;
			have += (size_t)n;
		}
		if (rc != 0 || have == 0)
			break;
		qsort(ids, have / 16, 16, cmp16);
		rc = release_put(w, release_id, chunk++, ids, have / 16);
		if (rc == 0)
			rc = release_cap_recheck(w, o->o.purpose, o->o.channel, o->o.cap_max,
						 o->o.cap_per_days, ids, have / 16);
		if (rc == 0)
			rc = release_shared_recheck(w, o->o.purpose, o->o.channel, ids, have / 16);
		if (rc == 0)
			rc = release_log_put(w, release_id, o->o.purpose, o->o.channel, ids, have / 16);
		if (have < RELEASE_CHUNK_IDS * 16)
			break;
	}
	free(ids);
	if (rc == 0)
		rc = release_summary_put(w, release_id, summary);
	return rc;
}

void outreach_free(struct outreach *o)
{
	if (o == NULL)
		return;
	spill_free(o->out);
	spill_free(o->rel);
	spill_digest_free(o->digest);
	free(o->seen.slots);
	free(o->persons.slots);
	free(o->block);
	free(o->order);
	free(o->bidx);
	free(o->shash);
	free(o->rows);
	free(o->ids);
	free(o->held);
	free(o->reach);
	free(o->rc_each);
	free(o->arena);
	free(o->line);
	free(o);
}
