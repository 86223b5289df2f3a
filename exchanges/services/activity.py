"""A negotiation's activity, recomputed from the record on every write that changes it:
`last_activity_at`, `activity_count` and `usual_gap` (its rhythm, for the stall scan)."""
import statistics
from datetime import datetime, time, timezone as dt_timezone

from django.db.models import DateField, DateTimeField, IntegerField, Value
from django.db.models.functions import Cast

from .. import signals
from ..choices import HandoverState
from ..models import Event, Handover, Negotiation, StatusChange


def _opened_start(opened_on):
    return datetime.combine(opened_on, time.min, tzinfo=dt_timezone.utc)


ACTIVITY_FIELDS = ["last_activity_at", "activity_count", "usual_gap"]


def _activity_rows(negotiation):
    """Every activity of the negotiation in one query, as `(sequence, occurred_at,
    occurred_on)`: its status changes (with their sequence), its events, and its done
    handovers (a day, no time)."""
    no_sequence = Cast(Value(None), IntegerField())  # typed NULLs: PostgreSQL matches UNION columns pairwise
    no_moment, no_day = Cast(Value(None), DateTimeField()), Cast(Value(None), DateField())
    status_changes = StatusChange.objects.filter(negotiation=negotiation).order_by()
    events = Event.objects.filter(negotiation=negotiation).order_by()
    handovers = Handover.objects.filter(negotiation=negotiation, state=HandoverState.DONE).order_by()
    return list(
        status_changes.values_list("sequence", "occurred_at", no_day).union(
            events.values_list(no_sequence, "occurred_at", no_day),
            handovers.values_list(no_sequence, no_moment, "occurred_on"),
            all=True,
        )
    )


def _refresh_activity(negotiation, rows=None, *, also=()):
    """Recompute from the record itself, so they are always true: `last_activity_at`, the
    latest real-world time of a status change, an event or a done handover (the start of
    its day), or the start of `opened_on` while there are none (never a floor); `activity_count`; and
    `usual_gap`, the median time between two activities (its rhythm, for `off_rhythm`).
    `rows`: `_activity_rows` already read; `also`: moments of activities written since."""
    rows = _activity_rows(negotiation) if rows is None else rows
    times = [moment if day is None else _opened_start(day) for _sequence, moment, day in rows]
    times += also
    times.sort()
    # Activities at the same moment (a status change and its event) are one step of its
    # rhythm, not a gap of zero that would make any silence look long.
    moments = sorted(set(times))
    gaps = [later - earlier for earlier, later in zip(moments, moments[1:])]
    # The contract's words: the latest activity, even one dated before `opened_on` (an
    # event learnt of when the negotiation was first recorded); the opening only while
    # there is none.
    negotiation.last_activity_at = times[-1] if times else _opened_start(negotiation.opened_on)
    negotiation.activity_count = len(times)
    negotiation.usual_gap = statistics.median(gaps) if gaps else None


def touch_activity(negotiation):
    negotiation = Negotiation.objects.select_for_update().get(pk=negotiation.pk)
    _refresh_activity(negotiation)
    negotiation.save(update_fields=[*ACTIVITY_FIELDS, "updated_at"])
    signals.negotiation_touched.send(sender=Negotiation, negotiation=negotiation)
