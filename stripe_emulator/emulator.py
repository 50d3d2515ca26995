"""EmulatorServer: the emulator served over HTTP on a background thread."""

from __future__ import annotations

import os
import threading
from types import TracebackType
from typing import Any

from .core import Emulator
from .server import EmulatorHTTPServer


class EmulatorServer(Emulator):
    """An offline Stripe emulator listening on host:port (port 0 picks a free one)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        webhook_url: str | None = None,
        webhook_secrets: list[str] | None = None,
        *,
        log_requests: bool = False,
        state_file: str | os.PathLike[str] | None = None,
        **knobs: Any,
    ) -> None:
        settings: dict[str, Any] = {"webhook_url": webhook_url, **knobs}
        if webhook_secrets:
            settings["webhook_secrets"] = webhook_secrets
        super().__init__(lambda: self.base_url, state_file=state_file, **settings)
        self.host = host
        self._requested_port = port
        self._log_requests = log_requests
        self._httpd: EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """Return the port listened on (the requested one before start)."""
        if self._httpd is not None:
            return int(self._httpd.server_address[1])
        return self._requested_port

    @property
    def base_url(self) -> str:
        """Return the URL to set STRIPE_API_BASE to."""
        host = self.host if ":" not in self.host else f"[{self.host}]"
        return f"http://{host}:{self.port}"

    def start(self) -> EmulatorServer:
        """Bind and serve on a daemon thread."""
        if self._httpd is not None:
            return self
        self._httpd = EmulatorHTTPServer(
            (self.host, self._requested_port), self, log_requests=self._log_requests
        )
        self.start_background()
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="stripe-emulator-http",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and stop the background workers; write the state file a last time."""
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        self.stop_background()
        self.save_state()

    def serve_forever(self) -> None:
        """Start and block until stop() is called from another thread."""
        self.start()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
