"""Project wiring. The Celery app is re-exported so `celery -A config` finds it."""
from .celery import app as celery_app

__all__ = ("celery_app",)
