"""A real SMTP server for the tests (aiosmtpd), on a free local port, keeping every message it accepts."""

import asyncio
import socket
import threading
from collections.abc import Callable
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from django.db import connections


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SmtpServer:
    """Accepts every message (or answers `reply`); while `holding` is set, DATA waits before answering, as
    a slow server's does, and `on_data` runs (in a thread of its own, so it may use the database) first;
    `hang_up` drops the connection on the next message instead of answering."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.messages: list[EmailMessage] = []
        self.holding = threading.Event()
        self.reply = "250 Message accepted for delivery"
        self.on_data: Callable[[], None] | None = None
        self.hang_up = False
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        reply = self.reply
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        if self.on_data:
            await asyncio.get_running_loop().run_in_executor(None, self._on_data)
        while self.holding.is_set():
            await asyncio.sleep(0.02)
        if self.hang_up:
            self.hang_up = False
            server.transport.close()
        return reply

    def _on_data(self) -> None:
        try:
            self.on_data()
        finally:
            connections.close_all()  # this thread's, or the test database could not be dropped

    def start(self) -> "SmtpServer":
        self._controller.start()
        return self

    def stop(self) -> None:
        self.holding.clear()
        self._controller.stop()

    def env(self) -> dict[str, str]:
        """Return the environment a worker process needs to send through this server."""
        return {"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(self.port)}

    def subjects(self) -> list[str]:
        return [str(message["Subject"]) for message in self.messages]


def body(message: EmailMessage, kind: str) -> str:
    """Return the message's plain or html part."""
    return message.get_body((kind,)).get_content()
