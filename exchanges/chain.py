"""The hash chain over the audit trail and the access log: sealing it and verifying it.

Writers only INSERT (the services, API reads, the stall scan's one `INSERT ... SELECT` of
200,000 rows); nothing here runs inside them. The sealer takes committed rows that have
no place yet, in id order, and gives each the next position (`seq`: 1, 2, 3... without
gaps) and `hash = sha256(previous hash + canonical content)`, one chain at a time, under
a PostgreSQL try-lock (a second sealer returns at once rather than wait), in one
transaction per batch that also moves the chain's head (`TrailHead`). It runs after each
commit that wrote to a chain (a small batch: `seal_after_commit`) and from beat
(`exchanges.seal_trail`: everything). `verify` recomputes a chain from its first link.

The canonical content of a row is JSON with sorted keys, no spaces, ASCII only, times in
UTC with microseconds (`2026-12-05T08:57:00.000000+00:00`), uuids and addresses as text: the same bytes whether the row was read
from PostgreSQL or SQLite.
"""
import datetime
import decimal
import hashlib
import ipaddress
import json
import logging
import uuid
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import JSONField
from django.utils import timezone

from .models.trail import AccessLogEntry, AuditEntry, TrailHead

logger = logging.getLogger(__name__)

#: The hash before the first link of every chain.
GENESIS = "0" * 64
#: Rows per sealing transaction: after a commit (the request waits for it), and from beat.
SMALL_BATCH = 500
SEAL_BATCH = 20_000
#: Unsealed rows older than this are reported by `verify` (the sealer is not running).
STALE_AFTER = datetime.timedelta(minutes=10)


@dataclass(frozen=True)
class Chain:
    name: str  # in TrailHead and in printed heads ("audit:1234:<hash>")
    label: str
    model: type
    #: What the hash covers, in this order. A column added to the model later must be
    #: added here on purpose (a test checks): old rows then hash with it as null.
    fields: tuple
    lock: int  # the PostgreSQL advisory lock key of its sealer (constants of our own)

    @property
    def rows(self):
        return self.model._base_manager


AUDIT = Chain(
    "audit", "audit trail", AuditEntry,
    ("id", "occurred_at", "action", "model", "object_id", "object_repr", "negotiation_id", "actor_type", "actor_id",
     "actor_label", "channel", "request_id", "changes"),
    7_310_121,
)  # fmt: skip
ACCESS = Chain(
    "access", "access log", AccessLogEntry,
    ("id", "occurred_at", "user_id", "user_label", "negotiation_id", "negotiation_repr", "address", "channel", "request_id"),
    7_310_122,
)  # fmt: skip
CHAINS = (AUDIT, ACCESS)
BY_NAME = {chain.name: chain for chain in CHAINS}


class ChainBroken(Exception):
    """The end of a chain does not match its recorded head: sealing more would extend a
    chain that was tampered with, so the sealer stops (run `verify_audit`)."""


# The links ----------------------------------------------------------------------------


_UTC = datetime.timezone.utc
_AS_TEXT = (uuid.UUID, decimal.Decimal, ipaddress.IPv4Address, ipaddress.IPv6Address)


def _plain(value):
    if value is None or isinstance(value, (str, int, dict, list)):
        return value
    if isinstance(value, datetime.datetime):
        if timezone.is_naive(value):
            value = value.replace(tzinfo=_UTC)
        return value.astimezone(_UTC).isoformat(timespec="microseconds")
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, _AS_TEXT):
        return str(value)
    return value


def canonical(chain, seq, values):
    """The bytes a link hashes: the chain, the position and the row's `chain.fields`."""
    content = {"chain": chain.name, "seq": seq}
    content.update((name, _plain(value)) for name, value in zip(chain.fields, values))
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode("ascii")


def link(previous_hash, chain, seq, values):
    return hashlib.sha256(previous_hash.encode("ascii") + canonical(chain, seq, values)).hexdigest()


# Sealing ------------------------------------------------------------------------------


def _end_of_chain(chain):
    """(seq, hash) of the last sealed row, checked against the recorded head."""
    top = chain.rows.filter(seq__isnull=False).order_by("-seq").values_list("seq", "hash").first() or (0, GENESIS)
    head = TrailHead.objects.filter(chain=chain.name).values_list("seq", "hash").first()
    if head is None:
        if top[0]:
            raise ChainBroken(f"The {chain.label} is sealed up to #{top[0]} but has no recorded head.")
        TrailHead.objects.create(chain=chain.name, seq=0, hash=GENESIS)
        return top
    if tuple(head) != tuple(top):
        raise ChainBroken(
            f"The {chain.label} ends at #{top[0]} ({top[1][:12]}...), its recorded head is #{head[0]} ({head[1][:12]}...)."
        )
    return top


