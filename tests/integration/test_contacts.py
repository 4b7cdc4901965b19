"""Contacts over HTTPS: the foundation's promises, one scenario each."""
import json
import os
import socket
import subprocess
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import contains_value, Server, assert_problem, cli, run  # noqa: E402

ALICE = {"email": "Alice.Quarrington@Example.org", "name": "Alice Quarrington",
         "phone": "+44 20 7946 0321", "income": 98765, "health": "chronic zyzzyvitis",
         "collected_for": ["service", "marketing"], "source": "signup-form"}


def db_state(srv):
    con = sqlite3.connect(f"file:{srv.db}?mode=ro", uri=True)
    out = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
           for t in ("contact", "contact_field", "consent", "consent_event", "suppression")}
    con.close()
    return out


def test_admin_creates_reads_and_updates_a_contact(srv):
    cid = srv.create_contact(**ALICE)
    st, body = srv.call("GET", f"/v1/contacts/{cid}?purpose=service", token="admin")
    assert st == 200, body
    assert body["fields"]["email"] == ALICE["email"]
    assert body["fields"]["income"] == 98765
    assert body["collected_for"] == ["service", "marketing"]
    st, body = srv.call("PATCH", f"/v1/contacts/{cid}", token="admin",
                        json={"name": "Alice Q.", "health": None, "notes": "prefers letters"})
    assert st == 200, body
    st, body = srv.call("GET", f"/v1/contacts/{cid}?purpose=service", token="admin")
    assert body["fields"]["name"] == "Alice Q."
    assert "health" not in body["fields"]
    assert body["fields"]["notes"] == "prefers letters"


def test_lookup_by_email_is_case_insensitive(srv):
    cid = srv.create_contact(**ALICE)
    st, body = srv.call("GET", "/v1/contacts?email=alice.quarrington%40EXAMPLE.org&purpose=service",
                        token="admin")
    assert st == 200, body
    assert body["id"] == cid
    st, body = srv.call("GET", "/v1/contacts?email=nobody%40example.org&purpose=service",
                        token="admin")
    assert_problem(st, body, 404)


def test_duplicate_email_is_refused_with_409(srv):
    srv.create_contact(**ALICE)
    before = db_state(srv)
    dup = dict(ALICE, email="ALICE.quarrington@example.org")
    st, body = srv.call("POST", "/v1/contacts", token="admin", json=dup)
    assert_problem(st, body, 409, "conflict")
    assert db_state(srv) == before


def test_erasure_crypto_shreds_and_then_answers_410(srv):
    cid = srv.create_contact(**ALICE)
    st, body = srv.call("DELETE", f"/v1/contacts/{cid}", token="admin")
    assert st == 200 and body["status"] == "erased", body
    st, body = srv.call("GET", f"/v1/contacts/{cid}?purpose=service", token="admin")
    assert_problem(st, body, 410, "erased")
    con = sqlite3.connect(f"file:{srv.db}?mode=ro", uri=True)
    row = con.execute("SELECT status, wrapped_key, email_bidx FROM contact WHERE id=?", (cid,)).fetchone()
    fields = con.execute("SELECT count(*) FROM contact_field WHERE contact_id=?", (cid,)).fetchone()[0]
    con.close()
    assert row == ("erased", None, None), row
    assert fields == 0
    # The email is free again, but the person stays suppressed (see suppression tests).
    st, body = srv.call("DELETE", f"/v1/contacts/{cid}", token="admin")
    assert_problem(st, body, 410)


def test_missing_or_bad_token_is_401(srv):
    cid = srv.create_contact(**ALICE)
    st, body = srv.call("GET", f"/v1/contacts/{cid}?purpose=service")
    assert_problem(st, body, 401, "unauthenticated")
    st, body = srv.call("GET", f"/v1/contacts/{cid}?purpose=service", token="cd_not-a-real-token-at-all")
    assert_problem(st, body, 401)
    st, body = srv.call("GET", f"/v1/contacts/{cid}?purpose=service",
                        headers={"Authorization": "Basic YWRtaW46YWRtaW4="})
    assert_problem(st, body, 401)
    st, hdrs, _ = srv.raw("GET", f"/v1/contacts/{cid}?purpose=service")
    assert hdrs.get("www-authenticate", "").startswith("Bearer"), hdrs


