"""Clients for the HTTP streams of `-mjpeg_port` / `-json_port` (darknet_py/http_stream.py), as a person's
tools meet them: a plain socket reading the multipart stream, a free loopback port to serve on."""
from __future__ import annotations

import socket

BOUNDARY = b"--mjpegstream\r\n"


def free_port() -> int:
    """A loopback port nothing listens on now (the OS's choice)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(port: int, path: str = "/", timeout: float = 60.0) -> socket.socket:
    """A connected socket that has sent ``GET path``; the caller reads the answer."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
    return sock


class MultipartReader:
    """Reads the JPEG parts of a multipart/x-mixed-replace answer from a socket, one at a time."""

    def __init__(self, sock: socket.socket):
        self.sock, self.buffer = sock, b""
        head = self._until(b"\r\n\r\n")
        self.headers = head.decode("latin-1")
        self._until(BOUNDARY)

    def _until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("the stream ended")
            self.buffer += chunk
        before, self.buffer = self.buffer.split(marker, 1)
        return before

    def next_jpeg(self) -> bytes:
        """The next part's body (its headers checked): complete once the following boundary has come."""
        part = self._until(b"\r\n" + BOUNDARY)
        headers, body = part.split(b"\r\n\r\n", 1)
        assert b"Content-Type: image/jpeg" in headers, headers
        return body
