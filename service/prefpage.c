/*
 * prefpage: HTML rendering for the customer pages. A small growable buffer
 * collects the page; an allocation failure poisons it and the page comes
 * back NULL. Text comes from one table of English / Simplified Chinese
 * strings (T_*); purpose descriptions come from the policy.
 */
#include "service/prefpage.h"

#include "service/base/codec.h"
#include "service/page.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- the buffer, shared with the console (service/page.h) ---- */

#define buf page_buf

static void puts_(struct buf *b, const char *s)
{
	page_puts(b, s);
}

static void esc(struct buf *b, const char *s)
{
	page_esc(b, s);
}

static char *finish(struct buf *b)
{
	return page_finish(b);
}

/* ---- strings ---- */

enum text {
	T_TITLE,
	T_INTRO,
	T_SKIP,
	T_SAVED,
	T_WITHDRAWN_ALL,
	T_GPC_BLOCKED,
	T_GPC,
	T_LEGAL_BASIS,
	T_NO_CONSENT_NEEDED,
	T_CHANNEL,
	T_STATUS,
	T_HISTORY,
	T_CHANGE,
	T_S_GRANTED,
	T_S_REFUSED,
	T_S_WITHDRAWN,
	T_S_EXPIRED,
	T_S_NONE,
	T_GIVEN_ON,
	T_WITHDRAWN_ON,
	T_REFUSED_ON,
	T_EXPIRES_ON,
	T_HOW,
	T_BTN_WITHDRAW,
	T_BTN_GRANT,
	T_NO_CHANNEL,
	T_ALL_TITLE,
	T_ALL_TEXT,
	T_BTN_ALL,
	T_DL_TITLE,
	T_DL_TEXT,
	T_BTN_DL,
	T_ERASE_TITLE,
	T_ERASE_TEXT,
	T_BTN_ERASE,
	T_INVALID_TITLE,
	T_INVALID_TEXT,
	T_FORM_TITLE,
	T_FORM_TEXT,
	T_BACK,
	T_UNSUB_TITLE,
	T_UNSUB_TEXT,
	T_BTN_UNSUB,
	T_UNSUBBED_TITLE,
	T_UNSUBBED_TEXT,
	T_ERASE_CONFIRM_TITLE,
	T_ERASE_CONFIRM_TEXT,
	T_ERASE_CHECK,
	T_BTN_ERASE_CONFIRM,
	T_ERASED_TITLE,
	T_ERASED_TEXT,
	T_RECEIPT_BTN,
	T_BLOCKS_TITLE,
	T_BLOCKS_MORE,
	T_BLOCKED_NOTE,
	T_SOURCE_YOU,
	T_ERASE_RECEIVED_TITLE,
	T_ERASE_RECEIVED_TEXT,
	T_ERASE_RECEIVED_DUE,
	T_GPC_NOTE,
	T_OPTOUT_NOTE,
	T_INTRO_OPTOUT,
	T_FREQ_LABEL,
	T_FREQ_ANY,
	T_FREQ_WEEKLY,
	T_FREQ_MONTHLY,
	T_FREQ_IMPORTANT,
	T_BTN_FREQ,
	T_ORG_PRIVACY,
	T_ORG_CONTACT,
	T_NOT_COLLECTED,
	T_ALL_CONFIRM_TITLE,
	T_ALL_CONFIRM_TEXT,
	T_BTN_ALL_CONFIRM,
	/* the public "ask for a link" page (/p/request) */
	T_REQ_TITLE,
	T_REQ_TEXT,
	T_REQ_LABEL,
	T_REQ_BTN,
	T_REQ_SENT_TITLE,
	T_REQ_SENT_TEXT,
	T_REQ_BUSY_TEXT,
	/* double opt-in: the confirmation page (/p/confirm/<token>) */
	T_S_PENDING,
	T_CONFIRM_TITLE,
	T_CONFIRM_TEXT,
	T_CONFIRM_BTN,
	T_CONFIRMED_TITLE,
	T_CONFIRMED_TEXT,
	T_COUNT
};

