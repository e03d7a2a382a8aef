"""darknet_py/http_stream.py, the server behind `-mjpeg_port` / `-json_port`: loopback unless told otherwise,
50 clients at once, a client that never reads and one that leaves mid-frame never block the producer, a
client cap answered with 503, and no thread left once it is closed. Bounded waits only, no timing."""
from __future__ import annotations

import socket
import threading

import numpy as np
import pytest

from darknet_py.errors import UsageError
from darknet_py.http_stream import Frame, Route, StreamServer, start_server
from helpers.http import MultipartReader, http_get

ROUTES = {"/": Route("mjpeg"), "/status.json": Route("json")}


def _picture(seed: int, size=(700, 1000)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)    # JPEGs of ~1 MB


def _port(server: StreamServer) -> int:
    return int(server.url.rsplit(":", 1)[1].strip("/"))


def test_binds_loopback_by_default_and_refuses_a_bad_address():
    server = StreamServer(ROUTES, 0)
    try:
        assert server.url.startswith("http://127.0.0.1:")
    finally:
        server.close()
    assert start_server("-mjpeg_port", ROUTES, 0, "127.0.0.1", say=print) is None     # port 0: off, as AB
    server = StreamServer(ROUTES, 0, "127.0.0.2")        # --bind: that address, and only it
    try:
        assert server.url.startswith("http://127.0.0.2:")
        with pytest.raises(OSError):                     # not on 127.0.0.1
            socket.create_connection(("127.0.0.1", _port(server)), timeout=5).close()
    finally:
        server.close()
    with pytest.raises(UsageError, match="--bind no.such.host"):
        start_server("-mjpeg_port", ROUTES, 8090, "no.such.host", say=lambda _: None)


def test_fifty_clients_and_bad_clients_never_block_publish_and_close_leaves_no_thread():
    before = set(threading.enumerate())
    server = StreamServer(ROUTES, 0, send_timeout=2.0)
    port = _port(server)
    small = np.zeros((70, 100, 3), np.uint8)
    server.publish(Frame(lambda: small, '{"iteration": 1}'))
    never_reads = http_get(port)                         # connects, asks, never reads a byte
    leaves = http_get(port)
    leaves.recv(10)
    leaves.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    leaves.close()                                       # reset in the middle of a frame
    clients = [http_get(port) for _ in range(50)]
    readers = [MultipartReader(c) for c in clients]
    assert all(r.next_jpeg()[:2] == b"\xff\xd8" for r in readers)    # all 50 got the current frame
    for k in range(200):                                 # ~200 MB the idle client never takes: publish goes on
        picture = _picture(k % 4)
        server.publish(Frame(lambda picture=picture: picture, f'{{"iteration": {k + 2}}}'))
    with http_get(port, "/status.json") as sock:
        answer = b"".join(iter(lambda: sock.recv(65536), b""))
    assert answer.endswith(b'{"iteration": 201}')
    for c in clients:
        c.close()
    server.close()
    never_reads.close()
    assert set(threading.enumerate()) == before          # the server thread and every client thread joined


def test_clients_over_the_cap_get_503():
    server = StreamServer(ROUTES, 0, max_clients=2)
    try:
        server.publish(Frame(lambda: np.zeros((8, 8, 3), np.uint8), "{}"))
        held = [http_get(_port(server)) for _ in range(2)]
        for sock in held:
            MultipartReader(sock).next_jpeg()            # both are being served
        with http_get(_port(server)) as third:
            assert third.recv(100).startswith(b"HTTP/1.0 503")
        for sock in held:
            sock.close()
    finally:
        server.close()
