"""Bad input: every hostile or malformed request in bad_inputs.json gets its
expected 4xx with a problem+json body, the server keeps serving, and nothing
in the records changes.

Each case is sent over a fresh raw TLS socket (so requests http.client would
refuse to build, such as an oversized header, a lower-case method or a bad
chunk, can be sent too). A case whose "type" is null is answered by
libmicrohttpd itself before consentd sees the request; its "why" says so and
the test then checks only the status (null: the connection is closed without
a response) and that consentd keeps serving.

The record tables (contact, contact_field, consent, consent_event,
suppression) are hashed before and after every case. The audit table is not:
it rightly records 401s, 403s and audited 404s.
"""
import base64
import hashlib
import json
import os
import signal
import socket
import sqlite3
import ssl
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import Server, run  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
TABLES = ("contact", "contact_field", "consent", "consent_event", "suppression")
PROBLEM = "https://consentd.dev/problems/"
MISSING_CID = "ZZZZZZZZZZZZZZZZZZZZZZ"


def records_digest(srv):
    con = sqlite3.connect(f"file:{srv.db}?mode=ro", uri=True)
    h = hashlib.sha256()
    for t in TABLES:
        for row in sorted(repr(r) for r in con.execute(f"SELECT * FROM {t}")):
            h.update(row.encode())
        h.update(b"|")
    con.close()
    return h.hexdigest()


def tls_socket(srv, timeout=15):
    ctx = ssl.create_default_context(cafile=srv.cafile)
    raw = socket.create_connection(("127.0.0.1", srv.port), timeout=timeout)
    return ctx.wrap_socket(raw, server_hostname="localhost")


def read_response(sock):
    """(status, {lower-case header: value}, body bytes) read until close."""
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except (ssl.SSLError, ConnectionResetError, socket.timeout, OSError):
        pass
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not lines or not lines[0].startswith("HTTP/"):
        return None, {}, data
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        out, rest = b"", body
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            n = int(size_line.split(b";")[0] or b"0", 16)
            if n == 0:
                break
            out, rest = out + rest[:n], rest[n + 2:]
        body = out
    return status, headers, body


def fill(text, srv, cid):
    return (text.replace("{cid}", cid).replace("{missing_cid}", MISSING_CID)
            .replace("{admin}", srv.tokens["admin"]))


def build(case, srv, cid):
    """The request as (head bytes, body bytes, chunked?)."""
    if "raw_request" in case:
        return fill(case["raw_request"], srv, cid).encode("latin-1"), b"", False
    if "body_b64" in case:
        body = base64.b64decode(case["body_b64"])
    elif "body_gen" in case:
        g = case["body_gen"]
        body = (g["prefix"] + g["repeat"] * g["count"] + g["suffix"]).encode()
    elif "body" in case:
        body = fill(case["body"], srv, cid).encode()
    else:
        body = None
    headers = [("Host", "localhost"), ("Connection", "close")]
    token = case.get("token", "admin")
    if token is not None:
        headers.append(("Authorization", "Bearer " + srv.tokens.get(token, token)))
    headers += [tuple(h) for h in case.get("headers", [])]
    if "content_type" in case:
        headers.append(("Content-Type", case["content_type"]))
    chunked = bool(case.get("chunked"))
    if "raw_headers" in case:
        headers += [tuple(h) for h in case["raw_headers"]]
    elif chunked:
        headers.append(("Transfer-Encoding", "chunked"))
    elif body is not None:
        headers.append(("Content-Length", str(len(body))))
    if "header_gen" in case:
        g = case["header_gen"]
        if "many" in g:
            headers += [(f"{g['name']}{i}", "v") for i in range(g["many"])]
        else:
            headers.append((g["name"], g["repeat"] * g["count"]))
    head = f"{case['method']} {fill(case['path'], srv, cid)} HTTP/1.1\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
    return head.encode("latin-1"), body or b"", chunked


def send(case, srv, cid):
    head, body, chunked = build(case, srv, cid)
    with tls_socket(srv) as s:
        try:
            s.sendall(head)
            if chunked:
                for i in range(0, len(body), 4096):
                    part = body[i:i + 4096]
                    s.sendall(b"%x\r\n" % len(part) + part + b"\r\n")
                s.sendall(b"0\r\n\r\n")
            elif body:
                s.sendall(body)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass  # the server answered early and closed: read what it said
        return read_response(s)


def healthy(srv):
    st, _, _ = srv.raw("GET", "/healthz", client=srv.new_client())
    return st == 200


def test_every_bad_input_is_refused_cleanly_and_changes_nothing(srv):
    cases = json.load(open(os.path.join(HERE, "bad_inputs.json")))["cases"]
    assert len(cases) >= 60, len(cases)
    cid = srv.create_contact(email="bad.input@example.org", name="Bad Input",
                             collected_for=["service", "marketing"])
    srv.set_consent(cid, "marketing", "email", "granted")
    before = records_digest(srv)
    failures = []
    for case in cases:
        name = case["name"]
        st, hdrs, body = send(case, srv, cid)
        want, want_type = case["status"], case["type"]
        problem = None
        if st != want:
            failures.append(f"{name}: status {st}, want {want}: {body[:200]!r}")
        elif want_type is not None:
            ctype = hdrs.get("content-type", "")
            try:
                problem = json.loads(body)
            except ValueError:
                problem = None
            if ctype != "application/problem+json" or not isinstance(problem, dict):
                failures.append(f"{name}: not problem+json ({ctype}): {body[:200]!r}")
            elif problem.get("type") != PROBLEM + want_type or problem.get("status") != want:
                failures.append(f"{name}: problem {problem.get('type')} {problem.get('status')}, "
                                f"want {want_type} {want}")
            elif srv.tokens["admin"] in body.decode(errors="replace"):
                failures.append(f"{name}: the reply echoes the bearer token")
        elif not case.get("why"):
            failures.append(f"{name}: a libmicrohttpd answer needs a 'why' in bad_inputs.json")
        if not healthy(srv):
            failures.append(f"{name}: /healthz failed afterwards")
        if records_digest(srv) != before:
            failures.append(f"{name}: the record tables changed")
            before = records_digest(srv)
    assert not failures, "\n".join([f"{len(failures)} of {len(cases)} cases failed:"] + failures)
    # The contact is untouched and readable.
    st, body = srv.call("GET", f"/v1/contacts/{cid}?purpose=service", token="admin")
    assert st == 200 and body["fields"]["name"] == "Bad Input", body
    assert srv.proc.poll() is None, "the server exited"
    # After all that, SIGTERM still ends it cleanly: exit 0 and, in the
    # sanitizer build, no leak or undefined-behaviour report.
    proc = srv.proc
    srv.client.close()
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(60)
    out = srv.stop()
    assert rc == 0 and "Sanitizer" not in out and "runtime error" not in out, (rc, out[-3000:])


if __name__ == "__main__":
    run(globals())
