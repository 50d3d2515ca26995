"""Leases on claimed tasks: a task whose worker died goes back to the queue.

django-tasks-db claims a task by setting it RUNNING (with `started_at`) and finishes it by setting it
SUCCESSFUL or FAILED; a worker killed in between (SIGKILL, OOM, a lost machine) leaves it RUNNING for
ever, and nothing in the library runs it again. Here a claim is a lease of TASK_LEASE_SECONDS from
`started_at`: past it, any worker returns the task to READY, and the next free worker runs it again.

That is safe because every task of this project is idempotent by the database: the event task finishes
an event only from an unfinished status, each signal task claims its signal with a conditional
UPDATE, and a killed worker's uncommitted work was rolled back with its connection. A task that merely
runs longer than its lease runs twice; keep the lease above the slowest task.
"""

import logging
from datetime import timedelta

from django.utils import timezone
from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult

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