static const char *const texts[T_COUNT][2] = {
	[T_TITLE] = { "Your privacy choices", "您的隐私选择" },
	[T_INTRO_OPTOUT] = { "Here you can see what we use your information for and withdraw any consent you "
			     "gave us. Changes take effect immediately.",
			     "您可以在此查看我们使用您信息的目的，并撤回您给予我们的任何同意。更改立即生效。" },
	[T_OPTOUT_NOTE] = { "From this link you can withdraw any consent. To give consent, download a copy of "
			    "your data or ask us to erase it, ask us for a personal link: we send it only to the "
			    "address we have for you.",
			    "通过此链接，您可以撤回任何同意。如需给予同意、下载您的数据副本或要求删除您的数据，"
			    "请向我们索取个人链接：我们只会将其发送到我们为您记录的地址。" },
	[T_INTRO] = { "Here you can see what we use your information for, change your choices at any time, "
		      "download a copy of your data, or ask us to erase it. Changes take effect immediately.",
		      "您可以在此查看我们使用您信息的目的，随时更改您的选择，下载您的数据副本，或要求我们删除您的数据。更改立即生效。" },
	[T_SKIP] = { "Skip to your choices", "跳到您的选择" },
	[T_SAVED] = { "Your choice has been saved.", "您的选择已保存。" },
	[T_WITHDRAWN_ALL] = { "You have withdrawn all your consents. We will not contact you for any purpose that needs your consent.",
			      "您已撤回所有同意。对于任何需要您同意的目的，我们都不会再联系您。" },
	[T_GPC_BLOCKED] = { "Your browser sends a Global Privacy Control signal, so we cannot turn on sale or sharing of your data from this browser.",
			    "您的浏览器发送了“全球隐私控制”信号，因此无法在此浏览器中开启出售或共享您的数据。" },
	[T_GPC] = { "Your browser sent a Global Privacy Control (GPC) signal. We have recorded it as your opt-out of the sale or sharing of your personal information.",
		    "您的浏览器发送了“全球隐私控制”（GPC）信号。我们已将其记录为您选择退出出售或共享您的个人信息。" },
	[T_LEGAL_BASIS] = { "Legal basis", "法律依据" },
	[T_NO_CONSENT_NEEDED] = { "We need this to provide what you asked for, so it does not depend on your consent.",
				  "这是为您提供所需服务所必需的，因此不取决于您的同意。" },
	[T_CHANNEL] = { "How we contact you", "联系方式" },
	[T_STATUS] = { "Your choice", "您的选择" },
	[T_HISTORY] = { "When and how", "时间和方式" },
	[T_CHANGE] = { "Change", "更改" },
	[T_FREQ_LABEL] = { "How often", "频率" },
	[T_FREQ_ANY] = { "As often as you send", "不限" },
	[T_FREQ_WEEKLY] = { "At most one a week", "每周最多一次" },
	[T_FREQ_MONTHLY] = { "At most one a month", "每月最多一次" },
	[T_FREQ_IMPORTANT] = { "Only important messages", "仅重要消息" },
	[T_BTN_FREQ] = { "Save", "保存" },
	[T_S_GRANTED] = { "Yes, you agreed", "已同意" },
	[T_S_REFUSED] = { "No", "已拒绝" },
	[T_S_WITHDRAWN] = { "No, you withdrew consent", "已撤回同意" },
	[T_S_EXPIRED] = { "No, your consent expired", "同意已过期" },
	[T_S_NONE] = { "Not asked (no)", "未选择（视为否）" },
	[T_GIVEN_ON] = { "Given on", "同意时间" },
	[T_WITHDRAWN_ON] = { "Withdrawn on", "撤回时间" },
	[T_REFUSED_ON] = { "Refused on", "拒绝时间" },
	[T_EXPIRES_ON] = { "expires on", "到期时间" },
	[T_HOW] = { "how", "方式" },
	[T_BTN_WITHDRAW] = { "Withdraw", "撤回" },
	[T_BTN_GRANT] = { "Agree", "同意" },
	[T_NO_CHANNEL] = { "Any", "任何方式" },
	[T_ALL_TITLE] = { "Withdraw everything", "撤回全部" },
	[T_ALL_TEXT] = { "Withdraw every consent you have given us, on every channel, in one step. "
			 "We also put you on our do-not-contact list for these purposes, so a later import cannot switch them back on. "
			 "Messages we must send to provide a service you use (for example delivery updates) continue.",
			 "一步撤回您给予我们的所有同意，涵盖所有联系方式。我们还会将您列入这些目的的“请勿联系”名单，以免日后的导入重新开启。"
			 "为提供您正在使用的服务而必须发送的信息（例如配送通知）将继续发送。" },
	[T_BTN_ALL] = { "Withdraw all my consents", "撤回我的所有同意" },
	[T_DL_TITLE] = { "Download my data", "下载我的数据" },
	[T_DL_TEXT] = { "A JSON file with everything we hold about you: your details, every consent and its history, "
			"your do-not-contact entries, and a log of who accessed your record, when and for what purpose.",
			"一个 JSON 文件，包含我们持有的关于您的全部信息：您的资料、每项同意及其历史记录、您的“请勿联系”记录，以及谁在何时出于何种目的访问了您的记录。" },
	[T_BTN_DL] = { "Download my data", "下载我的数据" },
	[T_ERASE_TITLE] = { "Erase my data", "删除我的数据" },
	[T_ERASE_TEXT] = { "Ask us to erase your personal data. You will be asked to confirm on the next page.",
			   "要求我们删除您的个人数据。下一页将请您确认。" },
	[T_BTN_ERASE] = { "Ask for erasure", "申请删除" },
	[T_INVALID_TITLE] = { "This link does not work", "此链接无效" },
	[T_INVALID_TEXT] = { "This link is not valid. It may have expired, been replaced by a newer one, or been copied incompletely. "
			     "Please use the link in our most recent message, or contact us to get a new one.",
			     "此链接无效。它可能已过期、已被新链接取代，或复制不完整。请使用我们最近一封邮件中的链接，或联系我们获取新链接。" },
	[T_FORM_TITLE] = { "Please try again", "请重试" },
	[T_FORM_TEXT] = { "This form was already sent, is too old, or came from somewhere else, so nothing was changed. "
			  "Open your choices again and repeat the change.",
			  "此表单已提交过、已过期或来源不明，因此没有做任何更改。请重新打开您的选择并再次操作。" },
	[T_BACK] = { "Back to your choices", "返回您的选择" },
	[T_UNSUB_TITLE] = { "Unsubscribe", "退订" },
	[T_UNSUB_TEXT] = { "Press the button to stop receiving these messages. Nothing changes until you press it.",
			   "请按下按钮以停止接收这些信息。在您按下之前不会有任何更改。" },
	[T_BTN_UNSUB] = { "Unsubscribe", "退订" },
	[T_UNSUBBED_TITLE] = { "You are unsubscribed", "您已退订" },
	[T_UNSUBBED_TEXT] = { "You will not receive these messages any more. You can review all your choices on your privacy page.",
			      "您将不会再收到这些信息。您可以在隐私页面查看您的所有选择。" },
	[T_ERASE_CONFIRM_TITLE] = { "Erase your data?", "删除您的数据？" },
	[T_ERASE_CONFIRM_TEXT] = { "If you continue, we destroy the key that protects your personal data, so it can never be read again, "
				   "and this link stops working. We keep only what the law requires: a record that the erasure happened, "
				   "and a one-way fingerprint of your email address and phone number so that we never contact you again.",
				   "如果继续，我们将销毁保护您个人数据的密钥，使其永远无法再被读取，此链接也将失效。我们只保留法律要求的内容：一条删除已完成的记录，"
				   "以及您电子邮件地址和电话号码的单向指纹，以确保我们不再联系您。" },
	[T_ERASE_CHECK] = { "I understand that this cannot be undone", "我了解此操作无法撤销" },
	[T_BTN_ERASE_CONFIRM] = { "Erase my data now", "立即删除我的数据" },
	[T_ERASED_TITLE] = { "Your data has been erased", "您的数据已删除" },
	[T_ERASED_TEXT] = { "Your personal data can no longer be read by anyone, and we will not contact you again. This link no longer works.",
			    "任何人都无法再读取您的个人数据，我们也不会再联系您。此链接已失效。" },
	[T_RECEIPT_BTN] = { "Download the receipt", "下载同意凭证" },
	[T_BLOCKS_TITLE] = { "What stops us contacting you", "阻止我们联系您的记录" },
	[T_BLOCKS_MORE] = { "There are more such records: your data download lists them all.",
			    "还有更多此类记录：下载您的数据可查看全部。" },
	[T_BLOCKED_NOTE] = { "We will not contact you this way (see “What stops us contacting you”).",
			     "我们不会以这种方式联系您（参见“阻止我们联系您的记录”）。" },
	[T_SOURCE_YOU] = { "by you", "由您本人" },
	[T_ERASE_RECEIVED_TITLE] = { "We received your request to erase your data",
				     "我们已收到您删除数据的请求" },
	[T_ERASE_RECEIVED_TEXT] = { "A member of our staff checks every erasure before it is carried out. Until then nothing is erased, and this link keeps working. We have sent you a message to confirm that we received your request.",
				    "我们的工作人员会在执行前核查每一项删除请求。在此之前不会删除任何数据，此链接仍然有效。我们已向您发送邮件，确认收到您的请求。" },
	[T_ERASE_RECEIVED_DUE] = { "We will answer by: ", "我们将在以下日期前答复：" },
	[T_GPC_NOTE] = { "Off because of your browser's Global Privacy Control signal",
			 "因浏览器的“全球隐私控制”信号而关闭" },
	[T_NOT_COLLECTED] = { "We did not collect your data for this, so we do not ask for it",
			      "我们并非为此目的收集您的数据，因此不会征求此项同意" },
	[T_ALL_CONFIRM_TITLE] = { "Withdraw every consent?", "撤回所有同意？" },
	[T_ALL_CONFIRM_TEXT] = { "If you continue, every consent you gave us is withdrawn, on every channel, and you go on our "
				 "do-not-contact list for those purposes. You can give consent again later on your page.",
				 "如果继续，您给予我们的所有同意将在所有渠道上撤回，并且您将被列入这些目的的"
				 "“请勿联系”名单。您之后可以在您的页面上再次给予同意。" },
	[T_BTN_ALL_CONFIRM] = { "Yes, withdraw all my consents", "是的，撤回我的所有同意" },
	[T_ORG_PRIVACY] = { "Privacy policy", "隐私政策" },
	[T_ORG_CONTACT] = { "Contact", "联系方式" },
	[T_REQ_TITLE] = { "Get a link to your privacy choices", "获取您的隐私选择链接" },
	[T_REQ_TEXT] = { "Enter the email address we have for you. If it is on file, we will send a personal link to it: "
			 "with it you can see and change your choices, download your data or ask us to erase it.",
			 "请输入我们存档的您的电子邮件地址。如果该地址在我们的记录中，我们会向其发送一个个人链接："
			 "您可以用它查看和更改您的选择、下载您的数据或要求我们删除您的数据。" },
	[T_REQ_LABEL] = { "Email address", "电子邮件地址" },
	[T_REQ_BTN] = { "Send me a link", "给我发送链接" },
	[T_REQ_SENT_TITLE] = { "Check your email", "请查看您的电子邮件" },
	[T_REQ_SENT_TEXT] = { "If this address is on file, we have sent a link to it. The link works for 7 days. "
			      "If nothing arrives, check the address and try again later.",
			      "如果该地址在我们的记录中，我们已向其发送了一个链接，有效期为 7 天。"
			      "如果没有收到，请检查地址并稍后再试。" },
	[T_REQ_BUSY_TEXT] = { "Too many requests from your network. Please try again in a few minutes.",
			      "来自您网络的请求过多。请几分钟后再试。" },
	[T_S_PENDING] = { "Not yet: waiting for you to confirm from the email we sent",
			  "尚未生效：等待您通过我们发送的电子邮件确认" },
	[T_CONFIRM_TITLE] = { "Confirm your subscription", "确认您的订阅" },
	[T_CONFIRM_TEXT] = { "You asked to receive this by email. Nothing is sent until you confirm:",
			     "您要求通过电子邮件接收以下内容。在您确认之前，我们不会发送任何内容：" },
	[T_CONFIRM_BTN] = { "Yes, send me this by email", "是的，请通过电子邮件发送给我" },
	[T_CONFIRMED_TITLE] = { "Thank you: confirmed", "谢谢：已确认" },
	[T_CONFIRMED_TEXT] = { "Your subscription is confirmed. Every message has a link to stop it at any time.",
			       "您的订阅已确认。每封邮件中都有链接，您可以随时取消。" },
};

