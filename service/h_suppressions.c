/*
 * h_suppressions: (being written) routes for this area.
 */
#include "service/app.h"
#include "service/router.h"

const struct route suppression_routes[] = {
	{ 0 },
};
