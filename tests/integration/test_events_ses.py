"""Amazon SES through SNS: POST /v1/events/ses (docs/integrations.md).

SNS signs each message with RSA (SignatureVersion 1: SHA1withRSA, 2:
SHA256withRSA) over a canonical string, and names the signing certificate
by URL. The test plays SNS: it makes an RSA signing key and certificate,
serves the certificate over HTTPS on loopback (its own CA, a server
certificate for "localhost"), and signs messages in exactly the shape AWS
documents. consentd trusts that server through the test-only
events.ses.ca_file, honoured only with CONSENTD_TEST_FAULTS=1, with
cert_host_suffix "localhost"; production keeps the system's CAs and
.amazonaws.com."""
import base64
import datetime
import http.server
import json
import os
import ssl
import sys
import tempfile
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(__file__))
from harness import Server, Skip, assert_problem, check, run  # noqa: E402

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
    from cryptography.x509.oid import NameOID
except ImportError:  # pragma: no cover
    x509 = None

TOPIC = "arn:aws:sns:us-east-1:123456789012:ses-events"


def _cert(subject, key, issuer=None, issuer_key=None, ca=False, dns=None):
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    b = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer or name)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if dns:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(dns)]), critical=False)
    return b.sign(issuer_key or key, hashes.SHA256())


def _pem(obj):
    if isinstance(obj, rsa.RSAPrivateKey):
        return obj.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                 serialization.NoEncryption())
    return obj.public_bytes(serialization.Encoding.PEM)


class FakeSns:
    """An HTTPS server on loopback that serves the signing certificate and
    records every GET (certificate fetches and subscription confirmations)."""

    def __init__(self):
        if x509 is None:
            raise Skip("python3-cryptography is missing")
        self.dir = tempfile.mkdtemp(prefix="consentd-sns-")
        ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        ca = _cert("consentd test CA", ca_key, ca=True)
        tls_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        tls = _cert("localhost", tls_key, issuer=ca.subject, issuer_key=ca_key, dns="localhost")
        self.signer = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.signing_pem = _pem(_cert("sns.amazonaws.com", self.signer))
        self.ca_pem = _pem(ca)
        with open(os.path.join(self.dir, "tls.pem"), "wb") as f:
            f.write(_pem(tls) + _pem(tls_key))
        self.gets = []
        self.lock = threading.Lock()
        sns = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                with sns.lock:
                    sns.gets.append(self.path)
                if self.path.endswith(".pem"):
                    body = sns.signing_pem if "missing" not in self.path else b""
                    status = 200 if body else 404
                else:
                    body, status = b"<ConfirmSubscriptionResponse/>", 200
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(self.dir, "tls.pem"))
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.httpd.daemon_threads = True
        self.base = f"https://localhost:{self.httpd.server_address[1]}"
        self.cert_url = self.base + "/SimpleNotificationService-0123456789abcdef.pem"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def got(self, part):
        with self.lock:
            return [g for g in self.gets if part in g]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def sign(self, msg, version="2"):
        """The message's Signature, per AWS's "Verifying the signatures of
        Amazon SNS messages": "Key\\nValue\\n" for each signed key present,
        in byte order of the key names."""
        if msg["Type"] == "Notification":
            keys = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
        else:
            keys = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
        text = "".join(f"{k}\n{msg[k]}\n" for k in keys if k in msg).encode()
        alg = hashes.SHA1() if version == "1" else hashes.SHA256()
        return base64.b64encode(self.signer.sign(text, padding.PKCS1v15(), alg)).decode()

    def message(self, inner, typ="Notification", version="2", topic=TOPIC, ts=None, cert_url=None,
                subscribe_url=None, **extra):
        ts = ts if ts is not None else time.time()
        msg = {"Type": typ, "MessageId": str(uuid.uuid4()), "TopicArn": topic,
               "Message": inner if isinstance(inner, str) else json.dumps(inner),
               "Timestamp": datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)
               .strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
               "SignatureVersion": version, "SigningCertURL": cert_url or self.cert_url, **extra}
        if typ != "Notification":
            msg["Token"] = "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd60a747ba6"
            msg["SubscribeURL"] = subscribe_url or (
                f"{self.base}/?Action=ConfirmSubscription&TopicArn={topic}&Token={msg['Token']}")
        msg["Signature"] = self.sign(msg, version)
        return msg


def server(sns, env=None):
    srv = Server(start=False, env={"CONSENTD_TEST_FAULTS": "1"} if env is None else env)
    with open(os.path.join(srv.data, "sns-test-ca.pem"), "wb") as f:
        f.write(sns.ca_pem)
    path = os.path.join(srv.data, "consentd.conf")
    with open(path) as f:
        conf = json.load(f)
    conf["events"] = {"ses": {"topic_arns": [TOPIC], "cert_host_suffix": "localhost",
                              "ca_file": "sns-test-ca.pem"}}
    with open(path, "w") as f:
        json.dump(conf, f)
    return srv


