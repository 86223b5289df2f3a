"""Celery tasks of the record. Beat runs `exchanges.seal_trail` every minute or so and
`exchanges.tend_exports` every five (the entries live in `CELERY_BEAT_SCHEDULE`,
config/settings/base.py); `exchanges.export_csv` writes an admin list's CSV export."""
import logging

from celery import shared_task
from django.conf import settings

from . import chain, exports

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


@shared_task(name="exchanges.export_csv")
def export_csv(job_id):
    """Write one queued CSV export (`exports.run_export`). Safe to run twice: a
    redelivered task (its worker killed, or Redis's visibility timeout passed during a
    long export) finds the job taken and does nothing; a job whose worker died is marked
    interrupted by `tend_exports`, never offered as complete."""
    return exports.run_export(job_id)


@shared_task(name="exchanges.tend_exports")
def tend_exports():
    """Mark exports whose worker died as interrupted, delete old ones and their files
    (beat, every few minutes). Returns e.g. {"interrupted": 0, "deleted": 2, "orphans": 0}."""
    return exports.tend_exports()
