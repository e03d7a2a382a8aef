"""AlexeyAB's `-mjpeg_port` and `-json_port` (its http_stream.cpp): a small HTTP server in threads of its own,
frames in, clients out. `detector train` serves its chart, `detector demo` its drawn frames and JSON blocks.

The producer (the training loop, the demo) only ever calls :meth:`StreamServer.publish`: it stores the frame
in a short history of fixed length (the latest frame, or the last few JSON blocks) and wakes the client
threads; it never waits on a client. Each client has a thread (the standard library's
``ThreadingHTTPServer``) that waits for a frame newer than the last one it sent, with a timeout so that it
notices the server stopping, and writes with a socket timeout: a client that never reads is dropped once its
socket buffer is full, one that disconnects mid-frame at the failed write, and neither slows the producer.
A frame's picture is drawn and encoded at most once, by the first client that needs it (:class:`Frame`), so a
run nobody watches pays nothing for it.

Wire formats as AlexeyAB's: MJPEG is ``multipart/x-mixed-replace; boundary=mjpegstream`` with one
``image/jpeg`` part per frame (browsers, VLC and OpenCV's ``VideoCapture("http://host:port/")`` show it);
the JSON stream is one ``application/json`` array whose elements are the frames' JSON blocks (the demo hands
in AB's framing: ``[\\n`` first, ``, \\n`` between blocks, ``\\n]`` when the run ends). Bound to 127.0.0.1
unless told otherwise; a port that cannot be listened on is one warning and the run goes on without it.
"""
from __future__ import annotations

import collections
import json
import math
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Optional

from .errors import UsageError, warn

BOUNDARY = "mjpegstream"           # AB's boundary name
JPEG_QUALITY = 80                  # AB uses 30 for camera frames; a chart's thin lines and text need more
MAX_CLIENTS = 64                   # more at once get 503 (50 must work)
SEND_TIMEOUT = 5.0                 # seconds a write may block before the client is dropped
WAIT = 0.5                         # seconds a client thread waits for a frame before looking at the server again
SEND_BUFFER = 128 * 1024           # a client's socket buffer: a client that never reads fills it within a few
                                   # frames (so few are drawn for it), a LAN client still gets ~100 MB/s


class Frame:
    """One published frame: a picture (made by ``picture()``, BGR uint8, only when first asked for) and/or a
    text (a JSON block or a status object). Each encoding is computed once, whichever client thread asks."""

    def __init__(self, picture: Optional[Callable[[], object]] = None, text: Optional[str] = None):
        self._picture, self.text = picture, text
        self._image = None
        self._lock = threading.Lock()
        self._cache: dict[str, bytes] = {}

    def encoded(self, extension: str) -> bytes:
        """The picture as ``.jpg`` or ``.png`` bytes."""
        with self._lock:
            if extension not in self._cache:
                import cv2

                if self._image is None:
                    self._image = self._picture()
                params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if extension == ".jpg" else []
                ok, data = cv2.imencode(extension, self._image, params)
                self._cache[extension] = data.tobytes() if ok else b""
            return self._cache[extension]


@dataclass(frozen=True)
class Route:
    """What a path serves: ``mjpeg`` (the stream of pictures), ``text_stream`` (the texts as they come, in
    ``framing``: what opens the stream, what separates two texts, what closes it; ``content_type`` says what
    they make), ``png`` (the latest picture) or ``json`` (the latest text)."""
    kind: str
    framing: tuple[str, str, str] = ("", "", "")
    content_type: str = "application/json"


class StreamServer:
    """The server: :meth:`publish` frames, :meth:`close` when the run ends (joins every thread it started)."""

    def __init__(self, routes: dict[str, Route], port: int, bind: str = "127.0.0.1", history: int = 1,
                 max_clients: int = MAX_CLIENTS, send_timeout: float = SEND_TIMEOUT):
        self.routes, self.max_clients = routes, max_clients
        self._changed = threading.Condition()
        self._frames: collections.deque = collections.deque(maxlen=history)    # (sequence number, Frame)
        self._sequence = 0
        self._closing = False
        self._clients: set[threading.Thread] = set()
        self._httpd = _Httpd((bind, port), _handler(self, send_timeout))
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name=f"darknet_py http {bind}:{port}", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/"

    def publish(self, frame: Frame) -> None:
        """Make ``frame`` the newest; never waits for a client."""
        with self._changed:
            self._sequence += 1
            self._frames.append((self._sequence, frame))
            self._changed.notify_all()

    def close(self) -> None:
        """Let the streams end (the JSON array is closed), stop accepting, and join every thread."""
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        self._httpd.shutdown()
        self._thread.join()                  # no request is accepted after this: every handler is known
        for thread in self._httpd.handler_threads():
            thread.join()
        self._httpd.server_close()

    # -- used by the client threads ------------------------------------------------------------------------

    def latest(self) -> tuple[int, Optional[Frame]]:
        with self._changed:
            return self._frames[-1] if self._frames else (0, None)

    def frames_after(self, sequence: int) -> tuple[list[tuple[int, Frame]], bool]:
        """The frames newer than ``sequence`` (waiting up to WAIT for one), and whether the server closes."""
        with self._changed:
            self._changed.wait_for(lambda: self._sequence > sequence or self._closing, WAIT)
            return [(n, f) for n, f in self._frames if n > sequence], self._closing

    def enter(self) -> bool:
        with self._changed:
            if len(self._clients) >= self.max_clients or self._closing:
                return False
            self._clients.add(threading.current_thread())
            return True

    def leave(self) -> None:
        with self._changed:
            self._clients.discard(threading.current_thread())


