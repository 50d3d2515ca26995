"""`process_events`: the worker that processes stored Stripe events and sends the signals they make due."""

import logging
import os
import signal
import socket
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.utils.autoreload import DJANGO_AUTORELOAD_ENV, run_with_reloader

from payments.worker import Worker

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Process the Stripe events the webhook stores, a batch at a time, and send the signals they make "
        "due; run one or more beside the web server (several on PostgreSQL, one on SQLite). SIGTERM or "
        "Ctrl-C finishes the event in hand and gives back the rest of the batch."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        for option, kind, setting, text in (
            ("--batch-size", int, "WORKER_BATCH_SIZE", "Events claimed per statement"),
            ("--concurrency", int, "WORKER_CONCURRENCY", "Worker threads, one connection each; 1 on SQLite"),
            ("--poll", float, "WORKER_POLL_SECONDS", "Seconds to wait when nothing is due"),
        ):
            value = getattr(settings, setting)
            parser.add_argument(
                option, type=kind, default=value, help=f"{text} (default {setting}, {value})."
            )
        parser.add_argument("--once", action="store_true", help="Process what is due, then exit (for cron).")
        parser.add_argument("--reload", action="store_true", help="Restart when a Python file changes.")

    def handle(self, *args: str, **options: Any) -> None:
        batch, concurrency = int(options["batch_size"]), int(options["concurrency"])
        if batch < 1 or concurrency < 1:
            raise CommandError("--batch-size and --concurrency must be at least 1.")
        if connection.vendor == "sqlite" and concurrency > 1:
            raise CommandError("SQLite has one writer at a time: run one worker thread (--concurrency 1).")
        if options["reload"] and os.environ.get(DJANGO_AUTORELOAD_ENV) != "true":
            run_with_reloader(lambda: self.handle(*args, **{**options, "reload": False}))
            return
        name = f"{socket.gethostname()}:{os.getpid()}"
        workers = [
            Worker(batch_size=batch, poll_seconds=float(options["poll"]), name=f"{name}/{n}")
            for n in range(concurrency)
        ]
        crashed: list[BaseException] = []

        def stop(*signal_args: object) -> None:
            for worker in workers:
                worker.stop()

        def run(worker: Worker) -> None:
            try:
                worker.run(once=options["once"])
            except BaseException as exc:
                logger.exception("%s: crashed; stopping the other workers", worker.name)
                crashed.append(exc)
                stop()
            finally:
                connection.close()

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, stop)
            signal.signal(signal.SIGINT, stop)
        threads = [threading.Thread(target=run, args=(worker,), name=worker.name) for worker in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            # A timeout, so that the main thread keeps receiving signals while it waits.
            while thread.is_alive():
                thread.join(0.5)
        if crashed:
            # A supervisor restarts a worker that exits with an error, not one that looks done.
            raise CommandError(f"a worker thread crashed: {type(crashed[0]).__name__}: {crashed[0]}")
        if int(options["verbosity"]) >= 1 and options["once"]:
            self.stdout.write(f"{sum(worker.processed for worker in workers)} events processed.")
