"""
The PostgreSQL database goes away and comes back (issue 12 item 4): while it
is unreachable every audited route answers 503 and /readyz 503 (fail closed,
nothing served unaudited); once it is back the instance serves again by
itself, without a restart.

PostgreSQL only (scripts/pgtest.sh sets CONSENTD_TEST_PG_CTL); SKIP otherwise.
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import needs_postgresql, run  # noqa: E402


def pg_ctl(*args):
    ctl = os.environ.get("CONSENTD_TEST_PG_CTL")
    subprocess.run(ctl.split() + list(args), check=True, capture_output=True, timeout=120)


def test_an_unreachable_database_is_503_everywhere_and_the_instance_recovers_by_itself(srv):
    if not srv.pg or not os.environ.get("CONSENTD_TEST_PG_CTL"):
        needs_postgresql()
    cid = srv.create_contact(email="outage@example.org")
    srv.set_consent(cid, "marketing", "email", "granted")
    pg_ctl("stop", "-m", "fast")
    try:
        # Idle instance first: /readyz itself must notice, not only a write.
        st, body = srv.call("GET", "/readyz")
        assert st == 503, (st, body)
        st, body = srv.call("POST", "/v1/consent/check", token="marketing",
                            json={"contact_id": cid, "purpose": "marketing", "channel": "email"})
        assert st == 503, (st, body)
        st, body = srv.call("POST", "/v1/contacts", token="admin",
                            json={"email": "during@example.org", "collected_for": ["service"]})
        assert st == 503, (st, body)
        st, body = srv.call("GET", "/readyz")
        assert st == 503, (st, body)
    finally:
        pg_ctl("start")
    deadline = time.time() + 20
    while True:
        st, body = srv.call("POST", "/v1/consent/check", token="marketing",
                            json={"contact_id": cid, "purpose": "marketing", "channel": "email"})
        if st == 200 or time.time() > deadline:
            break
        time.sleep(0.2)
    assert st == 200 and body["allowed"] is True, (st, body)
    st, body = srv.call("GET", "/readyz")
    assert st == 200, (st, body)
    st, rows = 0, srv.audit_rows("request_id != ''")
    assert rows, rows


if __name__ == "__main__":
    run(globals())
