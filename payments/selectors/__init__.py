"""Reads for operators: the health of the task queue and the event inbox."""
