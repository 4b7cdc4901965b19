"""Inbound provider events: SendGrid, Mailgun and Postmark report bounces,
complaints and unsubscribes, and consentd turns them into suppressions.

Each scenario builds the provider's request exactly in its documented shape
and signs it with a test key made here: an ECDSA P-256 key (openssl, a
declared dependency) for SendGrid's Event Webhook, an HMAC signing key for
Mailgun, basic-auth credentials for Postmark. The keys are configured in
consentd.conf ("events") the way an operator would, as files with mode 0600
in the data folder."""
import base64
import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import Server, Skip, assert_problem, check, run  # noqa: E402
import shutil  # noqa: E402

MAILGUN_KEY = "key-" + secrets.token_hex(16)
POSTMARK_AUTH = "hooks:" + secrets.token_urlsafe(12)


def write_secret(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def configure(srv, events=None, pem=False):
    """Makes the test keys and writes the events section of consentd.conf."""
    if not shutil.which("openssl"):
        raise Skip("openssl is missing (scripts/deps.sh installs it)")
    kd = os.path.join(srv.data, "events")
    os.makedirs(kd, exist_ok=True)
    srv.ec_key = os.path.join(kd, "sendgrid-signer.pem")
    subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", srv.ec_key],
                   check=True, capture_output=True)
    der = subprocess.run(["openssl", "ec", "-in", srv.ec_key, "-pubout", "-outform", pem and "PEM" or "DER"],
                         check=True, capture_output=True).stdout
    # SendGrid shows the verification key as base64 of the DER public key.
    write_secret(os.path.join(kd, "sendgrid.key"), der if pem else base64.b64encode(der) + b"\n")
    write_secret(os.path.join(kd, "mailgun.key"), MAILGUN_KEY + "\n")
    write_secret(os.path.join(kd, "postmark.auth"), POSTMARK_AUTH + "\n")
    conf_path = os.path.join(srv.data, "consentd.conf")
    with open(conf_path) as f:
        conf = json.load(f)
    conf["events"] = events if events is not None else {
        "sendgrid": {"public_key_file": "events/sendgrid.key", "group_purposes": {"4242": "marketing"}},
        "mailgun": {"signing_key_file": "events/mailgun.key"},
        "postmark": {"basic_auth_file": "events/postmark.auth"},
    }
    with open(conf_path, "w") as f:
        json.dump(conf, f)


def server(**kw):
    srv = Server(start=False)
    configure(srv, **kw)
    srv.start()
    return srv


def sendgrid_sign(srv, ts, body):
    p = subprocess.run(["openssl", "dgst", "-sha256", "-sign", srv.ec_key], input=ts.encode() + body,
                       check=True, capture_output=True)
    return base64.b64encode(p.stdout).decode()


def sendgrid_post(srv, events, ts=None, sig=None, body=None):
    body = body if body is not None else json.dumps(events).encode()
    ts = ts or str(int(time.time()))
    sig = sig or sendgrid_sign(srv, ts, body)
    return srv.call("POST", "/v1/events/sendgrid", body=body, headers={
        "Content-Type": "application/json",
        "X-Twilio-Email-Event-Webhook-Signature": sig,
        "X-Twilio-Email-Event-Webhook-Timestamp": ts})


def sg_event(email, event, **extra):
    return {"email": email, "timestamp": int(time.time()) - 60, "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
            "event": event, "category": ["cat facts"], "sg_event_id": secrets.token_urlsafe(16),
            "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0", **extra}


def suppressions(srv, email):
    st, body = srv.call("GET", "/v1/suppressions?email=" + email, token="admin")
    check(st == 200, (st, body))
    return body["suppressions"]


def mailgun_body(event, recipient, key=MAILGUN_KEY, ts=None, token=None, **extra):
    ts = ts or str(int(time.time()))
    token = token or secrets.token_hex(25)
    sig = hmac.new(key.encode(), (ts + token).encode(), hashlib.sha256).hexdigest()
    return {"signature": {"timestamp": ts, "token": token, "signature": sig},
            "event-data": {"event": event, "timestamp": time.time() - 30, "id": "CPgfbmQMTCKtHW6uIWtuVe",
                           "recipient": recipient, "log-level": "error",
                           "message": {"headers": {"message-id": "20130503182626.18666.16540@example.com"}},
                           **extra}}


