"""Celery app and tasks: thin shells over submission ids; the work is tasks.jobs."""
