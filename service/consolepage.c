/*
 * consolepage: words, frame, stylesheet and SVG charts of the auditor's
 * console (consolepage.h).
 */
#include "service/consolepage.h"

#include "service/base/codec.h"

#include <stdio.h>
#include <string.h>

static const char *const texts[C_COUNT_TEXTS][2] = {
	[C_CONSOLE] = { "Audit console", "审计控制台" },
	[C_SKIP] = { "Skip to the content", "跳到正文" },
	[C_NAV] = { "Console pages", "控制台页面" },
	[C_HEALTH] = { "Trail health", "审计日志状态" },
	[C_SEARCH] = { "Search the trail", "搜索审计日志" },
	[C_CAMPAIGNS] = { "Campaigns", "营销活动" },
	[C_SIGNED_IN_AS] = { "Signed in as", "当前登录" },
	[C_SIGN_OUT] = { "Sign out", "退出登录" },
	[C_SIGN_IN] = { "Sign in to the audit console", "登录审计控制台" },
	[C_SIGN_IN_TEXT] = { "Paste an API token of a role that may read the audit trail. The token is checked and "
			     "then forgotten: the browser keeps only a session cookie, which ends after 15 minutes "
			     "without use, after 8 hours at most, when you sign out, or when the token is revoked.",
			     "请粘贴一个有权读取审计日志的角色的 API 令牌。令牌校验后即被丢弃：浏览器只保留一个会话 Cookie，"
			     "该会话在闲置 15 分钟后、最长 8 小时后、退出登录时或令牌被吊销时结束。" },
	[C_TOKEN] = { "API token", "API 令牌" },
	[C_SIGN_IN_BTN] = { "Sign in", "登录" },
	[C_WRONG_TOKEN] = { "This token is not valid. The attempt was recorded in the audit trail.",
			    "此令牌无效。本次尝试已记录在审计日志中。" },
	[C_NOT_AUDITOR] = { "This token's role may not read the audit trail, so it cannot sign in to the console. "
			    "The attempt was recorded.",
			    "此令牌的角色无权读取审计日志，因此不能登录控制台。本次尝试已被记录。" },
	[C_RATE_LIMITED] = { "Too many wrong tokens from this address. Wait a few minutes and try again.",
			     "来自此地址的错误令牌过多。请等待几分钟后重试。" },
	[C_FORM_EXPIRED] = { "This form is too old or came from somewhere else, so nothing was done. Please try again.",
			     "此表单已过期或来源不明，因此未执行任何操作。请重试。" },
	[C_SESSION_ENDED] = { "Your session has ended. Please sign in again.",
			      "您的会话已结束。请重新登录。" },
	[C_INTACT] = { "The trail is intact", "审计日志完整" },
	[C_NOT_INTACT] = { "The trail is NOT intact", "审计日志不完整" },
	[C_NOT_YET_VERIFIED] = { "The first verification has not finished yet.", "首次校验尚未完成。" },
	[C_LAST_VERIFIED] = { "Last verified", "上次校验" },
	[C_VERIFIED_SIZE] = { "Verified up to entry", "已校验至条目" },
	[C_ANCHORED] = { "Anchored size", "已锚定条目数" },
	[C_HEAD] = { "Entries in the trail", "日志条目总数" },
	[C_CHECKPOINT] = { "Latest signed checkpoint", "最新签名检查点" },
	[C_CHECKPOINT_SIZE] = { "Covers entries", "覆盖条目数" },
	[C_SIGNED_AT] = { "Signed at", "签名时间" },
	[C_SIGNATURE] = { "Signature", "签名" },
	[C_SIG_VALID] = { "valid (Ed25519)", "有效（Ed25519）" },
	[C_SIG_INVALID] = { "NOT valid", "无效" },
	[C_NO_CHECKPOINT] = { "No checkpoint has been signed yet.", "尚未签署任何检查点。" },
	[C_ALARM] = { "Alarm", "警报" },
	[C_ALARM_TEXT] = { "A verification found the trail altered. The alarm stays raised until the server restarts, "
			   "even if the trail was put back.",
			   "某次校验发现审计日志被篡改。即使日志已被恢复，警报也会一直保持，直到服务器重启。" },
	[C_FAULT] = { "Fault", "故障" },
	[C_REASON] = { "Reason", "原因" },
	[C_ENTRIES_PER_DAY] = { "Entries per day", "每日条目数" },
	[C_DENIALS_PER_DAY] = { "Denials per day", "每日拒绝次数" },
	[C_DENIALS_BY_REASON] = { "Denials by reason", "按原因统计的拒绝" },
	[C_ACCESS_BY_ROLE] = { "Access by role", "按角色统计的访问" },
	[C_LAST_DAYS] = { "the last 30 days, UTC", "最近 30 天（UTC）" },
	[C_DAY] = { "Day", "日期" },
	[C_COUNT] = { "Count", "数量" },
	[C_DATA] = { "The numbers", "数据" },
	[C_EVIDENCE] = { "Evidence pack", "证据包" },
	[C_EVIDENCE_TEXT] = { "One tar file with the trail as NDJSON up to the latest signed checkpoint, that checkpoint, "
			      "the public key and a README with the steps to verify it independently.",
			      "一个 tar 文件，包含截至最新签名检查点的 NDJSON 审计日志、该检查点、公钥，以及独立校验步骤的 README。" },
	[C_EVIDENCE_BTN] = { "Download the evidence pack", "下载证据包" },
	[C_SEARCH_TEXT] = { "Find entries by contact, actor, action, purpose, decision, reason and time. An email address "
			    "or phone number is matched through its keyed index: it is never stored, logged or put in "
			    "an address.",
			    "按联系人、操作者、操作、目的、决定、原因和时间查找条目。电子邮件地址或电话号码通过其密钥索引匹配："
			    "它们不会被存储、记录或放入网址。" },
	[C_BY_CONTACT] = { "Contact", "联系人" },
	[C_CONTACT_ID] = { "Contact id", "联系人 ID" },
	[C_EMAIL] = { "or email address", "或电子邮件地址" },
	[C_PHONE] = { "or phone number", "或电话号码" },
	[C_ACTOR] = { "Actor", "操作者" },
	[C_ACTION] = { "Action", "操作" },
	[C_PURPOSE] = { "Purpose", "目的" },
	[C_DECISION] = { "Decision", "决定" },
	[C_SINCE] = { "From (RFC 3339 or YYYY-MM-DD)", "起始时间（RFC 3339 或 YYYY-MM-DD）" },
	[C_UNTIL] = { "Until (RFC 3339 or YYYY-MM-DD)", "截止时间（RFC 3339 或 YYYY-MM-DD）" },
	[C_ANY] = { "any", "任意" },
	[C_SEARCH_BTN] = { "Search", "搜索" },
	[C_RESULTS] = { "Entries", "条目" },
	[C_NO_RESULTS] = { "No entry matches.", "没有匹配的条目。" },
	[C_NEXT_PAGE] = { "Next page", "下一页" },
	[C_EXPORT_NDJSON] = { "Export these entries as NDJSON", "将这些条目导出为 NDJSON" },
	[C_EXPORT_CSV] = { "Export these entries as CSV", "将这些条目导出为 CSV" },
	[C_SEQ] = { "Entry", "条目" },
	[C_TIME] = { "Time", "时间" },
	[C_RECORD] = { "Record", "记录" },
	[C_ROLE] = { "Role", "角色" },
	[C_NO_MATCH] = { "No contact has this address.", "没有联系人使用此地址。" },
	[C_SEVERAL] = { "Several contacts share this phone number:", "多个联系人共用此电话号码：" },
	[C_ENTRY] = { "Audit entry", "审计条目" },
	[C_CHANNEL] = { "Channel", "渠道" },
	[C_FIELDS] = { "Fields revealed", "显示的字段" },
	[C_REQUEST] = { "Request id", "请求 ID" },
	[C_CLIENT] = { "Client", "客户端" },
	[C_DETAIL] = { "Detail", "详情" },
	[C_PREV_HASH] = { "Previous hash", "前一哈希" },
	[C_HASH] = { "Hash", "哈希" },
	[C_LINK_OK] = { "The hash recomputes and links to the previous entry.",
			"哈希可重新计算，且与前一条目相连。" },
	[C_LINK_BAD] = { "The hash does NOT recompute or does not link to the previous entry.",
			 "哈希无法重新计算，或未与前一条目相连。" },
	[C_PREVIOUS] = { "Previous entry", "前一条目" },
	[C_NEXT] = { "Next entry", "后一条目" },
	[C_REPORT] = { "Access report", "访问报告" },
	[C_REPORT_TEXT] = { "Who read or changed this person's record, when, for what purpose and with what outcome, and "
			    "which campaigns were allowed to reach them.",
			    "谁在何时、出于何种目的读取或更改了此人的记录、结果如何，以及哪些营销活动被允许联系此人。" },
	[C_OUTCOME] = { "Outcome", "结果" },
	[C_WHO_ACCESSED] = { "Accesses and changes", "访问和更改" },
	[C_CAMPAIGNS_REACHED] = { "Campaigns allowed to reach this person", "被允许联系此人的营销活动" },
	[C_NO_CAMPAIGNS] = { "No campaign list released this person.", "没有营销名单放行此人。" },
	[C_RELEASED] = { "Released", "已放行" },
	[C_CAMPAIGNS_TEXT] = { "Every outreach filter request: the list's counts, the keyed digest of the list as "
			       "uploaded, and the release record of who was allowed.",
			       "每次外联筛选请求：名单的统计数、上传名单的密钥摘要，以及被允许者的放行记录。" },
	[C_TOTAL] = { "Total", "总数" },
	[C_ALLOWED] = { "Allowed", "允许" },
	[C_DENIED] = { "Denied", "拒绝" },
	[C_LIST_DIGEST] = { "List digest", "名单摘要" },
	[C_RELEASE] = { "Release", "放行记录" },
	[C_OPEN_REPORT] = { "Access report for this contact", "此联系人的访问报告" },
	[C_SCAN_LIMIT] = { "More entries exist than one page looks at; follow the next page to see them.",
			   "条目多于单页可查看的数量；请翻到下一页查看。" },
	[C_NOT_FOUND] = { "There is no such entry.", "没有此条目。" },
	[C_PRINT_NOTE] = { "This page prints as a report: use your browser's print command.",
			   "此页面可作为报告打印：请使用浏览器的打印功能。" },
	[C_HELD_BY_CAP] = { "Held by caps", "因频率上限暂缓" },
	[C_RECENT_RELEASES] = { "Recent releases (the release log the frequency caps count)",
				"最近的放行（频率上限所计数的放行日志）" },
	[C_NO_RELEASES] = { "No release in the log.", "放行日志中没有记录。" },
	[C_RELEASE_ID] = { "Release id", "放行编号" },
};

