/*
 * page: the shared HTML buffer, escaping and base stylesheet (page.h).
 */
#include "service/page.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A page buffer's first allocation: most pages fit, so most are one
 * malloc; larger ones double from here up to PAGE_MAX. */
#define PAGE_FIRST_BYTES 8192

void page_put(struct page_buf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : PAGE_FIRST_BYTES;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = cap <= PAGE_MAX ? realloc(b->p, cap) : NULL;
		if (p == NULL) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void page_puts(struct page_buf *b, const char *s)
{
	page_put(b, s, strlen(s));
}

void page_printf(struct page_buf *b, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	/* Only numbers and literals are formatted here; anything longer is a
	 * bug, and the page is refused rather than cut. */
	if (n < 0 || (size_t)n >= sizeof tmp) {
		b->oom = true;
		return;
	}
	page_put(b, tmp, (size_t)n);
}

void page_esc(struct page_buf *b, const char *s)
{
	for (; s != NULL && *s != '\0'; s++) {
		switch (*s) {
		case '&': page_puts(b, "&amp;"); break;
		case '<': page_puts(b, "&lt;"); break;
		case '>': page_puts(b, "&gt;"); break;
		case '"': page_puts(b, "&quot;"); break;
		case '\'': page_puts(b, "&#39;"); break;
		default: page_put(b, s, 1);
		}
	}
}

char *page_finish(struct page_buf *b)
{
	if (b->oom) {
		free(b->p);
		b->p = NULL;
		return NULL;
	}
	return b->p;
}

const char PAGE_STYLE[] =
	"*{box-sizing:border-box}"
	/* A date is one unit: never broken across lines at its hyphens. */
	"time{white-space:nowrap}"
	"body{margin:0;font:1.0625rem/1.55 system-ui,-apple-system,\"Segoe UI\",Roboto,\"Noto Sans\",\"Noto Sans CJK SC\",\"PingFang SC\",sans-serif;color:#1b1b1b;background:#fff}"
	"main{max-width:46rem;margin:0 auto;padding:1.5rem 1rem 3rem}"
	"h1{font-size:1.75rem;line-height:1.25;margin:.5rem 0 1rem}"
	"h2{font-size:1.3rem;margin:0 0 .5rem}"
	"p{margin:.5rem 0}"
	".muted{color:#3d3d3d}"
	".skip{position:absolute;left:-999px;top:.5rem;background:#fff;padding:.5rem}"
	".skip:focus{left:.5rem}"
	".vh{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}"
	".notice{border-left:.35rem solid #0a4ea8;background:#eef3fb;padding:.75rem 1rem;margin:1rem 0}"
	".notice.ok{border-color:#1d6b35;background:#edf7f0}"
	"section{border:1px solid #8a8a8a;border-radius:.5rem;padding:1rem;margin:1rem 0}"
	"dl{margin:.5rem 0;display:flex;gap:.5rem;flex-wrap:wrap}dt{font-weight:600}dd{margin:0}"
	"table{width:100%;border-collapse:collapse;margin-top:.5rem}"
	"th,td{text-align:left;vertical-align:top;padding:.5rem .4rem;border-top:1px solid #c4c4c4}"
	"thead th{border-top:0;font-size:.95rem}"
	"form{margin:0}"
	"button{font:inherit;font-weight:600;color:#fff;background:#0a4ea8;border:2px solid #0a4ea8;border-radius:.4rem;padding:.45rem 1rem;cursor:pointer;min-height:2.75rem}"
	"button.secondary{color:#0a4ea8;background:#fff}"
	"button.danger{background:#9b1c1c;border-color:#9b1c1c}"
	"button:hover{text-decoration:underline}"
	"a{color:#0a4ea8}"
	"a:focus-visible,button:focus-visible,input:focus-visible,select:focus-visible{outline:3px solid #1b1b1b;outline-offset:3px;box-shadow:0 0 0 3px #fff}"
	"label{display:flex;gap:.5rem;align-items:center;margin:.75rem 0}"
	"input[type=checkbox]{width:1.4rem;height:1.4rem}"
	".status-granted{font-weight:600;color:#1d6b35}"
	"@media (max-width:36rem){thead{display:none}tr{display:block;padding:.5rem 0;border-top:1px solid #c4c4c4}th,td{display:block;border:0;padding:.2rem 0}}";
