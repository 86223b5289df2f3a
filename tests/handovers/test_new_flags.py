"""The two flags no tracker has: off its rhythm, and seriously wounded left waiting."""
from datetime import timedelta

import pytest
from django.utils import timezone

from exchanges import services as record
from tests.factories import DetaineeGroupFactory, NegotiationFactory
from tracker.models import Flag, StallRule
from tracker.services import scan_stalls

pytestmark = pytest.mark.django_db

PATH_TO_AGREED = ["in_talks", "agreed_in_principle", "lists_exchanged", "agreed"]


def open_flags(negotiation, kind):
    return set(Flag.objects.filter(negotiation=negotiation, kind=kind, resolved_at__isnull=True).values_list("level", flat=True))


def with_rhythm(*, gap_days, activities, last_days_ago, priority="routine"):
    """A negotiation with `activities` meetings `gap_days` apart, the last `last_days_ago`."""
    now = timezone.now()
    first = now - timedelta(days=last_days_ago + gap_days * (activities - 1))
    negotiation = NegotiationFactory(opened_on=(first - timedelta(days=1)).date(), priority=priority)
    for n in range(activities):
        record.event_create(
            negotiation=negotiation, actor=None, kind="meeting", occurred_at=first + timedelta(days=gap_days * n), summary=f"round {n}"
        )
    negotiation.refresh_from_db()
    return negotiation


def test_silent_for_well_over_its_own_rhythm_is_flagged_before_the_fixed_threshold():
    weekly_then_quiet = with_rhythm(gap_days=2, activities=6, last_days_ago=8)
    negotiation = weekly_then_quiet
    assert negotiation.activity_count == 6 and negotiation.usual_gap == timedelta(days=2)
    scan_stalls()
    assert open_flags(negotiation, "off_rhythm") == {"overdue"}
    assert open_flags(negotiation, "no_activity") == set()  # routine: 30 days
    assert Flag.objects.get(negotiation=negotiation, kind="off_rhythm").silent_since == negotiation.last_activity_at


def test_very_off_rhythm_at_twice_the_multiple_and_the_second_days():
    negotiation = with_rhythm(gap_days=2, activities=6, last_days_ago=15)
    scan_stalls()
    assert open_flags(negotiation, "off_rhythm") == {"very_overdue"}


@pytest.mark.parametrize(
    "gap_days, activities, last_days_ago",
    [
        (20, 6, 10),  # always slow: 10 days is half its usual gap
        (1, 4, 9),  # too few activities to have a rhythm
        (1, 8, 5),  # beyond 3x its gap, but not yet the rule's 7 days
    ],
)
def test_not_off_rhythm(gap_days, activities, last_days_ago):
    negotiation = with_rhythm(gap_days=gap_days, activities=activities, last_days_ago=last_days_ago)
    scan_stalls()
    assert open_flags(negotiation, "off_rhythm") == set()


def test_off_rhythm_resolves_when_activity_resumes_and_follows_its_rule():
    negotiation = with_rhythm(gap_days=2, activities=6, last_days_ago=8)
    scan_stalls()
    record.event_create(negotiation=negotiation, actor=None, kind="statement", occurred_at=timezone.now(), summary="back")
    flag = Flag.objects.get(negotiation=negotiation, kind="off_rhythm")
    assert flag.resolved_at is not None and flag.resolution == "activity"
    # A looser rule (5x the gap) no longer sees 8 days as off a 2-day rhythm.
    other = with_rhythm(gap_days=2, activities=6, last_days_ago=8)
    StallRule.objects.filter(key="rhythm").update(gap_multiplier=5)
    scan_stalls()
    assert open_flags(other, "off_rhythm") == set()


def agreed(days_ago, *, groups, participants):
    negotiation = NegotiationFactory(
        opened_on=(timezone.now() - timedelta(days=days_ago + 10)).date(),
        visibility="all_partners",
        groups=groups,
        participants=participants,
    )
    for step, status in enumerate(PATH_TO_AGREED):
        record.negotiation_change_status(
            negotiation=negotiation,
            to_status=status,
            actor=None,
            occurred_at=timezone.now() - timedelta(days=days_ago + len(PATH_TO_AGREED) - 1 - step),
        )
    negotiation.refresh_from_db()
    return negotiation


def handover(negotiation, *transfers, state="done"):
    return record.handover_create(
        negotiation=negotiation,
        actor=None,
        state=state,
        occurred_on=timezone.localdate() if state == "done" else None,
        transfers=[{"from_party": source, "to_party": target, **counts} for source, target, counts in transfers],
    )