static const char *tx(enum prefpage_lang lang, enum text t)
{
	return texts[t][lang == PREFPAGE_ZH ? 1 : 0];
}

static const struct {
	const char *name, *en, *zh;
} words[] = {
	{ "email", "Email", "电子邮件" },
	{ "sms", "Text message (SMS)", "短信" },
	{ "phone", "Phone call", "电话" },
	{ "post", "Letter", "信件" },
	{ "push", "Push notification", "推送通知" },
	{ "in_app", "In the app", "应用内" },
	{ "consent", "Your consent", "您的同意" },
	{ "contract", "Needed for our contract with you", "履行与您的合同所必需" },
	{ "legal_obligation", "A legal obligation", "法律义务" },
	{ "vital_interests", "Protecting vital interests", "保护切身利益" },
	{ "public_task", "A task in the public interest", "公共利益任务" },
	{ "legitimate_interests", "Our legitimate interests", "我们的正当利益" },
	{ "api", "recorded by our staff or systems", "由我们的员工或系统记录" },
	{ "import", "imported from an earlier system", "从早期系统导入" },
	{ "preference_centre", "on this page", "在此页面" },
	{ "one_click", "one-click unsubscribe", "一键退订" },
	{ "gpc", "Global Privacy Control signal", "全球隐私控制信号" },
	{ "double_opt_in", "confirmed by you from a link we emailed", "由您通过我们发送的邮件链接确认" },
	{ "web_form", "a form on our website", "我们网站上的表单" },
	{ "paper", "a paper form", "纸质表格" },
	{ "in_person", "in person", "当面" },
	{ "service", "Service", "服务" },
	{ "marketing", "Marketing", "营销" },
	{ "analytics", "Analytics", "分析" },
	{ "care", "Care", "护理" },
	{ "partner_sharing", "Sharing with partners", "与合作伙伴共享" },
};

