"""
test_webhooks: outbound webhooks (issue 14, docs/integrations.md). A
receiver on loopback (Python http.server) verifies every Standard Webhooks
signature with the secret the admin was shown once, and records what
arrives. The server runs with "webhooks": {"allow_private_targets": true}
and a tiny retry base, except in the scenario about private targets.
"""
import base64
import hashlib
import hmac
import http.server
import json
import os
import socket
import threading
import time

from harness import Server, assert_problem, check, run


class Receiver:
    """Records POSTs; answers with the statuses in `plan` first, then 200.
    hang_first: the first request is held open until release() (the sender
    is killed meanwhile)."""

    def __init__(self, plan=(), hang_first=False, delay=0):
        self.plan = list(plan)
        self.hang_first = hang_first
        self.delay = delay  # seconds every answer is held back
        self.times = []  # when each request arrived
        self.secret = None
        self.got = []  # (headers, body bytes, verified, status answered)
        self.lock = threading.Lock()
        self.hold = threading.Event()
        rec = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                with rec.lock:
                    rec.times.append(time.time())
                    first = not rec.got
                    status = rec.plan.pop(0) if rec.plan else 200
                    if first and rec.hang_first:
                        status = None  # never answered
                    rec.got.append((dict(self.headers), body, rec.verify(self.headers, body), status))
                if first and rec.hang_first:
                    rec.hold.wait(30)
                    return
                if rec.delay:
                    rec.hold.wait(rec.delay)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def verify(self, headers, body):
        """The subscriber's check, as docs/integrations.md shows it."""
        if self.secret is None:
            return False
        key = base64.b64decode(self.secret.removeprefix("whsec_"))
        signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
        expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        offered = [s.split(",", 1)[1] for s in headers.get("webhook-signature", "").split() if s.startswith("v1,")]
        fresh = abs(time.time() - int(headers["webhook-timestamp"])) < 300
        return fresh and any(hmac.compare_digest(expected, o) for o in offered)

    def events(self, ok_only=True):
        with self.lock:
            return [(h, json.loads(b)) for h, b, v, st in self.got if v and (not ok_only or st == 200)]

    def wait(self, n, timeout=15, ok_only=True):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if len(self.events(ok_only)) >= n:
                return self.events(ok_only)
            time.sleep(0.05)
        raise AssertionError(f"expected {n} events, got {self.got!r}")

    def release(self):
        self.hold.set()

    def close(self):
        self.release()
        self.httpd.shutdown()
        self.httpd.server_close()


def server(allow_private=True, **settings):
    srv = Server(start=False)
    path = os.path.join(srv.data, "consentd.conf")
    with open(path) as f:
        conf = json.load(f)
    conf["webhooks"] = {"allow_private_targets": allow_private, "retry_base_ms": 50, **settings}
    with open(path, "w") as f:
        json.dump(conf, f)
    srv.start()
    return srv


def subscribe(srv, rec, events=("consent.changed",), role="marketing"):
    st, body = srv.call("POST", "/v1/webhooks", token="admin",
                        json={"url": rec.url, "events": list(events), "description": "crm", "role": role})
    assert st == 201, (st, body)
    assert body["secret"].startswith("whsec_"), body
    rec.secret = body["secret"]
    return body


def deliveries(srv, wid):
    st, body = srv.call("GET", f"/v1/webhooks/{wid}/deliveries", token="admin")
    assert st == 200, (st, body)
    return body["deliveries"]