def test_non_admin_roles_are_refused_403(srv):
    before = db_state(srv)
    st, body = srv.call("POST", "/v1/contacts", token="marketing", json=ALICE)
    assert_problem(st, body, 403, "forbidden")
    st, body = srv.call("POST", "/v1/contacts", token="auditor", json=ALICE)
    assert_problem(st, body, 403)
    assert db_state(srv) == before
    cid = srv.create_contact(**ALICE)
    st, body = srv.call("DELETE", f"/v1/contacts/{cid}", token="support")
    assert_problem(st, body, 403)
    st, body = srv.call("GET", f"/v1/contacts/{cid}?purpose=service", token="auditor")
    assert_problem(st, body, 403)


def test_bad_input_is_a_4xx_problem_and_changes_nothing(srv):
    cid = srv.create_contact(**ALICE)
    before = db_state(srv)
    cases = [
        ("POST", "/v1/contacts", b'{"email": "x@example.org", ', "application/json", 400),
        ("POST", "/v1/contacts", b'["not", "an", "object"]', "application/json", 400),
        ("POST", "/v1/contacts", b'{"email": 42, "collected_for": ["service"]}', "application/json", 400),
        ("POST", "/v1/contacts", b'{"email": "a@example.org", "collected_for": ["service"], "shoe_size": 9}',
         "application/json", 400),
        ("POST", "/v1/contacts", b'{"email": "not-an-email", "collected_for": ["service"]}', "application/json", 400),
        ("POST", "/v1/contacts", b'{"email": "a@example.org", "collected_for": ["astrology"]}', "application/json", 422),
        ("POST", "/v1/contacts", b'{"email": "a@example.org"}', "application/json", 400),
        ("POST", "/v1/contacts", b'{"email": "a@example.org", "collected_for": ["service"]}', "text/plain", 415),
        ("POST", "/v1/contacts", b'{"name": "\xff\xfe", "collected_for": ["service"]}', "application/json", 400),
        ("POST", "/v1/contacts", b'{"a":' * 50 + b'1' + b'}' * 50, "application/json", 400),
        ("POST", "/v1/contacts", b'{"name": "a", "name": "b", "collected_for": ["service"]}', "application/json", 400),
        ("PATCH", f"/v1/contacts/{cid}", b'{"income": "lots"}', "application/json", 400),
        ("PATCH", f"/v1/contacts/{cid}", b'{"birthday": "1990-02-30"}', "application/json", 400),
        ("GET", f"/v1/contacts/{cid}", None, None, 400),
        ("GET", f"/v1/contacts/{cid}?purpose=astrology", None, None, 422),
        ("GET", "/v1/contacts/..%2F..%2Fetc%2Fpasswd?purpose=service", None, None, 400),
        ("GET", "/v1/contacts/short?purpose=service", None, None, 404),
        ("GET", f"/v1/contacts/{cid}%00?purpose=service", None, None, 400),
        ("PUT", f"/v1/contacts/{cid}", b"{}", "application/json", 405),
    ]
    for method, path, body, ctype, want in cases:
        headers = {"Authorization": f"Bearer {srv.tokens['admin']}"}
        if ctype:
            headers["Content-Type"] = ctype
        st, hdrs, data = srv.raw(method, path, body=body, headers=headers)
        assert st == want, (method, path, body, st, data)
        assert hdrs["content-type"] == "application/problem+json", (path, hdrs)
        st, _ = srv.call("GET", "/healthz")
        assert st == 200
    assert db_state(srv) == before
    st, body = srv.call("GET", f"/v1/contacts/{cid}?purpose=service", token="admin")
    assert st == 200 and body["fields"]["name"] == ALICE["name"]