/* A known word in the page's language, else the name itself (escaped by
 * the caller). */
static const char *word(enum prefpage_lang lang, const char *name)
{
	for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
		if (strcmp(words[i].name, name) == 0)
			return lang == PREFPAGE_ZH ? words[i].zh : words[i].en;
	return name;
}

/* How a choice was recorded, in words: a method another system named in
 * its own vocabulary is described by who recorded it, never shown raw. */
static const char *method_word(enum prefpage_lang lang, const char *method)
{
	const char *w = word(lang, method);
	return w != method ? w : word(lang, "api");
}

/* A suppression's reason as the person would put it, with {date}. */
static const char *block_reason(enum prefpage_lang lang, const char *reason)
{
	static const struct {
		const char *reason, *en, *zh;
	} r[] = {
		{ "unsubscribe", "you unsubscribed on {date}", "您于 {date} 退订" },
		{ "withdrawal", "you withdrew your consent on {date}", "您于 {date} 撤回了同意" },
		{ "bounce", "messages to it could not be delivered ({date})",
		  "发往该地址的邮件无法送达（{date}）" },
		{ "complaint", "you reported a message as spam on {date}",
		  "您于 {date} 将一封邮件举报为垃圾邮件" },
		{ "manual", "our staff recorded on {date} that you asked not to be contacted",
		  "我们的工作人员于 {date} 记录了您不希望被联系的请求" },
		{ "gpc", "your browser sent a Global Privacy Control signal on {date}",
		  "您的浏览器于 {date} 发送了“全球隐私控制”信号" },
		{ "erasure", "your data was erased on {date}", "您的数据已于 {date} 删除" },
	};
	for (size_t i = 0; i < sizeof r / sizeof r[0]; i++)
		if (strcmp(r[i].reason, reason) == 0)
			return lang == PREFPAGE_ZH ? r[i].zh : r[i].en;
	return lang == PREFPAGE_ZH ? "我们于 {date} 记录了不联系您的请求"
				   : "we recorded on {date} a request not to contact you";
}

/* ---- language ---- */

enum prefpage_lang prefpage_lang_from(const char *h)
{
	enum prefpage_lang best = PREFPAGE_EN;
	double best_q = -1;
	if (h == NULL)
		return PREFPAGE_EN;
	while (*h != '\0') {
		while (*h == ' ' || *h == ',')
			h++;
		const char *tag = h;
		while (*h != '\0' && *h != ',' && *h != ';' && *h != ' ')
			h++;
		size_t tlen = (size_t)(h - tag);
		double q = 1.0;
		while (*h == ' ')
			h++;
		while (*h == ';') {
			h++;
			while (*h == ' ')
				h++;
			if (h[0] == 'q' && h[1] == '=')
				q = strtod(h + 2, NULL);
			while (*h != '\0' && *h != ',' && *h != ';')
				h++;
		}
		bool zh = tlen >= 2 && strncasecmp(tag, "zh", 2) == 0 && (tlen == 2 || tag[2] == '-');
		bool en = tlen >= 2 && strncasecmp(tag, "en", 2) == 0 && (tlen == 2 || tag[2] == '-');
		if ((zh || en) && q > 0 && q > best_q) {
			best_q = q;
			best = zh ? PREFPAGE_ZH : PREFPAGE_EN;
		}
		if (tlen == 0 && *h != '\0' && *h != ',')
			h++; /* never stall on stray characters */
	}
	return best;
}

const char *prefpage_lang_tag(enum prefpage_lang lang)
{
	return lang == PREFPAGE_ZH ? "zh-CN" : "en";
}

/* ---- page frame ---- */

/* The look is shared with the console: PAGE_STYLE (service/page.h). */
#define STYLE PAGE_STYLE

static struct {
	const char *name, *address, *privacy, *contact;
} org;

void prefpage_set_organisation(const char *name, const char *postal_address, const char *privacy_policy_url,
			       const char *contact_email)
{
	org.name = name;
	org.address = postal_address;
	org.privacy = privacy_policy_url;
	org.contact = contact_email;
}

static bool given(const char *s)
{
	return s != NULL && s[0] != '\0';
}

/* The organisation's details, when configured: who is asking, where they
 * are, their policy and how to reach them (GDPR art. 13(1)(a)). */
static void org_header(struct buf *b, enum prefpage_lang lang)
{
	if (!given(org.name) && !given(org.address) && !given(org.privacy) && !given(org.contact))
		return;
	puts_(b, "<header class=\"org\"><p>");
	if (given(org.name)) {
		puts_(b, "<strong>");
		esc(b, org.name);
		puts_(b, "</strong>");
	}
	if (given(org.address)) {
		puts_(b, given(org.name) ? "<br>" : "");
		for (const char *s = org.address; *s;) {
			const char *nl = strchr(s, '\n');
			size_t n = nl != NULL ? (size_t)(nl - s) : strlen(s);
			char line[256];
			snprintf(line, sizeof line, "%.*s", (int)n, s);
			esc(b, line);
			s += n;
			if (*s == '\n') {
				puts_(b, ", ");
				s++;
			}
		}
	}
	if (given(org.privacy)) {
		puts_(b, "<br><a href=\"");
		esc(b, org.privacy);
		puts_(b, "\">");
		esc(b, tx(lang, T_ORG_PRIVACY));
		puts_(b, "</a>");
	}
	if (given(org.contact)) {
		puts_(b, given(org.privacy) ? " · " : "<br>");
		esc(b, tx(lang, T_ORG_CONTACT));
		puts_(b, ": <a href=\"mailto:");
		esc(b, org.contact);
		puts_(b, "\">");
		esc(b, org.contact);
		puts_(b, "</a>");
	}
	puts_(b, "</p></header>\n");
}

