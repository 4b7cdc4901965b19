"""The auditor's console over HTTP: sign-in, sessions, CSRF, the login rate
limit, and that every view is itself on the record without personal
plaintext in URLs, logs or the trail; and the same in a real browser
(tests/browser/console.mjs: headless Chromium, axe-core on every page in
both languages, the evidence pack verified with the CLI). The browser test
skips only when Chromium is absent, like test_browser.py."""
import hashlib
import http.client
import io
import json
import os
import re
import sqlite3
import ssl
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
from harness import Skip, assert_problem, cli, contains_value, run  # noqa: E402

BROWSER_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "browser")
CHROMIUM = os.environ.get("CONSENTD_CHROMIUM", "/usr/bin/chromium")

FORM = "application/x-www-form-urlencoded"
EMAIL = "Console.Quimby.Person@Example.org"
PHONE = "+44 20 7946 0321"


class Console:
    """A browser-like client: keeps the console's cookies, reads every
    Set-Cookie header (the harness client folds repeated headers)."""

    def __init__(self, srv, lang=None):
        self.srv = srv
        self.cookies = {}
        self.lang = lang
        self.last_headers = []

    def req(self, method, path, form=None, headers=None, html=True):
        ctx = ssl.create_default_context(cafile=self.srv.cafile)
        c = http.client.HTTPSConnection("127.0.0.1", self.srv.port, context=ctx, timeout=30)
        h = dict(headers or {})
        if html:
            h.setdefault("Accept", "text/html")
        if self.lang:
            h.setdefault("Accept-Language", self.lang)
        if self.cookies:
            h.setdefault("Cookie", "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            h.setdefault("Content-Type", FORM)
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        hs = r.getheaders()
        c.close()
        self.last_headers = hs
        for k, v in hs:
            if k.lower() == "set-cookie":
                name, _, rest = v.partition("=")
                value = rest.split(";", 1)[0]
                if "Max-Age=0" in v:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = value
        return r.status, dict((k.lower(), v) for k, v in hs), data.decode(errors="replace")

    def set_cookies(self):
        return [v for k, v in self.last_headers if k.lower() == "set-cookie"]

    def sign_in(self, token):
        st, _, page = self.req("GET", "/console/")
        assert st == 200, (st, page)
        csrf = csrf_of(page)
        return self.req("POST", "/console/login", form={"csrf": csrf, "token": token})

    def csrf(self):
        st, _, page = self.req("GET", "/console/search")
        assert st == 200, (st, page)
        return csrf_of(page)


def csrf_of(page):
    m = re.search(r'name="csrf" value="([^"]+)"', page)
    assert m, page[:2000]
    return m.group(1)


def sessions(srv):
    con = sqlite3.connect(f"file:{srv.db}?mode=ro", uri=True)
    rows = [dict(zip(("id_hash", "token_hash", "actor", "role", "csrf", "created_us", "seen_us"), r))
            for r in con.execute("SELECT id_hash, token_hash, actor, role, csrf, created_us, seen_us "
                                 "FROM console_session")]
    con.close()
    return rows


def signed_in(srv, role="auditor"):
    c = Console(srv)
    st, hdrs, body = c.sign_in(srv.tokens[role])
    assert st == 303 and hdrs["location"] == "/console/", (st, hdrs, body)
    assert "consentd_console" in c.cookies, c.cookies
    return c


def test_auditor_signs_in_with_a_strict_cookie_and_only_hashes_are_stored(srv):
    c = Console(srv)
    st, hdrs, page = c.req("GET", "/console/")
    assert st == 200 and 'name="token"' in page and 'action="/console/login"' in page, page
    assert "script" not in page.lower(), "the console needs no script"
    csp = hdrs["content-security-policy"]
    assert "default-src 'none'" in csp and "style-src 'self'" in csp and "unsafe-inline" not in csp, csp
    st, hdrs, body = c.sign_in(srv.tokens["auditor"])
    assert st == 303, (st, body)
    cookie = [v for v in c.set_cookies() if v.startswith("consentd_console=")]
    assert len(cookie) == 1, c.set_cookies()
    attrs = [a.strip() for a in cookie[0].split(";")]
    for want in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/console", "Max-Age=28800"):
        assert want in attrs, (want, attrs)
    sid = c.cookies["consentd_console"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", sid), sid  # 256 random bits
    rows = sessions(srv)
    assert len(rows) == 1, rows
    assert rows[0]["id_hash"] == hashlib.sha256(sid.encode()).digest()
    assert rows[0]["token_hash"] == hashlib.sha256(srv.tokens["auditor"].encode()).digest()
    assert rows[0]["actor"] == "auditor-1" and rows[0]["role"] == "auditor", rows
    raw = open(srv.db, "rb").read() + (open(srv.db + "-wal", "rb").read() if os.path.exists(srv.db + "-wal") else b"")
    assert sid.encode() not in raw and srv.tokens["auditor"].encode() not in raw
    st, _, page = c.req("GET", "/console/")
    assert st == 200 and "auditor-1" in page and "/console/logout" in page, page
    entry = srv.audit_rows("action = 'console.login'")[-1]
    assert (entry["actor"], entry["decision"], entry["reason"]) == ("auditor-1", "allow", "signed_in"), entry


def test_a_form_without_its_csrf_value_changes_nothing(srv):
    c = signed_in(srv)
    before = len(srv.audit_rows())
    st, _, _ = c.req("POST", "/console/logout", form={})
    assert st == 403, st
    st, _, _ = c.req("POST", "/console/logout", form={"csrf": "x" * 43})
    assert st == 403, st
    st, body = srv.call("POST", "/console/search", body="email=a%40example.org&csrf=nope", content_type=FORM,
                        headers={"Cookie": f"consentd_console={c.cookies['consentd_console']}"})
    assert_problem(st, body, 403)
    assert len(sessions(srv)) == 1, "the session survived the forged sign-out"
    assert len(srv.audit_rows()) == before, "refused forms are validation errors, not accesses"
    # The sign-in form's own value must match its cookie (login CSRF).
    other = Console(srv)
    st, _, page = other.req("POST", "/console/login",
                            form={"csrf": "A" * 43, "token": srv.tokens["auditor"]})
    assert st == 403, st
    assert len(sessions(srv)) == 1


def test_wrong_tokens_are_audited_as_auth_failures_and_rate_limited(srv):
    c = Console(srv)
    for i in range(5):
        st, _, page = c.sign_in(f"cd_wrong-token-number-{i:02d}")
        assert st == 401 and "not valid" in page, (st, page[:500])
    fails = srv.audit_rows("action = 'auth.failure'")
    assert len(fails) == 5, fails
    for e in fails:
        assert e["reason"] == "unknown_token" and json.loads(e["detail"]) == {"route": "POST /console/login"}, e
        assert e["client"] == "127.0.0.1", e
    # The sixth try from this address is refused, even with a good token.
    st, hdrs, page = c.sign_in(srv.tokens["auditor"])
    assert st == 429 and int(hdrs["retry-after"]) > 0, (st, hdrs)
    assert srv.audit_rows("action = 'auth.failure'")[-1]["reason"] == "rate_limited"
    assert sessions(srv) == []
    st, body = srv.call("POST", "/console/login", body="token=x", content_type=FORM)
    assert_problem(st, body, 429)


def test_a_marketing_token_cannot_sign_in(srv):
    c = Console(srv)
    st, _, page = c.sign_in(srv.tokens["marketing"])
    assert st == 403, (st, page)
    assert "consentd_console" not in c.cookies and sessions(srv) == []
    e = srv.audit_rows("action = 'console.login'")[-1]
    assert (e["actor"], e["role"], e["decision"], e["reason"]) == ("marketing-1", "marketing", "deny",
                                                                  "role_denied"), e


def test_sign_out_ends_the_session_for_good(srv):
    c = signed_in(srv)
    sid = c.cookies["consentd_console"]
    st, hdrs, _ = c.req("POST", "/console/logout", form={"csrf": c.csrf()})
    assert st == 303 and hdrs["location"] == "/console/", st
    assert any(v.startswith("consentd_console=;") and "Max-Age=0" in v for v in c.set_cookies())
    assert sessions(srv) == []
    st, body = srv.call("GET", "/console/search", headers={"Cookie": f"consentd_console={sid}"})
    assert_problem(st, body, 401)
    e = srv.audit_rows("action = 'console.logout'")[-1]
    assert (e["actor"], e["reason"]) == ("auditor-1", "signed_out"), e


def test_a_session_dies_when_its_token_is_revoked(srv):
    c = signed_in(srv)
    st, _, _ = c.req("GET", "/console/")
    assert st == 200
    cli("token", "revoke", "--data", srv.data, "--name", "auditor-1")
    # The principal cache forgets within 10 s; until then the old answer may stand.
    deadline = time.time() + 15
    while time.time() < deadline:
        st, _, page = c.req("GET", "/console/search")
        if st != 200:
            break
        time.sleep(0.5)
    assert st == 401, (st, page[:500])
    e = srv.audit_rows("action = 'auth.failure'")[-1]
    assert e["reason"] == "session_token_revoked" and json.loads(e["detail"])["console_actor"] == "auditor-1", e
    assert sessions(srv) == [], "the revoked token's session is deleted"


def test_idle_and_absolute_lifetimes_end_a_session(srv):
    c = signed_in(srv)
    sid = c.cookies["consentd_console"]
    con = sqlite3.connect(srv.db, timeout=10)
    now = int(time.time() * 1e6)
    con.execute("UPDATE console_session SET seen_us = ?", (now - 16 * 60 * 10**6,))
    con.commit()
    st, body = srv.call("GET", "/console/search", headers={"Cookie": f"consentd_console={sid}"})
    assert_problem(st, body, 401)
    con.execute("UPDATE console_session SET seen_us = ?, created_us = ?", (now, now - 9 * 3600 * 10**6))
    con.commit()
    con.close()
    st, body = srv.call("GET", "/console/search", headers={"Cookie": f"consentd_console={sid}"})
    assert_problem(st, body, 401)


def test_every_console_view_and_export_is_an_audited_access(srv):
    cid = srv.create_contact(email=EMAIL, name="Quimby Person")
    c = signed_in(srv)
    want = []
    for path, action, page in [("/console/", "audit.read", "health"),
                               ("/console/search", "audit.read", "search"),
                               (f"/console/search?contact={cid}", "audit.read", "search"),
                               ("/console/campaigns", "audit.read", "campaigns"),
                               (f"/console/people/{cid}", "audit.read", "report"),
                               ("/console/entries/1", "audit.read", "entry"),
                               ("/console/export?format=csv", "audit.export", "export"),
                               ("/console/evidence", "audit.export", "evidence")]:
        st, hdrs, body = c.req("GET", path)
        assert st == 200, (path, st, body[:500])
        rid = hdrs["x-request-id"]
        rows = srv.audit_rows("request_id = ?", (rid,))
        assert len(rows) == 1, (path, rows)
        e = rows[0]
        assert (e["action"], e["actor"], e["role"], e["decision"]) == (action, "auditor-1", "auditor", "allow"), e
        assert json.loads(e["detail"])["console"] == page, e
        want.append(e)
    assert want[2]["record_id"] == cid and want[4]["record_id"] == cid, want
    # The view is committed before the page leaves: its entry is in the very
    # export that reports it (the export's own entry comes first).
    st, hdrs, body = c.req("GET", "/console/export?format=ndjson")
    last = json.loads(body.splitlines()[-1])
    assert last["request_id"] == hdrs["x-request-id"] and last["action"] == "audit.export", last
    # Bad input is a problem and is not audited.
    before = len(srv.audit_rows())
    st, hdrs, body = c.req("GET", "/console/search?bogus=1", html=False)
    assert st == 400 and hdrs["content-type"] == "application/problem+json", (st, body)
    st, hdrs, body = c.req("GET", "/console/entries/abc", html=False)
    assert st == 400, st
    assert len(srv.audit_rows()) == before


def test_search_by_email_never_puts_the_address_in_urls_logs_or_the_trail(srv):
    cid = srv.create_contact(email=EMAIL, name="Quimby Person", phone=PHONE)
    srv.call("GET", f"/v1/contacts/{cid}?purpose=service", token="support")
    c = signed_in(srv)
    csrf = c.csrf()
    st, hdrs, body = c.req("POST", "/console/search", form={"csrf": csrf, "email": EMAIL.upper(), "contact": "",
                                                            "actor": "", "decision": ""})
    assert st == 303, (st, body)
    assert hdrs["location"] == f"/console/search?contact={cid}", hdrs
    lookup = srv.audit_rows("request_id = ?", (hdrs["x-request-id"],))
    assert len(lookup) == 1 and lookup[0]["record_id"] == cid, lookup
    assert json.loads(lookup[0]["detail"]) == {"console": "lookup", "by": "email", "found": 1}, lookup
    st, _, page = c.req("GET", hdrs["location"])
    assert st == 200 and "contacts.read" in page and f"/console/people/{cid}" in page, page
    # By phone, in another notation.
    st, hdrs, _ = c.req("POST", "/console/search", form={"csrf": csrf, "phone": "+442079460321"})
    assert st == 303 and hdrs["location"] == f"/console/search?contact={cid}", hdrs
    # An unknown address: a page, no redirect, and the address is not echoed.
    st, hdrs, page = c.req("POST", "/console/search", form={"csrf": csrf, "email": "nobody.zzq@example.org"})
    assert st == 200 and "nobody.zzq" not in page and "location" not in hdrs, st
    # A malformed one: 400, nothing audited, nothing echoed.
    before = len(srv.audit_rows())
    st, _, page = c.req("POST", "/console/search", form={"csrf": csrf, "email": "not-an-address-qq"})
    assert st == 400 and "not-an-address-qq" not in page, st
    assert len(srv.audit_rows()) == before
    st, _, page = c.req("GET", f"/console/people/{cid}")
    assert st == 200 and "support-1" in page and "contacts.read" in page, page
    log = srv.stop()
    con = sqlite3.connect(f"file:{srv.db}?mode=ro", uri=True)
    table = "\n".join(repr(r) for r in con.execute("SELECT * FROM audit")).lower()
    urls = [r[0] for r in con.execute("SELECT detail FROM audit WHERE detail LIKE '%console%'")]
    con.close()
    for v in (EMAIL, "quimby", "7946 0321", "+442079460321", "nobody.zzq", "not-an-address-qq"):
        assert not contains_value(table, v), f"{v!r} is in the audit table"
        assert not contains_value(log, v), f"{v!r} is in the server log"
        assert not any(contains_value(u, v) for u in urls), v


def test_the_evidence_pack_verifies_with_the_cli(srv):
    srv.create_contact(email=EMAIL, name="Quimby Person")
    c = signed_in(srv)
    ctx = ssl.create_default_context(cafile=srv.cafile)
    conn = http.client.HTTPSConnection("127.0.0.1", srv.port, context=ctx)
    conn.request("GET", "/console/evidence", headers={"Cookie": f"consentd_console={c.cookies['consentd_console']}"})
    r = conn.getresponse()
    data = r.read()
    assert r.status == 200 and r.getheader("Content-Type") == "application/x-tar", r.status
    tf = tarfile.open(fileobj=io.BytesIO(data))
    names = tf.getnames()
    assert names == ["README.txt", "checkpoint.json", "audit-public.pem", "audit.ndjson"], names
    d = tempfile.mkdtemp()
    tf.extractall(d, filter="data")
    readme = open(os.path.join(d, "README.txt")).read()
    assert "consentd audit verify --export audit.ndjson --pubkey audit-public.pem" in readme, readme
    cp = json.loads(open(os.path.join(d, "checkpoint.json")).read())
    lines = open(os.path.join(d, "audit.ndjson")).read().splitlines()
    assert len(lines) == cp["size"] and json.loads(lines[0])["seq"] == 1, (len(lines), cp)
    # The checkpoint was signed for this download: it covers the sign-in.
    assert any(json.loads(x)["action"] == "console.login" for x in lines)
    code, out, err = cli("audit", "verify", "--export", os.path.join(d, "audit.ndjson"), "--pubkey",
                         os.path.join(d, "audit-public.pem"), "--checkpoint", os.path.join(d, "checkpoint.json"),
                         check=False)
    assert code == 0 and out.startswith("ok:"), (code, out, err)
    # An altered export fails.
    e = json.loads(lines[0])
    e["actor"] = "someone-else"
    lines[0] = json.dumps(e, separators=(",", ":"))
    open(os.path.join(d, "audit.ndjson"), "w").write("\n".join(lines) + "\n")
    code, out, err = cli("audit", "verify", "--export", os.path.join(d, "audit.ndjson"), "--pubkey",
                         os.path.join(d, "audit-public.pem"), "--checkpoint", os.path.join(d, "checkpoint.json"),
                         check=False)
    assert code != 0, (code, out)


def test_pages_come_in_english_and_chinese(srv):
    c = signed_in(srv)
    c.lang = "zh-CN,zh;q=0.9"
    st, _, page = c.req("GET", "/console/")
    assert st == 200 and 'lang="zh-CN"' in page and "审计日志" in page, page[:400]
    c.lang = "en"
    st, _, page = c.req("GET", "/console/")
    assert 'lang="en"' in page and "Trail health" in page
    st, hdrs, css = c.req("GET", "/console/console.css")
    assert st == 200 and hdrs["content-type"].startswith("text/css") and "body{" in css


def ensure_node_modules():
    mods = os.path.join(BROWSER_DIR, "node_modules")
    if all(os.path.isdir(os.path.join(mods, m)) for m in ("playwright-core", "axe-core")):
        return
    p = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=BROWSER_DIR, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr


def test_auditor_uses_the_console_in_a_real_browser(srv):
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        raise Skip(f"{CHROMIUM} is not installed (CONSENTD_BROWSER=1 scripts/deps.sh installs it)")
    ensure_node_modules()
    cid = srv.create_contact(email=EMAIL, name="Quimby Person", phone=PHONE)
    st, _ = srv.call("GET", f"/v1/contacts/{cid}?purpose=service", token="support")
    assert st == 200
    srv.set_consent(cid, "marketing", "email", "granted")
    st, _ = srv.call("POST", "/v1/outreach/filter?purpose=marketing&channel=email", token="marketing",
                     body=json.dumps([EMAIL.lower(), "other.unknown@example.org"]), content_type="application/json")
    assert st == 200, st
    second = srv.token("auditor", "auditor-2")
    flag = os.path.join(srv.tmp, "revoke-flag")
    open(flag, "w").write("")
    artifacts = os.path.join(BROWSER_DIR, "artifacts")
    env = dict(os.environ, CONSENTD_API=f"https://127.0.0.1:{srv.port}", CONSENTD_TOKEN=srv.tokens["auditor"],
               CONSENTD_TOKEN2=second, CONSENTD_MARKETING=srv.tokens["marketing"], CONSENTD_EMAIL=EMAIL,
               CONSENTD_CONTACT=cid, CONSENTD_REVOKE=flag, CONSENTD_CHROMIUM=CHROMIUM,
               CONSENTD_ARTIFACTS=artifacts)
    p = subprocess.Popen(["node", os.path.join(BROWSER_DIR, "console.mjs")], cwd=BROWSER_DIR, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while p.poll() is None and time.time() < deadline:
        if open(flag).read() == "revoke":
            cli("token", "revoke", "--data", srv.data, "--name", "auditor-2")
            open(flag, "w").write("revoked")
        time.sleep(0.1)
    if p.poll() is None:
        p.kill()
    out, err = p.communicate()
    assert p.returncode == 0, out + err
    res = json.loads(out.strip().splitlines()[-1])
    print(json.dumps(res["axe"]))
    assert res["ok"] and all(v == 0 for v in res["axe"].values()) and len(res["axe"]) >= 17, res
    assert res["revoked_status"] == 401, res
    for tag in ("en", "zh"):
        d = tempfile.mkdtemp()
        with tarfile.open(res[f"pack_{tag}"]) as tf:
            tf.extractall(d, filter="data")
        code, out, err = cli("audit", "verify", "--export", os.path.join(d, "audit.ndjson"), "--pubkey",
                             os.path.join(d, "audit-public.pem"), "--checkpoint",
                             os.path.join(d, "checkpoint.json"), check=False)
        assert code == 0 and out.startswith("ok:"), (tag, code, out, err)
    rows = srv.audit_rows("action = 'auth.failure' AND reason = 'session_token_revoked'")
    assert len(rows) >= 1, rows
    denied = srv.audit_rows("action = 'console.login' AND decision = 'deny'")
    assert [r["actor"] for r in denied] == ["marketing-1"], denied
    log = srv.stop()
    assert not contains_value(log, EMAIL)
    con = sqlite3.connect(f"file:{srv.db}?mode=ro", uri=True)
    table = "\n".join(repr(r) for r in con.execute("SELECT * FROM audit"))
    con.close()
    assert not contains_value(table, EMAIL) and not contains_value(table, "Quimby")


if __name__ == "__main__":
    run(globals())
