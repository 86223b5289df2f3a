"""The audit trail as staff read it: who by name, the record by its name and a link, each
field by its label, before and after in words (names for ids, labels for choices, dates
in the language's format).

A few queries whatever the number of entries: the entries themselves, the staff logins
named as actors, and one per kind of record that the changes refer to by id.
"""
import uuid

from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist
from django.urls import NoReverseMatch, reverse
from django.utils import formats
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.text import capfirst
from django.utils.translation import gettext as _

#: How many entries a page shows (the full trail is under "Audit trail", filtered).
LIMIT = 100


def _model(label):
    try:
        return apps.get_model(label)
    except (LookupError, ValueError):
        return None


def _field(model, name):
    if model is None:
        return None
    try:
        return model._meta.get_field(name)
    except FieldDoesNotExist:
        # A foreign key is kept under its attname in some snapshots ("party_id").
        if name.endswith("_id"):
            return _field(model, name[: -len("_id")])
        return None


def admin_url(model, object_id):
    """The admin page of a record, or None where there is none."""
    if model is None or object_id in (None, ""):
        return None
    try:
        return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_change", args=[object_id])
    except NoReverseMatch:
        return None


#: Kept in every snapshot but of no use to a reader: the row's own id, the list of party
#: ids kept beside the participants for the API's fast path.
HIDDEN = {"id", "party_ids"}


def _is_reference(field):
    return field is not None and field.is_relation and (field.many_to_one or field.one_to_one)


def _listed_model(field):
    """The records a list field names by id: a many-to-many's, or for rows kept as a list
    (a negotiation's participants and commitments: [party, role, ...]) the record their
    first foreign key other than the parent points to."""
    if field is None or not field.is_relation:
        return None
    if field.many_to_many:
        return field.related_model
    if field.one_to_many:
        for other in field.related_model._meta.concrete_fields:
            if other.many_to_one and other.related_model is not field.model:
                return other.related_model
    return None


def _is_list_of_references(field):
    return _listed_model(field) is not None


def _label(field):
    """A field's label: its verbose name; for the rows kept as a list (a negotiation's
    participants), their records' plural name."""
    if field is None:
        return None
    if hasattr(field, "verbose_name"):
        return field.verbose_name
    if field.one_to_many:
        return field.related_model._meta.verbose_name_plural
    return None


def _choice_labels(model):
    """{value: label} of every choice field of `model` (a participant's role)."""
    return {str(key): label for field in model._meta.concrete_fields if field.choices for key, label in field.flatchoices}


def _first(item):
    """A list entry's id: the entry itself, or the first of its values ([party, role])."""
    return item[0] if isinstance(item, (list, tuple)) and item else item


def _names(model, ids):
    """{str(pk): str(object)} for the ids that exist (one query)."""
    valid = []
    for value in ids:
        try:
            valid.append(model._meta.pk.to_python(value))
        except Exception:  # noqa: BLE001 - an id kept in an old format: shown as it is
            continue
    if not valid:
        return {}
    label = person if model is get_user_model() else str
    # A record's name may read the records it points to (a flag's, its negotiation's reference).
    rows = model._default_manager.filter(pk__in=valid).select_related()
    return {str(obj.pk): label(obj) for obj in rows}


def _looks_like_id(text):
    try:
        uuid.UUID(text)
    except ValueError:
        return text.isdigit()
    return True


def person(user):
    """A staff login as people know it: full name, else the login name."""
    return (user.get_full_name() or "").strip() or user.get_username()


def _when(value):
    if isinstance(value, str):
        parsed = parse_datetime(value) if "T" in value else None
        if parsed is not None:
            return formats.date_format(parsed, "SHORT_DATETIME_FORMAT")
        day = parse_date(value) if len(value) == 10 else None
        if day is not None:
            return formats.date_format(day, "SHORT_DATE_FORMAT")
    return None


