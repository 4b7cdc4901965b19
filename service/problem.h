/*
 * problem: the one table from error codes to HTTP (status, problem type,
 * title) and the problem+json body. See problem.c.
 */
#ifndef CONSENTD_PROBLEM_H
#define CONSENTD_PROBLEM_H

struct problem {
	int code, status;
	const char *type, *title;
};

/* The entry for an error code; for a code outside the table, the 500
 * "internal" entry (code 0). Never NULL. */
const struct problem *problem_for(int code);
/* problem_for(code)->status. */
int status_for_err(int code);
/* The compact problem+json text (malloc'd; NULL when out of memory). detail
 * and reason are left out when NULL (detail also when empty). */
char *problem_json(int status, const char *type, const char *title, const char *detail, const char *reason,
		   const char *instance, const char *request_id);

#endif