static void head(struct buf *b, enum prefpage_lang lang, const char *title)
{
	puts_(b, "<!doctype html>\n<html lang=\"");
	puts_(b, prefpage_lang_tag(lang));
	puts_(b,
	      "\"><head><meta charset=\"utf-8\">"
	      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
	      "<meta name=\"referrer\" content=\"no-referrer\"><meta name=\"robots\" content=\"noindex\"><title>");
	esc(b, title);
	puts_(b, "</title><style>");
	puts_(b, STYLE);
	puts_(b, "</style></head>\n<body>");
	org_header(b, lang);
	puts_(b, "<main id=\"main\">\n<h1>");
	esc(b, title);
	puts_(b, "</h1>\n");
}

static void tail(struct buf *b)
{
	puts_(b, "</main></body></html>\n");
}

static void hidden(struct buf *b, const char *name, const char *value)
{
	puts_(b, "<input type=\"hidden\" name=\"");
	esc(b, name);
	puts_(b, "\" value=\"");
	esc(b, value);
	puts_(b, "\">");
}

static void form_open(struct buf *b, const char *prefix, const char *token)
{
	puts_(b, "<form method=\"post\" action=\"");
	esc(b, prefix);
	esc(b, token);
	puts_(b, "\">");
}

static void date(struct buf *b, int64_t us)
{
	char t[32];
	format_time_us(us, t, sizeof t);
	t[10] = '\0'; /* the day is what a person needs; the export has the rest */
	puts_(b, "<time datetime=\"");
	esc(b, t);
	puts_(b, "\">");
	esc(b, t);
	puts_(b, "</time>");
}

static void simple_page(struct buf *b, enum prefpage_lang lang, enum text title, enum text text)
{
	head(b, lang, tx(lang, title));
	puts_(b, "<p>");
	esc(b, tx(lang, text));
	puts_(b, "</p>\n");
}

static void back_link(struct buf *b, enum prefpage_lang lang, const char *token)
{
	puts_(b, "<p><a href=\"/p/");
	esc(b, token);
	puts_(b, "\">");
	esc(b, tx(lang, T_BACK));
	puts_(b, "</a></p>\n");
}

/* ---- the preference centre ---- */

static enum text status_text(const char *status)
{
	if (strcmp(status, "granted") == 0)
		return T_S_GRANTED;
	if (strcmp(status, "refused") == 0)
		return T_S_REFUSED;
	if (strcmp(status, "withdrawn") == 0)
		return T_S_WITHDRAWN;
	if (strcmp(status, "expired") == 0)
		return T_S_EXPIRED;
	if (strcmp(status, "pending_confirmation") == 0)
		return T_S_PENDING;
	return T_S_NONE;
}

/* The person's own "how often" for a granted channel of a purpose that
 * offers it: one small form, a select of the four choices. */
static void frequency_form(struct buf *b, const struct prefpage_model *m, const struct prefpage_purpose *p,
			   const struct prefpage_choice *c)
{
	static const struct {
		const char *name;
		enum text label;
	} opts[] = { { "any", T_FREQ_ANY },
		     { "weekly", T_FREQ_WEEKLY },
		     { "monthly", T_FREQ_MONTHLY },
		     { "important", T_FREQ_IMPORTANT } };
	const char *cur = c->frequency[0] ? c->frequency : "any";
	form_open(b, "/p/", m->token);
	hidden(b, "csrf", m->csrf);
	hidden(b, "action", "frequency");
	hidden(b, "purpose", p->name);
	hidden(b, "channel", c->channel);
	puts_(b, "<label>");
	esc(b, tx(m->lang, T_FREQ_LABEL));
	puts_(b, " <select name=\"frequency\">");
	for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
		puts_(b, "<option value=\"");
		esc(b, opts[i].name);
		puts_(b, strcmp(cur, opts[i].name) == 0 ? "\" selected>" : "\">");
		esc(b, tx(m->lang, opts[i].label));
		puts_(b, "</option>");
	}
	puts_(b, "</select></label> <button type=\"submit\" class=\"secondary\">");
	esc(b, tx(m->lang, T_BTN_FREQ));
	puts_(b, "</button></form>");
}

/* The text of the person's own frequency choice, or -1 for none ("any"). */
static int frequency_text(const char *name)
{
	if (strcmp(name, "weekly") == 0)
		return T_FREQ_WEEKLY;
	if (strcmp(name, "monthly") == 0)
		return T_FREQ_MONTHLY;
	if (strcmp(name, "important") == 0)
		return T_FREQ_IMPORTANT;
	return -1;
}

