/*
 * request: the deadlines of data-subject requests (access, erasure,
 * objection), as pure functions of the receipt date. No I/O, no clock: the
 * caller passes every date, so the rules are tested as tables
 * (tests/unit/test_request.c).
 *
 * Dates are civil dates in UTC. The rules:
 *
 *   GDPR (Art. 12(3), periods as Regulation (EEC, Euratom) No 1182/71
 *   counts them): the answer is due one calendar month after receipt, on
 *   the same day of the next month, or on that month's last day when it
 *   has no such day (31 January -> 28 or 29 February). A due date on a
 *   Saturday or Sunday moves to the following Monday. An extension by two
 *   further months makes it three months after receipt (same rules), and
 *   is allowed only once and only while the first month has not ended
 *   (the person must be told within it).
 *
 *   CCPA (Cal. Code Regs. tit. 11, 7021): acknowledge within 10 business
 *   days (Monday to Friday) after receipt; respond within 45 calendar days
 *   of receipt; one extension by 45 more (90 days of receipt), allowed only
 *   before the first 45 days have passed.
 *
 * Public holidays are not modelled: they differ by member state and
 * state, so a deadline here is never later than the legal one, but may be
 * earlier by the holidays in the period.
 *
 * The life of a request (request_may_move is this table, and nothing
 * else moves a request):
 *
 *   received --> verified --> in_progress --> completed
 *      |            |             |      \--> denied
 *      |            |             +--> extended --> completed | denied
 *      +------------+--> denied
 *      +------------+--> extended (the person was told in time)
 *
 * completed and denied are final. "extended" is entered once, only on or
 * before the first deadline (request_may_extend), and moves the due date
 * to the extended one. Every move is a step with the staff member's
 * reason, sealed under the person's data key (the reason is free text);
 * its audit entry names the request, the states and the kind, never the
 * reason. Completing an erasure request erases the person (contact.h) in
 * the same transaction. The person is mailed when a request is received
 * and when it is completed, except after an erasure (no address is left
 * to write to: the page itself, or the staff member, tells them).
 */
#ifndef CONSENTD_DOMAIN_REQUEST_H
#define CONSENTD_DOMAIN_REQUEST_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "service/domain/reason.h"
#include "service/domain/txn.h"
#include "service/store/store.h"

enum request_jurisdiction { REQUEST_GDPR, REQUEST_CCPA };

struct request_date {
	int y, m, d; /* m 1..12, d 1..31 */
};

/* Days since 1970-01-01 of a valid date, and back. */
int64_t request_days(struct request_date d);
struct request_date request_from_days(int64_t days);
/* 0 Monday .. 6 Sunday. */
int request_weekday(struct request_date d);
/* Whether d names a real day (1 <= y <= 9999). */
bool request_date_valid(struct request_date d);

/* The day the answer is due: *due. ERR_INVALID for an invalid date. */
int request_due(enum request_jurisdiction j, struct request_date received, bool extended,
		struct request_date *due);
/* The day an acknowledgement is due (CCPA); ERR_NOTFOUND for GDPR, which
 * sets no separate acknowledgement deadline. */
int request_ack_due(enum request_jurisdiction j, struct request_date received, struct request_date *ack);
/* Whether the request may be extended on day today: not yet extended, and
 * today is on or before the first deadline. */
bool request_may_extend(enum request_jurisdiction j, struct request_date received, bool already_extended,
			struct request_date today);

/* ---- the life cycle ---------------------------------------------------- */

enum request_state {
	REQUEST_RECEIVED,
	REQUEST_VERIFIED,
	REQUEST_IN_PROGRESS,
	REQUEST_EXTENDED,
	REQUEST_COMPLETED,
	REQUEST_DENIED,
	REQUEST_STATE_COUNT
};
enum request_kind { REQUEST_ACCESS, REQUEST_ERASURE, REQUEST_OBJECTION, REQUEST_KIND_COUNT };

const char *request_state_name(enum request_state s);
const char *request_kind_name(enum request_kind k);
const char *request_jurisdiction_name(enum request_jurisdiction j);
/* 0, or ERR_INVALID for a name that is not one. */
int request_state_from_name(const char *name, enum request_state *out);
int request_kind_from_name(const char *name, enum request_kind *out);
int request_jurisdiction_from_name(const char *name, enum request_jurisdiction *out);

/* Whether the table above has the edge from -> to. */
bool request_may_move(enum request_state from, enum request_state to);

/* Why request r (as stored) may not move to `to` on day today: NULL when
 * it may; "invalid_transition" (no such edge), "extension_too_late" (the
 * first deadline has passed) otherwise. Pure. */
const char *request_refusal(const struct store_request *r, enum request_state to, struct request_date today);

/* The UTC day of t->now_us. */
struct request_date request_today(const struct txn *t);
/* The date of a stored day (days since 1970). */
struct request_date request_date_of_day(int64_t day);

/* On the writer: records a new request for live contact contact_id, kind,
 * jurisdiction, received on day `received`, from origin ("staff" or
 * "page"), in state `state` (received; verified when the link proved the
 * address; completed when the page answered it at once), with
 * needs_approval; queues the receipt mail in lang, except for a request
 * completed at once (its own answer).
 * ERR_NOTFOUND / ERR_GONE for an unknown or erased contact (*reason set),
 * ERR_UNPROCESSABLE for a receipt date in the future. */
int request_open(struct txn *t, const char *contact_id, enum request_kind kind, enum request_jurisdiction j,
		 struct request_date received, const char *origin, enum request_state state,
		 bool needs_approval, const char *lang, struct store_request *out,
		 enum decision_reason *reason);

/* On the writer: moves request id to `to` by actor with reason (UTF-8,
 * 1..LIMIT_REQUEST_REASON_BYTES bytes), at t->now_us. 0 with *refusal
 * NULL and *out the new row; 0 with *refusal set (request_refusal's
 * names, or "erased" when the person's key is gone and a reason cannot be
 * kept) and nothing written; ERR_NOTFOUND for an unknown id; ERR_CONFLICT
 * when another transition came first. */
int request_move(struct txn *t, const char *id, enum request_state to, const char *reason, const char *actor,
		 struct store_request *out, const char **refusal);

/* The stored request with this id; ERR_NOTFOUND when none. */
int request_get(struct txn *t, const char *id, struct store_request *out);
/* On a reader: the request as JSON (id, contact, kind, jurisdiction,
 * state, dates, and its steps with their reasons opened when with_steps;
 * a reason of an erased person is null). */
int request_get_json(struct txn *t, const char *id, bool with_steps, json_t **out);
/* On a reader: requests in state (NULL any) due before day (0 any), at
 * most max, as a JSON array; *more whether there were others. */
int request_list_json(struct txn *t, const char *state, int64_t due_before_day, size_t max, json_t **out,
		      bool *more);
/* The due date as YYYY-MM-DD. */
void request_due_text(const struct store_request *r, char out[16]);
/* The JSON of one stored request (no steps). */
json_t *request_to_json(const struct store_request *r);
/* On a reader: open requests overdue and due within
 * LIMIT_REQUEST_DUE_SOON_DAYS, for /metrics. */
int request_due_counts(struct txn *t, int64_t *overdue, int64_t *due_soon);

#endif
