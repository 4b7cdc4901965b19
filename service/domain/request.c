/*
 * request: data-subject request deadlines. See request.h for the rules.
 */
#include "service/domain/request.h"

#include "service/base/codec.h"
#include "service/base/error.h"

static bool leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_days(int y, int m)
{
	static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	return m == 2 && leap(y) ? 29 : days[m - 1];
}

bool request_date_valid(struct request_date d)
{
	return d.y >= 1 && d.y <= 9999 && d.m >= 1 && d.m <= 12 && d.d >= 1 && d.d <= month_days(d.y, d.m);
}

/* The calendar is codec's (the one proleptic Gregorian day count). */
int64_t request_days(struct request_date d)
{
	return days_from_civil(d.y, d.m, d.d);
}

struct request_date request_from_days(int64_t z)
{
	struct request_date r;
	civil_from_days(z, &r.y, &r.m, &r.d);
	return r;
}

int request_weekday(struct request_date d)
{
	/* 1970-01-01 was a Thursday (3 when Monday is 0). */
	int64_t w = (request_days(d) + 3) % 7;
	return (int)(w < 0 ? w + 7 : w);
}

/* The same day n months later, or that month's last day. */
static struct request_date add_months(struct request_date d, int n)
{
	int m0 = d.m - 1 + n;
	struct request_date r = { d.y + m0 / 12, m0 % 12 + 1, d.d };
	if (r.d > month_days(r.y, r.m))
		r.d = month_days(r.y, r.m);
	return r;
}

static struct request_date add_days(struct request_date d, int64_t n)
{
	return request_from_days(request_days(d) + n);
}

/* Saturday and Sunday move to the following Monday. */
static struct request_date next_working_day(struct request_date d)
{
	int w = request_weekday(d);
	return w >= 5 ? add_days(d, 7 - w) : d;
}

int request_due(enum request_jurisdiction j, struct request_date received, bool extended,
		struct request_date *due)
{
	if (!request_date_valid(received))
		return err_set(ERR_INVALID, "not a valid date");
	if (j == REQUEST_GDPR)
		*due = next_working_day(add_months(received, extended ? 3 : 1));
	else
		*due = add_days(received, extended ? 90 : 45);
	return 0;
}

int request_ack_due(enum request_jurisdiction j, struct request_date received, struct request_date *ack)
{
	if (!request_date_valid(received))
		return err_set(ERR_INVALID, "not a valid date");
	if (j != REQUEST_CCPA)
		return err_set(ERR_NOTFOUND, "GDPR sets no separate acknowledgement deadline");
	struct request_date d = received;
	for (int left = 10; left > 0;) {
		d = add_days(d, 1);
		if (request_weekday(d) < 5)
			left--;
	}
	*ack = d;
	return 0;
}

bool request_may_extend(enum request_jurisdiction j, struct request_date received, bool already_extended,
			struct request_date today)
{
	struct request_date first;
	if (already_extended || request_due(j, received, false, &first) != 0 || !request_date_valid(today))
		return false;
	return request_days(today) <= request_days(first);
}