def test_oversized_body_is_413_and_the_server_keeps_serving(srv):
    before = db_state(srv)
    # A declared Content-Length over the limit is refused before the body is
    # read (the connection is then closed, so the body is never taken in).
    c = srv.new_client().connect()
    c.putrequest("POST", "/v1/contacts")
    c.putheader("Authorization", f"Bearer {srv.tokens['admin']}")
    c.putheader("Content-Type", "application/json")
    c.putheader("Content-Length", str(200 * 1024))
    c.endheaders()
    r = c.getresponse()
    assert r.status == 413, r.status
    assert r.getheader("Content-Type") == "application/problem+json"
    assert b"too-large" in r.read()
    c.close()
    # Chunked (no Content-Length): discarded as it arrives, then 413.
    c = srv.new_client().connect()
    c.putrequest("POST", "/v1/contacts")
    c.putheader("Authorization", f"Bearer {srv.tokens['admin']}")
    c.putheader("Content-Type", "application/json")
    c.putheader("Transfer-Encoding", "chunked")
    c.endheaders()
    for _ in range(100):
        c.send(b"1000\r\n" + b"x" * 4096 + b"\r\n")
    c.send(b"0\r\n\r\n")
    r = c.getresponse()
    assert r.status == 413, r.status
    r.read()
    c.close()
    assert db_state(srv) == before
    st, _ = srv.call("GET", "/healthz")
    assert st == 200


def test_no_personal_value_reaches_the_database_wal_or_logs(srv):
    cid = srv.create_contact(**ALICE)
    srv.set_consent(cid, "marketing", "email", "granted",
                    evidence={"form": "https://shop.example/quarrington-signup", "ip": "203.0.113.77"})
    srv.call("GET", f"/v1/contacts/{cid}?purpose=service", token="admin")
    srv.call("GET", "/v1/contacts?email=alice.quarrington%40example.org&purpose=service", token="admin")
    output = srv.stop()
    needles = ["Quarrington", "quarrington", "7946 0321", "79460321", "98765", "zyzzyvitis",
               "203.0.113.77", "quarrington-signup"]
    blobs = {}
    for name in ("consentd.db", "consentd.db-wal", "consentd.db-shm"):
        path = os.path.join(srv.data, name)
        if os.path.exists(path):
            blobs[name] = open(path, "rb").read()
    if srv.pg:
        # PostgreSQL: everything the database holds, as pg_dump writes it.
        blobs["pg_dump"] = subprocess.run(["pg_dump", "--data-only", srv.pg], check=True,
                                          capture_output=True, timeout=120).stdout
    blobs["server output"] = output.encode()
    _, export, _ = cli("audit", "export", "--data", srv.data)
    blobs["audit export"] = export.encode()
    assert len(blobs) >= 3
    for where, data in blobs.items():
        for needle in needles:
            assert not contains_value(data, needle), f"{needle!r} found in {where}"
            assert needle.encode("utf-16-le") not in data, f"{needle!r} (utf-16) found in {where}"


def test_several_requests_share_one_tls_connection(srv):
    c = srv.new_client()
    conn = c.connect()
    sock = conn.sock
    for i in range(20):
        st, hdrs, _ = c.request("GET", "/healthz")
        assert st == 200
        assert hdrs.get("connection", "").lower() != "close", hdrs
        assert c.conn is not None and c.conn.sock is sock, f"reconnected at request {i}"
    cid = srv.create_contact(**ALICE)
    for _ in range(5):
        st, _, _ = c.request("GET", f"/v1/contacts/{cid}?purpose=service",
                             headers={"Authorization": f"Bearer {srv.tokens['admin']}"})
        assert st == 200
        assert c.conn.sock is sock
    c.close()


def test_request_id_is_echoed(srv):
    st, hdrs, _ = srv.raw("GET", "/healthz", headers={"X-Request-Id": "trace-abc.123"})
    assert hdrs["x-request-id"] == "trace-abc.123"
    st, hdrs, _ = srv.raw("GET", "/healthz", headers={"X-Request-Id": "bad id with spaces"})
    assert hdrs["x-request-id"] != "bad id with spaces" and len(hdrs["x-request-id"]) >= 16


