/*
 * h_customer: (being written) routes for this area.
 */
#include "service/app.h"
#include "service/router.h"

const struct route customer_routes[] = {
	{ 0 },
};
