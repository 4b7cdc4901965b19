"""The customer pages in a real browser: headless Chromium (Debian's
/usr/bin/chromium) driven by playwright-core from tests/browser/withdraw.mjs.

Skips, reported as SKIP to ctest, only when Chromium is absent (CI installs
it with CONSENTD_BROWSER=1 scripts/deps.sh). playwright-core is installed into
tests/browser/node_modules from the committed package-lock.json if missing.
Screenshots land in tests/browser/artifacts/ (gitignored)."""
import json
import os
import shutil
import subprocess
import sys
from urllib.parse import urlsplit

sys.path.insert(0, os.path.dirname(__file__))
from harness import Skip, run  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
BROWSER_DIR = os.path.join(HERE, "..", "browser")
CHROMIUM = os.environ.get("CONSENTD_CHROMIUM", "/usr/bin/chromium")


def ensure_playwright():
    if os.path.isdir(os.path.join(BROWSER_DIR, "node_modules", "playwright-core")):
        return
    npm = shutil.which("npm")
    assert npm, "npm is missing (CONSENTD_BROWSER=1 scripts/deps.sh installs it)"
    lock = os.path.exists(os.path.join(BROWSER_DIR, "package-lock.json"))
    cmd = [npm, "ci", "--no-audit", "--no-fund"] if lock else [npm, "install", "--no-audit", "--no-fund"]
    p = subprocess.run(cmd, cwd=BROWSER_DIR, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr


def test_customer_withdraws_marketing_in_a_real_browser(srv):
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        raise Skip(f"{CHROMIUM} is not installed (CONSENTD_BROWSER=1 scripts/deps.sh installs it)")
    ensure_playwright()
    cid = srv.create_contact(email="carol.browser@example.org", name="Carol Browser",
                             collected_for=["service", "marketing"])
    srv.set_consent(cid, "marketing", "email", "granted")
    srv.set_consent(cid, "marketing", "post", "granted")
    st, link = srv.call("POST", f"/v1/contacts/{cid}/preference-link", token="marketing")
    assert st == 201, link
    env = dict(os.environ,
               # public_url is derived from the configured listen address, which
               # is port 0 in tests; the path is what the link really carries.
               CONSENTD_PAGE_URL=f"https://127.0.0.1:{srv.port}" + urlsplit(link["url"]).path,
               CONSENTD_API=f"https://127.0.0.1:{srv.port}",
               CONSENTD_TOKEN=srv.tokens["marketing"],
               CONSENTD_CONTACT=cid,
               CONSENTD_CHROMIUM=CHROMIUM,
               CONSENTD_ARTIFACTS=os.path.join(BROWSER_DIR, "artifacts"))
    p = subprocess.run(["node", os.path.join(BROWSER_DIR, "withdraw.mjs")], cwd=BROWSER_DIR, env=env,
                       capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stdout + p.stderr
    print(p.stdout.strip())
    chk = srv.check("marketing", "email", contact_id=cid)
    assert chk["allowed"] is False and chk["reason"] == "withdrawn", chk
    assert srv.check("marketing", "post", contact_id=cid)["allowed"] is True



def test_a_person_asks_for_a_link_reads_the_mail_downloads_withdraws_and_erases_in_a_real_browser(srv):
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        raise Skip(f"{CHROMIUM} is not installed (CONSENTD_BROWSER=1 scripts/deps.sh installs it)")
    ensure_playwright()
    if not os.path.isdir(os.path.join(BROWSER_DIR, "node_modules", "axe-core")):
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=BROWSER_DIR, check=True,
                       capture_output=True, timeout=300)
    email = "erin.browser@example.org"
    cid = srv.create_contact(email=email, name="Erin Browser", collected_for=["service", "marketing"])
    srv.set_consent(cid, "marketing", "email", "granted")
    env = dict(os.environ, CONSENTD_API=f"https://127.0.0.1:{srv.port}", CONSENTD_EMAIL=email,
               CONSENTD_MAILDIR=os.path.join(srv.data, "mail-outbox"), CONSENTD_CHROMIUM=CHROMIUM,
               CONSENTD_ARTIFACTS=os.path.join(BROWSER_DIR, "artifacts"))
    p = subprocess.run(["node", os.path.join(BROWSER_DIR, "customer.mjs")], cwd=BROWSER_DIR, env=env,
                       capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stdout + p.stderr
    res = json.loads(p.stdout.strip().splitlines()[-1])
    print(json.dumps(res["axe"]))
    assert res["ok"] and res["download_has_email"] and res["erased"], res
    assert len(res["axe"]) == 10 and all(v == 0 for v in res["axe"].values()), res
    st, body = srv.call("GET", f"/v1/contacts/{cid}?purpose=service", token="admin")
    assert st == 410, (st, body)
    reasons = [e["action"] for e in srv.audit_rows("actor = 'customer'")]
    for action in ("customer.link_request", "customer.export", "customer.withdraw_all_request",
                   "customer.withdraw_all", "customer.erase_request", "customer.erase"):
        assert action in reasons, (action, reasons)


def test_a_person_confirms_a_double_opt_in_in_a_real_browser_in_both_languages(srv):
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        raise Skip(f"{CHROMIUM} is not installed (CONSENTD_BROWSER=1 scripts/deps.sh installs it)")
    ensure_playwright()
    if not os.path.isdir(os.path.join(BROWSER_DIR, "node_modules", "axe-core")):
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=BROWSER_DIR, check=True,
                       capture_output=True, timeout=300)
    srv.stop()
    path = os.path.join(srv.data, "policy.json")
    with open(path) as f:
        doc = json.load(f)
    doc["purposes"]["marketing"]["double_opt_in"] = True
    with open(path, "w") as f:
        json.dump(doc, f)
    srv.start()
    ids = []
    for who in ("zhao", "frank"):
        cid = srv.create_contact(email=f"{who}.browser@example.org", name=f"{who} Browser",
                                 collected_for=["service", "marketing"])
        st, out = srv.call("PUT", f"/v1/contacts/{cid}/consents/marketing", token="admin",
                           json={"channel": "email", "status": "granted", "source": "signup-form"})
        assert st == 200 and out["status"] == "pending_confirmation", out
        ids.append(cid)
    env = dict(os.environ, CONSENTD_API=f"https://127.0.0.1:{srv.port}",
               CONSENTD_MAILDIR=os.path.join(srv.data, "mail-outbox"), CONSENTD_CHROMIUM=CHROMIUM,
               CONSENTD_ARTIFACTS=os.path.join(BROWSER_DIR, "artifacts"))
    p = subprocess.run(["node", os.path.join(BROWSER_DIR, "confirm.mjs")], cwd=BROWSER_DIR, env=env,
                       capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stdout + p.stderr
    res = json.loads(p.stdout.strip().splitlines()[-1])
    print(json.dumps(res["axe"]))
    assert res["ok"] and res["confirmed"] == ["谢谢：已确认", "Thank you: confirmed"], res
    assert len(res["axe"]) == 4 and all(v == 0 for v in res["axe"].values()), res
    for cid in ids:
        chk = srv.check("marketing", "email", contact_id=cid)
        assert chk["allowed"] is True and chk["reason"] == "granted", chk


def test_a_person_asks_for_erasure_held_for_approval_in_a_real_browser_in_both_languages(srv):
    """The request flow from the page (issue 16): a suppression shown for
    what it is, a receipt download, and an erasure the policy holds for
    staff approval, recorded as a request with its due date."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        raise Skip(f"{CHROMIUM} is not installed (CONSENTD_BROWSER=1 scripts/deps.sh installs it)")
    ensure_playwright()
    if not os.path.isdir(os.path.join(BROWSER_DIR, "node_modules", "axe-core")):
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=BROWSER_DIR, check=True,
                       capture_output=True, timeout=300)
    srv.stop()
    path = os.path.join(srv.data, "policy.json")
    with open(path) as f:
        doc = json.load(f)
    doc["erasure_needs_approval"] = True
    with open(path, "w") as f:
        json.dump(doc, f)
    srv.start()
    tokens, ids = {}, []
    for tag in ("zh", "en"):
        email = f"{tag}.request.browser@example.org"
        cid = srv.create_contact(email=email, name=f"{tag} Request", collected_for=["service", "marketing"])
        srv.set_consent(cid, "marketing", "email", "granted")
        st, out = srv.call("POST", "/v1/suppressions", token="marketing",
                           json={"email": email, "scope": "purpose", "scope_value": "marketing",
                                 "reason": "complaint", "created_at": "2026-03-01T10:00:00Z"})
        assert st == 201, (st, out)
        _, tokens[tag] = srv.manage_link(cid)
        ids.append(cid)
    env = dict(os.environ, CONSENTD_API=f"https://127.0.0.1:{srv.port}", CONSENTD_TOKENS=json.dumps(tokens),
               CONSENTD_CHROMIUM=CHROMIUM, CONSENTD_ARTIFACTS=os.path.join(BROWSER_DIR, "artifacts"))
    p = subprocess.run(["node", os.path.join(BROWSER_DIR, "requests.mjs")], cwd=BROWSER_DIR, env=env,
                       capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stdout + p.stderr
    res = json.loads(p.stdout.strip().splitlines()[-1])
    print(json.dumps(res["axe"]))
    assert res["ok"] and len(res["axe"]) == 6 and all(v == 0 for v in res["axe"].values()), res
    assert "spam" in res["blocks"]["en"] and "垃圾邮件" in res["blocks"]["zh"], res
    assert res["receipt"] == {"zh": ["KI-CR-v1.1.0", "zh-CN"], "en": ["KI-CR-v1.1.0", "en"]}, res
    assert res["received"] == {"zh": "我们已收到您删除数据的请求",
                               "en": "We received your request to erase your data"}, res
    st, got = srv.call("GET", "/v1/requests?state=verified", token="admin")
    assert sorted(r["contact_id"] for r in got["requests"]) == sorted(ids), got
    assert {r["due_at"] for r in got["requests"]} == set(res["due"].values()), (got, res)
    for cid in ids:  # held for approval: nothing erased yet
        assert srv.call("GET", f"/v1/contacts/{cid}?purpose=service", token="admin")[0] == 200


if __name__ == "__main__":
    run(globals())
