"""HEAD is GET without the content (RFC 9110 section 9.3.2): every GET route
answers HEAD with the same status and the same header fields, and no bytes
after the header block; a 405 lists HEAD in Allow wherever GET is."""
import os
import re
import socket
import ssl
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import run  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

# Header fields whose value differs from one request to the next by design,
# and the framing of a streamed GET, which a HEAD reply may omit (RFC 9112
# section 6.1): a streamed HEAD reply is not chunked and ends by closing.
VOLATILE = {"date", "x-request-id", "transfer-encoding", "connection"}


def get_routes():
    routes = set()
    for name in os.listdir(os.path.join(ROOT, "service")):
        if name.startswith("h_") and name.endswith(".c"):
            text = open(os.path.join(ROOT, "service", name)).read()
            routes |= set(re.findall(r'\{\s*"GET",\s*"(/[^"]*)"', text))
    return routes


def raw_exchange(srv, method, path, token):
    """The bytes the server sends for one request on a fresh connection
    (Connection: close), so that any stray body byte is seen."""
    ctx = ssl.create_default_context(cafile=srv.cafile)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as sock:
        with ctx.wrap_socket(sock, server_hostname="127.0.0.1") as tls:
            auth = f"Authorization: Bearer {srv.tokens[token]}\r\n" if token else ""
            tls.sendall(f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}"
                        f"Connection: close\r\n\r\n".encode())
            data = b""
            while True:
                try:
                    chunk = tls.recv(65536)
                except (ssl.SSLError, ConnectionResetError):
                    break
                if not chunk:
                    break
                data += chunk
    head, sep, body = data.partition(b"\r\n\r\n")
    assert sep, f"{method} {path}: no complete header block in {data[:200]!r}"
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, body


def concrete_paths(srv):
    """Each GET route with its parameters filled in from real records."""
    cid = srv.create_contact(email="head.case@example.org", name="Head Case")
    srv.set_consent(cid, "marketing", "email", "granted")
    st, link = srv.call("POST", f"/v1/contacts/{cid}/preference-link", token="marketing")
    assert st == 201, (st, link)
    tok = link["url"].rsplit("/", 1)[1]
    st, _ = srv.call("POST", "/v1/outreach/filter?purpose=marketing&channel=email", token="marketing",
                     body='["head.case@example.org"]', content_type="application/json")
    assert st == 200, st
    rows = srv.audit_rows("action = ?", ("outreach.filter",))
    release = next((v for v in re.findall(r'"release_id":"([A-Za-z0-9_-]{22})"', str(rows))), None)
    st, hook = srv.call("POST", "/v1/webhooks", token="admin",
                        json={"url": "https://hooks.example.org/head", "events": ["contact.erased"],
                              "role": "marketing"})
    assert st == 201, (st, hook)
    st, rq = srv.call("POST", "/v1/requests", token="support",
                      json={"contact_id": cid, "kind": "access", "jurisdiction": "gdpr"})
    assert st == 201, (st, rq)
    st, cons = srv.call("GET", f"/v1/contacts/{cid}/consents", token="admin")
    receipt = cons["consents"][0]["receipt_id"]
    fill = {
        "/v1/requests": ("/v1/requests", "support"),
        "/v1/requests/{id}": (f"/v1/requests/{rq['id']}", "support"),
        "/v1/contacts/{id}/receipts/{id}": (f"/v1/contacts/{cid}/receipts/{receipt}", "admin"),
        "/v1/webhooks": ("/v1/webhooks", "admin"),
        "/v1/webhooks/{id}": (f"/v1/webhooks/{hook['id']}", "admin"),
        "/v1/webhooks/{id}/deliveries": (f"/v1/webhooks/{hook['id']}/deliveries", "admin"),
        "/v1/contacts": ("/v1/contacts?email=head.case%40example.org&purpose=service", "admin"),
        "/v1/contacts/{id}": (f"/v1/contacts/{cid}?purpose=service", "admin"),
        "/v1/contacts/{id}/consents": (f"/v1/contacts/{cid}/consents?purpose=service", "admin"),
        "/v1/suppressions": ("/v1/suppressions?email=head.case%40example.org", "marketing"),
        "/p/request": ("/p/request", None),
        "/p/{token}": (f"/p/{tok}", None),
        # A preference link's token names no confirmation: the 403 page.
        "/p/confirm/{token}": (f"/p/confirm/{tok}", None),
        "/v1/unsubscribe/{token}": (f"/v1/unsubscribe/{tok}", None),
        "/v1/outreach/releases/{id}/contacts/{id}":
            (f"/v1/outreach/releases/{release or 'A' * 22}/contacts/{cid}", "auditor"),
        "/v1/outreach/releases/{id}": (f"/v1/outreach/releases/{release or 'A' * 22}", "auditor"),
        "/v1/outreach/contacts/{id}/releases": (f"/v1/outreach/contacts/{cid}/releases", "auditor"),
        "/healthz": ("/healthz", None),
        "/readyz": ("/readyz", None),
        "/metrics": ("/metrics", None),
    }
    out = []
    for route in sorted(get_routes()):
        if route in fill:
            out.append((route, *fill[route]))
        elif route.startswith("/v1/audit"):
            out.append((route, route, "auditor"))
        elif route.startswith("/console/"):
            # Without a session: the sign-in page, the stylesheet, or 401.
            out.append((route, route.replace("{token}", "1").replace("{id}", cid), None))
        else:
            raise AssertionError(f"test_head.py does not know how to call GET {route}: add it to fill")
    return out


def test_every_get_route_answers_head_with_the_same_headers_and_no_body(srv):
    paths = concrete_paths(srv)
    assert len(paths) >= 10, paths
    for route, path, token in paths:
        gst, gh, gbody = raw_exchange(srv, "GET", path, token)
        hst, hh, hbody = raw_exchange(srv, "HEAD", path, token)
        assert hst == gst, f"HEAD {route}: {hst}, GET: {gst}"
        assert hst != 405, f"HEAD {route} is refused"
        assert hbody == b"", f"HEAD {route} sent {len(hbody)} body bytes: {hbody[:80]!r}"
        assert hh.get("content-type") == gh.get("content-type"), (route, hh, gh)
        missing = (set(gh) - set(hh) - VOLATILE)
        assert not missing, f"HEAD {route} lacks the header fields {sorted(missing)} that GET sends"


def test_a_405_lists_head_wherever_get_is(srv):
    st, hdrs, _ = srv.raw("DELETE", "/healthz")
    assert st == 405, st
    allow = [m.strip() for m in hdrs.get("allow", "").split(",")]
    assert "GET" in allow and "HEAD" in allow, hdrs.get("allow")
    st, hdrs, _ = srv.raw("PUT", "/v1/suppressions", headers={"Authorization": f"Bearer {srv.tokens['admin']}"})
    assert st == 405, st
    allow = [m.strip() for m in hdrs.get("allow", "").split(",")]
    assert len(allow) == len(set(allow)), allow
    assert {"GET", "HEAD", "POST", "DELETE"} <= set(allow), allow


def test_head_on_a_post_only_route_is_405(srv):
    st, hdrs, _ = srv.raw("HEAD", "/v1/consent/check")
    assert st == 405, st
    assert "HEAD" not in hdrs.get("allow", ""), hdrs.get("allow")


if __name__ == "__main__":
    run(globals())
