/*
 * request: data-subject request deadlines. See request.h for the rules.
 */
#include "service/domain/request.h"

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

/* Howard Hinnant's days_from_civil and civil_from_days (proleptic
 * Gregorian), exact over the whole range. */
int64_t request_days(struct request_date d)
{
	int64_t y = d.m <= 2 ? d.y - 1 : d.y;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (d.m + (d.m > 2 ? -3 : 9)) + 2) / 5 + d.d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

struct request_date request_from_days(int64_t z)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	struct request_date r;
	r.d = (int)(doy - (153 * mp + 2) / 5 + 1);
	r.m = (int)(mp < 10 ? mp + 3 : mp - 9);
	r.y = (int)(yoe + era * 400 + (r.m <= 2 ? 1 : 0));
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
