"""The status history: the only way status moves, append-only, back-dated but never future."""
from datetime import datetime, timedelta, timezone as dt_timezone

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from exchanges import services
from exchanges.choices import FINAL, TRANSITIONS, NegotiationStatus
from exchanges.models import StatusChange
from tests.factories import NegotiationFactory

pytestmark = pytest.mark.django_db


def utc(*args):
    return datetime(*args, tzinfo=dt_timezone.utc)


def test_a_new_negotiation_starts_proposed_with_no_history():
    negotiation = NegotiationFactory()
    assert negotiation.status == "proposed"
    assert negotiation.status_changes.count() == 0
    assert negotiation.last_activity_at == utc(2022, 5, 6)


def test_every_legal_move_of_the_table_is_accepted_and_chained():
    negotiation = NegotiationFactory()
    path = ["in_talks", "agreed_in_principle", "lists_exchanged", "agreed", "implementing", "completed"]
    for day, status in enumerate(path, start=10):
        services.negotiation_change_status(negotiation=negotiation, to_status=status, actor=None, occurred_at=utc(2022, 5, day))
    history = list(negotiation.status_changes.order_by("sequence"))
    assert [change.to_status for change in history] == path
    assert [change.from_status for change in history] == ["proposed", *path[:-1]]
    assert [change.sequence for change in history] == list(range(1, 7))
    negotiation.refresh_from_db()
    assert negotiation.status == "completed"
    assert negotiation.last_activity_at == utc(2022, 5, 15)


@pytest.mark.parametrize(
    "from_status,to_status",
    [(src, dst) for src in NegotiationStatus for dst in NegotiationStatus if dst not in TRANSITIONS[src] and src != dst],
)
def test_every_illegal_move_is_refused_with_the_allowed_ones(from_status, to_status):
    negotiation = NegotiationFactory()
    type(negotiation).objects.filter(pk=negotiation.pk).update(status=from_status)
    with pytest.raises(services.IllegalStatusChange) as raised:
        services.negotiation_change_status(negotiation=negotiation, to_status=to_status, actor=None)
    assert raised.value.allowed == [str(s) for s in TRANSITIONS[from_status]]
    assert negotiation.status_changes.count() == 0


def test_final_statuses_allow_nothing():
    assert FINAL == {"completed", "rejected", "collapsed"}


def test_a_future_change_is_refused_and_nothing_is_written():
    negotiation = NegotiationFactory()
    with pytest.raises(ValidationError) as raised:
        services.negotiation_change_status(
            negotiation=negotiation, to_status="in_talks", actor=None, occurred_at=timezone.now() + timedelta(hours=1)
        )
    assert "occurred_at" in raised.value.message_dict
    negotiation.refresh_from_db()
    assert negotiation.status == "proposed" and negotiation.status_changes.count() == 0


def test_a_change_dated_before_the_previous_one_is_refused():
    negotiation = NegotiationFactory()
    services.negotiation_change_status(negotiation=negotiation, to_status="in_talks", actor=None, occurred_at=utc(2022, 6, 1))
    with pytest.raises(ValidationError) as raised:
        services.negotiation_change_status(negotiation=negotiation, to_status="suspended", actor=None, occurred_at=utc(2022, 5, 20))
    assert "occurred_at" in raised.value.message_dict
    assert negotiation.status_changes.count() == 1


def test_recording_today_a_meeting_held_40_days_ago_is_not_activity_today():
    negotiation = NegotiationFactory(opened_on=timezone.localdate() - timedelta(days=60))
    held = timezone.now() - timedelta(days=40)
    services.event_create(negotiation=negotiation, actor=None, kind="meeting", occurred_at=held, summary="Talks in Istanbul")
    negotiation.refresh_from_db()
    assert negotiation.last_activity_at == held


def test_deleting_the_latest_event_moves_activity_back():
    negotiation = NegotiationFactory()
    early = services.event_create(negotiation=negotiation, actor=None, kind="meeting", occurred_at=utc(2022, 5, 10), summary="a")
    late = services.event_create(negotiation=negotiation, actor=None, kind="statement", occurred_at=utc(2022, 5, 20), summary="b")
    services.event_delete(event=late, actor=None)
    negotiation.refresh_from_db()
    assert negotiation.last_activity_at == early.occurred_at


def test_the_database_refuses_a_second_change_with_the_same_sequence():
    negotiation = NegotiationFactory()
    change = services.negotiation_change_status(negotiation=negotiation, to_status="in_talks", actor=None)
    with pytest.raises(IntegrityError), transaction.atomic():
        StatusChange.objects.create(
            negotiation=negotiation, sequence=change.sequence, from_status="in_talks", to_status="suspended", occurred_at=timezone.now()
        )


def test_references_are_assigned_per_year_of_opening_and_unique():
    first = NegotiationFactory(opened_on=datetime(2022, 5, 1).date())
    second = NegotiationFactory(opened_on=datetime(2022, 7, 1).date())
    other_year = NegotiationFactory(opened_on=datetime(2023, 1, 1).date())
    assert (first.reference, second.reference, other_year.reference) == ("NEG-2022-0001", "NEG-2022-0002", "NEG-2023-0001")
