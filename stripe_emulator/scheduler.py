"""Run callables soon or later on a small pool of daemon worker threads."""

from __future__ import annotations

import heapq
import itertools
import queue
import sys
import threading
import time
import traceback
from collections.abc import Callable

Job = Callable[[], None]


class Scheduler:
    """A timer thread feeding a pool of daemon workers; never blocks the caller.

    `after_job` runs on the worker after each job, whether the job failed or not.
    """

    def __init__(self, workers: int = 16, *, after_job: Job | None = None) -> None:
        self._workers = workers
        self._after_job = after_job
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._timers: list[tuple[float, int, Job]] = []
        self._counter = itertools.count()
        self._cond = threading.Condition()
        self._stopped = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start the timer thread and the workers (again, after a stop)."""
        self._stopped.clear()
        self._queue = queue.Queue()
        self._threads = []
        timer = threading.Thread(target=self._run_timers, name="emulator-timer", daemon=True)
        self._threads.append(timer)
        for n in range(self._workers):
            self._threads.append(
                threading.Thread(target=self._run_worker, name=f"emulator-worker-{n}", daemon=True)
            )
        for thread in self._threads:
            thread.start()

    def submit(self, job: Job) -> None:
        """Run `job` on a worker as soon as one is free."""
        if not self._stopped.is_set():
            self._queue.put(job)

    def call_later(self, delay: float, job: Job) -> None:
        """Run `job` on a worker after `delay` seconds."""
        if delay <= 0:
            self.submit(job)
            return
        with self._cond:
            heapq.heappush(self._timers, (time.monotonic() + delay, next(self._counter), job))
            self._cond.notify()

    def stop(self, timeout: float = 0.5) -> None:
        """Stop the threads; jobs still running are abandoned (the threads are daemons)."""
        self._stopped.set()
        with self._cond:
            self._timers.clear()
            self._cond.notify_all()
        for _ in range(self._workers):
            self._queue.put(None)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _run_timers(self) -> None:
        while not self._stopped.is_set():
            with self._cond:
                if not self._timers:
                    self._cond.wait()
                    continue
                due, _, job = self._timers[0]
                wait = due - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._timers)
            self.submit(job)

    def _run_worker(self) -> None:
        while True:
            job = self._queue.get()
            if job is None or self._stopped.is_set():
                return
            for step in (job, self._after_job):
                try:
                    if step is not None:
                        step()
                except Exception:
                    traceback.print_exc(file=sys.stderr)
