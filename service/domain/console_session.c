/*
 * console_session: console session lifetimes on a txn. See
 * console_session.h.
 */
#include "service/domain/console_session.h"

#include "service/base/error.h"
#include "service/base/limits.h"

bool console_session_alive(const struct store_console_session *s, int64_t now)
{
	return now - s->seen_us < (int64_t)CONSOLE_IDLE_SECONDS * 1000000 &&
	       now - s->created_us < (int64_t)CONSOLE_ABSOLUTE_SECONDS * 1000000 && now >= s->created_us;
}

int console_session_load(struct txn *t, const uint8_t id_hash[32], struct store_console_session *out)
{
	int rc = store_console_session_get(t->c, id_hash, out);
	if (rc != 0)
		return rc;
	/* An ended session is no session: the caller cannot tell it from one
	 * that never existed, and must sign in again. */
	if (!console_session_alive(out, t->now_us))
		return err_set(ERR_NOTFOUND, "the console session has ended");
	return 0;
}

int console_session_start(struct txn *t, const struct store_console_session *s)
{
	int rc = store_console_sessions_expire(t->c, t->now_us - (int64_t)CONSOLE_IDLE_SECONDS * 1000000,
					       t->now_us - (int64_t)CONSOLE_ABSOLUTE_SECONDS * 1000000, NULL);
	return rc != 0 ? rc : store_console_session_insert(t->c, s);
}

int console_session_touch(struct txn *t, const uint8_t id_hash[32])
{
	return store_console_session_touch(t->c, id_hash, t->now_us);
}

int console_session_end(struct txn *t, const uint8_t id_hash[32])
{
	return store_console_session_delete(t->c, id_hash);
}