static void choice_row(struct buf *b, const struct prefpage_model *m, const struct prefpage_purpose *p,
		       const struct prefpage_choice *c)
{
	enum prefpage_lang lang = m->lang;
	const char *purpose_word = word(lang, p->name);
	const char *channel_word = c->channel[0] ? word(lang, c->channel) : tx(lang, T_NO_CHANNEL);
	bool granted = strcmp(c->status, "granted") == 0;
	bool gpc_locked = m->gpc && p->sale_or_sharing && !granted;

	puts_(b, "<tr><th scope=\"row\">");
	esc(b, channel_word);
	puts_(b, "</th><td");
	if (granted)
		puts_(b, " class=\"status-granted\"");
	puts_(b, ">");
	esc(b, tx(lang, status_text(c->status)));
	if (c->blocked[0] != '\0') {
		puts_(b, "<br><span class=\"muted\">");
		esc(b, tx(lang, T_BLOCKED_NOTE));
		puts_(b, "</span>");
	}
	puts_(b, "</td><td class=\"muted\">");
	if (strcmp(c->status, "none") != 0) {
		if (c->granted_us != 0) {
			esc(b, tx(lang, T_GIVEN_ON));
			puts_(b, " ");
			date(b, c->granted_us);
			puts_(b, "<br>");
		}
		if (strcmp(c->status, "withdrawn") == 0 && c->withdrawn_us != 0) {
			esc(b, tx(lang, T_WITHDRAWN_ON));
			puts_(b, " ");
			date(b, c->withdrawn_us);
			puts_(b, "<br>");
		} else if (strcmp(c->status, "refused") == 0) {
			esc(b, tx(lang, T_REFUSED_ON));
			puts_(b, " ");
			date(b, c->at_us);
			puts_(b, "<br>");
		}
		if (granted && c->expires_us != 0) {
			esc(b, tx(lang, T_EXPIRES_ON));
			puts_(b, " ");
			date(b, c->expires_us);
			puts_(b, "<br>");
		}
		esc(b, tx(lang, T_HOW));
		puts_(b, ": ");
		esc(b, method_word(lang, c->method));
		/* A source is another system's label (a CRM, a form's name):
		 * only "you" means something to the person. */
		if (strcmp(c->source, "customer") == 0) {
			puts_(b, " (");
			esc(b, tx(lang, T_SOURCE_YOU));
			puts_(b, ")");
		}
		/* The person's own choice belongs to the record of the
		 * consent it narrows (it is evidence in the history too). */
		int fq = frequency_text(c->frequency);
		if (fq >= 0) {
			puts_(b, "<br>");
			esc(b, tx(lang, T_FREQ_LABEL));
			puts_(b, ": ");
			esc(b, tx(lang, (enum text)fq));
		}
		/* The receipt of this choice (Kantara CR v1.1 JSON): a
		 * download, so a manage link only, like "download my data". */
		if (m->manage && c->receipt_id[0] != '\0') {
			puts_(b, "<br>");
			form_open(b, "/p/", m->token);
			hidden(b, "csrf", m->csrf);
			hidden(b, "action", "receipt");
			hidden(b, "receipt_id", c->receipt_id);
			puts_(b, "<button type=\"submit\" class=\"secondary\">");
			esc(b, tx(lang, T_RECEIPT_BTN));
			puts_(b, "<span class=\"vh\">: ");
			esc(b, purpose_word);
			if (c->channel[0] != '\0') {
				puts_(b, ", ");
				esc(b, channel_word);
			}
			puts_(b, "</span></button></form>");
		}
	}
	puts_(b, "</td><td>");
	if (gpc_locked) {
		puts_(b, "<span class=\"muted\">");
		esc(b, tx(lang, T_GPC_NOTE));
		puts_(b, "</span>");
	} else if (!granted && !p->offerable) {
		/* Consent to a purpose the data was not collected for could never
		 * be used: it is not offered (withdrawing one stays possible). */
		puts_(b, "<span class=\"muted\">");
		esc(b, tx(lang, T_NOT_COLLECTED));
		puts_(b, "</span>");
	} else if (!granted && !m->manage) {
		/* An opt-out link withdraws only; nothing to offer here. */
		puts_(b, "<span class=\"muted\">&ndash;</span>");
	} else {
		form_open(b, "/p/", m->token);
		hidden(b, "csrf", m->csrf);
		hidden(b, "action", "set");
		hidden(b, "purpose", p->name);
		hidden(b, "channel", c->channel);
		hidden(b, "status", granted ? "withdrawn" : "granted");
		puts_(b,
		      granted ? "<button type=\"submit\" class=\"secondary\">" : "<button type=\"submit\">");
		esc(b, tx(lang, granted ? T_BTN_WITHDRAW : T_BTN_GRANT));
		puts_(b, "<span class=\"vh\">: ");
		esc(b, purpose_word);
		puts_(b, ", ");
		esc(b, channel_word);
		puts_(b, "</span></button></form>");
	}
	if (granted && p->frequency_choice && c->channel[0] != '\0')
		frequency_form(b, m, p, c);
	puts_(b, "</td></tr>\n");
}

static void purpose_section(struct buf *b, const struct prefpage_model *m, const struct prefpage_purpose *p)
{
	enum prefpage_lang lang = m->lang;
	puts_(b, "<section aria-labelledby=\"p-");
	esc(b, p->name);
	puts_(b, "\"><h2 id=\"p-");
	esc(b, p->name);
	puts_(b, "\">");
	esc(b, word(lang, p->name));
	puts_(b, "</h2>\n<p>");
	esc(b, p->description);
	puts_(b, "</p>\n<dl><dt>");
	esc(b, tx(lang, T_LEGAL_BASIS));
	puts_(b, ":</dt><dd>");
	esc(b, word(lang, p->legal_basis));
	puts_(b, "</dd></dl>\n");
	if (!p->consent_required) {
		puts_(b, "<p class=\"muted\">");
		esc(b, tx(lang, T_NO_CONSENT_NEEDED));
		puts_(b, "</p></section>\n");
		return;
	}
	puts_(b, "<table><caption class=\"vh\">");
	esc(b, word(lang, p->name));
	puts_(b, "</caption><thead><tr><th scope=\"col\">");
	esc(b, tx(lang, T_CHANNEL));
	puts_(b, "</th><th scope=\"col\">");
	esc(b, tx(lang, T_STATUS));
	puts_(b, "</th><th scope=\"col\">");
	esc(b, tx(lang, T_HISTORY));
	puts_(b, "</th><th scope=\"col\">");
	esc(b, tx(lang, T_CHANGE));
	puts_(b, "</th></tr></thead><tbody>\n");
	for (size_t i = 0; i < p->n_choices; i++)
		choice_row(b, m, p, &p->choices[i]);
	puts_(b, "</tbody></table></section>\n");
}