def post(srv, msg, raw=None):
    body = raw if raw is not None else json.dumps(msg)
    return srv.call("POST", "/v1/events/ses", body=body, headers={
        "Content-Type": "text/plain; charset=UTF-8", "x-amz-sns-message-type": msg.get("Type", ""),
        "x-amz-sns-message-id": msg.get("MessageId", ""), "x-amz-sns-topic-arn": msg.get("TopicArn", "")})


def mail(*dest):
    return {"timestamp": "2026-12-01T11:59:59.000Z", "source": "news@example.com", "messageId": "0100018c",
            "destination": list(dest)}


def bounce(kind, *addrs):
    return {"notificationType": "Bounce", "mail": mail(*addrs),
            "bounce": {"bounceType": kind, "bounceSubType": "General", "feedbackId": "0100018c-1",
                       "timestamp": "2026-12-01T12:00:00.000Z",
                       "bouncedRecipients": [{"emailAddress": a, "action": "failed", "status": "5.1.1"}
                                             for a in addrs]}}


def complaint(addr, feedback="abuse"):
    return {"notificationType": "Complaint", "mail": mail(addr),
            "complaint": {"complainedRecipients": [{"emailAddress": addr}], "complaintFeedbackType": feedback,
                          "timestamp": "2026-12-01T12:00:00.000Z", "feedbackId": "0100018c-2"}}


def suppressions(srv, email):
    st, body = srv.call("GET", "/v1/suppressions?email=" + email, token="admin")
    check(st == 200, (st, body))
    return body["suppressions"]


def test_ses_bounces_and_complaints_through_sns_become_suppressions():
    sns = FakeSns()
    srv = server(sns)
    try:
        srv.start()
        # A permanent bounce of two recipients, signed with version 2.
        m = sns.message(bounce("Permanent", "ann@example.org", "bob@example.org"))
        st, body = post(srv, m)
        check(st == 200, (st, body))
        check(body["events"] == 2 and body["suppressed"] == 2, body)
        for a in ("ann@example.org", "bob@example.org"):
            s = suppressions(srv, a)
            check(len(s) == 1 and s[0]["reason"] == "bounce" and s[0]["source"] == "ses", s)
        # SNS retries the same message: nothing changes, 200.
        st, body = post(srv, m)
        check(st == 200 and body["replayed"] == 2 and body["suppressed"] == 0, body)
        # A transient bounce is counted, not suppressed; signature version 1.
        st, body = post(srv, sns.message(bounce("Transient", "cy@example.org"), version="1"))
        check(st == 200 and body["soft_bounces"] == 1 and body["suppressed"] == 0, body)
        check(suppressions(srv, "cy@example.org") == [], "a transient bounce suppressed")
        # A complaint, with a Subject (signed when present).
        st, body = post(srv, sns.message(complaint("di@example.org"), Subject="Amazon SES Notification"))
        check(st == 200 and body["suppressed"] == 1, body)
        check(suppressions(srv, "di@example.org")[0]["reason"] == "complaint")
        # A "not-spam" feedback and a delivery are ignored.
        st, body = post(srv, sns.message(complaint("el@example.org", "not-spam")))
        check(st == 200 and body["ignored"] == 1 and suppressions(srv, "el@example.org") == [], body)
        st, body = post(srv, sns.message({"notificationType": "Delivery", "mail": mail("fa@example.org"),
                                          "delivery": {"recipients": ["fa@example.org"]}}))
        check(st == 200 and body["ignored"] == 1, body)
        # An SES subscription event that unsubscribes from everything.
        st, body = post(srv, sns.message({"eventType": "Subscription", "mail": mail("gu@example.org"),
                                          "subscription": {"contactList": "news", "source": "UnsubscribeHeader",
                                                           "timestamp": "2026-12-01T12:00:00.000Z",
                                                           "newTopicPreferences": {"unsubscribeAll": True}}}))
        check(st == 200 and body["suppressed"] == 1, body)
        check(suppressions(srv, "gu@example.org")[0]["reason"] == "unsubscribe")
        # The certificate was fetched once and then served from the cache.
        check(len(sns.got(".pem")) == 1, sns.gets)
        rows = srv.audit_rows("action = ?", ("events.receive",))
        check(len(rows) == 7 and all(r["decision"] == "allow" for r in rows), rows)
        check("ann@example.org" not in repr(srv.audit_rows()), "an address in the audit trail")
    finally:
        srv.close()
        sns.close()