def _rows(chain, *, after=None, limit):
    """(seq, hash, *chain.fields) of up to `limit` rows: unsealed ones in id order
    (`after` None), else sealed ones past position `after`. On PostgreSQL a plain cursor
    (half the time of the ORM's, which only adds `json.loads`); the values may differ in
    type between the two paths, never once `canonical` has made them plain."""
    if connection.vendor != "postgresql":
        rows = chain.rows.filter(seq__isnull=True).order_by("id") if after is None else chain.rows.filter(seq__gt=after).order_by("seq")
        return list(rows.values_list("seq", "hash", *chain.fields)[:limit])
    where, order = ("seq IS NULL", "id") if after is None else ("seq > %s", "seq")
    json_at = [2 + index for index, name in enumerate(chain.fields) if isinstance(chain.model._meta.get_field(name), JSONField)]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT seq, hash, {', '.join(chain.fields)} FROM {chain.model._meta.db_table} WHERE {where} ORDER BY {order} LIMIT %s",
            [limit] if after is None else [after, limit],
        )
        rows = cursor.fetchall()
    if json_at:
        for index, row in enumerate(rows):
            row = list(row)
            for at in json_at:
                if isinstance(row[at], str):
                    row[at] = json.loads(row[at])
            rows[index] = row
    return rows


def _write_links(chain, links):
    table = chain.model._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            ids, seqs, hashes = zip(*links)
            cursor.execute(
                f"UPDATE {table} AS t SET seq = v.seq, hash = v.hash "
                "FROM unnest(%s::bigint[], %s::bigint[], %s::text[]) AS v(id, seq, hash) WHERE t.id = v.id",
                [list(ids), list(seqs), list(hashes)],
            )
        else:
            cursor.executemany(f"UPDATE {table} SET seq = %s, hash = %s WHERE id = %s", [(s, h, i) for i, s, h in links])


def seal(chain, *, batch=SEAL_BATCH):
    """Give up to `batch` committed, unsealed rows of `chain` their place and hash, after
    every sealed one, in id order; move the head with them. One sealer per chain at a
    time: another one finding the lock taken returns 0 at once (it never waits, so a
    writer's request is never held up). Rows of transactions still in flight are not
    visible here; they are sealed once committed. Returns how many rows it sealed."""
    if not chain.rows.filter(seq__isnull=True).exists():
        return 0  # before any transaction: on SQLite, beginning one takes the write lock
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [chain.lock])
                if not cursor.fetchone()[0]:
                    return 0
        seq, previous = _end_of_chain(chain)
        links = []
        for _seq, _hash, *values in _rows(chain, limit=batch):
            seq += 1
            previous = link(previous, chain, seq, values)
            links.append((values[0], seq, previous))
        if not links:
            return 0
        _write_links(chain, links)
        TrailHead.objects.filter(chain=chain.name).update(seq=seq, hash=previous, sealed_at=timezone.now())
        return len(links)


def seal_all(*, batch=SEAL_BATCH):
    """Seal everything committed, chain by chain, `batch` rows per transaction; {name: rows}.
    Stops early on a chain whose sealer is busy elsewhere (it carries on there)."""
    sealed = {}
    for chain in CHAINS:
        sealed[chain.name] = 0
        while True:
            count = seal(chain, batch=batch)
            sealed[chain.name] += count
            if count < batch:
                break
    return sealed


def _seal_soon(chain):
    try:
        seal(chain, batch=SMALL_BATCH)
    except ChainBroken as error:
        logger.error("Not sealing the %s: %s Run `manage.py verify_audit`.", chain.label, error)


def _seal_audit_soon():
    _seal_soon(AUDIT)


def _seal_access_soon():
    _seal_soon(ACCESS)


_SOON = {AUDIT.name: _seal_audit_soon, ACCESS.name: _seal_access_soon}


