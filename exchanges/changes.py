"""The change log partners sync from (`GET /api/v1/changes/`): what is written, and who
may read it. The ordering guarantee is the model's (`models.changes`).

Writing: every save or delete of a tracked record through the ORM writes a row (Django's
`post_save`/`post_delete`, connected in `apps.py`, so the services, the admin, the demo
loader and cascades alike); the few bulk `UPDATE`s of tracked rows (the stall scan, a
group touched by its figures) write theirs with `record_rows`/`record_updated`; a party
losing sight of a negotiation gets a `removed` row (`record_lost_access`).

Reading: `feed(client, after, limit)`: rows the client may see now, in commit order
(`seal` numbers what has committed).
"""
import base64
import binascii
import contextlib
import contextvars

from django.db import connection, transaction
from django.db.models import Max, OuterRef, Q

from .choices import Visibility
from .models import Change, DetaineeGroup, Negotiation

#: Tracked models (app_label.model_name) and their `type` in the feed.
TRACKED = {
    "exchanges.party": "party",
    "exchanges.detaineegroup": "detainee_group",
    "exchanges.reportedfigure": "figure",
    "exchanges.negotiation": "negotiation",
    "exchanges.statuschange": "status_change",
    "exchanges.event": "event",
    "exchanges.handover": "handover",
    "tracker.flag": "flag",
}
NEGOTIATION_CHILDREN = {"status_change", "event", "handover", "flag"}


def _parties(ids):
    return "," + ",".join(sorted(str(pk) for pk in ids)) + "," if ids else ""


def _scope(kind, instance):
    if kind == "negotiation":
        return {"negotiation_id": instance.pk}
    if kind in NEGOTIATION_CHILDREN:
        return {"negotiation_id": instance.negotiation_id}
    if kind == "detainee_group":
        return {"group_id": instance.pk}
    if kind == "figure":
        return {"group_id": instance.group_id}
    return {}


def reach(visibility, party_ids):
    """Which API clients' parties see a negotiation: ("all_but", set()) or ("parties", ids)."""
    if visibility == Visibility.ALL_PARTNERS:
        return Change.Audience.ALL_BUT, frozenset()
    if visibility == Visibility.PARTICIPANTS:
        return Change.Audience.PARTIES, frozenset(str(pk) for pk in party_ids)
    return Change.Audience.PARTIES, frozenset()


def parties_seeing_groups(group_ids):
    """{group id: the ids (text) of the parties with an API client that see it now}."""
    from .models import ApiClient
    from .policy import client_group_q

    sight = {group_id: set() for group_id in group_ids}
    if not sight:
        return sight
    parties = ApiClient.objects.filter(revoked_at__isnull=True).values_list("party_id", flat=True).distinct()
    for party in parties:
        seen = DetaineeGroup.objects.filter(pk__in=sight).filter(client_group_q(party)).values_list("pk", flat=True)
        for group_id in seen:
            sight[group_id].add(str(party))
    return sight


def record_group_sight(before):
    """After a write that may change who sees these groups (a negotiation's covered groups,
    participants or visibility; a group's parties): for each group, `removed` for the parties
    that saw it (`before`, from `parties_seeing_groups`) and do not now, and `updated` for
    those that see it now and did not (they fetch it and its figures)."""
    after = parties_seeing_groups(list(before))
    for group_id, was in before.items():
        now = after.get(group_id, set())
        for action, parties in ((Change.Action.REMOVED, was - now), (Change.Action.UPDATED, now - was)):
            if parties:
                _write(
                    object_type="detainee_group",
                    object_id=group_id,
                    action=action,
                    audience_mode=Change.Audience.PARTIES,
                    audience=_parties(parties),
                )


def _audience_when_gone(kind, instance):
    """Who may read the deletion of a record nobody can look up any more."""
    if kind == "negotiation":
        mode, ids = reach(instance.visibility, instance.party_ids or [])
        return {"audience_mode": mode, "audience": _parties(ids)}
    if kind == "detainee_group":  # deleted only when nothing covers it: its parties saw it
        ids = {pk for pk in (instance.held_by_id, instance.affiliated_with_id, instance.recorded_by_party_id) if pk}
        return {"audience_mode": Change.Audience.PARTIES, "audience": _parties(ids)}
    if kind == "party":
        return {"audience_mode": Change.Audience.ALL_BUT, "audience": ""}
    if kind == "figure":  # whoever sees its group now, even once the group is gone too
        seeing = parties_seeing_groups([instance.group_id])[instance.group_id]
        return {"audience_mode": Change.Audience.PARTIES, "audience": _parties(seeing)}
    return {}  # children of a negotiation: whoever sees it (its own deletion tells the rest)


