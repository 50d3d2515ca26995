"""When a failed task runs again: exponential backoff, a cap, and a last attempt.

One rule for every task of the project (the event task in `payments`, the signal tasks here), so
the settings `TASK_RETRY_BASE_SECONDS` and `TASK_RETRY_MAX_SECONDS` mean the same thing everywhere.
"""

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from django_tasks.base import Task

logger = logging.getLogger(__name__)


def retry_delay(*, attempt: int) -> timedelta:
    """Return how long to wait after the given failed attempt (1, 2, ...) before the next one."""
    seconds = settings.TASK_RETRY_BASE_SECONDS * 2 ** max(attempt - 1, 0)
    return timedelta(seconds=min(seconds, settings.TASK_RETRY_MAX_SECONDS))


def task_retry_enqueue(
    *, task: Task, attempt: int, max_attempts: int, kwargs: dict[str, Any]
) -> datetime | None:
    """Enqueue the task again after the backoff; return when it will run, or None when it will not.

    None when `attempt` was the last one, or when the backend cannot defer a task (the immediate
    backend of unit tests runs a task inside `enqueue`, so a retry there would be a tight loop).
    """
    if attempt >= max_attempts or not task.get_backend().supports_defer:
        return None
    run_after = timezone.now() + retry_delay(attempt=attempt)
    task.using(run_after=run_after).enqueue(**kwargs)
    return run_after
