"""Nothing fails open, nothing is dropped silently: each scenario makes one
thing go wrong (an audit write, a token lookup, a framing trick, a key
rotation under a running server) and checks that consentd refuses clearly
instead of answering as if all were well.
"""
import json
import os
import signal
import socket
import ssl
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import Server, assert_problem, cli, run  # noqa: E402

ALICE = {"email": "alice@example.org", "name": "Alice Quarrington", "collected_for": ["service", "marketing"]}


def wait_for_output(srv, text, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if text in "".join(srv._out):
            return True
        time.sleep(0.05)
    return False


def check_as_marketing(srv, cid):
    return srv.call("POST", "/v1/consent/check", token="marketing",
                    json={"contact_id": cid, "purpose": "marketing", "channel": "email"})


# ---- policy reload -----------------------------------------------------------

def test_a_policy_reload_whose_audit_entry_cannot_be_written_leaves_the_old_policy_live():
    srv = Server(env={"CONSENTD_TEST_FAULTS": "1"})
    try:
        cid = srv.create_contact(**ALICE)
        st, body = check_as_marketing(srv, cid)
        assert st == 200, (st, body)
        # The new policy takes consent.check away from marketing.
        path = os.path.join(srv.data, "policy.json")
        policy = json.load(open(path))
        policy["roles"]["marketing"]["actions"].remove("consent.check")
        with open(path, "w") as f:
            json.dump(policy, f)
        fault = srv.db + ".fault-audit"
        open(fault, "w").close()
        srv.proc.send_signal(signal.SIGHUP)
        assert wait_for_output(srv, "consentd: policy reload"), "".join(srv._out)[-2000:]
        os.remove(fault)
        st, body = check_as_marketing(srv, cid)
        assert st == 200, ("the unaudited policy went live", st, body)
        assert not [r for r in srv.audit_rows("action='policy.reload'")], "an entry was written"
        # Once the audit works again the same reload goes live, with its entry.
        srv._out.clear()
        srv.proc.send_signal(signal.SIGHUP)
        assert wait_for_output(srv, "policy reloaded from"), "".join(srv._out)[-2000:]
        assert_problem(*check_as_marketing(srv, cid), 403, "forbidden")
        assert len(srv.audit_rows("action='policy.reload' AND decision='allow'")) == 1
    finally:
        srv.close()


# ---- authentication ----------------------------------------------------------

def test_a_token_lookup_that_fails_with_an_io_error_is_503_not_401():
    srv = Server(env={"CONSENTD_TEST_FAULTS": "1"})
    try:
        fault = srv.db + ".fault-read"
        open(fault, "w").close()
        for _ in range(3):
            st, hdrs, data = srv.raw("GET", "/v1/audit",
                                     headers={"Authorization": f"Bearer {srv.tokens['auditor']}"})
            body = json.loads(data)
            assert_problem(st, body, 503, "unavailable")
            assert "retry-after" in hdrs and "www-authenticate" not in hdrs, hdrs
        os.remove(fault)
        st, body = srv.call("GET", "/v1/audit", token="auditor")
        assert st == 200, (st, body)
        # A refused lookup is still recorded, as the server's failure.
        rows = srv.audit_rows("action='auth.failure'")
        assert rows and all(r["reason"] == "store_unavailable" for r in rows), rows
    finally:
        srv.close()


def test_a_stale_error_from_an_earlier_request_never_decides_an_unknown_token():
    srv = Server(env={"CONSENTD_TEST_FAULTS": "1"})
    try:
        fault = srv.db + ".fault-read"
        open(fault, "w").close()
        st, _ = srv.call("GET", "/v1/audit", token="auditor")
        assert st == 503
        os.remove(fault)
        # Same connection, same worker thread: an unknown token is 401 again.
        for _ in range(3):
            st, body = srv.call("GET", "/v1/audit", token="x" * 43)
            assert_problem(st, body, 401, "unauthenticated")
            assert "cannot be checked" not in json.dumps(body), body
    finally:
        srv.close()


# ---- TLS -------------------------------------------------------------------------

def tls12_handshake(srv, ciphers):
    """The suite the server picks over TLS 1.2 when offered only ciphers,
    or None when it refuses them all."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(ciphers)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as raw:
        try:
            with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                return tls.cipher()[0]
        except (ssl.SSLError, ConnectionResetError):
            return None


def test_tls_1_2_offers_no_cbc_and_no_sha1_suite(srv):
    # Every suite that is not AEAD: the CBC ones with SHA-1, SHA-256 and SHA-384 MACs.
    for offer in ("ALL:!AESGCM:!CHACHA20:!AESCCM:!ARIAGCM:@SECLEVEL=0",
                  "AES128-SHA:AES256-SHA:ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES128-SHA:@SECLEVEL=0",
                  "ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES128-SHA256:AES128-SHA256:@SECLEVEL=0",
                  "ECDHE-ECDSA-AES256-SHA384:ECDHE-RSA-AES256-SHA384:AES256-SHA256:@SECLEVEL=0"):
        got = tls12_handshake(srv, offer)
        assert got is None, f"TLS 1.2 accepted {got} when offered {offer}"
    got = tls12_handshake(srv, "ECDHE+AESGCM:ECDHE+CHACHA20")
    assert got is not None and ("GCM" in got or "CHACHA20" in got), got
    st, _ = srv.call("GET", "/healthz")
    assert st == 200


if __name__ == "__main__":
    run(globals())