#: The rows of a write inside `together()`, written as one INSERT when it ends.
_pending = contextvars.ContextVar("changes_pending", default=None)


@contextlib.contextmanager
def together():
    """Within a write's transaction: the rows its saves and deletes add are written by one
    INSERT at the end (or before any other row of the log, so their order stays the order
    of the writes), not one INSERT each. A status change writes two (the change and its
    negotiation) in one statement. Nothing is written if the block raises: its
    transaction rolls back anyway."""
    if _pending.get() is not None:
        yield  # inside another one: its end writes them
        return
    token = _pending.set([])
    try:
        yield
        _flush()
    finally:
        _pending.reset(token)


def _flush():
    rows = _pending.get()
    if rows:
        Change.objects.bulk_create(rows)
        rows.clear()


def _write(**fields):
    rows = _pending.get()
    if rows is None:
        Change.objects.create(**fields)
    else:
        rows.append(Change(**fields))


def on_save(sender, instance, created, raw=False, **kwargs):
    kind = TRACKED.get(sender._meta.label_lower)
    if kind is None or raw:
        return
    action = Change.Action.CREATED if created else Change.Action.UPDATED
    _write(object_type=kind, object_id=instance.pk, action=action, **_scope(kind, instance))


def on_delete(sender, instance, **kwargs):
    kind = TRACKED.get(sender._meta.label_lower)
    if kind is None:
        return
    _write(
        object_type=kind,
        object_id=instance.pk,
        action=Change.Action.DELETED,
        **_scope(kind, instance),
        **_audience_when_gone(kind, instance),
    )


def record_updated(kind, object_id, **scope):
    """A tracked row changed by an `UPDATE` that sends no signal."""
    _write(object_type=kind, object_id=object_id, action=Change.Action.UPDATED, **scope)


def record_rows(kind, queryset, *, at, created_q=None, numbered=False):
    """One row per record in `queryset` (a tracked model's), written by one INSERT ... SELECT:
    the stall scan may change 200,000 flags at once. `created_q`: those that are new.
    `numbered`: after `number_from_here()` in this transaction, written with their positions."""
    model = queryset.model
    table = model._meta.db_table
    column = "id" if kind == "negotiation" else "negotiation_id"
    ids_sql, ids_params = queryset.order_by().values("pk").query.sql_with_params()
    action = "'updated'"
    params = [at]
    if created_q is not None:
        # Within `queryset`: an incremental scan's few flags, not every flag raised at `at`
        # looked up among 200,000 (95 ms at a million negotiations).
        created_sql, created_params = queryset.filter(created_q).order_by().values("pk").query.sql_with_params()
        action = f"CASE WHEN t.id IN ({created_sql}) THEN 'created' ELSE 'updated' END"
        params += list(created_params)
    _flush()  # rows written before these come before them
    position, top = ("", "") if not numbered else (
        "top.position + row_number() OVER (), ",
        f", (SELECT coalesce(max(position), 0) AS position FROM {Change._meta.db_table}) top",
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Change._meta.db_table} ({'position, ' if numbered else ''}at, object_type, object_id, action, "
            "negotiation_id, audience_mode, audience) "
            f"SELECT {position}%s, '{kind}', t.id, {action}, t.{column}, '', '' FROM {table} t{top} WHERE t.id IN ({ids_sql})",
            [*params, *ids_params],
        )


def record_lost_access(negotiation, before):
    """After a change of participants or visibility: a `removed` row for the parties that saw
    the negotiation before (`before`: `reach(...)` then) and do not now."""
    was_mode, was = before
    now_mode, now = reach(negotiation.visibility, negotiation.party_ids or [])
    if was_mode == Change.Audience.PARTIES:
        lost_mode, lost = Change.Audience.PARTIES, (was - now if now_mode == Change.Audience.PARTIES else frozenset())
    elif now_mode == Change.Audience.PARTIES:
        lost_mode, lost = Change.Audience.ALL_BUT, now | was  # everyone but those who still see it
    else:
        return
    if lost_mode == Change.Audience.PARTIES and not lost:
        return
    _write(
        object_type="negotiation",
        object_id=negotiation.pk,
        action=Change.Action.REMOVED,
        audience_mode=lost_mode,
        audience=_parties(lost),
    )


# Reading ------------------------------------------------------------------------------


class BadCursor(ValueError):
    pass


