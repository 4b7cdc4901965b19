/*
 * h_outreach: (being written) routes for this area.
 */
#include "service/app.h"
#include "service/router.h"

const struct route outreach_routes[] = {
	{ 0 },
};
