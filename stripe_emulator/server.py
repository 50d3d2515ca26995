"""HTTP plumbing: read requests, route them to the /v1, control or hosted-page front."""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

from .control import ControlFront
from .core import Emulator
from .errors import StripeError
from .hosted import HostedFront
from .http_types import Response, json_response
from .ids import new_id
from .v1 import V1Front

MAX_BODY = 10 * 1024 * 1024


class EmulatorHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server whose handler threads never block shutdown."""

    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog of 5 makes bursts of clients wait for SYN retries.
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], emulator: Emulator, *, log_requests: bool = False) -> None:
        super().__init__(address, RequestHandler)
        self.v1 = V1Front(emulator)
        self.control = ControlFront(emulator)
        self.hosted = HostedFront(emulator)
        self.save_state = emulator.save_state
        self.log_requests = log_requests


class RequestHandler(BaseHTTPRequestHandler):
    """Dispatch each request by path prefix and write the answer."""

    server: EmulatorHTTPServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without this each answer waits ~40 ms.
    disable_nagle_algorithm = True

    def version_string(self) -> str:
        """Name the server in the Server header."""
        return "stripe-emulator"

    def do_GET(self) -> None:
        """Answer a GET."""
        self._dispatch()

    def do_POST(self) -> None:
        """Answer a POST."""
        self._dispatch()

    def do_DELETE(self) -> None:
        """Answer a DELETE."""
        self._dispatch()

    def do_HEAD(self) -> None:
        """Answer a HEAD like a GET without a body."""
        self._dispatch(send_body=False)

    def _dispatch(self, send_body: bool = True) -> None:
        request_id = new_id("req_")
        method = "GET" if self.command == "HEAD" else self.command
        url = urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        try:
            body = self._read_body()
        except ValueError as exc:
            self._write(json_response(413, StripeError(413, str(exc)).envelope()), send_body)
            return
        if path == "/v1" or path.startswith("/v1/"):
            response = self.server.v1.handle(method, path, url.query, self.headers, body, request_id)
        elif path.startswith("/_emulator/"):
            response = self.server.control.handle(
                method,
                path,
                body,
                request_id,
                query=url.query,
                content_type=self.headers.get("Content-Type", ""),
            )
        elif path.startswith("/pay/") and path.count("/") == 2:
            response = self.server.hosted.handle(method, unquote(path[5:]), body, request_id)
        else:
            response = json_response(
                404,
                StripeError(404, f"Unrecognized request URL ({method}: {path}).").envelope(request_id),
                {"Request-Id": request_id},
            )
        # Before answering: once the client has its answer, the change is in the state file.
        self.server.save_state()
        self._write(response, send_body)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.close_connection = True
            raise ValueError("Request body too large.")
        return self.rfile.read(length) if length > 0 else b""

    def _write(self, response: Response, send_body: bool) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if send_body:
            self.wfile.write(response.body)

    def log_message(self, format: str, *args: object) -> None:
        """Log requests to stderr only when asked to."""
        if self.server.log_requests:
            sys.stderr.write(f"[stripe-emulator] {self.address_string()} {format % args}\n")