SEAL_LOCK = 7_310_110  # one sealer at a time (any constant of our own)
SEAL_BATCH = 10_000
#: After a write of many (a first stall scan at a million negotiations writes 370,000 rows):
#: 2.1 s in batches of 100,000 against 3.2 s in batches of 10,000, measured.
SEAL_ALL_BATCH = 100_000
SEAL = """UPDATE exchanges_change SET position = numbered.top + numbered.n
    FROM (SELECT c.id, row_number() OVER (ORDER BY c.id) AS n, top.top
          FROM (SELECT id FROM exchanges_change WHERE position IS NULL ORDER BY id LIMIT %s) c,
               (SELECT coalesce(max(position), 0) AS top FROM exchanges_change) top) numbered
    WHERE exchanges_change.id = numbered.id"""


def seal(batch=SEAL_BATCH):
    """Number up to `batch` committed rows that have no position yet, after every
    numbered one, in id order (a change that depends on another was written after it).
    One sealer at a time, in its own transaction, so the highest position it reads is
    final; a reader that finds another sealer at work reads what is numbered already
    (PostgreSQL's try-lock), and one that finds nothing to number writes nothing. Rows of
    transactions still in flight are invisible here: they are numbered once committed,
    above every cursor already handed out. Returns how many rows it numbered."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT EXISTS (SELECT 1 FROM exchanges_change WHERE position IS NULL)")
            if not cursor.fetchone()[0]:
                return 0
            if connection.vendor == "postgresql":
                cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [SEAL_LOCK])
                if not cursor.fetchone()[0]:
                    return 0
            cursor.execute(SEAL, [batch])
            return cursor.rowcount


def seal_all():
    """Number every committed row (after a write of many)."""
    while seal(SEAL_ALL_BATCH) == SEAL_ALL_BATCH:
        pass


def number_from_here():
    """For a write of many rows in one transaction (the stall scan, 370,000 rows at its first
    pass over a million negotiations): take the sealer's lock until this transaction ends and
    number what has committed so far; `record_rows(..., numbered=True)` then writes rows with
    their positions, above every cursor handed out, in the one INSERT (where sealing them
    after commit was a second pass over them: 2.0 s of a 2.5 s write). Meanwhile other
    sealers find the lock taken and the feed reads what was numbered before; rows that
    commit meanwhile are numbered after these. Returns False where rows cannot be numbered
    so (not PostgreSQL: they are sealed after commit as usual)."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SEAL_LOCK])
        while True:
            cursor.execute(SEAL, [SEAL_ALL_BATCH])
            if cursor.rowcount < SEAL_ALL_BATCH:
                return True


def encode(position):
    return base64.urlsafe_b64encode(str(position).encode()).decode().rstrip("=")


def decode(cursor):
    """The position a cursor stands for; only cursors this feed writes are accepted."""
    try:
        position = int(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii"))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadCursor(cursor) from None
    if not 0 < position < 2**63 or encode(position) != cursor:
        raise BadCursor(cursor)
    return position


def visible_to_client_q(party_id):
    """Rows an API client of `party_id` may read now."""
    from .policy import EachRowExists, client_group_q, client_negotiation_q

    party = f",{party_id},"
    current = Q(audience_mode=Change.Audience.CURRENT)
    seen_negotiation = Negotiation.objects.filter(client_negotiation_q(party_id)).filter(pk=OuterRef("negotiation_id"))
    seen_group = DetaineeGroup.objects.filter(client_group_q(party_id)).filter(pk=OuterRef("group_id"))
    return (
        (current & Q(object_type="party"))
        | (current & Q(EachRowExists(seen_negotiation)))
        | (current & Q(EachRowExists(seen_group)))
        | Q(audience_mode=Change.Audience.PARTIES, audience__contains=party)
        | (Q(audience_mode=Change.Audience.ALL_BUT) & ~Q(audience__contains=party))
    )


def feed(client, *, after=None, limit=50):
    """`(rows, position)`: the next `limit` rows `client` may read after the cursor `after`
    (None: from the start), once what has committed is numbered (`seal`), and the position
    to continue from: the last row's, or, when fewer rows remain, the highest numbered so
    far (nothing the client may see lies between; the next read starts there, not again
    through rows it may not see)."""
    start = 0 if after is None else decode(after)
    seal()
    top = Change.objects.aggregate(top=Max("position"))["top"] or 0
    rows = Change.objects.filter(position__gt=start, position__lte=top).filter(visible_to_client_q(client.party_id))
    rows = list(rows.order_by("position")[:limit])
    position = rows[-1].position if len(rows) == limit else max(start, top)
    return rows, position or None
