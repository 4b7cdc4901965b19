/*
 * h_audit: (being written) routes for this area.
 */
#include "service/app.h"
#include "service/router.h"

const struct route audit_routes[] = {
	{ 0 },
};
