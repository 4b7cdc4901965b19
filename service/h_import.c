/*
 * h_import: (being written) routes for this area.
 */
#include "service/app.h"
#include "service/router.h"

const struct route import_routes[] = {
	{ 0 },
};
