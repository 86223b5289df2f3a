"""Scans racing each other on PostgreSQL leave exactly the flags one scan would."""
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from exchanges import services as record
from tests.factories import NegotiationFactory
from tests.services import require_postgres
from tracker.models import Flag
from tracker.services import scan_stalls

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def test_two_scans_at_once_leave_exactly_the_same_flags_as_one():
    require_postgres()
    today = timezone.localdate()
    for n in range(20):
        negotiation = NegotiationFactory(priority=("urgent", "high", "routine")[n % 3], opened_on=today - timedelta(days=10 + 3 * n), next_step_due=today - timedelta(days=n % 9) if n % 2 else None)
        if n % 5 == 0:
            record.negotiation_change_status(negotiation=negotiation, to_status="rejected", actor=None)
    barrier = threading.Barrier(2)
    summaries, errors = [], []

    def scan():
        try:
            barrier.wait()
            summaries.append(scan_stalls())
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=scan) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    raced = sorted((f.negotiation_id, f.kind, f.level) for f in Flag.objects.filter(resolved_at__isnull=True))
    assert sorted(summary["raised"] for summary in summaries) == [0, len(raced)]
    assert len(raced) == len(set(raced)) > 0
    Flag.objects.all().delete()
    type(negotiation).objects.update(stalled=False, stalled_since=None)
    scan_stalls(full=True)  # the flags were wiped behind the scan's back: look at everything
    alone = sorted((f.negotiation_id, f.kind, f.level) for f in Flag.objects.filter(resolved_at__isnull=True))
    assert raced == alone
