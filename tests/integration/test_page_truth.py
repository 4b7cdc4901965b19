"""The preference page tells the whole truth (issue 16 item 8): a
suppression is shown for what it is, and the choices it stops say so; how
each choice was recorded is in words, in both languages, never another
system's raw value; dates are marked up as dates and never wrap. One
scenario each, as the person would read the page."""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import Server, run  # noqa: E402

DAN = {"email": "dan.truth@example.org", "name": "Dan Truth",
       "collected_for": ["service", "marketing"], "source": "crm"}


def page(srv, tok, lang=None):
    st, _, html = srv.raw("GET", f"/p/{tok}", headers={"Accept-Language": lang} if lang else {})
    assert st == 200, st
    return html.decode()


def text_of(html):
    """The page as a reader sees it: tags removed, whitespace joined."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html))


def row(html, purpose_label, channel_label):
    """The table row of one choice (purpose section, channel header)."""
    sec = html[html.index(purpose_label):]
    start = sec.index(f'<th scope="row">{channel_label}</th>')
    return sec[start:sec.index("</tr>", start)]


def complaint(srv, when="2026-03-01T10:00:00Z"):
    st, out = srv.call("POST", "/v1/suppressions", token="marketing",
                       json={"email": DAN["email"], "scope": "purpose", "scope_value": "marketing",
                             "reason": "complaint", "source": "esp-feedback-loop", "created_at": when})
    assert st == 201, (st, out)


def test_a_spam_complaint_is_shown_for_what_it_is_and_the_yes_says_it_is_not_used(srv):
    cid = srv.create_contact(**DAN)
    srv.set_consent(cid, "marketing", "email", "granted")
    complaint(srv)
    _, tok = srv.manage_link(cid)
    html = page(srv, tok)
    text = text_of(html)
    assert ("You will not receive messages for Marketing: "
            "you reported a message as spam on 2026-03-01 (your email address).") in text, text
    assert '<time datetime="2026-03-01">2026-03-01</time>' in html, html
    r = row(html, 'id="p-marketing"', "Email")
    assert "We will not contact you this way" in r, r
    # Analytics (no channel) is not covered by a marketing complaint.
    assert "We will not contact you this way" not in row(html, 'id="p-analytics"', "Any")
    zh = text_of(page(srv, tok, "zh-CN"))
    assert "我们不会再向您发送以下用途的信息：营销：您于 2026-03-01 将一封邮件举报为垃圾邮件（您的电子邮件地址）。" in zh, zh


def test_a_page_without_suppressions_has_no_such_section(srv):
    cid = srv.create_contact(**DAN)
    _, tok = srv.manage_link(cid)
    html = page(srv, tok)
    assert 'id="blocks"' not in html and "What stops us" not in html


def test_every_method_and_source_is_in_words_in_both_languages(srv):
    cid = srv.create_contact(**DAN)
    srv.set_consent(cid, "marketing", "email", "granted", collection_method="web_form", source="crm")
    srv.set_consent(cid, "marketing", "sms", "granted", collection_method="zapier_sync", source="crm")
    _, tok = srv.manage_link(cid)
    for lang, web, other in ((None, "a form on our website", "recorded by our staff or systems"),
                             ("zh-CN", "我们网站上的表单", "由我们的员工或系统记录")):
        html = page(srv, tok, lang)
        text = text_of(html)
        assert web in text and other in text, (lang, text)
        for raw in ("web_form", "zapier_sync", "(crm)"):
            assert raw not in text, (lang, raw, text)


def test_dates_on_the_page_are_time_elements_that_do_not_wrap(srv):
    cid = srv.create_contact(**DAN)
    srv.set_consent(cid, "marketing", "email", "granted")
    _, tok = srv.manage_link(cid)
    html = page(srv, tok)
    assert "time{white-space:nowrap}" in html, html[:3000]
    dates = re.findall(r'<time datetime="(\d{4}-\d\d-\d\d)">(\d{4}-\d\d-\d\d)</time>', html)
    assert dates and all(a == b for a, b in dates), dates
    # Every date on the page is inside a <time>.
    outside = text_of(re.sub(r"<time[^>]*>[^<]*</time>", "", html))
    bare = re.findall(r"\d{4}-\d\d-\d\d", outside)
    assert bare == [], bare


if __name__ == "__main__":
    run(globals())