def test_sns_messages_that_do_not_verify_are_refused_audited_and_change_nothing():
    sns = FakeSns()
    srv = server(sns)
    try:
        srv.start()
        inner = bounce("Permanent", "mallory@example.org")
        cases = []
        m = sns.message(inner)
        m["Message"] = json.dumps(bounce("Permanent", "victim@example.org"))  # tampered after signing
        cases.append(("tampered message", m, 401, "bad_signature"))
        m = sns.message(inner)
        m["Signature"] = sns.message(inner)["Signature"]  # another message's signature
        cases.append(("wrong signature", m, 401, "bad_signature"))
        cases.append(("unknown topic", sns.message(inner, topic=TOPIC + "-other"), 401, "unknown_topic"))
        cases.append(("certificate from another host",
                      sns.message(inner, cert_url="https://sns.evil.example.org/SimpleNotificationService-1.pem"),
                      401, "bad_signature"))
        cases.append(("a host that only ends like the suffix",
                      sns.message(inner, cert_url=sns.cert_url.replace("localhost", "evillocalhost")),
                      401, "bad_signature"))
        cases.append(("certificate over http",
                      sns.message(inner, cert_url=sns.cert_url.replace("https://", "http://")),
                      401, "bad_signature"))
        cases.append(("certificate not a .pem", sns.message(inner, cert_url=sns.base + "/cert.txt"),
                      401, "bad_signature"))
        cases.append(("stale timestamp", sns.message(inner, ts=time.time() - 2 * 3600), 401, "stale_timestamp"))
        cases.append(("certificate cannot be fetched", sns.message(inner, cert_url=sns.base + "/missing.pem"),
                      503, "cert_unavailable"))
        for name, m, status, reason in cases:
            st, body = post(srv, m)
            assert_problem(st, body, status)
            check(body.get("reason") == reason, (name, body))
        check(sns.got("evil") == [] and sns.got("cert.txt") == [], f"fetched an untrusted URL: {sns.gets}")
        # The unknown topic was refused before anything was fetched.
        check(len(sns.got(".pem")) == 2, sns.gets)  # the signing certificate once, missing.pem once
        for a in ("mallory@example.org", "victim@example.org"):
            check(suppressions(srv, a) == [], f"{a} suppressed by a message that did not verify")
        rows = srv.audit_rows("action = ?", ("events.auth_failure",))
        check(len(rows) == len(cases) and all(r["decision"] == "deny" for r in rows), rows)
        # Malformed bodies are 400 and change nothing.
        for raw in ("not json", "[]", json.dumps({"Type": "Notification"}),
                    json.dumps(dict(sns.message(inner), SignatureVersion="3"))):
            st, body = post(srv, {}, raw=raw)
            assert_problem(st, body, 400)
        # The same message, correctly signed, is taken in.
        st, body = post(srv, sns.message(inner))
        check(st == 200 and body["suppressed"] == 1, body)
    finally:
        srv.close()
        sns.close()


def test_a_subscription_confirmation_is_confirmed_by_fetching_its_subscribe_url():
    sns = FakeSns()
    srv = server(sns)
    try:
        srv.start()
        st, body = post(srv, sns.message("You have chosen to subscribe to the topic " + TOPIC,
                                         typ="SubscriptionConfirmation"))
        check(st == 200 and body["subscription"] == "confirmed", (st, body))
        got = sns.got("ConfirmSubscription")
        check(len(got) == 1 and "Token=2336412f" in got[0], sns.gets)
        # A SubscribeURL on another host is never fetched.
        st, body = post(srv, sns.message("subscribe", typ="SubscriptionConfirmation",
                                         subscribe_url="https://sns.evil.example.org/?Action=ConfirmSubscription"))
        assert_problem(st, body, 401)
        check(len(sns.got("ConfirmSubscription")) == 1, sns.gets)
        # A confirmation for a topic that is not configured is refused unfetched.
        st, body = post(srv, sns.message("subscribe", typ="SubscriptionConfirmation", topic=TOPIC + "-x"))
        assert_problem(st, body, 401)
        check(len(sns.got("ConfirmSubscription")) == 1, sns.gets)
        st, body = post(srv, sns.message("unsubscribed", typ="UnsubscribeConfirmation"))
        check(st == 200 and body["subscription"] == "ended", (st, body))
        check(len(sns.got("ConfirmSubscription")) == 1, "an unsubscribe confirmation was fetched")
        reasons = [r["reason"] for r in srv.audit_rows("action = ?", ("events.receive",))]
        check(reasons == ["subscription_confirmed", "bad_subscribe_url", "unsubscribe_confirmed"], reasons)
    finally:
        srv.close()
        sns.close()


def test_the_test_ca_file_is_refused_in_production_and_unconfigured_ses_is_404():
    sns = FakeSns()
    env = {k: v for k, v in os.environ.items() if k != "CONSENTD_TEST_FAULTS"}
    srv = server(sns, env={})
    srv.env = env
    try:
        rc = srv.start(expect_fail=True)
        check(rc != 0 and "ca_file is a test setting" in srv.output, srv.output)
    finally:
        srv.close()
        sns.close()
    srv = Server()
    try:
        st, body = srv.call("POST", "/v1/events/ses", body="{}", headers={"Content-Type": "text/plain"})
        assert_problem(st, body, 404)
    finally:
        srv.close()


if __name__ == "__main__":
    run(globals())
