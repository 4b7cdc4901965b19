"""Mail consentd sends: through an SMTP relay (libcurl, STARTTLS required
by default) and in the person's language, as plain text and HTML. Each
test starts its own SMTP sink (smtpsink.py) on loopback."""
import email
import email.policy
import json
import os
import re
import sqlite3
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
from harness import Server, psql_rows, run  # noqa: E402
from smtpsink import Sink  # noqa: E402

BOB = {"email": "bob.customer@example.org", "name": "Bob Customer",
       "collected_for": ["service", "marketing"], "source": "shop-signup"}
ORG = {"name": "Acme <Shoes> & Co", "postal_address": "1 High Street\nLondon EC1A 1AA",
       "privacy_policy_url": "https://acme.example/privacy?a=1&b=2", "contact_email": "privacy@acme.example"}


def with_config(srv, **keys):
    conf = os.path.join(srv.data, "consentd.conf")
    with open(conf) as f:
        cfg = json.load(f)
    cfg.update(keys)
    with open(conf, "w") as f:
        json.dump(cfg, f)


def relay_config(sink, **mail):
    return {"smtp_url": f"smtp://127.0.0.1:{sink.port}", "from": "privacy@acme.example",
            "ca_file": sink.cert, "retry_base_ms": 200, **mail}