def seal_after_commit(chain):
    """After the current transaction commits (at once in autocommit), seal a small batch of
    `chain`; registered once per transaction however many rows it writes. A failure to
    seal is logged and never fails the write: beat seals what is left."""
    callback = _SOON[chain.name]
    if connection.in_atomic_block:
        current = set(connection.savepoint_ids)
        for savepoints, registered, _robust in connection.run_on_commit:
            if registered is callback and savepoints <= current:
                return  # already due after this commit, and not undone by a rollback that keeps these rows
    transaction.on_commit(callback, robust=True)


# Verifying ----------------------------------------------------------------------------


@dataclass
class Verdict:
    """What `verify` found in one chain; `problem` is the first broken or missing link."""

    chain: Chain
    sealed: int = 0
    head: str = ""
    unsealed: int = 0
    stale: int = 0
    problem: str = ""

    @property
    def intact(self):
        return not self.problem


def _missing(first, last):
    return f"entry #{first} is missing" if first == last else f"entries #{first} to #{last} are missing"


def verify(chain, *, anchors=(), now=None, stale_after=STALE_AFTER, batch=10_000):
    """Recompute `chain` from #1: positions contiguous, every hash the link of the one
    before and the row's content, the end equal to the recorded head and to each of
    `anchors` ((seq, hash) copied elsewhere earlier); unsealed rows older than
    `stale_after` are a problem too. Read in one snapshot on PostgreSQL, so a sealer at
    work meanwhile changes nothing seen."""
    now = now or timezone.now()
    anchored = dict(anchors)
    verdict = Verdict(chain)
    snapshot = connection.vendor == "postgresql" and not connection.in_atomic_block
    with transaction.atomic():
        if snapshot:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        verdict.problem = _walk(chain, verdict, anchored, batch)
        head = TrailHead.objects.filter(chain=chain.name).values_list("seq", "hash").first()
        unsealed = chain.rows.filter(seq__isnull=True)
        verdict.unsealed = unsealed.count()
        verdict.stale = unsealed.filter(occurred_at__lt=now - stale_after).count()
    verdict.problem = verdict.problem or _check_end(chain, verdict, head, anchored) or _check_stale(verdict, stale_after)
    return verdict


def _walk(chain, verdict, anchored, batch):
    seq, previous = 0, GENESIS
    while True:
        page = _rows(chain, after=seq, limit=batch)
        for position, stored, *values in page:
            if position != seq + 1:
                return f"{_missing(seq + 1, position - 1)} (removed after sealing): the chain goes from #{seq} to #{position}."
            if stored != link(previous, chain, position, values):
                return (
                    f"entry #{position} (id {values[0]}) does not match its hash: it, or its link to the entry "
                    "before it, was changed after sealing."
                )
            if position in anchored and anchored[position] != stored:
                return f"entry #{position} is not the anchored {position}:{anchored[position]}: the chain was rewritten."
            seq, previous = position, stored
        if len(page) < batch:
            break
    verdict.sealed, verdict.head = seq, f"{chain.name}:{seq}:{previous}"
    return ""


def _check_end(chain, verdict, head, anchored):
    seq, previous = verdict.sealed, verdict.head.rsplit(":", 1)[1]
    beyond = [position for position in anchored if position > seq]
    if beyond:
        return f"the anchored head #{max(beyond)} lies beyond the end of the chain (#{seq}): {_missing(seq + 1, max(beyond))}."
    if head is None:
        return f"no head is recorded, yet entries are sealed up to #{seq}: the head was removed." if seq else ""
    head_seq, head_hash = head
    if head_seq > seq:
        return f"the recorded head is #{head_seq} but the chain ends at #{seq}: {_missing(seq + 1, head_seq)} (removed or truncated)."
    if head_seq < seq:
        return f"entries up to #{seq} are sealed but the recorded head is #{head_seq}: the head was moved back."
    if head_hash != previous:
        return f"the last entry (#{seq}) does not hash to the recorded head: the end of the chain was rewritten."
    return ""


def _check_stale(verdict, stale_after):
    if verdict.stale:
        minutes = int(stale_after.total_seconds() // 60)
        return (
            f"{verdict.stale} entries older than {minutes} minutes are not sealed yet "
            "(is beat running exchanges.seal_trail? `verify_audit --seal` seals them now)."
        )
    return ""


def parse_anchor(text):
    """'audit:1234:<64 hex>' -> (chain, seq, hash); ValueError if it is not one."""
    name, seq, digest = text.strip().split(":")
    if name not in BY_NAME or not seq.isdigit() or len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
        raise ValueError(text)
    return BY_NAME[name], int(seq), digest
