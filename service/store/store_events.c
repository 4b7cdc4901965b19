/*
 * store_events: the provider events consentd has taken in (table
 * provider_event), so a provider's retry of an event changes nothing. Only
 * the provider's name and a keyed hash of its event id are stored.
 */
#include "service/store/store_internal.h"

#include "service/base/error.h"

static const char SQL_PROVIDER_EVENT_ONCE[] =
	"INSERT INTO provider_event (provider, id_hash, received_us) VALUES (?1, ?2, ?3) "
	"ON CONFLICT (provider, id_hash) DO NOTHING";

int sqlite_provider_event_once(struct store_conn *c, const char *provider, const uint8_t id_hash[32],
			       int64_t received_us)
{
	sqlite3_stmt *s = store_stmt_sql(c, SQL_PROVIDER_EVENT_ONCE);
	if (s == NULL)
		return err_code();
	store_bind_text(s, 1, provider);
	sqlite3_bind_blob(s, 2, id_hash, 32, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, received_us);
	int rc = store_step_done(c, s, "cannot record the provider event");
	if (rc != 0)
		return rc;
	return sqlite3_changes(sq_conn(c)->db) > 0 ? 1 : 0;
}