static void action_section(struct buf *b, const struct prefpage_model *m, const char *id, enum text title,
			   enum text text, const char *action, enum text button, const char *cls)
{
	enum prefpage_lang lang = m->lang;
	puts_(b, "<section aria-labelledby=\"");
	puts_(b, id);
	puts_(b, "\"><h2 id=\"");
	puts_(b, id);
	puts_(b, "\">");
	esc(b, tx(lang, title));
	puts_(b, "</h2><p>");
	esc(b, tx(lang, text));
	puts_(b, "</p>");
	form_open(b, "/p/", m->token);
	hidden(b, "csrf", m->csrf);
	hidden(b, "action", action);
	puts_(b, "<button type=\"submit\"");
	if (cls != NULL) {
		puts_(b, " class=\"");
		puts_(b, cls);
		puts_(b, "\"");
	}
	puts_(b, ">");
	esc(b, tx(lang, button));
	puts_(b, "</button></form></section>\n");
}

/* One sentence per active suppression: what it stops, for which address,
 * and why, with its date. */
static void block_line(struct buf *b, enum prefpage_lang lang, const struct prefpage_block *k)
{
	bool zh = lang == PREFPAGE_ZH, email = strcmp(k->kind, "email") == 0;
	/* The address the record was made for; it stops the use on every
	 * channel, as the consent check does. */
	const char *which = zh ? (email ? "（您的电子邮件地址）" : "（您的电话号码）")
			       : (email ? " (your email address)" : " (your phone number)");
	puts_(b, "<li>");
	esc(b, zh ? "我们不会再向您发送" : "You will not receive ");
	if (strcmp(k->scope, "purpose") == 0) {
		esc(b, zh ? "以下用途的信息：" : "messages for ");
		esc(b, word(lang, k->scope_value));
	} else if (strcmp(k->scope, "channel") == 0) {
		esc(b, zh ? "以下方式的信息：" : "messages by ");
		esc(b, word(lang, k->scope_value));
	} else {
		esc(b, zh ? "任何信息" : "anything from us");
	}
	puts_(b, zh ? "：" : ": ");
	const char *reason = block_reason(lang, k->reason);
	const char *at = strstr(reason, "{date}");
	if (at != NULL) {
		char head_text[256];
		snprintf(head_text, sizeof head_text, "%.*s", (int)(at - reason), reason);
		esc(b, head_text);
		date(b, k->at_us);
		esc(b, at + 6);
	} else {
		esc(b, reason);
	}
	esc(b, which);
	puts_(b, zh ? "。</li>" : ".</li>");
}

static void blocks_section(struct buf *b, const struct prefpage_model *m)
{
	if (m->n_blocks == 0 && m->more_blocks == 0)
		return;
	puts_(b, "<section class=\"notice\" id=\"blocks\" aria-labelledby=\"blocks-h\"><h2 id=\"blocks-h\">");
	esc(b, tx(m->lang, T_BLOCKS_TITLE));
	puts_(b, "</h2><ul>");
	for (size_t i = 0; i < m->n_blocks; i++)
		block_line(b, m->lang, &m->blocks[i]);
	puts_(b, "</ul>");
	if (m->more_blocks > 0) {
		puts_(b, "<p>");
		esc(b, tx(m->lang, T_BLOCKS_MORE));
		puts_(b, "</p>");
	}
	puts_(b, "</section>\n");
}

char *prefpage_centre(const struct prefpage_model *m)
{
	struct buf b = { 0 };
	enum prefpage_lang lang = m->lang;
	head(&b, lang, tx(lang, T_TITLE));
	if (m->done != PREFPAGE_DONE_NONE) {
		enum text t = m->done == PREFPAGE_DONE_SAVED	       ? T_SAVED
			      : m->done == PREFPAGE_DONE_WITHDRAWN_ALL ? T_WITHDRAWN_ALL
								       : T_GPC_BLOCKED;
		puts_(&b, "<div class=\"notice ok\" role=\"status\" id=\"done\" tabindex=\"-1\"><p>");
		esc(&b, tx(lang, t));
		puts_(&b, "</p></div>\n");
	}
	puts_(&b, "<p>");
	esc(&b, tx(lang, m->manage ? T_INTRO : T_INTRO_OPTOUT));
	puts_(&b, "</p>\n");
	if (m->gpc) {
		puts_(&b, "<div class=\"notice\" role=\"note\" id=\"gpc\"><p>");
		esc(&b, tx(lang, T_GPC));
		puts_(&b, "</p></div>\n");
	}
	blocks_section(&b, m);
	for (size_t i = 0; i < m->n_purposes; i++)
		purpose_section(&b, m, &m->purposes[i]);
	action_section(&b, m, "all", T_ALL_TITLE, T_ALL_TEXT, "withdraw_all_request", T_BTN_ALL, NULL);
	if (m->manage) {
		action_section(&b, m, "download", T_DL_TITLE, T_DL_TEXT, "download", T_BTN_DL, "secondary");
		action_section(&b, m, "erase", T_ERASE_TITLE, T_ERASE_TEXT, "erase_request", T_BTN_ERASE,
			       "danger");
	} else {
		puts_(&b, "<div class=\"notice\" role=\"note\" id=\"optout\"><p>");
		esc(&b, tx(lang, T_OPTOUT_NOTE));
		puts_(&b, "</p></div>\n");
	}
	tail(&b);
	return finish(&b);
}

/* ---- the other pages ---- */

char *prefpage_link_invalid(enum prefpage_lang lang)
{
	struct buf b = { 0 };
	simple_page(&b, lang, T_INVALID_TITLE, T_INVALID_TEXT);
	tail(&b);
	return finish(&b);
}

