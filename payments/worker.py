"""The task worker: django-tasks-db's loop, plus follow-ups run at once and a database that may go away.

Follow-ups. A task that queues another to run now (the event task queues the fulfillment signal in the
fulfilling transaction) would leave it for the worker's next poll: a connection check, a transaction
and an ordered `SELECT ... FOR UPDATE SKIP LOCKED`, a wait of `--interval` when the queue looks empty.
This worker claims each such task by its id as soon as the task that queued it returns, with one
conditional UPDATE (`task_claim`), and runs it as its loop would (the library's `run_task`). The task
row was written in the queuing transaction as before, so nothing depends on this: if the worker dies
first, the task is READY for any worker, or RUNNING under a lease.

A database that goes away (a restart, a failover). The library's loop ends the process on a database
error outside a task, and marks a task FAILED when the error came from inside it, which for this
project would leave its event unprocessed with no retry queued. Here the loop starts again once the
database answers, and the task that was running when it failed is queued again at once
(`task_requeue`): every task of this project is safe to run twice (see `payments.worker`).
"""

import logging
import threading
import time
from datetime import timedelta
from typing import Any

from django.db import InterfaceError, OperationalError, connection, connections
from django.utils import timezone
from django_tasks import TaskResultStatus
from django_tasks.signals import task_enqueued
from django_tasks_db.management.commands import db_worker
from django_tasks_db.models import DBTaskResult

logger = logging.getLogger(__name__)

# The exceptions, by the path django-tasks-db stores, that say the database was lost, not the task.
DATABASE_LOST = frozenset(f"django.db.utils.{cls.__name__}" for cls in (OperationalError, InterfaceError))
RECONNECT_PAUSE_SECONDS = 1.0


class TaskWorker(db_worker.Worker):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._follow_ups: list[DBTaskResult] | None = None
        self._current: DBTaskResult | None = None
        self._thread_id: int | None = None

    def run(self) -> None:
        self._thread_id = threading.get_ident()
        task_enqueued.connect(self._collect, dispatch_uid=("task-follow-ups", id(self)))
        try:
            while True:
                try:
                    return super().run()
                except (OperationalError, InterfaceError) as exc:
                    if self.batch or not self.running:
                        raise
                    self._database_lost(exc)
        finally:
            task_enqueued.disconnect(dispatch_uid=("task-follow-ups", id(self)))

    def run_task(self, db_task_result: DBTaskResult) -> None:
        self._current, self._follow_ups = db_task_result, []
        try:
            super().run_task(db_task_result)
        finally:
            follow_ups, self._follow_ups = self._follow_ups, None
        if (
            db_task_result.status == TaskResultStatus.FAILED
            and db_task_result.exception_class_path in DATABASE_LOST
        ):
            task_requeue(task=db_task_result, reason="the database failed under it")
        self._current = None
        for follow_up in follow_ups:
            if self.running and task_claim(task=follow_up, worker_id=self.worker_id):
                self.run_task(follow_up)

    def _collect(self, sender: Any, task_result: Any, **kwargs: Any) -> None:
        """Note a task queued by the running task, in this thread, to run now on this worker's queues."""
        if self._follow_ups is None or threading.get_ident() != self._thread_id:
            return
        db_result = getattr(task_result, "db_result", None)
        if (
            db_result is not None
            and task_result.task.run_after is None
            and task_result.backend == self.backend_name
            and (self.process_all_queues or task_result.task.queue_name in self.queue_names)
            and task_result.task.queue_name not in self.excluded_queue_names
        ):
            self._follow_ups.append(db_result)

    def _database_lost(self, exc: Exception) -> None:
        logger.error(
            "worker %s: the database failed (%s: %s); trying again in %.0f s",
            self.worker_id,
            type(exc).__name__,
            str(exc).strip(),
            RECONNECT_PAUSE_SECONDS,
        )
        lost, self._current, self._follow_ups = self._current, None, None
        self.running_task = False
        while self.running:
            time.sleep(RECONNECT_PAUSE_SECONDS)
            try:
                connections.close_all()
                connection.ensure_connection()
                if lost is not None:
                    task_requeue(task=lost, reason="the database failed while it ran")
                return
            except (OperationalError, InterfaceError):
                continue


logger = logging.getLogger(__name__)


def task_leases_expire(*, lease: timedelta) -> int:
    """Return to the queue the tasks claimed longer ago than the lease; return how many."""
    cutoff = timezone.now() - lease
    expired = list(
        DBTaskResult.objects.filter(status=TaskResultStatus.RUNNING, started_at__lt=cutoff).values_list(
            "id", "task_path", "started_at", "worker_ids"
        )[:500]
    )
    if not expired:
        return 0
    # Conditional: a task that finished, or was claimed again, since the read above is left alone.
    released = DBTaskResult.objects.filter(
        id__in=[row[0] for row in expired], status=TaskResultStatus.RUNNING, started_at__lt=cutoff
    ).update(status=TaskResultStatus.READY)
    for task_id, task_path, started_at, worker_ids in expired:
        logger.warning(
            "task %s %s: claimed by worker %s at %s and never finished (lease %ss): queued again",
            task_id,
            task_path,
            worker_ids[-1] if worker_ids else "-",
            started_at.isoformat(),
            int(lease.total_seconds()),
        )
    return released


def task_claim(*, task: DBTaskResult, worker_id: str) -> bool:
    """Claim a READY task by its id, as the worker's poll would; return whether this worker got it.

    One conditional UPDATE: a task another worker claimed meanwhile (its row locked, or already RUNNING)
    is left to that worker. The claim starts the task's lease, as the poll's does.
    """
    started_at, worker_ids = timezone.now(), [*task.worker_ids, worker_id]
    claimed = DBTaskResult.objects.filter(id=task.id, status=TaskResultStatus.READY).update(
        status=TaskResultStatus.RUNNING, started_at=started_at, worker_ids=worker_ids
    )
    if claimed:
        task.status, task.started_at, task.worker_ids = TaskResultStatus.RUNNING, started_at, worker_ids
    return bool(claimed)


def task_requeue(*, task: DBTaskResult, reason: str) -> bool:
    """Return a task to the queue at once because the database failed under it; return whether it was.

    Only under this claim (its `started_at`): a task claimed again since, by any worker, is left alone, and
    so is one that finished well. A task the library marked FAILED for that database error goes back too.
    """
    requeued = DBTaskResult.objects.filter(
        id=task.id,
        started_at=task.started_at,
        status__in=[TaskResultStatus.RUNNING, TaskResultStatus.FAILED],
    ).update(status=TaskResultStatus.READY, finished_at=None, exception_class_path="", traceback="")
    if requeued:
        logger.warning("task %s %s: %s; queued again", task.id, task.task_path, reason)
    return bool(requeued)
