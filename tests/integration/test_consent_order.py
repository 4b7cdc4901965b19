"""Which consent event is the current state, against the real binary: a
withdrawal always beats an earlier grant, whatever time either claims
(docs/policy.md, "Which event is current"). One scenario each."""
import datetime
import json
import os
import re
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
from harness import run  # noqa: E402

CUSTOMER = {"email": "olive.order@example.org", "name": "Olive Order",
            "collected_for": ["service", "marketing", "partner_sharing"], "source": "shop"}
FAR = "2099-01-01T00:00:00Z"


def iso(seconds_from_now=0.0, base=None):
    t = (base if base is not None else time.time()) + seconds_from_now
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def consents(srv, cid):
    st, body = srv.call("GET", f"/v1/contacts/{cid}/consents", token="admin")
    assert st == 200, body
    return body


def current(srv, cid, purpose="marketing", channel="email"):
    for c in consents(srv, cid)["consents"]:
        if c["purpose"] == purpose and c["channel"] == channel:
            return c
    return None


def history(srv, cid, purpose="marketing", channel="email"):
    return [(h["status"], h["source"]) for h in consents(srv, cid)["history"]
            if h["purpose"] == purpose and h["channel"] == channel]


def imp(srv, lines):
    body = "".join(json.dumps(l) + "\n" for l in lines)
    st, out = srv.call("POST", "/v1/contacts/import", token="admin", body=body,
                       content_type="application/x-ndjson")
    assert st == 200, out
    res = [json.loads(l) for l in out.splitlines()]
    assert res[0]["status"] == "created", res
    return res[0]["id"]


def manage_page(srv, cid):
    return srv.manage_link(cid)


def post_form(srv, tok, fields, headers=None):
    h = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
    st, hdrs, _ = srv.raw("POST", f"/p/{tok}", body=urllib.parse.urlencode(fields).encode(), headers=h)
    return st, hdrs


def csrf(srv, tok, headers=None):
    st, _, data = srv.raw("GET", f"/p/{tok}", headers=headers or {})
    assert st == 200
    return re.search(r'name="csrf" value="([^"]+)"', data.decode()).group(1)


def test_a_withdrawal_inside_the_future_window_of_a_grant_takes_effect(srv):
    cid = srv.create_contact(**CUSTOMER)
    # The grant claims a time 200 s ahead of ours (allowed: clocks drift).
    srv.set_consent(cid, "marketing", "email", "granted", source="form", at=iso(200))
    assert srv.check("marketing", "email", contact_id=cid)["reason"] == "granted"
    receipt = srv.set_consent(cid, "marketing", "email", "withdrawn", source="call-centre")
    assert receipt["current"] is True and receipt["status"] == "withdrawn", receipt
    res = srv.check("marketing", "email", contact_id=cid)
    assert res["allowed"] is False and res["reason"] == "withdrawn", res
    assert current(srv, cid)["status"] == "withdrawn"
    # History keeps both, in the order consentd can vouch for.
    assert history(srv, cid) == [("granted", "form"), ("withdrawn", "call-centre")]


def test_the_customer_withdraws_on_the_page_after_a_grant_claimed_ahead(srv):
    cid = srv.create_contact(**CUSTOMER)
    srv.set_consent(cid, "marketing", "email", "granted", at=iso(250))
    link, tok = manage_page(srv, cid)
    st, hdrs = post_form(srv, tok, {"csrf": csrf(srv, tok), "action": "set", "purpose": "marketing",
                                    "channel": "email", "status": "withdrawn"})
    assert st == 303 and "done=saved" in hdrs["location"], (st, hdrs)
    res = srv.check("marketing", "email", contact_id=cid)
    assert res["allowed"] is False and res["reason"] == "withdrawn", res