def test_seriously_wounded_waiting_after_agreement_is_flagged_then_resolved_by_their_release(ukraine, russia, garrison):
    held_by_ukraine = DetaineeGroupFactory(held_by=ukraine, affiliated_with=russia, seriously_wounded_count=10)
    parties = [(ukraine, "side"), (russia, "side")]
    recent = agreed(1, groups=[garrison], participants=parties)
    waiting = agreed(4, groups=[garrison, held_by_ukraine], participants=parties)
    long_waiting = agreed(8, groups=[garrison], participants=parties)
    scan_stalls()
    assert open_flags(recent, "wounded_waiting") == set()
    assert open_flags(waiting, "wounded_waiting") == {"overdue"}
    assert open_flags(long_waiting, "wounded_waiting") == {"very_overdue"}
    # Ukraine releases its 10 wounded: Russia's 52 still wait.
    handover(waiting, (ukraine, russia, {"released_count": 30, "seriously_wounded_count": 10}))
    assert open_flags(waiting, "wounded_waiting") == {"overdue"}
    # A planned handover releases nobody.
    handover(waiting, (russia, ukraine, {"planned_count": 60, "seriously_wounded_count": 52}), state="planned")
    scan_stalls()
    assert open_flags(waiting, "wounded_waiting") == {"overdue"}
    # Done, with all 52: resolved at once, without waiting for the scan.
    handover(waiting, (russia, ukraine, {"released_count": 60, "seriously_wounded_count": 52}))
    flag = Flag.objects.get(negotiation=waiting, kind="wounded_waiting")
    assert flag.resolved_at is not None and flag.resolution == "wounded_released"
    waiting.refresh_from_db()
    assert not open_flags(waiting, "wounded_waiting")


def test_wounded_waiting_only_while_an_agreement_is_in_force(ukraine, russia, garrison):
    negotiation = agreed(5, groups=[garrison], participants=[(ukraine, "side"), (russia, "side")])
    scan_stalls()
    assert open_flags(negotiation, "wounded_waiting") == {"overdue"}
    record.negotiation_change_status(negotiation=negotiation, to_status="suspended", actor=None)
    flag = Flag.objects.get(negotiation=negotiation, kind="wounded_waiting")
    assert flag.resolved_at is not None
    talks = NegotiationFactory(groups=[garrison], participants=[(ukraine, "side"), (russia, "side")])
    scan_stalls()
    assert open_flags(talks, "wounded_waiting") == set()


def test_activities_at_the_same_moment_are_one_step_of_the_rhythm():
    """Found in review: a status change and its event at one moment made a zero gap."""
    negotiation = with_rhythm(gap_days=5, activities=4, last_days_ago=3)
    for event in list(negotiation.events.all()):
        record.event_create(negotiation=negotiation, actor=None, kind="statement", occurred_at=event.occurred_at, summary="same moment")
    negotiation.refresh_from_db()
    assert negotiation.activity_count == 8 and negotiation.usual_gap == timedelta(days=5)


def last_scan_was_incremental():
    from tracker.models import ScanRun

    return not ScanRun.objects.order_by("-as_of").first().full


def written_yesterday(*negotiations):
    """Out of the incremental scan's "written since the last scan" (and its covered groups'
    figures): only a threshold crossing brings these into its scope."""
    from exchanges.models import DetaineeGroup, Negotiation

    yesterday = timezone.now() - timedelta(days=1)
    ids = [negotiation.pk for negotiation in negotiations]
    Negotiation.objects.filter(pk__in=ids).update(updated_at=yesterday)
    DetaineeGroup.objects.filter(coverage__negotiation__in=ids).update(updated_at=yesterday)


def test_an_incremental_scan_sees_a_rhythm_broken_and_then_very_broken(settings):
    """The crossing of 3x and 6x the usual gap is found by the incremental scan's scope
    (on PostgreSQL a range on an indexed expression), not only by a full pass."""
    settings.TRACKER_FULL_SCAN_SECONDS = 30 * 86400
    # Every 3 days, silent for 8 days: 3x its gap is 9 days, one day from now.
    negotiation = with_rhythm(gap_days=3, activities=6, last_days_ago=8)
    unrelated = with_rhythm(gap_days=30, activities=6, last_days_ago=8)
    written_yesterday(negotiation, unrelated)
    scan_stalls()
    assert open_flags(negotiation, "off_rhythm") == set()
    scan_stalls(now=timezone.now() + timedelta(days=1, hours=1))
    assert last_scan_was_incremental() and open_flags(negotiation, "off_rhythm") == {"overdue"}
    scan_stalls(now=timezone.now() + timedelta(days=10, hours=1))  # 6x: 18 days silent
    assert last_scan_was_incremental() and open_flags(negotiation, "off_rhythm") == {"very_overdue"}
    assert open_flags(unrelated, "off_rhythm") == set()


def test_an_incremental_scan_sees_wounded_waiting_once_the_days_since_agreement_pass(settings, ukraine, russia, garrison):
    settings.TRACKER_FULL_SCAN_SECONDS = 30 * 86400
    negotiation = agreed(2, groups=[garrison], participants=[(ukraine, "side"), (russia, "side")])
    released = agreed(2, groups=[garrison], participants=[(ukraine, "side"), (russia, "side")])
    handover(released, (russia, ukraine, {"released_count": 60, "seriously_wounded_count": 52}))
    written_yesterday(negotiation, released)
    scan_stalls()
    assert open_flags(negotiation, "wounded_waiting") == set()
    scan_stalls(now=timezone.now() + timedelta(days=1, hours=1))
    assert last_scan_was_incremental() and open_flags(negotiation, "wounded_waiting") == {"overdue"}
    scan_stalls(now=timezone.now() + timedelta(days=5, hours=1))
    assert last_scan_was_incremental() and open_flags(negotiation, "wounded_waiting") == {"very_overdue"}
    assert open_flags(released, "wounded_waiting") == set()
