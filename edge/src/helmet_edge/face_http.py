"""The locker's face on its own screen: a small HTTP server on loopback, driven by :class:`~helmet_edge.face.Face`.

``GET /`` is the kiosk page (``face_page/``), ``GET /events`` pushes the screen as server-sent events
whenever it changes, ``GET /state`` is the same JSON once (for a technician's ``curl``), ``GET /poster.svg``
the station poster's QR code. ``POST /language`` (a resident's touch on the toggle) and ``POST /selftest``
(the technician's button, in maintenance mode only) leave a request for the locker's loop.

Python's own threading HTTP server is enough for one browser on the same Pi and costs no dependency
and little memory; it listens on loopback only (``FaceSettings.host``), and refuses a request whose
``Host`` is not the locker itself, so no web page elsewhere can reach it through the kiosk's browser.
"""

from __future__ import annotations

import io
import json
import logging
import threading
from functools import cache
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any, ClassVar

import segno

from helmet_edge.config import FaceSettings
from helmet_edge.face import Face

log = logging.getLogger(__name__)

KEEPALIVE_S = 5.0  # an idle event stream sends a comment this often: a closed page is noticed soon
MAX_BODY = 1024
_PAGE = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/face.js": ("face.js", "text/javascript; charset=utf-8"),
    "/face.css": ("face.css", "text/css; charset=utf-8"),
}


@cache
def _asset(name: str) -> bytes:
    return resources.files("helmet_edge").joinpath("face_page", name).read_bytes()


@cache
def _poster_svg(url: str) -> bytes:
    out = io.BytesIO()  # a whole SVG document (with its namespace), as an <img> needs
    segno.make(url, error="m", micro=False).save(out, kind="svg", scale=6, border=2, xmldecl=False)
    return out.getvalue()


class FaceServer:
    """Serves one :class:`Face` until :meth:`close`; ``port`` 0 in the settings takes a free one."""

    def __init__(self, face: Face, settings: FaceSettings) -> None:
        handler = type("BoundFaceHandler", (_Handler,), {"face": face})
        self.httpd = ThreadingHTTPServer((settings.host, settings.port), handler)
        self.httpd.daemon_threads = True
        self.port: int = self.httpd.server_address[1]
        self.url = f"http://{'localhost' if settings.host == 'localhost' else '127.0.0.1'}:{self.port}/"
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="face-http", daemon=True)

    def start(self) -> FaceServer:
        self._thread.start()
        log.info("the locker's face is at %s", self.url)
        return self

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    face: ClassVar[Face]
    protocol_version = "HTTP/1.1"
    server_version = "helmet-edge-face"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("face http: " + format, *args)

    def _host_ok(self) -> bool:
        port = self.server.server_port  # type: ignore[attr-defined]  # an HTTPServer's, set when it binds
        allowed = {f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"}
        if self.headers.get("Host", "") in allowed:
            return True
        log.warning("face http: refused a request for Host %r", self.headers.get("Host"))
        self._send_json(HTTPStatus.MISDIRECTED_REQUEST, {"error": "this page is for the locker's own screen"})
        return False

    def do_GET(self) -> None:
        if not self._host_ok():
            return
        path = self.path.split("?", 1)[0]
        if path in _PAGE:
            name, kind = _PAGE[path]
            self._send(HTTPStatus.OK, _asset(name), kind)
        elif path == "/events":
            self._events()
        elif path == "/state":
            self._send_json(HTTPStatus.OK, self.face.screen())
        elif path == "/poster.svg":
            url = self.face.poster_url
            if url is None:
                self._send_json(HTTPStatus.NOT_FOUND, {"error": "the cloud has not named this locker's station yet"})
            else:
                self._send(HTTPStatus.OK, _poster_svg(url), "image/svg+xml")
        else:
            self._send_json(HTTPStatus.NOT_FOUND, {"error": f"no {path} here"})

    def do_POST(self) -> None:
        if not self._host_ok():
            return
        path = self.path.split("?", 1)[0]
        body = self._body()
        if body is None:
            return
        if path == "/language":
            lang = body.get("lang")
            try:
                self.face.ask_language(lang if isinstance(lang, str) else "")
            except ValueError as exc:
                log.warning("face http: refused a language change: %s", exc)
                self._send_json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
                return
            self._send_json(HTTPStatus.ACCEPTED, {"lang": lang})
        elif path == "/selftest":
            if self.face.screen().get("mode") != "maintenance":
                self._send_json(HTTPStatus.CONFLICT, {"error": "the self-test runs in maintenance mode only"})
                return
            self.face.ask_selftest()
            self._send_json(HTTPStatus.ACCEPTED, {"selftest": "asked"})
        else:
            self._send_json(HTTPStatus.NOT_FOUND, {"error": f"no {path} here"})

    def _body(self) -> dict[str, Any] | None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            self._send_json(HTTPStatus.BAD_REQUEST, {"error": f"a body of 0 to {MAX_BODY} bytes, please"})
            return None
        raw = self.rfile.read(length) if length else b"{}"
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            data = None
        if not isinstance(data, dict):
            log.warning("face http: refused a body that is not a JSON object")
            self._send_json(HTTPStatus.BAD_REQUEST, {"error": "the body must be a JSON object"})
            return None
        return data

    def _events(self) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        version = -1
        try:
            self.wfile.write(b"retry: 1000\n\n")
            while True:
                screen = self.face.wait_newer(version, KEEPALIVE_S)
                if screen.get("version", -1) > version:
                    version = screen["version"]
                    self.wfile.write(b"data: " + json.dumps(screen, ensure_ascii=False).encode() + b"\n\n")
                else:
                    self.wfile.write(b": keepalive\n\n")
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            return  # the page went away (reloaded, closed); it reconnects by itself

    def _send_json(self, status: HTTPStatus, data: object) -> None:
        self._send(status, json.dumps(data, ensure_ascii=False).encode(), "application/json")

    def _send(self, status: HTTPStatus, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(body)