class _Httpd(ThreadingHTTPServer):
    """The standard library's threading server, keeping the set of its live handler threads (daemon threads,
    so none can hold the interpreter's exit; :meth:`StreamServer.close` joins them)."""
    request_queue_size = 128             # 50 clients connecting at once are queued, not refused
    daemon_threads = True

    def __init__(self, address, handler):
        self._handlers: set[threading.Thread] = set()
        self._handlers_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request, client_address) -> None:
        thread = threading.Thread(target=self._serve, args=(request, client_address), daemon=True)
        with self._handlers_lock:
            self._handlers.add(thread)       # recorded before it starts: close() cannot miss it
        thread.start()

    def _serve(self, request, client_address) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._handlers_lock:
                self._handlers.discard(threading.current_thread())

    def handler_threads(self) -> list[threading.Thread]:
        with self._handlers_lock:
            return list(self._handlers)


def _handler(server: StreamServer, send_timeout: float) -> type:
    class Handler(_StreamHandler):
        timeout = send_timeout
        stream = server
    return Handler


class _StreamHandler(BaseHTTPRequestHandler):
    stream: StreamServer
    server_version = "darknet_py"

    def setup(self) -> None:
        self.request.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        super().setup()

    def do_GET(self) -> None:          # noqa: N802 - the standard library's name
        self.route = route = self.stream.routes.get(self.path.split("?", 1)[0])
        if route is None:
            self.send_error(404, "the stream is at /")
            return
        if not self.stream.enter():
            self.send_error(503, "too many clients")
            return
        try:
            getattr(self, "_" + route.kind)()
        except Exception:              # noqa: BLE001 - the client left or stopped reading (timeout), or the
            pass                       # frame could not be drawn: drop this client, never the producer
        finally:
            self.stream.leave()

    def log_message(self, format, *args) -> None:     # noqa: A002 - no line per request on the console
        pass

    def _headers(self, content_type: str, length: Optional[int] = None) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Pragma", "no-cache")
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.send_header("Connection", "close")
        self.end_headers()

    def _single(self, content_type: str, body: Optional[bytes]) -> None:
        if body is None:
            self.send_error(503, "no frame yet")
            return
        self._headers(content_type, len(body))
        self.wfile.write(body)

    def _png(self) -> None:
        _, frame = self.stream.latest()
        self._single("image/png", None if frame is None else frame.encoded(".png"))

    def _json(self) -> None:
        _, frame = self.stream.latest()
        self._single("application/json", None if frame is None else frame.text.encode())

    def _frames(self, sequence: int):
        """The frames after ``sequence``, as they come, until the server closes."""
        while True:
            frames, closing = self.stream.frames_after(sequence)
            for sequence, frame in frames:
                yield frame
            if closing and not frames:
                return

    def _start(self) -> int:
        """Where a new stream client starts: at the current frame (taken before any byte is sent, so a client
        that has read the headers gets every frame published after them)."""
        sequence, _ = self.stream.latest()
        return max(sequence - 1, 0)

    def _mjpeg(self) -> None:
        start = self._start()
        self._headers(f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        part = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n\r\n".encode()
        self.wfile.write(part)
        for frame in self._frames(start):
            # a part ends where the next one's header begins: sending that header at once makes a browser
            # show the frame now, not when the next frame comes (possibly minutes later in training)
            self.wfile.write(frame.encoded(".jpg") + b"\r\n" + part)

    def _text_stream(self) -> None:
        start = self._start()
        opening, separator, closing = self.route.framing
        self._headers(self.route.content_type)
        self.wfile.write(opening.encode())
        first = True
        for frame in self._frames(start):
            self.wfile.write(((separator if not first else "") + frame.text).encode())
            first = False
        self.wfile.write(closing.encode())


def start_server(flag: str, routes: dict[str, Route], port: Optional[int], bind: str, history: int = 1,
                 say: Callable[[str], None] = print) -> Optional[StreamServer]:
    """The server for ``flag`` (e.g. ``-mjpeg_port``), or None: when ``port`` is unset or not positive (as
    AlexeyAB), or when it cannot be listened on (one warning: the run goes on without it). An address that
    is not one (``--bind``) is a usage error."""
    if port is None or port <= 0:
        return None
    try:
        server = StreamServer(routes, port, bind, history)
    except socket.gaierror as exc:
        raise UsageError(f"--bind {bind}: not an address this machine has ({exc.strerror})", value=bind) from None
    except OSError as exc:
        warn(f"{flag} {port}: cannot listen on {bind}:{port} ({exc.strerror}); going on without it")
        return None
    say(f"{flag} {port}: serving at {server.url}" + ("" if len(routes) == 1 else
        " (" + ", ".join(path for path in routes if path != "/") + " too)"))
    return server


def status_text(**fields) -> str:
    """A JSON object for /status.json (NaN/inf written as null)."""
    clean = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in fields.items()}
    return json.dumps(clean)