const char *consolepage_tx(enum prefpage_lang lang, enum ctext t)
{
	return texts[t][lang == PREFPAGE_ZH ? 1 : 0];
}

const char CONSOLEPAGE_STYLE[] =
	"main{max-width:72rem}"
	"header{background:#0a2d5c;color:#fff;padding:.5rem 1rem}"
	"header .bar{max-width:72rem;margin:0 auto;display:flex;flex-wrap:wrap;gap:1rem;align-items:center;justify-content:space-between}"
	"header a{color:#fff}header .who{color:#fff}"
	"header a:focus-visible,header button:focus-visible{outline:3px solid #fff;box-shadow:0 0 0 3px #0a2d5c}"
	"nav ul{list-style:none;display:flex;flex-wrap:wrap;gap:1.25rem;margin:0;padding:0}"
	"nav a[aria-current=page]{font-weight:700;text-decoration-thickness:3px}"
	"header button{color:#0a2d5c;background:#fff;border-color:#fff;min-height:2.25rem;padding:.2rem .8rem}"
	".grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(20rem,1fr));gap:1rem}"
	".grid section{margin:0}"
	"section dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem}"
	".ok{color:#1d6b35;font-weight:700}.bad{color:#9b1c1c;font-weight:700}"
	".notice.alert{border-color:#9b1c1c;background:#fbeeee}"
	"form.search{display:grid;grid-template-columns:repeat(auto-fit,minmax(14rem,1fr));gap:.25rem 1rem;align-items:end}"
	"form.search label{display:block;margin:.5rem 0 0}"
	"input[type=text],input[type=password],input[type=email],input[type=tel],select{font:inherit;width:100%;padding:.4rem;border:1px solid #5c5c5c;border-radius:.3rem;background:#fff;color:#1b1b1b}"
	".login label{display:block}.login input{max-width:32rem}"
	"table.entries td,table.entries th{font-size:.95rem}"
	"code,.mono{font-family:ui-monospace,\"DejaVu Sans Mono\",monospace;font-size:.9rem;overflow-wrap:anywhere}"
	"figure{margin:.5rem 0}figcaption{font-weight:600}"
	"svg{display:block;max-width:100%;height:auto}"
	"details{margin:.5rem 0}"
	".actions{display:flex;flex-wrap:wrap;gap:1rem;margin:1rem 0}"
	"@media print{header,nav,.actions,.skip,form{display:none}main{max-width:none;padding:0}a{color:#1b1b1b;text-decoration:none}}";

