/*
 * page: what every server-rendered HTML page of consentd shares (the
 * customer pages in prefpage.c, the auditor's console in consolepage.c):
 * a bounded growable buffer, HTML escaping and the base stylesheet.
 *
 * Invariants:
 * - A page never grows past PAGE_MAX bytes; an allocation failure or that
 *   bound poisons the buffer and page_finish returns NULL (the caller
 *   answers 500), so a page is never sent cut short.
 * - page_esc escapes & < > " ' and is right for text and for quoted
 *   attribute values alike.
 */
#ifndef CONSENTD_PAGE_H
#define CONSENTD_PAGE_H

#include <stdbool.h>
#include <stddef.h>

#define PAGE_MAX (1024 * 1024)

struct page_buf {
	char *p;
	size_t len, cap;
	bool oom;
};

void page_put(struct page_buf *b, const char *s, size_t n);
void page_puts(struct page_buf *b, const char *s);
void page_printf(struct page_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void page_esc(struct page_buf *b, const char *s);
/* The page (the caller frees it), or NULL when the buffer was poisoned. */
char *page_finish(struct page_buf *b);

/* Colours, type and layout shared by every page: text #1b1b1b on #ffffff
 * (17:1), secondary #3d3d3d (10:1), buttons #ffffff on #0a4ea8 (8:1), the
 * danger button #ffffff on #9b1c1c (8:1); focus is a 3px outline in #1b1b1b
 * with a white gap, visible on every background. */
extern const char PAGE_STYLE[];

#endif