def wait(cond, timeout=15.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def metric(srv, outcome):
    _, _, data = srv.raw("GET", "/metrics")
    m = re.search(r'^consentd_mail_total\{outcome="%s"\} (\d+)$' % outcome, data.decode(), re.M)
    assert m, data.decode()
    return int(m.group(1))


def outbox(srv):
    cols = ("id", "attempts", "sent_us", "failed_us", "next_us", "lang")
    if srv.pg:
        return [tuple(r[c] for c in cols) for r in psql_rows(srv.pg, "SELECT " + ", ".join(cols) + " FROM mail_outbox")]
    con = sqlite3.connect(f"file:{srv.db}?mode=ro", uri=True)
    try:
        return con.execute("SELECT id, attempts, sent_us, failed_us, next_us, lang FROM mail_outbox").fetchall()
    finally:
        con.close()


def ask_manage_link(srv, cid):
    st, out = srv.call("POST", f"/v1/contacts/{cid}/preference-link", token="admin",
                       json={"capability": "manage"})
    assert st == 202, (st, out)
    return out


def request_link(srv, addr, lang=None):
    form = {"email": addr, **({"lang": lang} if lang else {})}
    st, _, data = srv.raw("POST", "/p/request", body=urllib.parse.urlencode(form).encode(),
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert st == 200, (st, data)


def folder_mail(srv, n=1):
    folder = os.path.join(srv.data, "mail-outbox")

    def read():
        names = sorted(x for x in os.listdir(folder) if x.endswith(".eml")) if os.path.isdir(folder) else []
        return names if len(names) >= n else None
    out = []
    for name in wait(read, what="mail in the folder"):
        with open(os.path.join(folder, name), "rb") as f:
            out.append(f.read())
    return out


def test_a_manage_link_goes_through_the_relay_over_starttls_with_the_right_from_to_and_subject():
    sink = Sink(offer_starttls=True)
    srv = Server(start=False)
    try:
        with_config(srv, mail=relay_config(sink), organisation=ORG)
        srv.start()
        cid = srv.create_contact(**BOB)
        link = ask_manage_link(srv, cid)
        got = wait(lambda: sink.messages, what="the message at the relay")[0]
        assert got["tls"], "the message came in the clear"
        assert got["from"] == "<privacy@acme.example>" and got["rcpt"] == ["<bob.customer@example.org>"], got
        msg = email.message_from_bytes(got["data"], policy=email.policy.default)
        assert msg["From"].addresses[0].addr_spec == "privacy@acme.example", msg["From"]
        assert msg["From"].addresses[0].display_name == ORG["name"], msg["From"]
        assert msg["To"].addresses[0].addr_spec == BOB["email"], msg["To"]
        assert msg["Subject"] == "Your privacy choices", msg["Subject"]
        assert msg["X-Consentd-Link-Id"] == link["link_id"]
        text = msg.get_body(preferencelist=("plain",)).get_content()
        tok = re.search(r"/p/([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)", text).group(1)
        st, _, _ = srv.raw("GET", f"/p/{tok}")
        assert st == 200
        wait(lambda: any(r[2] is not None for r in outbox(srv)), what="the message marked sent")
        assert metric(srv, "sent") == 1 and metric(srv, "failed") == 0
        # Nothing personal in the log: neither the address nor the token.
        assert BOB["email"] not in "".join(srv._out) and tok not in "".join(srv._out)
    finally:
        srv.close()
        sink.close()


def test_starttls_required_refuses_a_relay_without_it_and_the_message_waits_and_is_retried():
    sink = Sink(offer_starttls=False)
    srv = Server(start=False)
    try:
        with_config(srv, mail=relay_config(sink))  # starttls: "required", the default
        srv.start()
        cid = srv.create_contact(**BOB)
        ask_manage_link(srv, cid)
        # Tried, refused for want of TLS, tried again after the backoff.
        wait(lambda: sink.sessions >= 3, what="retries")
        assert sink.messages == [] and "MAIL" not in sink.commands, sink.commands
        rows = outbox(srv)
        assert len(rows) == 1 and rows[0][2] is None and rows[0][3] is None and rows[0][1] >= 2, rows
        assert metric(srv, "retry") >= 2 and metric(srv, "failed") == 0
        # The relay learns TLS: the waiting message goes, over TLS.
        sink.offer_starttls = True
        got = wait(lambda: sink.messages, timeout=30, what="the message after the relay offers TLS")[0]
        assert got["tls"] and got["rcpt"] == ["<bob.customer@example.org>"], got
        assert BOB["email"] not in "".join(srv._out)
    finally:
        srv.close()
        sink.close()


def test_a_relay_refusing_the_recipient_for_good_gets_the_message_marked_failed():
    sink = Sink(offer_starttls=True)
    sink.rcpt_code = "550 5.1.1 <bob.customer@example.org>: no such mailbox"
    srv = Server(start=False)
    try:
        with_config(srv, mail=relay_config(sink))
        srv.start()
        cid = srv.create_contact(**BOB)
        ask_manage_link(srv, cid)
        wait(lambda: any(r[3] is not None for r in outbox(srv)), what="the message marked failed")
        assert metric(srv, "failed") == 1 and metric(srv, "sent") == 0
        time.sleep(1.0)  # five backoffs' worth: a failed message is not tried again
        assert sink.sessions == 1, sink.sessions
        # The relay's reply quotes the address: it is not logged.
        assert "failed for good" in "".join(srv._out)
        assert BOB["email"] not in "".join(srv._out), "".join(srv._out)
    finally:
        srv.close()
        sink.close()


def test_starttls_none_is_refused_at_config_check_for_a_relay_that_is_not_loopback():
    srv = Server(start=False)
    try:
        for mail, why in (({"smtp_url": "smtp://mail.example.com:25", "from": "p@acme.example",
                            "starttls": "none"}, "accepted only for a loopback relay"),
                          ({"smtp_url": "smtp://10.0.0.1:25", "from": "p@acme.example", "starttls": "none"},
                           "accepted only for a loopback relay"),
                          ({"smtp_url": "smtp://127.0.0.1:25"}, "mail.from is required"),
                          ({"smtp_url": "http://127.0.0.1:25", "from": "p@acme.example"}, "smtp://"),
                          ({"smtp_url": "smtp://127.0.0.1:25", "from": "p@acme.example", "starttls": "maybe"},
                           "mail.starttls must be"),
                          ({"smtp_url": "smtp://127.0.0.1:25", "from": "p@acme.example\r\nBcc: x@y"},
                           "mail.from must be one address"),
                          ({"dir": "out", "smtp_url": "smtp://127.0.0.1:25", "from": "p@acme.example"},
                           "not both"),
                          ({"dir": "out", "starttls": "none"}, "need mail.smtp_url")):
            with_config(srv, mail=mail)
            rc = srv.start(expect_fail=True)
            assert rc != 0 and why in srv.output, (mail, rc, srv.output)
        # A loopback relay may be spoken to without TLS.
        sink = Sink(offer_starttls=False)
        try:
            with_config(srv, mail={"smtp_url": f"smtp://localhost:{sink.port}", "from": "p@acme.example",
                                   "starttls": "none"})
            srv.start()
            ask_manage_link(srv, srv.create_contact(**BOB))
            got = wait(lambda: sink.messages, what="the message at the loopback relay")[0]
            assert not got["tls"]
        finally:
            sink.close()
    finally:
        srv.close()


def test_mail_is_plain_text_and_html_in_the_persons_language_with_encoded_headers(srv):
    srv.stop()
    with_config(srv, organisation=ORG)
    srv.start()
    cid = srv.create_contact(**BOB)
    request_link(srv, BOB["email"], lang="zh-CN")
    raw_zh = folder_mail(srv, 1)[0]
    ask_manage_link(srv, cid)  # staff say no language: the default, English
    raws = folder_mail(srv, 2)
    raw_en = [r for r in raws if r != raw_zh][0]
    for raw, lang, subject, greeting, label in (
            (raw_zh, "zh-CN", "您的隐私选择", "您好", "隐私政策："),
            (raw_en, "en", "Your privacy choices", "Hello,", "Privacy policy: ")):
        # Every byte on the wire is ASCII: headers as RFC 2047 words,
        # bodies in base64, lines within 78 characters.
        assert all(b < 0x80 for b in raw), lang
        long = [line for line in raw.split(b"\r\n") if len(line) > 78]
        assert not long, (lang, long)
        assert b"\n" not in raw.replace(b"\r\n", b""), "a bare line feed"
        head = raw.split(b"\r\n\r\n", 1)[0].decode()
        assert "Subject: =?UTF-8?B?" in head and "Content-Type: multipart/alternative;" in head, head
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert msg["Subject"] == subject and msg["Content-Language"] == lang, (msg["Subject"], lang)
        plain = msg.get_body(preferencelist=("plain",))
        html = msg.get_body(preferencelist=("html",))
        for part, ctype in ((plain, "text/plain"), (html, "text/html")):
            assert part.get_content_type() == ctype and part.get_content_charset() == "utf-8"
            assert part["Content-Transfer-Encoding"] == "base64"
        # Text lines end in CRLF inside the base64 too (RFC 2046 4.1.1).
        text, page = plain.get_content().replace("\r\n", "\n"), html.get_content()
        assert "\r\n" in plain.get_content()
        assert greeting in text and label + ORG["privacy_policy_url"] in text, text
        assert "Acme <Shoes> & Co" in text and "1 High Street\nLondon EC1A 1AA" in text, text
        assert f'<html lang="{lang}">' in page and greeting in page, page
        # The organisation's values are escaped in the HTML part, never markup.
        assert "Acme &lt;Shoes&gt; &amp; Co" in page and "<Shoes>" not in page, page
        assert 'href="https://acme.example/privacy?a=1&amp;b=2"' in page, page
        tok = re.search(r"/p/([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)", text).group(1)
        assert f'href="{srv_url(srv)}/p/{tok}"' in page, page
    # The outbox row keeps the language, never the address.
    langs = sorted(r[5] for r in outbox(srv))
    assert langs == ["en", "zh-CN"], langs


def test_staff_can_say_which_language_a_manage_link_mail_is_written_in(srv):
    cid = srv.create_contact(**BOB)
    st, out = srv.call("POST", f"/v1/contacts/{cid}/preference-link", token="admin",
                       json={"capability": "manage", "lang": "zh-CN"})
    assert st == 202, out
    msg = srv.mailed(out["link_id"])
    assert msg["Subject"] == "您的隐私选择" and msg["Content-Language"] == "zh-CN", msg["Subject"]
    st, out = srv.call("POST", f"/v1/contacts/{cid}/preference-link", token="admin",
                       json={"capability": "manage", "lang": "fr"})
    assert st == 400, out


def srv_url(srv):
    return f"https://127.0.0.1:{srv.port}"


if __name__ == "__main__":
    run(globals())
