"""Reported figures from a CSV file: every row is checked before any is written.

The columns are those the figures export writes (`COLUMNS`), so an export edited in a
spreadsheet comes back in. Metric and reliability may be given as codes or as their names
in any of the site's languages; dates as 2022-05-17, 17.05.2022 or 17/05/2022; counts with
or without thousands separators. A row that repeats a claim already recorded, or another
row of the file, is refused: a file sent twice over a poor connection does not double
the record.

Checked files are not recorded at once: the admin shows a preview and keeps the file's bytes
in the user's session (`keep_pending`) under a random token the confirm form posts back, so a
staff member on a poor connection does not send the file again; `take_pending` hands them
back once, and the file is checked again before it is recorded.
"""
import base64
import csv
import io
import re
import secrets
import time
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import translation
from django.utils.translation import gettext as _

from .choices import FigureMetric, Reliability
from .models import MAX_COUNT, DetaineeGroup, Party, ReportedFigure
from .spreadsheets import unguard

COLUMNS = ["group_id", "group", "metric", "value", "source_party", "source", "reported_on", "reliability", "notes"]
REQUIRED = ["metric", "value", "reported_on"]
MAX_BYTES = 2 * 1024 * 1024
MAX_ROWS = 5000
DATE_FORMATS = ("%Y-%m-%d", "%d.%m.%Y", "%d/%m/%Y")
#: The preview lists this many rows, then "and N more".
PREVIEW_ROWS = 200
#: Checked files waiting for their confirm, in the session: at most this many, this long.
PENDING_KEY = "exchanges.figure_import.pending"
PENDING_KEEP = 3
PENDING_MAX_AGE = 60 * 60
COUNT = re.compile(r"^\d{1,3}(?:([ ,.\u00a0\u202f'])\d{3})?(?:\1\d{3})*$|^\d+$")


@dataclass
class Problem:
    line: int  # the file's line number, the header being line 1; 0 for the file as a whole
    column: str
    message: str


@dataclass
class Checked:
    rows: list = field(default_factory=list)  # dicts ready for services.figure_create
    problems: list = field(default_factory=list)


def _names(choices):
    """Every way a value may be written: its code and its name in each language."""
    names = {}
    for value in choices.values:
        names[value.lower()] = value
    for code, _label in settings.LANGUAGES:
        with translation.override(code):
            for value, label in choices.choices:
                names[str(label).strip().lower()] = value
    return names


def _decode(raw):
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None


def _dialect(text):
    first_line = text.split("\n", 1)[0]
    try:
        return csv.Sniffer().sniff(first_line, delimiters=",;\t")
    except csv.Error:
        return csv.excel