void consolepage_time(struct page_buf *b, int64_t us)
{
	char t[32];
	format_time_us(us, t, sizeof t);
	page_puts(b, "<time datetime=\"");
	page_esc(b, t);
	page_puts(b, "\">");
	page_esc(b, t);
	page_puts(b, "</time>");
}

void consolepage_csrf(struct page_buf *b, const char *csrf)
{
	page_puts(b, "<input type=\"hidden\" name=\"csrf\" value=\"");
	page_esc(b, csrf);
	page_puts(b, "\">");
}

void consolepage_notice(struct page_buf *b, const char *text, int alert)
{
	page_puts(b, alert ? "<p class=\"notice alert\" role=\"alert\">"
			   : "<p class=\"notice\" role=\"status\">");
	page_esc(b, text);
	page_puts(b, "</p>\n");
}

static void nav_item(struct page_buf *b, enum prefpage_lang lang, enum ctext which, enum ctext cur,
		     const char *href)
{
	page_puts(b, "<li><a href=\"");
	page_puts(b, href);
	page_puts(b, which == cur ? "\" aria-current=\"page\">" : "\">");
	page_esc(b, consolepage_tx(lang, which));
	page_puts(b, "</a></li>");
}

void consolepage_head(struct page_buf *b, enum prefpage_lang lang, const char *title, enum ctext nav,
		      const char *actor, const char *role, const char *csrf)
{
	page_puts(b, "<!doctype html>\n<html lang=\"");
	page_puts(b, prefpage_lang_tag(lang));
	page_puts(
		b,
		"\"><head><meta charset=\"utf-8\">"
		"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
		"<meta name=\"referrer\" content=\"no-referrer\"><meta name=\"robots\" content=\"noindex\"><title>");
	page_esc(b, title);
	page_puts(b, " · ");
	page_esc(b, consolepage_tx(lang, C_CONSOLE));
	page_puts(b, "</title><link rel=\"stylesheet\" href=\"/console/console.css\"></head>\n<body>"
		     "<a class=\"skip\" href=\"#main\">");
	page_esc(b, consolepage_tx(lang, C_SKIP));
	page_puts(b, "</a>\n<header><div class=\"bar\"><span>");
	page_esc(b, consolepage_tx(lang, C_CONSOLE));
	page_puts(b, "</span>");
	if (actor != NULL) {
		page_puts(b, "<nav aria-label=\"");
		page_esc(b, consolepage_tx(lang, C_NAV));
		page_puts(b, "\"><ul>");
		nav_item(b, lang, C_HEALTH, nav, "/console/");
		nav_item(b, lang, C_SEARCH, nav, "/console/search");
		nav_item(b, lang, C_CAMPAIGNS, nav, "/console/campaigns");
		page_puts(b, "</ul></nav><span class=\"who\">");
		page_esc(b, consolepage_tx(lang, C_SIGNED_IN_AS));
		page_puts(b, " ");
		page_esc(b, actor);
		page_puts(b, " (");
		page_esc(b, role);
		page_puts(b, ")</span><form method=\"post\" action=\"/console/logout\">");
		consolepage_csrf(b, csrf);
		page_puts(b, "<button type=\"submit\">");
		page_esc(b, consolepage_tx(lang, C_SIGN_OUT));
		page_puts(b, "</button></form>");
	}
	page_puts(b, "</div></header>\n<main id=\"main\">\n<h1>");
	page_esc(b, title);
	page_puts(b, "</h1>\n");
}

