"""Celery tasks of the record. Beat runs `exchanges.seal_trail` every minute or so (the
entry lives in `CELERY_BEAT_SCHEDULE`, config/settings/base.py)."""
import logging

from celery import shared_task
from django.conf import settings

from . import chain

logger = logging.getLogger(__name__)


@shared_task(name="exchanges.seal_trail")
def seal_trail():
    """Seal every committed audit and access-log entry into its hash chain (what the small
    seal after each commit left, such as a stall scan's thousands of entries). Safe to run
    twice or late: a second sealer finds the lock taken and leaves the work to the first.
    Returns how many entries each chain sealed, e.g. {"audit": 200000, "access": 0}."""
    return chain.seal_all()


def seal_trail_soon():
    """After a write of thousands of entries (a stall scan): seal them in a worker now
    rather than at the next beat tick, and not in the writer (200,000 entries take about
    15 s). The broker being down fails nothing: beat seals them later."""
    if not getattr(settings, "TRACKER_KICK_ON_COMMIT", True):
        return
    try:
        seal_trail.apply_async(retry=False)
    except Exception:  # noqa: BLE001 - the broker being down must not fail the write
        logger.warning("Could not reach the broker; beat will seal the audit trail.", exc_info=True)