def mailgun_post(srv, body):
    return srv.call("POST", "/v1/events/mailgun", json=body)


def postmark_post(srv, body, auth=POSTMARK_AUTH):
    h = {"Content-Type": "application/json"}
    if auth is not None:
        h["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
    return srv.call("POST", "/v1/events/postmark", body=json.dumps(body), headers=h)


def table_count(srv, table):
    con = sqlite3.connect(f"file:{srv.db}?mode=ro", uri=True)
    n = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    con.close()
    return n


def test_sendgrid_bounces_complaints_and_unsubscribes_become_suppressions():
    srv = server()
    try:
        batch = [sg_event("hard@example.com", "bounce", type="bounce", status="5.0.0",
                          reason="550 5.1.1 The email account that you tried to reach does not exist."),
                 sg_event("blocked@example.com", "bounce", type="blocked", status="4.0.0"),
                 sg_event("spam@example.com", "spamreport"),
                 sg_event("unsub@example.com", "unsubscribe"),
                 sg_event("group@example.com", "group_unsubscribe", asm_group_id=4242),
                 sg_event("othergroup@example.com", "group_unsubscribe", asm_group_id=7),
                 sg_event("dropped@example.com", "dropped", reason="Bounced Address"),
                 sg_event("seen@example.com", "delivered", response="250 OK"),
                 sg_event("seen@example.com", "open", useragent="Mozilla/5.0", ip="255.255.255.255"),
                 {"event": "brand_new_event_type", "email": "x@example.com"}]
        st, body = sendgrid_post(srv, batch)
        check(st == 200, (st, body))
        check(body == {"events": 10, "suppressed": 6, "already_suppressed": 0, "replayed": 0,
                       "soft_bounces": 1, "ignored": 3}, body)
        hard = suppressions(srv, "hard@example.com")
        check([(s["reason"], s["scope"], s["source"]) for s in hard] == [("bounce", "all", "sendgrid")], hard)
        check(suppressions(srv, "spam@example.com")[0]["reason"] == "complaint")
        check(suppressions(srv, "unsub@example.com")[0]["reason"] == "unsubscribe")
        check(suppressions(srv, "dropped@example.com")[0]["reason"] == "bounce")
        grp = suppressions(srv, "group@example.com")[0]
        check((grp["scope"], grp["scope_value"]) == ("purpose", "marketing"), grp)
        # A group the table does not name means "stop": everything.
        check(suppressions(srv, "othergroup@example.com")[0]["scope"] == "all")
        # The provider's time of the event is kept.
        check(hard[0]["created_at"].startswith(time.strftime("%Y-%m-%dT", time.gmtime(batch[0]["timestamp"]))))
        check(suppressions(srv, "blocked@example.com") == [], "a soft bounce suppresses nothing")
        check(suppressions(srv, "seen@example.com") == [])
        rows = srv.audit_rows("action = 'events.receive'")
        check(len(rows) == 1 and rows[0]["decision"] == "allow", rows)
        d = json.loads(rows[0]["detail"])
        check(d["provider"] == "sendgrid" and d["suppressed"] == 6 and len(d["event_ids"].split(",")) == 7, d)
        # No address and no provider event id in the trail or the dedupe table.
        con = sqlite3.connect(f"file:{srv.db}?mode=ro", uri=True)
        dump = "\n".join(con.iterdump())
        con.close()
        for e in batch:
            check(e["email"] not in dump, e["email"])
            if "sg_event_id" in e:
                check(e["sg_event_id"] not in dump, "event id in the database")
    finally:
        srv.close()


def test_a_sendgrid_key_given_as_pem_works_too():
    srv = server(pem=True)
    try:
        st, body = sendgrid_post(srv, [sg_event("pem@example.com", "spamreport")])
        check(st == 200 and body["suppressed"] == 1, (st, body))
    finally:
        srv.close()


def test_sendgrid_retrying_a_batch_changes_nothing_even_after_a_lift():
    srv = server()
    try:
        batch = [sg_event("retry@example.com", "bounce", type="bounce")]
        st, body = sendgrid_post(srv, batch)
        check(st == 200 and body["suppressed"] == 1, body)
        st, body = srv.call("DELETE", "/v1/suppressions?email=retry@example.com", token="admin")
        check(st == 200 and body["lifted"] == 1, (st, body))
        st, body = sendgrid_post(srv, batch)  # the provider's retry, signed anew
        check(st == 200 and body["replayed"] == 1 and body["suppressed"] == 0, (st, body))
        check(suppressions(srv, "retry@example.com") == [], "a replay brought a lifted suppression back")
    finally:
        srv.close()


def test_a_forged_or_stale_sendgrid_request_is_refused_audited_and_changes_nothing():
    srv = server()
    try:
        before = table_count(srv, "suppression")
        batch = [sg_event("forged@example.com", "unsubscribe")]
        body = json.dumps(batch).encode()
        ts = str(int(time.time()))
        good = sendgrid_sign(srv, ts, body)
        # The body changed after signing.
        st, p = sendgrid_post(srv, None, ts=ts, sig=good, body=body.replace(b"forged", b"forgeD"))
        assert_problem(st, p, 401, "unauthenticated")
        # A signature from another key.
        other = os.path.join(srv.tmp, "other.pem")
        subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", other],
                       check=True, capture_output=True)
        bad = base64.b64encode(subprocess.run(["openssl", "dgst", "-sha256", "-sign", other],
                                              input=ts.encode() + body, check=True,
                                              capture_output=True).stdout).decode()
        st, p = sendgrid_post(srv, None, ts=ts, sig=bad, body=body)
        assert_problem(st, p, 401)
        # Garbage and missing headers.
        st, p = sendgrid_post(srv, None, ts=ts, sig="bm90IGEgc2lnbmF0dXJl", body=body)
        assert_problem(st, p, 401)
        st, p = srv.call("POST", "/v1/events/sendgrid", body=body, headers={"Content-Type": "application/json"})
        assert_problem(st, p, 401)
        # Correctly signed, but ten minutes old: a captured request replayed.
        old = str(int(time.time()) - 600)
        st, p = sendgrid_post(srv, None, ts=old, body=body)
        assert_problem(st, p, 401)
        check(p.get("reason") == "stale_timestamp", p)
        check(table_count(srv, "suppression") == before and table_count(srv, "provider_event") == 0)
        rows = srv.audit_rows("action = 'events.auth_failure'")
        check(len(rows) == 5 and all(r["decision"] == "deny" for r in rows), rows)
        check([r["reason"] for r in rows].count("stale_timestamp") == 1, rows)
    finally:
        srv.close()