def test_one_click_unsubscribe_and_gpc_after_grants_claimed_ahead(srv):
    cid = srv.create_contact(**CUSTOMER)
    srv.set_consent(cid, "marketing", "email", "granted", at=iso(250))
    srv.set_consent(cid, "partner_sharing", None, "granted", at=iso(250))
    link, tok = manage_page(srv, cid)
    srv.raw("GET", f"/p/{tok}", headers={"Sec-GPC": "1"})
    assert current(srv, cid, "partner_sharing", "")["status"] == "withdrawn"
    path = f"/v1/unsubscribe/{tok}"  # the mailed token is also its one-click path
    st, _, data = srv.raw("POST", path, body=b"List-Unsubscribe=One-Click",
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert st == 200, data
    c = current(srv, cid)
    assert c["status"] == "withdrawn" and c["collection_method"] == "one_click", c


def test_a_withdrawal_from_a_clock_behind_ours_still_beats_the_grant(srv):
    cid = srv.create_contact(**CUSTOMER)
    srv.set_consent(cid, "marketing", "email", "granted", source="web")
    # The call centre's clock is ten minutes slow: its "now" is before the grant.
    srv.set_consent(cid, "marketing", "email", "withdrawn", source="call-centre", at=iso(-600))
    res = srv.check("marketing", "email", contact_id=cid)
    assert res["allowed"] is False and res["reason"] == "withdrawn", res
    srv.set_consent(cid, "marketing", "email", "granted", source="web")  # a fresh yes counts again
    assert srv.check("marketing", "email", contact_id=cid)["reason"] == "granted"


def test_equal_times_resolve_to_the_most_restrictive_state(srv):
    cid = srv.create_contact(**CUSTOMER)
    t = iso(-3600)
    srv.set_consent(cid, "marketing", "email", "withdrawn", source="crm-a", at=t)
    srv.set_consent(cid, "marketing", "email", "granted", source="crm-b", at=t)
    res = srv.check("marketing", "email", contact_id=cid)
    assert res["allowed"] is False and res["reason"] == "withdrawn", res
    srv.set_consent(cid, "marketing", "sms", "granted", source="crm-b", at=t)
    srv.set_consent(cid, "marketing", "sms", "refused", source="crm-a", at=t)
    assert srv.check("marketing", "sms", contact_id=cid)["reason"] == "refused"
    # Two grants at one time: the one that expires first.
    srv.set_consent(cid, "marketing", "post", "granted", source="short", at=t, expires_at=iso(86400))
    srv.set_consent(cid, "marketing", "post", "granted", source="long", at=t, expires_at=iso(864000))
    assert current(srv, cid, "marketing", "post")["source"] == "short"


def test_an_import_from_a_clock_ahead_then_a_live_withdrawal(srv):
    # The exporting system's clock runs 250 s ahead of ours.
    cid = imp(srv, [dict(CUSTOMER, consents=[
        {"purpose": "marketing", "channel": "email", "status": "granted", "source": "old-crm",
         "at": iso(250)}])])
    assert srv.check("marketing", "email", contact_id=cid)["reason"] == "granted"
    srv.set_consent(cid, "marketing", "email", "withdrawn", source="customer-call")
    res = srv.check("marketing", "email", contact_id=cid)
    assert res["allowed"] is False and res["reason"] == "withdrawn", res
    assert history(srv, cid) == [("granted", "old-crm"), ("withdrawn", "customer-call")]


def test_imports_interleaved_with_live_withdrawals_never_revive_a_grant(srv):
    # An import orders its own events by their timestamps: the later
    # withdrawal is current although it is listed first.
    cid = imp(srv, [dict(CUSTOMER, consents=[
        {"purpose": "marketing", "channel": "email", "status": "withdrawn", "source": "crm-2",
         "at": "2024-06-01T00:00:00Z"},
        {"purpose": "marketing", "channel": "email", "status": "granted", "source": "crm-1",
         "at": "2024-01-01T00:00:00Z", "expires_at": FAR},
        {"purpose": "marketing", "channel": "sms", "status": "granted", "source": "crm-1",
         "at": "2024-01-01T00:00:00Z", "expires_at": FAR}])])
    assert srv.check("marketing", "email", contact_id=cid)["reason"] == "withdrawn"
    assert srv.check("marketing", "sms", contact_id=cid)["reason"] == "granted"
    # A live withdrawal, then the old system replays its grants: one from
    # before the withdrawal, one claimed minutes ahead of it.
    srv.set_consent(cid, "marketing", "sms", "withdrawn", source="live")
    receipt = srv.set_consent(cid, "marketing", "sms", "granted", source="replay-old",
                              at="2025-03-01T00:00:00Z", expires_at=FAR)
    # The receipt says the replayed grant is history, not the current state.
    assert receipt["current"] is False and receipt["at"].startswith("2025-03-01"), receipt
    res = srv.check("marketing", "sms", contact_id=cid)
    assert res["allowed"] is False and res["reason"] == "withdrawn", res
    srv.set_consent(cid, "marketing", "email", "granted", source="replay-old", at="2024-03-01T00:00:00Z",
                    expires_at=FAR)
    assert srv.check("marketing", "email", contact_id=cid)["reason"] == "withdrawn"
    # Every event is kept, ordered by when it happened as far as consentd can tell.
    assert history(srv, cid, "marketing", "sms") == [
        ("granted", "crm-1"), ("granted", "replay-old"), ("withdrawn", "live")]
    assert history(srv, cid) == [("granted", "crm-1"), ("granted", "replay-old"), ("withdrawn", "crm-2")]
    assert len(consents(srv, cid)["history"]) == 6


def test_a_grant_claimed_too_far_ahead_is_refused_and_changes_nothing(srv):
    cid = srv.create_contact(**CUSTOMER)
    st, body = srv.call("PUT", f"/v1/contacts/{cid}/consents/marketing", token="admin",
                        json={"channel": "email", "status": "granted", "at": iso(400)})
    assert st == 400 and body["status"] == 400 and "seconds ahead" in body["detail"], body
    assert consents(srv, cid)["history"] == []


if __name__ == "__main__":
    run(globals())