void consolepage_tail(struct page_buf *b)
{
	page_puts(b, "</main></body></html>\n");
}

void consolepage_chart(struct page_buf *b, enum prefpage_lang lang, const char *id, const char *title,
		       const struct consolepage_bar *bars, size_t n, enum ctext label_head)
{
	int vertical = label_head == C_DAY;
	int64_t max = 1;
	for (size_t i = 0; i < n; i++)
		if (bars[i].value > max)
			max = bars[i].value;
	page_puts(b, "<figure><figcaption id=\"");
	page_esc(b, id);
	page_puts(b, "\">");
	page_esc(b, title);
	page_puts(b, " <span class=\"muted\">(");
	page_esc(b, consolepage_tx(lang, C_LAST_DAYS));
	page_puts(b, ")</span></figcaption>");
	if (vertical) {
		/* Columns: one per day, 600 x 160 user units. */
		int w = 600, h = 160;
		double bw = n > 0 ? (double)w / (double)n : (double)w;
		page_printf(
			b,
			"<svg viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" role=\"img\" aria-labelledby=\"",
			w, h + 20, w, h + 20);
		page_esc(b, id);
		page_puts(b, "\">");
		page_printf(b, "<line x1=\"0\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#5c5c5c\"/>", h, w, h);
		for (size_t i = 0; i < n; i++) {
			double bh = (double)bars[i].value * (h - 16) / (double)max;
			page_printf(
				b,
				"<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#0a4ea8\"/>",
				i * bw + 1, h - bh, bw > 3 ? bw - 2 : bw, bh);
		}
		page_printf(b, "<text x=\"0\" y=\"%d\" font-size=\"12\" fill=\"#1b1b1b\">", h + 16);
		if (n > 0)
			page_esc(b, bars[0].label);
		page_printf(
			b,
			"</text><text x=\"%d\" y=\"%d\" font-size=\"12\" fill=\"#1b1b1b\" text-anchor=\"end\">",
			w, h + 16);
		if (n > 0)
			page_esc(b, bars[n - 1].label);
		page_printf(
			b,
			"</text><text x=\"2\" y=\"12\" font-size=\"12\" fill=\"#1b1b1b\">%lld</text></svg>",
			(long long)max);
	} else {
		int w = 600, row = 24, lw = 200;
		int h = (int)n * row + 4;
		page_printf(
			b,
			"<svg viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" role=\"img\" aria-labelledby=\"",
			w, h, w, h);
		page_esc(b, id);
		page_puts(b, "\">");
		for (size_t i = 0; i < n; i++) {
			double bw = (double)bars[i].value * (w - lw - 60) / (double)max;
			int y = (int)i * row;
			page_printf(
				b,
				"<text x=\"%d\" y=\"%d\" font-size=\"13\" fill=\"#1b1b1b\" text-anchor=\"end\">",
				lw - 6, y + 16);
			page_esc(b, bars[i].label);
			page_printf(
				b,
				"</text><rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"18\" fill=\"#0a4ea8\"/>"
				"<text x=\"%.1f\" y=\"%d\" font-size=\"13\" fill=\"#1b1b1b\">%lld</text>",
				lw, y + 3, bw, lw + bw + 4, y + 16, (long long)bars[i].value);
		}
		page_puts(b, "</svg>");
	}
	page_puts(b, "<details><summary>");
	page_esc(b, consolepage_tx(lang, C_DATA));
	page_puts(b, "</summary><table><thead><tr><th scope=\"col\">");
	page_esc(b, consolepage_tx(lang, label_head));
	page_puts(b, "</th><th scope=\"col\">");
	page_esc(b, consolepage_tx(lang, C_COUNT));
	page_puts(b, "</th></tr></thead><tbody>");
	for (size_t i = 0; i < n; i++) {
		page_puts(b, "<tr><td>");
		page_esc(b, bars[i].label);
		page_printf(b, "</td><td>%lld</td></tr>", (long long)bars[i].value);
	}
	page_puts(b, "</tbody></table></details></figure>\n");
}