def test_malformed_and_oversized_sendgrid_batches_are_refused_whole():
    srv = server()
    try:
        for bad in (b"[{\"event\": \"bounce\", ", b"{\"event\": \"bounce\"}", b"[1, 2]",
                    json.dumps([sg_event("ok@example.com", "spamreport"),
                                {"event": "bounce", "sg_event_id": "x1"}]).encode(),
                    json.dumps([sg_event("not-an-address", "spamreport")]).encode(),
                    json.dumps([sg_event("ok@example.com", "group_unsubscribe")]).encode()):
            st, p = sendgrid_post(srv, None, body=bad)
            assert_problem(st, p, 400, "invalid-request")
        check(suppressions(srv, "ok@example.com") == [], "part of a refused batch was taken in")
        many = [sg_event(f"m{i}@example.com", "spamreport") for i in range(1001)]
        st, p = sendgrid_post(srv, many)
        assert_problem(st, p, 413, "too-large")
        # A declared body over 1 MiB is refused before it is read (the
        # connection is then closed), as for every route.
        c = srv.new_client().connect()
        c.putrequest("POST", "/v1/events/sendgrid")
        c.putheader("Content-Type", "application/json")
        c.putheader("Content-Length", str(1024 * 1024 + 1))
        c.endheaders()
        r = c.getresponse()
        check(r.status == 413 and b"too-large" in r.read(), r.status)
        c.close()
        check(table_count(srv, "suppression") == 0 and table_count(srv, "provider_event") == 0)
        st, _ = srv.call("GET", "/healthz")
        check(st == 200)
    finally:
        srv.close()


