/*
 * anchor: the signed checkpoints kept outside the database, so that whoever
 * can write the database cannot also move the trail's signed end.
 *
 * Files (PATH is the configured anchor path, e.g. DIR/audit-anchor.json):
 *   PATH                    the newest signed checkpoint, one JSON line
 *   PATH.d/<size>.json      the last AUDIT_ANCHOR_GENERATIONS ones, the newest
 *                           included, <size> zero-padded to 20 digits
 * Invariants:
 * - Anchors only grow: audit_anchor_write refuses a checkpoint smaller than
 *   the newest anchor on disk.
 * - PATH is written first and its generation second, so a crash between the
 *   two leaves PATH newer than every generation, never older. Hence PATH
 *   missing while generations exist means it was deleted, and PATH smaller
 *   than a generation means it was replaced by an older one: both are faults.
 * - Every file is checked against the public key when loaded; a file that
 *   does not parse or is not validly signed is a fault, never skipped.
 */
#ifndef CONSENTD_AUDIT_ANCHOR_H
#define CONSENTD_AUDIT_ANCHOR_H

#include <stdbool.h>
#include <stddef.h>

#include "audit/checkpoint.h"
#include "audit/verify.h"
#include "service/base/limits.h"

struct audit_anchor_set {
	bool have;			/* at least one anchor file exists */
	struct audit_checkpoint latest; /* the largest, when have */
	struct audit_checkpoint all[AUDIT_ANCHOR_GENERATIONS + 1];
	size_t n;		/* files read into all[] */
	enum audit_fault fault; /* AUDIT_FAULT_NONE when consistent */
	char reason[AUDIT_REASON_BYTES];
};

/* Writes cp as PATH and as a new generation, then removes generations beyond
 * AUDIT_ANCHOR_GENERATIONS. ERR_CONFLICT when cp is smaller than the newest
 * anchor on disk; ERR_IO on a file error. */
int audit_anchor_write(const char *path, const struct audit_checkpoint *cp);

/* Reads PATH and every generation, checks each signature with key and the
 * set's consistency (see the invariants). Returns 0 with out->fault set when
 * the verdict is a fault, or a negative code when the files could not be
 * read at all (I/O error other than a missing file). */
int audit_anchor_load(const char *path, const struct audit_pubkey *key, struct audit_anchor_set *out);

#endif
