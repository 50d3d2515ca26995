"""Leases on claimed tasks: a task whose worker died goes back to the queue.

django-tasks-db claims a task by setting it RUNNING (with `started_at`) and finishes it by setting it
SUCCESSFUL or FAILED; a worker killed in between (SIGKILL, OOM, a lost machine) leaves it RUNNING for
ever, and nothing in the library runs it again. Here a claim is a lease of TASK_LEASE_SECONDS from
`started_at`: past it, any worker returns the task to READY, and the next free worker runs it again.

That is safe because every task of this project is idempotent by the database: the event task finishes
an event only from an unfinished status, the fulfillment task claims the signal with a conditional
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
