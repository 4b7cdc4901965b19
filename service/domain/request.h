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
 */
#ifndef CONSENTD_DOMAIN_REQUEST_H
#define CONSENTD_DOMAIN_REQUEST_H

#include <stdbool.h>
#include <stdint.h>

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

#endif
