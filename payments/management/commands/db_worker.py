"""`db_worker`: django-tasks-db's worker, with follow-ups, database restarts and leases (see below)."""

import logging
import os
import threading
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError
from django.db import close_old_connections, connection
from django.utils.autoreload import DJANGO_AUTORELOAD_ENV, run_with_reloader
from django_tasks_db.management.commands import db_worker

from payments.worker import TaskWorker, task_leases_expire

logger = logging.getLogger(__name__)


class Command(db_worker.Command):
    help = (
        "Run a database task worker (django-tasks-db's db_worker). Besides running tasks, it runs at once "
        "the tasks a task queues for now, outlives a database restart, and returns to the queue, every "
        "TASK_LEASE_SECONDS/4, the tasks claimed longer ago than TASK_LEASE_SECONDS by a worker that never "
        "finished them (one that was killed). Run one or more beside the web server."
    )

    def configure_logging(self, verbosity: int) -> None:
        # The library sets its loggers to INFO at the default verbosity: a line as each task starts and
        # another as it ends. At verbosity 1, leave them at settings.LOGGING's level (DJANGO_LOG_LEVEL).
        if verbosity != 1:
            super().configure_logging(verbosity)

    def handle(
        self,
        *,
        verbosity: int,
        queue_name: str,
        interval: float,
        batch: bool,
        backend_name: str,
        startup_delay: bool,
        reload: bool,
        max_tasks: int | None,
        worker_id: str,
        exclude_queues: str,
        **options: Any,
    ) -> None:
        # The library's `handle`, building this project's TaskWorker instead of its Worker.
        self.configure_logging(verbosity)
        if reload and batch:
            logger.warning("--reload and --batch cannot be specified together: autoreload disabled")
            reload = False
        queue_names = queue_name.split(",")
        excluded = exclude_queues.split(",") if exclude_queues else []
        if excluded and "*" not in queue_names:
            raise CommandError("--exclude-queues can only be used with --queue-name=*")
        worker = TaskWorker(
            queue_names=queue_names,
            interval=interval,
            batch=batch,
            backend_name=backend_name,
            startup_delay=startup_delay,
            max_tasks=max_tasks,
            worker_id=worker_id,
            excluded_queue_names=excluded,
        )
        # With --reload the parent process only restarts its child; the child is the worker.
        if not reload or os.environ.get(DJANGO_AUTORELOAD_ENV) == "true":
            lease = timedelta(seconds=settings.TASK_LEASE_SECONDS)
            self._expire(lease)  # a worker (re)started after a crash picks up its own lost tasks at once
            if not batch:
                threading.Thread(
                    target=self._expire_forever, args=(lease,), name="task-lease-sweeper", daemon=True
                ).start()
            worker.configure_signals()
        if reload:
            run_with_reloader(worker.run)
        else:
            worker.run()

    def _expire(self, lease: timedelta) -> None:
        try:
            task_leases_expire(lease=lease)
        except Exception:
            # The database being away is the worker loop's problem to report; the next sweep tries again.
            logger.exception("task lease sweep failed")
        finally:
            close_old_connections()

    def _expire_forever(self, lease: timedelta) -> None:
        interval = min(max(lease.total_seconds() / 4, 0.5), 60.0)
        stop = threading.Event()
        try:
            while not stop.wait(interval):
                self._expire(lease)
        finally:
            connection.close()