class Readable:
    """Turns audit entries into rows staff can read; build it with every entry first so
    that the ids they refer to are looked up together."""

    def __init__(self, entries):
        self.entries = list(entries)
        wanted = {}  # related model -> ids
        for entry in self.entries:
            model = _model(entry.model)
            for name, values in (entry.changes or {}).items():
                field = _field(model, name)
                if _is_reference(field):
                    wanted.setdefault(field.related_model, set()).update(
                        str(value) for value in values if value not in (None, "")
                    )
                elif _is_list_of_references(field):
                    wanted.setdefault(_listed_model(field), set()).update(
                        str(_first(item)) for value in values if isinstance(value, list) for item in value
                    )
        # The records themselves, to name them in the reader's language (what was stored is
        # in the writer's); one query per kind of record, with those the changes name.
        for entry in self.entries:
            model = _model(entry.model)
            if model is not None and entry.object_id not in (None, "") and entry.action != "delete":
                wanted.setdefault(model, set()).add(str(entry.object_id))
        # The staff named as actors are read with any the changes name (one query).
        staff_ids = {entry.actor_id for entry in self.entries if entry.actor_type == "staff" and entry.actor_id}
        wanted.setdefault(get_user_model(), set()).update(staff_ids)
        self.names = {model: _names(model, ids) for model, ids in wanted.items()}
        self.people = self.names[get_user_model()]

    def who(self, entry):
        if entry.actor_type == "staff":
            return self.people.get(entry.actor_id, entry.actor_label)
        if entry.actor_type == "system":
            return _("the system")
        return entry.actor_label

    def value(self, field, value):
        if value is None or value == "" or value == []:
            return "–"
        if _is_reference(field):
            name = self.names.get(field.related_model, {}).get(str(value))
            return name or _("(a record since removed)")
        if _is_list_of_references(field) and isinstance(value, list):
            return "; ".join(self._listed(field, item) for item in value) or "–"
        if field is not None and getattr(field, "choices", None):
            labels = {str(key): label for key, label in field.flatchoices}
            if isinstance(value, list):
                return ", ".join(str(labels.get(str(item), item)) for item in value)
            return str(labels.get(str(value), value))
        if isinstance(value, bool):
            return _("yes") if value else _("no")
        if isinstance(value, list):
            return ", ".join(str(item) for item in value) or "–"
        if isinstance(value, (int, float)):
            return formats.number_format(value, force_grouping=True)
        when = _when(value)
        if when is not None:
            return when
        text = str(value)
        if _looks_like_id(text) and not isinstance(value, int):
            return _("(a record)")
        return text if len(text) <= 160 else text[:157] + "…"

    def _listed(self, field, item):
        """One entry of a list of records: its name, then what else the entry says (a
        participant's role, a group's counts), labels for choices."""
        names = self.names.get(_listed_model(field), {})
        key = str(_first(item))
        name = names.get(key) or (_("(a record since removed)") if _looks_like_id(key) else key)
        if not isinstance(item, (list, tuple)):
            return name
        labels = _choice_labels(field.related_model) if field.one_to_many else {}
        extra = [str(labels.get(str(value), value)) for value in item[1:] if value not in (None, "")]
        return f"{name} ({', '.join(extra)})" if extra else name

    def rows(self):
        rows = []
        for entry in self.entries:
            model = _model(entry.model)
            changes = []
            for name, values in sorted((entry.changes or {}).items()):
                if name in HIDDEN:
                    continue
                field = _field(model, name)
                label = capfirst(_label(field) or name.replace("_", " "))
                before, after = (list(values) + [None, None])[:2] if isinstance(values, list) else (None, values)
                changes.append({"field": label, "before": self.value(field, before), "after": self.value(field, after)})
            rows.append(
                {
                    "entry": entry,
                    "when": entry.occurred_at,
                    "who": self.who(entry),
                    "action": entry.get_action_display(),
                    "record": capfirst(model._meta.verbose_name) if model is not None else entry.model,
                    "object": self.names.get(model, {}).get(str(entry.object_id)) or entry.object_repr,
                    "url": admin_url(model, entry.object_id) if entry.action != "delete" else None,
                    "changes": changes,
                    "request_id": entry.request_id,
                }
            )
        return rows


def readable(entries):
    """The rows of a readable history (see `Readable`)."""
    return Readable(entries).rows()
