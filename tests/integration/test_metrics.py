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


def test_each_batch_lock_hold_is_in_the_histogram(srv):
    """The write lock each group commit holds (PostgreSQL: the chain lock of
    every instance) is measured: count, sum, cumulative buckets, max."""
    for i in range(5):
        st, _ = srv.call("POST", "/v1/contacts", token="admin",
                         json={"email": f"lock{i}@example.org", "collected_for": ["service"]})
        assert st == 201, st
    st, text = srv.call("GET", "/metrics")
    assert st == 200, st
    count = int(re.search(r"^consentd_audit_batch_lock_seconds_count (\d+)$", text, re.M).group(1))
    batches = int(re.search(r"^consentd_audit_batches_total (\d+)$", text, re.M).group(1))
    assert 5 <= count <= batches, (count, batches)
    total = float(re.search(r"^consentd_audit_batch_lock_seconds_sum ([0-9.]+)$", text, re.M).group(1))
    top = float(re.search(r"^consentd_audit_batch_lock_max_seconds ([0-9.]+)$", text, re.M).group(1))
    assert 0 < top <= total, (top, total)
    buckets = [int(v) for v in re.findall(r'^consentd_audit_batch_lock_seconds_bucket\{le="[^"]+"\} (\d+)$',
                                          text, re.M)]
    assert len(buckets) == 9 and buckets == sorted(buckets) and buckets[-1] == count, buckets


if __name__ == "__main__":
    run(globals())