char *prefpage_form_expired(enum prefpage_lang lang, const char *token)
{
	struct buf b = { 0 };
	simple_page(&b, lang, T_FORM_TITLE, T_FORM_TEXT);
	back_link(&b, lang, token);
	tail(&b);
	return finish(&b);
}

char *prefpage_unsubscribe_confirm(enum prefpage_lang lang, const char *token)
{
	struct buf b = { 0 };
	simple_page(&b, lang, T_UNSUB_TITLE, T_UNSUB_TEXT);
	form_open(&b, "/v1/unsubscribe/", token);
	hidden(&b, "List-Unsubscribe", "One-Click");
	puts_(&b, "<button type=\"submit\">");
	esc(&b, tx(lang, T_BTN_UNSUB));
	puts_(&b, "</button></form>\n");
	back_link(&b, lang, token);
	tail(&b);
	return finish(&b);
}

char *prefpage_unsubscribed(enum prefpage_lang lang, const char *token)
{
	struct buf b = { 0 };
	simple_page(&b, lang, T_UNSUBBED_TITLE, T_UNSUBBED_TEXT);
	back_link(&b, lang, token);
	tail(&b);
	return finish(&b);
}

char *prefpage_erase_confirm(enum prefpage_lang lang, const char *token, const char *csrf)
{
	struct buf b = { 0 };
	simple_page(&b, lang, T_ERASE_CONFIRM_TITLE, T_ERASE_CONFIRM_TEXT);
	form_open(&b, "/p/", token);
	hidden(&b, "csrf", csrf);
	hidden(&b, "action", "erase_confirm");
	puts_(&b,
	      "<label for=\"confirm\"><input type=\"checkbox\" id=\"confirm\" name=\"confirm\" value=\"yes\" required>");
	esc(&b, tx(lang, T_ERASE_CHECK));
	puts_(&b, "</label><button type=\"submit\" class=\"danger\">");
	esc(&b, tx(lang, T_BTN_ERASE_CONFIRM));
	puts_(&b, "</button></form>\n");
	back_link(&b, lang, token);
	tail(&b);
	return finish(&b);
}

char *prefpage_withdraw_all_confirm(enum prefpage_lang lang, const char *token, const char *csrf)
{
	struct buf b = { 0 };
	simple_page(&b, lang, T_ALL_CONFIRM_TITLE, T_ALL_CONFIRM_TEXT);
	form_open(&b, "/p/", token);
	hidden(&b, "csrf", csrf);
	hidden(&b, "action", "withdraw_all");
	hidden(&b, "confirm", "yes");
	puts_(&b, "<button type=\"submit\" class=\"danger\">");
	esc(&b, tx(lang, T_BTN_ALL_CONFIRM));
	puts_(&b, "</button></form>\n");
	back_link(&b, lang, token);
	tail(&b);
	return finish(&b);
}

char *prefpage_erased(enum prefpage_lang lang)
{
	struct buf b = { 0 };
	simple_page(&b, lang, T_ERASED_TITLE, T_ERASED_TEXT);
	tail(&b);
	return finish(&b);
}

char *prefpage_erase_received(enum prefpage_lang lang, const char *token, const char *due)
{
	struct buf b = { 0 };
	simple_page(&b, lang, T_ERASE_RECEIVED_TITLE, T_ERASE_RECEIVED_TEXT);
	puts_(&b, "<p>");
	esc(&b, tx(lang, T_ERASE_RECEIVED_DUE));
	puts_(&b, "<time datetime=\"");
	esc(&b, due);
	puts_(&b, "\">");
	esc(&b, due);
	puts_(&b, "</time></p>\n");
	back_link(&b, lang, token);
	tail(&b);
	return finish(&b);
}

/* ---- the public "ask for a link" page ---- */

char *prefpage_request_form(enum prefpage_lang lang)
{
	struct buf b = { 0 };
	simple_page(&b, lang, T_REQ_TITLE, T_REQ_TEXT);
	puts_(&b, "<form method=\"post\" action=\"/p/request\"><p><label for=\"email\">");
	esc(&b, tx(lang, T_REQ_LABEL));
	puts_(&b,
	      "</label> <input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"email\" required "
	      "maxlength=\"254\"></p>");
	hidden(&b, "lang", prefpage_lang_tag(lang));
	puts_(&b, "<button type=\"submit\">");
	esc(&b, tx(lang, T_REQ_BTN));
	puts_(&b, "</button></form>\n");
	tail(&b);
	return finish(&b);
}

char *prefpage_request_sent(enum prefpage_lang lang)
{
	struct buf b = { 0 };
	simple_page(&b, lang, T_REQ_SENT_TITLE, T_REQ_SENT_TEXT);
	tail(&b);
	return finish(&b);
}

char *prefpage_request_busy(enum prefpage_lang lang)
{
	struct buf b = { 0 };
	simple_page(&b, lang, T_REQ_TITLE, T_REQ_BUSY_TEXT);
	tail(&b);
	return finish(&b);
}

char *prefpage_confirm_ask(enum prefpage_lang lang, const char *token, const char *purpose_text)
{
	struct buf b = { 0 };
	simple_page(&b, lang, T_CONFIRM_TITLE, T_CONFIRM_TEXT);
	puts_(&b, "<p><strong>");
	esc(&b, purpose_text);
	puts_(&b, "</strong></p>\n");
	/* A button, not the link itself: mail scanners open links, and an
	 * opened link must not count as the person's yes. */
	form_open(&b, "/p/confirm/", token);
	hidden(&b, "action", "confirm");
	puts_(&b, "<button type=\"submit\">");
	esc(&b, tx(lang, T_CONFIRM_BTN));
	puts_(&b, "</button></form>\n");
	tail(&b);
	return finish(&b);
}

char *prefpage_confirmed(enum prefpage_lang lang)
{
	struct buf b = { 0 };
	simple_page(&b, lang, T_CONFIRMED_TITLE, T_CONFIRMED_TEXT);
	tail(&b);
	return finish(&b);
}
