"""A local SMTP sink for the mail tests, started by the test itself.

It speaks just enough ESMTP (RFC 5321) for libcurl: EHLO/HELO, STARTTLS
(RFC 3207, when offered), MAIL, RCPT, DATA, RSET, NOOP, QUIT. What a test
can turn: whether STARTTLS is offered, and a reply code for RCPT (a 5xx
to play a relay that refuses the recipient for good). It records every
session and every message (envelope, raw bytes, whether it came over
TLS). No third-party module: Debian's python3 may lack aiosmtpd, and the
deprecated smtpd module has no STARTTLS."""
import os
import socket
import ssl
import subprocess
import tempfile
import threading


def make_cert(folder):
    """A self-signed certificate for 127.0.0.1 and localhost: (cert, key)."""
    cert, key = os.path.join(folder, "relay.pem"), os.path.join(folder, "relay.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    return cert, key


class Sink:
    def __init__(self, offer_starttls=True):
        self.dir = tempfile.mkdtemp(prefix="consentd-smtp-")
        self.cert, self.key = make_cert(self.dir)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(self.cert, self.key)
        self.offer_starttls = offer_starttls
        self.rcpt_code = None  # e.g. "550 5.1.1 no such mailbox"
        self.sessions = 0
        self.messages = []  # dicts: from, rcpt, data (bytes), tls
        self.commands = []
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        self.stopped = True
        self.sock.close()

    def _accept(self):
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn):
        with self.lock:
            self.sessions += 1
        conn.settimeout(20)
        tls = False
        f = conn.makefile("rwb")
        env = {"from": None, "rcpt": []}

        def say(line):
            f.write(line.encode() + b"\r\n")
            f.flush()

        try:
            say("220 sink ESMTP")
            while True:
                raw = f.readline()
                if not raw:
                    return
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                verb = line.split(" ", 1)[0].upper()
                with self.lock:
                    self.commands.append(verb)
                if verb == "EHLO":
                    ext = ["8BITMIME", "SIZE 10485760"]
                    if self.offer_starttls and not tls:
                        ext.append("STARTTLS")
                    for e in ext:
                        say("250-" + e)
                    say("250 HELP")
                elif verb == "HELO":
                    say("250 sink")
                elif verb == "STARTTLS":
                    if not self.offer_starttls or tls:
                        say("502 5.5.1 STARTTLS not available")
                        continue
                    say("220 2.0.0 go ahead")
                    f.close()
                    conn = self.ctx.wrap_socket(conn, server_side=True)
                    tls = True
                    f = conn.makefile("rwb")
                    env = {"from": None, "rcpt": []}
                elif verb == "MAIL":
                    env = {"from": line[len("MAIL FROM:"):].strip().split(" ")[0], "rcpt": []}
                    say("250 2.1.0 ok")
                elif verb == "RCPT":
                    if self.rcpt_code:
                        say(self.rcpt_code)
                        continue
                    env["rcpt"].append(line[len("RCPT TO:"):].strip())
                    say("250 2.1.5 ok")
                elif verb == "DATA":
                    say("354 end with .")
                    data = []
                    while True:
                        d = f.readline()
                        if not d or d == b".\r\n":
                            break
                        data.append(d[1:] if d.startswith(b"..") else d)
                    with self.lock:
                        self.messages.append({"from": env["from"], "rcpt": list(env["rcpt"]),
                                              "data": b"".join(data), "tls": tls})
                    say("250 2.0.0 queued")
                elif verb in ("RSET", "NOOP"):
                    say("250 ok")
                elif verb == "QUIT":
                    say("221 bye")
                    return
                else:
                    say("502 5.5.2 unknown command")
        except (OSError, ssl.SSLError):
            return
        finally:
            try:
                conn.close()
            except OSError:
                pass
