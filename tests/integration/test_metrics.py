"""Every counter the server keeps is exported on /metrics: a campaign list
filtered shows in consentd_filter_entries_total, and the audit-unavailable
counter is there from the start."""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import run  # noqa: E402


def metric(srv, name):
    st, text = srv.call("GET", "/metrics")
    assert st == 200, st
    m = re.search(rf"^{name} (\d+)$", text, re.M)
    assert m, f"{name} is not exported:\n{text}"
    return int(m.group(1))


def test_marketing_filters_a_list_and_the_entries_are_counted(srv):
    before = metric(srv, "consentd_filter_entries_total")
    st, _ = srv.call("POST", "/v1/outreach/filter?purpose=marketing&channel=email", token="marketing",
                     body='["a@example.org", "b@example.org", "c@example.org"]',
                     content_type="application/json")
    assert st == 200, st
    assert metric(srv, "consentd_filter_entries_total") == before + 3


def test_the_audit_unavailable_counter_is_exported(srv):
    assert metric(srv, "consentd_audit_unavailable_total") == 0


if __name__ == "__main__":
    run(globals())
