"""Slow clients: connections that trickle headers or bodies, stall in the
TLS handshake or sit idle must not keep other clients from being served
promptly; idle ones are closed after the idle timeout (30 s), and one
address cannot hold more than its share of connections (256).

Attackers connect from 127.0.0.1 and 127.0.0.3, the well-behaved client
from 127.0.0.2 (all loopback), so the per-address limit applies to each as
it would to separate hosts. The whole file runs in under a minute.
"""
import os
import socket
import ssl
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import run  # noqa: E402

GOOD_SOURCE = "127.0.0.2"
PROMPT_S = 2.0


def connect(srv, source="127.0.0.1", tls=True, timeout=10):
    raw = socket.create_connection(("127.0.0.1", srv.port), timeout=timeout,
                                   source_address=(source, 0))
    if not tls:
        return raw
    ctx = ssl.create_default_context(cafile=srv.cafile)
    return ctx.wrap_socket(raw, server_hostname="localhost")


def good_request(srv, method="GET", path="/healthz", body=b"", token=None):
    """One request on a fresh connection from the well-behaved address;
    returns (status, seconds)."""
    t0 = time.time()
    s = connect(srv, GOOD_SOURCE)
    head = f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
    if token:
        head += f"Authorization: Bearer {token}\r\n"
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    s.sendall(head.encode() + b"\r\n" + body)
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    return int(data.split(b" ", 2)[1]), time.time() - t0


def is_closed(s):
    """True when the server has closed s (EOF, reset, or a TLS close)."""
    s.setblocking(False)
    try:
        data = s.recv(4096)
        return data == b"" or b"HTTP/1.1 4" in data
    except (BlockingIOError, ssl.SSLWantReadError):
        return False
    except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError):
        return True


class Slowloris:
    def __init__(self, srv):
        self.srv = srv
        self.socks = []
        self.stop = threading.Event()

    def open(self, headers=120, bodies=40, raw_tcp=40, half_handshake=20):
        for i in range(headers):
            s = connect(self.srv)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
            self.socks.append(s)
        for i in range(bodies):
            s = connect(self.srv)
            s.sendall(b"POST /v1/contacts HTTP/1.1\r\nHost: localhost\r\n"
                      b"Authorization: Bearer " + self.srv.tokens["admin"].encode() + b"\r\n"
                      b"Content-Type: application/json\r\nContent-Length: 60000\r\n\r\n{\"name\": \"")
            self.socks.append(s)
        for i in range(raw_tcp):
            self.socks.append(connect(self.srv, tls=False))
        for i in range(half_handshake):
            s = connect(self.srv, tls=False)
            s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # a ClientHello's first bytes
            self.socks.append(s)

    def trickle(self, every=1.0):
        def loop():
            while not self.stop.wait(every):
                for s in list(self.socks):
                    try:
                        if isinstance(s, ssl.SSLSocket):
                            s.send(b"x")
                    except (OSError, ssl.SSLError):
                        pass
        threading.Thread(target=loop, daemon=True).start()

    def close(self):
        self.stop.set()
        for s in self.socks:
            try:
                s.close()
            except OSError:
                pass


def test_slowloris_does_not_delay_other_clients_and_idle_connections_are_dropped(srv):
    t_start = time.time()
    attack = Slowloris(srv)
    attack.open()
    attack.trickle()
    # While 220 slow connections trickle, another client is served promptly,
    # over new connections (each a full TLS handshake), for reads and writes.
    worst = 0.0
    for i in range(20):
        st, dt = good_request(srv)
        assert st == 200, st
        worst = max(worst, dt)
    body = b'{"email": "prompt@example.org", "collected_for": ["service"]}'
    st, dt = good_request(srv, "POST", "/v1/contacts", body, token=srv.tokens["admin"])
    assert st == 201, st
    worst = max(worst, dt)
    assert worst < PROMPT_S, f"a request took {worst:.2f}s while slow clients were connected"

    # Connections that send nothing more (raw TCP, a stalled handshake, a
    # header left unfinished) are closed after the idle timeout.
    idle = [connect(srv, tls=False) for _ in range(10)]
    stalled = []
    for _ in range(10):
        s = connect(srv)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
        stalled.append(s)
    attack.close()
    # The idle timeout is 30 s; on a loaded 2-core CI machine the server's
    # timeout sweep can run late, so allow 30 s on top before calling it a
    # leak (one run in many saw a connection outlive a 10 s margin).
    deadline = time.time() + 60
    while time.time() < deadline:
        if all(is_closed(s) for s in idle + stalled):
            break
        time.sleep(1)
    left_idle = sum(not is_closed(s) for s in idle)
    left_stalled = sum(not is_closed(s) for s in stalled)
    assert left_idle + left_stalled == 0, (
        f"{left_idle} raw and {left_stalled} stalled-header connections still open after "
        f"{time.time() - t_start:.0f}s")
    for s in idle + stalled:
        s.close()
    st, _ = good_request(srv)
    assert st == 200


def test_one_address_cannot_take_every_connection(srv):
    # 300 connections from one address: beyond the per-address limit (256)
    # the server closes them at once; another address is still served.
    hog = []
    for _ in range(300):
        try:
            hog.append(connect(srv, source="127.0.0.3", tls=False, timeout=5))
        except OSError:
            pass
    time.sleep(1.0)
    closed = sum(is_closed(s) for s in hog)
    assert closed >= 300 - 256 - 5, f"only {closed} of {len(hog)} connections from one address were refused"
    worst = 0.0
    for _ in range(10):
        st, dt = good_request(srv)
        assert st == 200
        worst = max(worst, dt)
    assert worst < PROMPT_S, worst
    for s in hog:
        s.close()


if __name__ == "__main__":
    run(globals())
