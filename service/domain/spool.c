/*
 * spool: a thin owner of an encrypted spill (service/crypto/spill.c holds
 * the key, the file and the record format). What it adds is the domain's
 * vocabulary: fixed-size records read back whole, and result lines.
 */
#include "service/domain/spool.h"

#include "service/base/error.h"
#include "service/crypto/spill.h"

#include <stdlib.h>
#include <string.h>

struct spool {
	struct spill *sp;
};

int spool_open(struct spool **out, const char *dir)
{
	struct spool *s = calloc(1, sizeof *s);
	int rc;
	*out = NULL;
	if (s == NULL)
		return err_set(ERR_NOMEM, "out of memory");
	if ((rc = spill_open(&s->sp, dir)) != 0) {
		free(s);
		return rc;
	}
	*out = s;
	return 0;
}

int spool_put(struct spool *s, const void *data, size_t len)
{
	return spill_write(s->sp, data, len);
}

int spool_line(struct spool *s, const char *text)
{
	int rc = spill_write(s->sp, text, strlen(text));
	return rc != 0 ? rc : spill_write(s->sp, "\n", 1);
}

int spool_rewind(struct spool *s)
{
	return spill_rewind(s->sp);
}

int spool_get(struct spool *s, void *buf, size_t len)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = spill_read(s->sp, (char *)buf + got, len - got);
		if (n < 0)
			return (int)n;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (got == 0)
		return 0;
	if (got < len)
		return err_set(ERR_IO, "a spooled record is cut short");
	return 1;
}

void spool_free(struct spool *s)
{
	if (s == NULL)
		return;
	spill_free(s->sp);
	free(s);
}

ssize_t spool_reply_read(void *spool, char *buf, size_t cap)
{
	struct spool *s = spool;
	return spill_reply_read(s->sp, buf, cap);
}

void spool_reply_free(void *spool)
{
	spool_free(spool);
}
