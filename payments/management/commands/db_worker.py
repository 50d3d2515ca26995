"""`db_worker`: django-tasks-db's worker, plus the lease that brings back tasks of workers that died."""

import logging
import os
import threading
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils.autoreload import DJANGO_AUTORELOAD_ENV
from django_tasks_db.management.commands import db_worker

from payments.services.leases import task_leases_expire

logger = logging.getLogger(__name__)


class Command(db_worker.Command):
    help = (
        "Run a database task worker (django-tasks-db's db_worker). Besides running tasks, it returns to the "
        "queue, every TASK_LEASE_SECONDS/4, the tasks claimed longer ago than TASK_LEASE_SECONDS by a "
        "worker that never finished them (one that was killed). Run one or more beside the web server."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        lease = timedelta(seconds=settings.TASK_LEASE_SECONDS)
        # With --reload the parent process only restarts its child; the child is the worker.
        if not options["reload"] or os.environ.get(DJANGO_AUTORELOAD_ENV) == "true":
            self._expire(lease)  # a worker (re)started after a crash picks up its own lost tasks at once
            if not options["batch"]:
                threading.Thread(
                    target=self._expire_forever, args=(lease,), name="task-lease-sweeper", daemon=True
                ).start()
        super().handle(*args, **options)

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