def check(raw):
    """Parse and check a whole file (bytes). Returns the rows to write and every problem found."""
    result = Checked()
    if len(raw) > MAX_BYTES:
        result.problems.append(Problem(0, "", _("The file is larger than %(mb)d MB: split it.") % {"mb": MAX_BYTES // 2**20}))
        return result
    text = _decode(raw)
    if text is None:
        result.problems.append(Problem(0, "", _("The file is not UTF-8 text: save it as “CSV UTF-8”.")))
        return result
    reader = csv.DictReader(io.StringIO(text, newline=""), dialect=_dialect(text))
    header = [name.strip().lower() for name in (reader.fieldnames or [])]
    reader.fieldnames = header
    unknown = [name for name in header if name not in COLUMNS]
    missing = [name for name in REQUIRED if name not in header]
    if not header:
        result.problems.append(Problem(0, "", _("The file is empty.")))
        return result
    if unknown:
        result.problems.append(
            Problem(1, ", ".join(unknown), _("Unknown column. The columns are: %(columns)s.") % {"columns": ", ".join(COLUMNS)})
        )
    if missing:
        result.problems.append(Problem(1, ", ".join(missing), _("This column is required.")))
    if "group" not in header and "group_id" not in header:
        result.problems.append(Problem(1, "group", _("Give each row's group, by name (group) or id (group_id).")))
    if result.problems:
        return result

    records = []
    for record in reader:
        if len(records) >= MAX_ROWS:
            result.problems.append(Problem(reader.line_num, "", _("More than %(n)d rows: split the file.") % {"n": MAX_ROWS}))
            return result
        if None in record:
            result.problems.append(Problem(reader.line_num, "", _("This row has more cells than the header.")))
            continue
        values = {name: unguard((record.get(name) or "").strip()) for name in COLUMNS}
        if not any(values.values()):
            continue  # a blank line
        records.append((reader.line_num, values))
    if not records and not result.problems:
        result.problems.append(Problem(0, "", _("The file has no rows under its header.")))
        return result

    groups = _lookup_groups(records)
    parties = _lookup_parties(records)
    metrics, reliabilities = _names(FigureMetric), _names(Reliability)
    seen = {}
    for line, values in records:
        row, problems = _check_row(line, values, groups, parties, metrics, reliabilities)
        result.problems.extend(problems)
        if row is None:
            continue
        key = _claim_key(row)
        if key in seen:
            result.problems.append(Problem(line, "", _("This row repeats line %(line)d.") % {"line": seen[key]}))
            continue
        seen[key] = line
        result.rows.append((line, row))
    already = _recorded_claims({row["group"].pk for _line, row in result.rows})
    for line, row in result.rows:
        if _claim_key(row) in already:
            result.problems.append(
                Problem(line, "", _("This claim is already recorded (same group, metric, value, source and date)."))
            )
    result.rows = [row for _line, row in result.rows]
    return result


def _claim_key(row):
    source_party = row["source_party"].pk if row["source_party"] else None
    return (row["group"].pk, row["metric"], row["value"], source_party, row["source"].strip().lower(), row["reported_on"])


def _recorded_claims(group_ids):
    claims = ReportedFigure.objects.filter(group_id__in=group_ids).values_list(
        "group_id", "metric", "value", "source_party_id", "source", "reported_on"
    )
    return {(group, metric, value, party, source.strip().lower(), day) for group, metric, value, party, source, day in claims}


def _as_uuid(text):
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def _lookup_groups(records):
    """{("id", uuid) or ("name", lowercased name): [groups]} in two queries for the whole file."""
    ids = {_as_uuid(values["group_id"]) for _line, values in records if values["group_id"]} - {None}
    names = {values["group"].lower() for _line, values in records if values["group"] and not values["group_id"]}
    found = {}
    for group in DetaineeGroup.objects.filter(pk__in=ids):
        found[("id", group.pk)] = [group]
    if names:
        query = Q()
        for name in names:
            query |= Q(name__iexact=name)
        for group in DetaineeGroup.objects.filter(query):
            found.setdefault(("name", group.name.lower()), []).append(group)
    return found


def _lookup_parties(records):
    wanted = {values["source_party"] for _line, values in records if values["source_party"]}
    ids = {_as_uuid(text) for text in wanted} - {None}
    lowered = {text.lower() for text in wanted}
    query = Q(pk__in=ids)
    for text in lowered:
        query |= Q(name__iexact=text) | Q(short_name__iexact=text)
    found = {}
    if wanted:
        for party in Party.objects.filter(query):
            found.setdefault(str(party.pk), []).append(party)
            found.setdefault(party.name.lower(), []).append(party)
            if party.short_name:
                found.setdefault(party.short_name.lower(), []).append(party)
    return found


def _check_row(line, values, groups, parties, metrics, reliabilities):
    problems = []

    def problem(column, message):
        problems.append(Problem(line, column, message))

    group = None
    if values["group_id"]:
        group_id = _as_uuid(values["group_id"])
        matches = groups.get(("id", group_id), []) if group_id else []
        if not matches:
            problem("group_id", _("No detainee group has this id."))
        else:
            group = matches[0]
    elif values["group"]:
        matches = groups.get(("name", values["group"].lower()), [])
        if not matches:
            problem("group", _("No detainee group is called “%(name)s”.") % {"name": values["group"]})
        elif len(matches) > 1:
            problem("group", _("%(n)d groups are called “%(name)s”: give its group_id.") % {"n": len(matches), "name": values["group"]})
        else:
            group = matches[0]
    else:
        problem("group", _("This field is required."))

    metric = metrics.get(values["metric"].lower())
    if metric is None:
        problem("metric", _("Not a metric. Use one of: %(choices)s.") % {"choices": ", ".join(FigureMetric.values)})

    value = None
    if not values["value"]:
        problem("value", _("This field is required."))
    elif not COUNT.match(values["value"]):
        problem("value", _("Enter a whole number, 0 or more."))
    else:
        value = int(re.sub(r"\D", "", values["value"]))
        if value > MAX_COUNT:
            problem("value", _("Too large."))
            value = None

    source_party = None
    if values["source_party"]:
        matches = parties.get(values["source_party"].lower()) or parties.get(str(_as_uuid(values["source_party"]))) or []
        if not matches:
            problem("source_party", _("No party is called “%(name)s”.") % {"name": values["source_party"]})
        elif len({party.pk for party in matches}) > 1:
            problem("source_party", _("More than one party matches “%(name)s”: use its full name.") % {"name": values["source_party"]})
        else:
            source_party = matches[0]

    reported_on = None
    if not values["reported_on"]:
        problem("reported_on", _("This field is required."))
    else:
        for pattern in DATE_FORMATS:
            try:
                reported_on = datetime.strptime(values["reported_on"], pattern).date()
                break
            except ValueError:
                continue
        if reported_on is None:
            problem("reported_on", _("Not a date: write it as 2022-05-17."))

    reliability = Reliability.UNVERIFIED.value
    if values["reliability"]:
        reliability = reliabilities.get(values["reliability"].lower())
        if reliability is None:
            problem("reliability", _("Not a reliability. Use one of: %(choices)s.") % {"choices": ", ".join(Reliability.values)})

    if problems:
        return None, problems
    row = {
        "group": group,
        "metric": metric,
        "value": value,
        "source_party": source_party,
        "source": values["source"],
        "reported_on": reported_on,
        "reliability": reliability,
        "notes": values["notes"],
    }
    # The model's own rules (lengths, no date in the future), as the service will apply them.
    candidate = ReportedFigure(**row)
    try:
        candidate.full_clean(exclude=["id"])
    except ValidationError as exc:
        for column, messages in exc.message_dict.items():
            for message in messages:
                problem(column if column in COLUMNS else "", message)
        return None, problems
    return row, problems


def describe(row):
    """A checked row as it will be recorded, for the preview: names and labels, not objects and codes."""
    return {
        "group": row["group"].name,
        "metric": FigureMetric(row["metric"]).label,
        "value": row["value"],
        "source_party": row["source_party"].name if row["source_party"] else "",
        "source": row["source"],
        "reported_on": row["reported_on"],
        "reliability": Reliability(row["reliability"]).label,
        "notes": row["notes"],
    }


def _live(pending, now):
    """The pending files not yet expired, newest last."""
    entries = [(token, entry) for token, entry in (pending or {}).items() if isinstance(entry, dict) and now - entry.get("at", 0) < PENDING_MAX_AGE]
    return dict(sorted(entries, key=lambda item: item[1]["at"]))


def keep_pending(session, raw, *, user, name=""):
    """Keep a checked file's bytes in this session until it is confirmed; returns its token.

    Compressed (a CSV shrinks to a fifth or so) and base64'd for the JSON session; only the
    newest PENDING_KEEP files of a session are kept, each for PENDING_MAX_AGE seconds."""
    now = time.time()
    pending = _live(session.get(PENDING_KEY), now)
    token = secrets.token_urlsafe(24)
    pending[token] = {
        "user": str(user.pk),
        "name": name,
        "at": now,
        "data": base64.b64encode(zlib.compress(raw, 6)).decode("ascii"),
    }
    session[PENDING_KEY] = dict(list(pending.items())[-PENDING_KEEP:])
    return token


@dataclass
class Pending:
    raw: bytes
    name: str


def take_pending(session, token, *, user):
    """The file kept under `token` for this user in this session, removed from it; None when
    the token is unknown, expired, another login's, or already taken.

    Call it inside a transaction: with database sessions the session's row is locked and read
    afresh, and the removal written at once, so two confirms of one file sent together (a
    double click, a resend) cannot both take it: the second waits, then finds nothing."""
    now = time.time()
    stored = session.get(PENDING_KEY)
    if isinstance(session, DatabaseSessionStore) and session.session_key:
        row = session.model.objects.select_for_update().filter(session_key=session.session_key).first()
        stored = session.decode(row.session_data).get(PENDING_KEY) if row is not None else {}
    pending = _live(stored, now)
    entry = pending.pop(token, None) if isinstance(token, str) else None
    if entry is not None or PENDING_KEY in session:
        session[PENDING_KEY] = pending
        if entry is not None and isinstance(session, DatabaseSessionStore) and session.session_key:
            session.save()
    if entry is None or entry.get("user") != str(user.pk):
        return None
    try:
        raw = zlib.decompress(base64.b64decode(entry["data"]))
    except (KeyError, ValueError, zlib.error):
        return None
    return Pending(raw=raw, name=entry.get("name", ""))


@dataclass
class Confirmed:
    found: bool  # False: no such pending file (unknown, expired, another login's, or taken)
    figures: list = field(default_factory=list)  # what was recorded
    problems: list = field(default_factory=list)  # why nothing was


def confirm(session, token, *, user):
    """Record the file kept under `token`: checked again (the record may have changed since
    the preview), then every row in one transaction via services.figures_import, or none.
    The token is used up either way."""
    from . import services  # services import the models this module is imported with

    with transaction.atomic():
        pending = take_pending(session, token, user=user)
        if pending is None:
            return Confirmed(found=False)
        checked = check(pending.raw)
        if checked.problems:
            return Confirmed(found=True, problems=sorted(checked.problems, key=lambda problem: problem.line))
        try:
            with transaction.atomic():
                figures = services.figures_import(rows=checked.rows, actor=user)
        except ValidationError as exc:  # a claim recorded by someone else this very moment
            return Confirmed(found=True, problems=[Problem(0, "", message) for message in exc.messages])
    return Confirmed(found=True, figures=figures)