def wait_until(cond, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("condition never held")


def test_admin_subscribes_and_a_consent_change_arrives_signed():
    rec, srv = Receiver(), server()
    try:
        # support may not see marketing's fields: a thin payload only.
        ep = subscribe(srv, rec, role="support")
        cid = srv.create_contact(email="ada@example.org")
        srv.set_consent(cid, "marketing", "email", "granted")
        (h, ev), = rec.wait(1)
        check(ev["type"] == "consent.changed", ev)
        check(ev["data"] == {"contact_id": cid, "purpose": "marketing", "channel": "email",
                             "status": "granted", "version": 1}, ev)
        check(h["webhook-id"].startswith("msg_"), h)
        check(b"ada@example.org" not in rec.got[0][1], "a personal value in the payload")
        # The secret is shown once: never listed, never stored in clear.
        st, one = srv.call("GET", f"/v1/webhooks/{ep['id']}", token="admin")
        check(st == 200 and "secret" not in one and one["enabled"] is True, one)
        st, lst = srv.call("GET", "/v1/webhooks", token="admin")
        check(st == 200 and [w["id"] for w in lst["webhooks"]] == [ep["id"]] and "secret" not in lst["webhooks"][0], lst)
        wait_until(lambda: deliveries(srv, ep["id"])[0]["state"] == "delivered")
        srv.stop()
        for name in os.listdir(srv.data):
            if name.startswith("consentd.db"):
                with open(os.path.join(srv.data, name), "rb") as f:
                    data = f.read()
                check(ep["secret"].encode() not in data, f"the secret in clear in {name}")
                check(ep["secret"][6:].encode() not in data, f"the secret's base64 in clear in {name}")
        check(ep["secret"] not in srv.output, "the secret in the log")
        check(ep["secret"] not in repr(srv.audit_rows()), "the secret in the audit trail")
    finally:
        srv.close()
        rec.close()


def test_a_receiver_that_fails_three_times_gets_the_event_on_the_fourth_attempt():
    rec, srv = Receiver(plan=[500, 503, 500]), server()
    try:
        ep = subscribe(srv, rec)
        cid = srv.create_contact(email="bo@example.org")
        srv.set_consent(cid, "marketing", "email", "granted")
        (h, ev), = rec.wait(1)
        check(len(rec.got) == 4, rec.got)
        check(len({g[0]["webhook-id"] for g in rec.got}) == 1, "the webhook-id changed between attempts")
        d = wait_until(lambda: [d for d in deliveries(srv, ep["id"]) if d["state"] == "delivered"])
        check(d[0]["attempts"] == 4, d)
        st, text = srv.call("GET", "/metrics")
        check('consentd_webhook_deliveries_total{outcome="retry"} 3' in text, text)
        check('consentd_webhook_deliveries_total{outcome="delivered"} 1' in text, text)
        # The gauges are refreshed at every pass of the worker.
        wait_until(lambda: "consentd_webhook_queue_depth 0\n" in srv.call("GET", "/metrics")[1])
    finally:
        srv.close()
        rec.close()


def test_an_event_committed_before_a_kill9_arrives_after_the_restart():
    rec, srv = Receiver(hang_first=True), server()
    try:
        subscribe(srv, rec)
        cid = srv.create_contact(email="cy@example.org")
        srv.set_consent(cid, "marketing", "email", "granted")
        # The worker is in the middle of the delivery: committed, not recorded.
        wait_until(lambda: len(rec.got) == 1)
        srv.kill9()
        rec.release()
        srv.start()
        (h, ev), = rec.wait(1, ok_only=True)
        check(ev["data"]["contact_id"] == cid and ev["data"]["version"] == 1, ev)
        check(h["webhook-id"] == rec.got[0][0]["webhook-id"], "the retry after the crash has a new id")
    finally:
        srv.close()
        rec.close()


def test_a_subscriber_reconstructs_each_contacts_order_from_the_version():
    rec, srv = Receiver(), server()
    try:
        subscribe(srv, rec, events=("consent.changed", "contact.erased"))
        a = srv.create_contact(email="da@example.org")
        b = srv.create_contact(email="db@example.org")
        steps = ["granted", "withdrawn", "granted", "refused"]
        for s in steps:
            srv.set_consent(a, "marketing", "email", s)
            srv.set_consent(b, "marketing", "email", s)
        st, _ = srv.call("DELETE", f"/v1/contacts/{a}", token="admin")
        check(st in (200, 204), st)
        evs = [e for _, e in rec.wait(2 * len(steps) + 1)]
        for cid in (a, b):
            mine = sorted((e for e in evs if e["data"]["contact_id"] == cid), key=lambda e: e["data"]["version"])
            check([e["data"]["version"] for e in mine] == list(range(1, len(mine) + 1)), mine)
            check([e["data"].get("status") for e in mine if e["type"] == "consent.changed"] == steps, mine)
        last_a = max((e for e in evs if e["data"]["contact_id"] == a), key=lambda e: e["data"]["version"])
        check(last_a["type"] == "contact.erased", last_a)
    finally:
        srv.close()
        rec.close()


def test_an_erasure_sends_contact_erased_without_personal_values():
    rec, srv = Receiver(), server()
    try:
        subscribe(srv, rec, events=("contact.erased", "suppression.added"), role="admin")
        cid = srv.create_contact(email="erin@example.org", phone="+4915112345678", name="Erin Example")
        st, _ = srv.call("DELETE", f"/v1/contacts/{cid}", token="admin")
        check(st in (200, 204), st)
        evs = [e for _, e in rec.wait(3)]
        erased = [e for e in evs if e["type"] == "contact.erased"]
        check(erased and erased[0]["data"] == {"contact_id": cid, "version": 1}, evs)
        added = sorted(e["data"]["kind"] for e in evs if e["type"] == "suppression.added")
        check(added == ["email", "phone"], evs)
        for _, body, _, _ in rec.got:
            for value in (b"erin@example.org", b"4915112345678", b"Erin"):
                check(value not in body, f"{value!r} in {body!r}")
    finally:
        srv.close()
        rec.close()


def test_a_subscriber_gets_the_address_only_where_its_role_may_see_it():
    # marketing sees name and email for marketing; support sees nothing for
    # marketing; a third receiver is down until the contact is erased.
    rec_m, rec_s, rec_late = Receiver(), Receiver(), Receiver(plan=[500] * 100000)
    srv = server()
    try:
        subscribe(srv, rec_m, role="marketing")
        subscribe(srv, rec_s, role="support")
        late = subscribe(srv, rec_late, role="marketing")
        cid = srv.create_contact(email="ida@example.org", phone="+4915112345670", name="Ida Example")
        srv.set_consent(cid, "marketing", "email", "granted")
        (_, ev), = rec_m.wait(1)
        check(ev["data"]["email"] == "ida@example.org", ev)
        check("phone" not in ev["data"] and "name" not in ev["data"], ev)
        (_, ev), = rec_s.wait(1)
        check("email" not in ev["data"] and "phone" not in ev["data"], ev)
        import sqlite3
        con = sqlite3.connect(f"file:{srv.db}?mode=ro", uri=True)
        (sealed,), = con.execute("SELECT personal FROM outbox_event WHERE contact_id = ?", (cid,)).fetchall()
        check(sealed is not None and b"ida@example.org" not in sealed, sealed)
        check(not con.execute("SELECT 1 FROM outbox_event WHERE instr(body, 'ida@') > 0").fetchall())
        con.close()
        # Erased before the third endpoint got it: it gets it without the address.
        st, _ = srv.call("DELETE", f"/v1/contacts/{cid}", token="admin")
        check(st in (200, 204), st)
        con = sqlite3.connect(f"file:{srv.db}?mode=ro", uri=True)
        check(con.execute("SELECT count(*) FROM outbox_event WHERE personal IS NOT NULL").fetchone()[0] == 0)
        con.close()
        with rec_late.lock:
            rec_late.plan = []
        d, = [d for d in deliveries(srv, late["id"]) if d["state"] == "pending"]
        st, _ = srv.call("POST", f"/v1/webhooks/{late['id']}/deliveries/{d['id']}/retry", token="admin")
        check(st == 202, st)
        (_, ev), = rec_late.wait(1)
        check(ev["type"] == "consent.changed" and "email" not in ev["data"], ev)
    finally:
        srv.close()
        for r in (rec_m, rec_s, rec_late):
            r.close()


def test_a_private_target_is_refused_without_the_switch():
    srv = server(allow_private=False)
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(8)
    lst.settimeout(0.2)
    port = lst.getsockname()[1]
    try:
        for url in (f"http://127.0.0.1:{port}/", f"https://127.0.0.1:{port}/", f"https://10.1.2.3/",
                    f"https://[::1]:{port}/", "https://169.254.169.254/latest", "ftp://example.org/",
                    "https://user:pw@example.org/"):
            st, body = srv.call("POST", "/v1/webhooks", token="admin",
                                json={"url": url, "events": ["consent.changed"], "role": "marketing"})
            assert_problem(st, body, 400)
        # A name is resolved at every connection: localhost passes the
        # creation and is refused when the worker connects.
        st, ep = srv.call("POST", "/v1/webhooks", token="admin",
                          json={"url": f"https://localhost:{port}/", "events": ["consent.changed"],
                                "role": "marketing"})
        check(st == 201, (st, ep))
        cid = srv.create_contact(email="fay@example.org")
        srv.set_consent(cid, "marketing", "email", "granted")
        d = wait_until(lambda: [d for d in deliveries(srv, ep["id"]) if d["attempts"] >= 1])
        check("private" in d[0]["last_error"] and d[0]["state"] == "pending", d)
        accepted = 0
        try:
            while True:
                c, _ = lst.accept()
                accepted += 1
                c.close()
        except socket.timeout:
            pass
        check(accepted == 0, "the worker connected to a loopback target")
        st, text = srv.call("GET", "/metrics")
        check("consentd_webhook_refused_total 0" not in text, text)
        check("consentd_webhook_queue_depth 1" in text, text)
    finally:
        lst.close()
        srv.close()


def test_an_endpoint_that_answers_410_is_disabled():
    rec, srv = Receiver(plan=[410]), server()
    try:
        ep = subscribe(srv, rec)
        cid = srv.create_contact(email="gil@example.org")
        srv.set_consent(cid, "marketing", "email", "granted")
        one = wait_until(lambda: (lambda b: b if b["enabled"] is False else None)(
            srv.call("GET", f"/v1/webhooks/{ep['id']}", token="admin")[1]))
        check(one["disabled_reason"] == "gone", one)
        d = deliveries(srv, ep["id"])
        check(d[0]["state"] == "failed" and d[0]["last_status"] == 410, d)
        srv.set_consent(cid, "marketing", "email", "withdrawn")
        time.sleep(0.5)
        check(len(rec.got) == 1, "a disabled endpoint got another event")
        check(len(deliveries(srv, ep["id"])) == 1, "a disabled endpoint got another delivery queued")
        st, body = srv.call("POST", f"/v1/webhooks/{ep['id']}/deliveries/{d[0]['id']}/retry", token="admin")
        assert_problem(st, body, 409)
    finally:
        srv.close()
        rec.close()


def test_a_delivery_past_its_max_age_is_dead_lettered_and_retried_by_hand():
    rec, srv = Receiver(plan=[500] * 1000), server(max_age_seconds=1)
    try:
        ep = subscribe(srv, rec)
        cid = srv.create_contact(email="hal@example.org")
        srv.set_consent(cid, "marketing", "email", "granted")
        d = wait_until(lambda: [d for d in deliveries(srv, ep["id"]) if d["state"] == "failed"])
        check(d[0]["attempts"] >= 1 and d[0]["last_status"] == 500, d)
        st, text = srv.call("GET", "/metrics")
        check('consentd_webhook_deliveries_total{outcome="failed"} 1' in text, text)
        with rec.lock:
            rec.plan = []
        st, body = srv.call("POST", f"/v1/webhooks/{ep['id']}/deliveries/{d[0]['id']}/retry", token="admin")
        check(st == 202, (st, body))
        wait_until(lambda: deliveries(srv, ep["id"])[0]["state"] == "delivered")
        check(len(srv.audit_rows("action = 'webhooks.retry' AND decision = 'allow'")) == 1)
    finally:
        srv.close()
        rec.close()


def test_bad_endpoint_requests_are_refused_and_change_nothing(srv):
    base = {"url": "https://example.org/hook", "events": ["consent.changed"], "role": "marketing"}
    for bad in ({**base, "events": ["consent.nope"]}, {**base, "events": []}, {**base, "role": "nobody"},
                {**base, "extra": 1}, {**base, "url": 5}, {k: v for k, v in base.items() if k != "url"},
                {**base, "url": "https://example.org/" + "a" * 1100}):
        st, body = srv.call("POST", "/v1/webhooks", token="admin", json=bad)
        assert_problem(st, body, 400)
    st, body = srv.call("POST", "/v1/webhooks", token="marketing", json=base)
    assert_problem(st, body, 403)
    st, body = srv.call("GET", "/v1/webhooks/AAAAAAAAAAAAAAAAAAAAAA", token="admin")
    assert_problem(st, body, 404)
    st, body = srv.call("DELETE", "/v1/webhooks/AAAAAAAAAAAAAAAAAAAAAA", token="admin")
    assert_problem(st, body, 404)
    st, lst = srv.call("GET", "/v1/webhooks", token="admin")
    check(st == 200 and lst["webhooks"] == [], lst)
    # A deleted endpoint is gone from the list.
    st, ep = srv.call("POST", "/v1/webhooks", token="admin", json=base)
    check(st == 201, ep)
    st, _ = srv.call("DELETE", f"/v1/webhooks/{ep['id']}", token="admin")
    check(st == 200)
    st, body = srv.call("GET", f"/v1/webhooks/{ep['id']}", token="admin")
    assert_problem(st, body, 404)


def test_a_slow_endpoint_does_not_delay_deliveries_to_another():
    slow, fast, srv = Receiver(delay=10), Receiver(), server()
    try:
        subscribe(srv, slow, events=("consent.changed",))
        subscribe(srv, fast, events=("suppression.added",))
        cid = srv.create_contact(email="di@example.org")
        srv.set_consent(cid, "marketing", "email", "granted")
        # The slow endpoint holds its request for 10 s (the timeout).
        wait_until(lambda: len(slow.got) == 1)
        t0 = time.time()
        st, _ = srv.call("POST", "/v1/suppressions", token="admin",
                         json={"email": "someone@example.org", "reason": "manual"})
        check(st in (200, 201), st)
        (h, ev), = fast.wait(1, timeout=15)
        took = fast.times[0] - t0
        check(ev["type"] == "suppression.added", ev)
        check(took < 3, f"the fast endpoint waited {took:.1f} s behind the slow one")
    finally:
        srv.close()
        slow.close()
        fast.close()


def test_each_delivery_attempt_is_audited_without_payload_and_the_auditor_sees_it():
    rec, srv = Receiver(plan=[500]), server()
    try:
        ep = subscribe(srv, rec)
        cid = srv.create_contact(email="el@example.org")
        srv.set_consent(cid, "marketing", "email", "granted")
        rec.wait(1)
        rows = wait_until(lambda: (lambda r: r if len(r) == 2 else None)(
            srv.audit_rows("action = ?", ("webhooks.delivery",))))
        check([r["reason"] for r in rows] == ["retry", "delivered"], rows)
        check([r["decision"] for r in rows] == ["deny", "allow"], rows)
        check(all(r["record_id"] == ep["id"] and r["actor"] == "system" for r in rows), rows)
        first, second = (json.loads(r["detail"]) for r in rows)
        check(first["attempt"] == 1 and first["status"] == 500 and first["error"] == "http_status", first)
        check("next_attempt_at" in first, first)
        check(second["attempt"] == 2 and second["status"] == 200 and second["error"] == "", second)
        check(first["delivery_id"] == rec.got[0][0]["webhook-id"] and first["type"] == "consent.changed", first)
        check("el@example.org" not in repr(rows) and rec.url not in repr(rows), rows)
        st, body = srv.call("GET", "/v1/audit?action=webhooks.delivery", token="auditor")
        check(st == 200 and [e["reason"] for e in body["entries"]] == ["retry", "delivered"], body)
        st, body = srv.call("GET", "/v1/audit/verify", token="auditor")
        check(st == 200 and body["ok"] is True, body)
    finally:
        srv.close()
        rec.close()


if __name__ == "__main__":
    run(globals())