def gnutls_handshake(port, version, request=b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n"
                                            b"Connection: close\r\n\r\n"):
    """Connects with gnutls-cli offering only `version` (a GnuTLS name such as
    TLS1.1) and sends request; returns (the version negotiated, or None when
    no handshake completed; gnutls-cli's output). gnutls-cli is used because
    this OpenSSL build cannot offer TLS 1.0 or 1.1 at all."""
    import re
    import subprocess
    p = subprocess.run(["gnutls-cli", "--priority", f"NORMAL:-VERS-ALL:+VERS-{version}", "--insecure",
                        "-p", str(port), "127.0.0.1"], input=request, capture_output=True, timeout=30)
    out = (p.stdout + p.stderr).decode(errors="replace")
    m = re.search(r"^- Description: \((TLS1\.\d)-", out, re.M)
    done = m is not None and "- Handshake was completed" in out
    return (m.group(1) if done else None), out


def test_tls_below_1_2_is_refused(srv):
    import shutil
    import subprocess
    import time
    for tool in ("gnutls-cli", "gnutls-serv"):
        assert shutil.which(tool), f"{tool} is missing (scripts/deps.sh installs gnutls-bin)"
    # Control: the same client completes TLS 1.0 and 1.1 with a server that
    # accepts them (gnutls-serv, consentd's own certificate), so a refusal
    # below is consentd's and not a client that cannot offer the version.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        ctl_port = s.getsockname()[1]
    ctl = subprocess.Popen(["gnutls-serv", "--x509certfile", srv.cafile,
                            "--x509keyfile", os.path.join(srv.data, "tls", "key.pem"),
                            "-p", str(ctl_port), "--priority", "NORMAL:+VERS-TLS1.1:+VERS-TLS1.0",
                            "--http"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", ctl_port), timeout=1).close()
                break
            except OSError:
                assert time.time() < deadline and ctl.poll() is None, "gnutls-serv did not start"
                time.sleep(0.1)
        for version in ("TLS1.0", "TLS1.1"):
            got, out = gnutls_handshake(ctl_port, version, b"GET / HTTP/1.0\r\n\r\n")
            assert got == version, f"control: no {version} handshake with gnutls-serv:\n{out}"
    finally:
        ctl.kill()
        ctl.wait()
    # consentd refuses both, and no request gets through.
    for version in ("TLS1.0", "TLS1.1"):
        got, out = gnutls_handshake(srv.port, version)
        assert got is None and "HTTP/1.1 200" not in out, f"consentd accepted {version}:\n{out}"
    # The same client offering TLS 1.2 or 1.3 is served.
    for version in ("TLS1.2", "TLS1.3"):
        got, out = gnutls_handshake(srv.port, version)
        assert got == version and "HTTP/1.1 200 OK" in out, f"no {version} request served:\n{out}"
    # And plain HTTP on the TLS port gets nothing useful.
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as raw:
        raw.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            data = raw.recv(100)
        except OSError:
            data = b""
        assert b"200 OK" not in data


def test_keys_rotate_keeps_every_contact_readable():
    srv = Server()
    try:
        ids = [srv.create_contact(email=f"rot{i}@example.org", name=f"Rotation {i}",
                                  collected_for=["service"]) for i in range(30)]
        srv.stop()
        code, out, err = cli("keys", "rotate", "--data", srv.data)
        assert code == 0 and "1 -> 2" in out, (out, err)
        keys = os.listdir(os.path.join(srv.data, "keys"))
        assert "master-v2.key" in keys and "master-v1.key.retired" in keys, keys
        srv.start()
        for i, cid in enumerate(ids):
            st, body = srv.call("GET", f"/v1/contacts/{cid}?purpose=service", token="admin")
            assert st == 200 and body["fields"]["name"] == f"Rotation {i}", body
        srv.stop()
        os.remove(os.path.join(srv.data, "keys", "master-v1.key.retired"))
        srv.start()
        st, body = srv.call("GET", f"/v1/contacts/{ids[7]}?purpose=service", token="admin")
        assert st == 200 and body["fields"]["email"] == "rot7@example.org", body
        new = srv.create_contact(email="after@example.org", collected_for=["service"])
        st, _ = srv.call("GET", f"/v1/contacts/{new}?purpose=service", token="admin")
        assert st == 200
        srv.stop()
        code, out, _ = cli("audit", "verify", "--data", srv.data, check=False)
        assert code == 0, out
    finally:
        srv.close()


def test_keys_rotate_while_serving_then_sighup(srv):
    import signal
    import time
    before = srv.create_contact(email="before@example.org", name="Before", collected_for=["service"])
    code, out, err = cli("keys", "rotate", "--data", srv.data, check=False)
    assert code == 0, (out, err)
    # Written by the running server under the old (now retired) version.
    between = srv.create_contact(email="between@example.org", name="Between", collected_for=["service"])
    srv.proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    after = srv.create_contact(email="after@example.org", name="After", collected_for=["service"])
    assert "keys reloaded (master key version 2)" in srv.stop()
    srv.start()
    for cid, name in ((before, "Before"), (between, "Between"), (after, "After")):
        st, body = srv.call("GET", f"/v1/contacts/{cid}?purpose=service", token="admin")
        assert st == 200 and body["fields"]["name"] == name, (name, st, body)
    import sqlite3
    con = sqlite3.connect(f"file:{srv.db}?mode=ro", uri=True)
    versions = dict(con.execute("SELECT id, key_version FROM contact").fetchall())
    con.close()
    assert versions[before] == 2 and versions[between] == 1 and versions[after] == 2, versions


def test_serve_refuses_a_key_file_readable_by_others():
    srv = Server(start=False)
    try:
        key = os.path.join(srv.data, "keys", "master-v1.key")
        os.chmod(key, 0o644)
        code = srv.start(expect_fail=True)
        assert code == 4, (code, srv.output)
        assert "master-v1.key" in srv.output and "chmod 600" in srv.output, srv.output
        os.chmod(key, 0o600)
        os.remove(os.path.join(srv.data, "keys", "index.key"))
        code = srv.start(expect_fail=True)
        assert code == 4 and "index.key" in srv.output and "missing" in srv.output, srv.output
    finally:
        srv.close()


def test_init_refuses_to_overwrite_a_data_directory():
    srv = Server(start=False)
    try:
        code, out, err = cli("init", "--data", srv.data, check=False)
        assert code == 3 and "refusing to overwrite" in err, (code, err)
    finally:
        srv.close()


def test_a_revoked_token_stops_working(srv):
    import signal
    import time
    tok = srv.token("marketing", 'crm "nightly" sync')  # a name JSON must escape
    st, _ = srv.call("POST", "/v1/consent/check", token=tok,
                     json={"email": "x@example.org", "purpose": "marketing", "channel": "email"})
    assert st == 200
    code, out, err = cli("token", "revoke", "--data", srv.data, "--name", 'crm "nightly" sync', check=False)
    assert code == 0, (out, err)
    srv.proc.send_signal(signal.SIGHUP)  # at once; without it, within 10 s
    time.sleep(0.5)
    st, body = srv.call("POST", "/v1/consent/check", token=tok,
                        json={"email": "x@example.org", "purpose": "marketing", "channel": "email"})
    assert_problem(st, body, 401)
    code, _, err = cli("token", "revoke", "--data", srv.data, "--name", "nobody", check=False)
    assert code == 4 and "no active principal" in err, (code, err)
    rows = srv.audit_rows("action LIKE 'token.%'")
    assert [(r["action"], r["decision"]) for r in rows][-2:] == [("token.revoke", "allow"),
                                                                ("token.revoke", "deny")], rows
    assert json.loads(rows[-2]["detail"])["principal"] == 'crm "nightly" sync'
    code, _, _ = cli("audit", "verify", "--data", srv.data, check=False)
    assert code == 0


def test_cli_help_and_usage_exit_codes():
    for verb in (["init"], ["serve"], ["token", "create"], ["token", "revoke"], ["keys", "rotate"], ["audit", "verify"],
                 ["policy", "check"]):
        code, out, _ = cli(*verb, "--help", check=False)
        assert code == 0 and "usage:" in out, (verb, code, out)
    code, _, _ = cli("frobnicate", check=False)
    assert code == 2
    code, _, _ = cli("serve", check=False)
    assert code == 2


if __name__ == "__main__":
    run(globals())