def test_mailgun_failures_complaints_and_unsubscribes_become_suppressions():
    srv = server()
    try:
        st, body = mailgun_post(srv, mailgun_body("failed", "perm@example.com", severity="permanent",
                                                  reason="bounce"))
        check(st == 200 and body["suppressed"] == 1, (st, body))
        st, body = mailgun_post(srv, mailgun_body("failed", "temp@example.com", severity="temporary"))
        check(st == 200 and body["soft_bounces"] == 1 and body["suppressed"] == 0, (st, body))
        st, body = mailgun_post(srv, mailgun_body("complained", "spam@example.com"))
        check(st == 200 and body["suppressed"] == 1, (st, body))
        replay = mailgun_body("unsubscribed", "unsub@example.com")
        st, body = mailgun_post(srv, replay)
        check(st == 200 and body["suppressed"] == 1, (st, body))
        st, body = mailgun_post(srv, replay)
        check(st == 200 and body["replayed"] == 1 and body["suppressed"] == 0, (st, body))
        st, body = mailgun_post(srv, mailgun_body("delivered", "fine@example.com"))
        check(st == 200 and body["ignored"] == 1, (st, body))
        check([s["reason"] for s in suppressions(srv, "perm@example.com")] == ["bounce"])
        check(suppressions(srv, "temp@example.com") == [])
        check(suppressions(srv, "spam@example.com")[0]["source"] == "mailgun")
        check(suppressions(srv, "unsub@example.com")[0]["reason"] == "unsubscribe")
    finally:
        srv.close()


def test_a_forged_stale_or_malformed_mailgun_request_changes_nothing():
    srv = server()
    try:
        st, p = mailgun_post(srv, mailgun_body("complained", "a@example.com", key="key-wrong"))
        assert_problem(st, p, 401)
        st, p = mailgun_post(srv, mailgun_body("complained", "a@example.com", ts=str(int(time.time()) - 3600)))
        assert_problem(st, p, 401)
        check(p.get("reason") == "stale_timestamp", p)
        tampered = mailgun_body("complained", "a@example.com")
        tok = tampered["signature"]["token"]
        # Change the first character for certain (a random token may start with "0").
        tampered["signature"]["token"] = ("1" if tok[0] == "0" else "0") + tok[1:]
        st, p = mailgun_post(srv, tampered)
        assert_problem(st, p, 401)
        st, p = srv.call("POST", "/v1/events/mailgun", body="{\"signature\": ", content_type="application/json")
        assert_problem(st, p, 400)
        st, p = mailgun_post(srv, {"event-data": {"event": "complained", "recipient": "a@example.com"}})
        assert_problem(st, p, 400)
        check(table_count(srv, "suppression") == 0)
        check(len(srv.audit_rows("action = 'events.auth_failure'")) == 3)
    finally:
        srv.close()


def postmark_bounce(email, kind="HardBounce", message=None):
    return {"RecordType": "Bounce", "MessageStream": "outbound", "ID": 4323372036854775807, "Type": kind,
            "TypeCode": 1, "Name": "Hard bounce", "Tag": "Test", "MessageID": message or secrets.token_hex(8),
            "ServerID": 23, "Description": "The server was unable to deliver your message (ex: unknown user, "
            "mailbox not found).", "Details": "Test bounce details", "Email": email,
            "From": "sender@example.com", "BouncedAt": "2019-11-05T16:33:54.9070259Z", "DumpAvailable": True,
            "Inactive": True, "CanActivate": True, "Subject": "Test subject", "Content": "<Full dump of bounce>"}


def test_postmark_bounces_complaints_and_subscription_changes_become_suppressions():
    srv = server()
    try:
        st, body = postmark_post(srv, postmark_bounce("hard@example.com"))
        check(st == 200 and body["suppressed"] == 1, (st, body))
        st, body = postmark_post(srv, postmark_bounce("soft@example.com", kind="SoftBounce"))
        check(st == 200 and body["soft_bounces"] == 1, (st, body))
        spam = {"RecordType": "SpamComplaint", "MessageStream": "outbound", "ID": 42, "Type": "SpamComplaint",
                "TypeCode": 512, "MessageID": "00000000-0000-0000-0000-000000000000", "ServerID": 1234,
                "Email": "spam@example.com", "From": "sender@example.com",
                "BouncedAt": "2019-11-05T16:33:54.9070259Z", "Subject": "Test subject"}
        st, body = postmark_post(srv, spam)
        check(st == 200 and body["suppressed"] == 1, (st, body))
        st, body = postmark_post(srv, spam)
        check(st == 200 and body["replayed"] == 1, (st, body))
        change = {"RecordType": "SubscriptionChange", "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
                  "ServerID": 123456, "MessageStream": "outbound", "ChangedAt": "2020-02-01T10:53:34.416071Z",
                  "Recipient": "unsub@example.com", "Origin": "Recipient", "SuppressSending": True,
                  "SuppressionReason": "ManualSuppression", "Tag": "welcome-email", "Metadata": {}}
        st, body = postmark_post(srv, change)
        check(st == 200 and body["suppressed"] == 1, (st, body))
        # A reactivation at Postmark lifts nothing here.
        st, body = postmark_post(srv, dict(change, SuppressSending=False, ChangedAt="2020-02-02T10:00:00Z"))
        check(st == 200 and body["ignored"] == 1, (st, body))
        check(suppressions(srv, "unsub@example.com")[0]["reason"] == "unsubscribe")
        check(suppressions(srv, "hard@example.com")[0]["created_at"].startswith("2019-11-05T16:33:54.907025"))
        check(suppressions(srv, "soft@example.com") == [])
        check(suppressions(srv, "spam@example.com")[0]["source"] == "postmark")
    finally:
        srv.close()


def test_postmark_without_the_right_credentials_is_refused():
    srv = server()
    try:
        for auth in (None, "hooks:wrong", POSTMARK_AUTH + "x"):
            st, p = postmark_post(srv, postmark_bounce("x@example.com"), auth=auth)
            assert_problem(st, p, 401)
        st, p = srv.call("POST", "/v1/events/postmark", body=json.dumps(postmark_bounce("x@example.com")),
                         token="admin")  # a bearer token is not Postmark's proof
        assert_problem(st, p, 401)
        st, p = postmark_post(srv, {"RecordType": "Bounce", "Email": "x@example.com"})
        assert_problem(st, p, 400)
        check(table_count(srv, "suppression") == 0)
    finally:
        srv.close()


def test_an_unconfigured_provider_is_not_found(srv):
    for name in ("sendgrid", "mailgun", "postmark", "ses", "nosuch"):
        st, p = srv.call("POST", f"/v1/events/{name}", body="[]", content_type="application/json")
        assert_problem(st, p, 404, "not-found")


def test_a_partial_configuration_opens_only_its_provider():
    srv = server(events={"mailgun": {"signing_key_file": "events/mailgun.key"}})
    try:
        st, p = postmark_post(srv, postmark_bounce("x@example.com"))
        assert_problem(st, p, 404)
        st, body = mailgun_post(srv, mailgun_body("complained", "a@example.com"))
        check(st == 200, (st, body))
    finally:
        srv.close()


def test_a_bad_events_configuration_is_refused_at_start():
    for events, want in (({"ses": {"topic_arns": [], "cert_host_suffix": ".amazonaws.com"}}, "events.ses"),
                         ({"mailgun": {"signing_key": "events/mailgun.key"}}, "events.mailgun.signing_key"),
                         ({"sendgrid": {"public_key_file": "events/mailgun.key"}}, "P-256"),
                         ({"postmark": {"basic_auth_file": "events/nosuch"}}, "nosuch")):
        srv = Server(start=False)
        try:
            configure(srv, events=events)
            rc = srv.start(expect_fail=True)
            check(rc != 0 and want in srv.output, (rc, srv.output))
        finally:
            srv.close()
    srv = Server(start=False)
    try:
        configure(srv)
        os.chmod(os.path.join(srv.data, "events", "mailgun.key"), 0o644)
        rc = srv.start(expect_fail=True)
        check(rc != 0 and "chmod 600" in srv.output, (rc, srv.output))
    finally:
        srv.close()


if __name__ == "__main__":
    run(globals())
