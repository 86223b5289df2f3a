"""How an agreement is carried out, on the negotiation's page: the agreement at a glance
(one bar per releasing side, then the handovers in order), the commitments inline, and
the "Record handover" page. Every write goes through `exchanges.services`."""
import copy

from django import forms
from django.contrib import messages
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.db.models import Prefetch, prefetch_related_objects
from django.forms.models import ModelChoiceIterator
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from .. import policy, selectors, services
from ..choices import HandoverState, ParticipantRole
from ..models import Commitment, Handover, Negotiation, Party, Transfer
from .base import EditedWithParentMixin, RecordTabularInline, is_saved

#: PostgreSQL's integer: the most a count column holds.
MAX_COUNT = 2_147_483_647


def participant_parties(negotiation):
    """The parties taking part in a negotiation, by name: one query."""
    return list(Party.objects.filter(participations__negotiation=negotiation).order_by("name").distinct())


class _ListedChoiceIterator(ModelChoiceIterator):
    def __iter__(self):
        if self.field.empty_label is not None:
            yield ("", self.field.empty_label)
        for obj in self.field.listed:
            yield self.choice(obj)

    def __len__(self):
        return len(self.field.listed) + (self.field.empty_label is not None)

    def __bool__(self):
        return bool(self.field.listed) or self.field.empty_label is not None


class ListedModelChoiceField(forms.ModelChoiceField):
    """A choice among objects read once (`objects`, a list): the rows of a formset share
    the list instead of each reading its choices again."""

    iterator = _ListedChoiceIterator

    def __init__(self, objects, **kwargs):
        self.listed = list(objects)
        model = type(self.listed[0]) if self.listed else Party
        super().__init__(model.objects.none(), **kwargs)

    def to_python(self, value):
        if value in self.empty_values:
            return None
        key = str(getattr(value, "pk", value))
        for obj in self.listed:
            if str(obj.pk) == key:
                return obj
        raise ValidationError(self.error_messages["invalid_choice"], code="invalid_choice", params={"value": value})


def _label(model, name):
    return capfirst(model._meta.get_field(name).verbose_name)


class PartiesOfTheNegotiationMixin:
    """An inline whose party columns offer only the parties taking part (read once)."""

    party_fields = ()

    def negotiation_of(self, obj):
        return obj

    def get_formset(self, request, obj=None, **kwargs):
        negotiation = self.negotiation_of(obj) if is_saved(obj) else None
        parties = participant_parties(negotiation) if negotiation is not None else []
        default = kwargs.pop("formfield_callback", None)

        def formfield(db_field, **field_kwargs):
            if db_field.name in self.party_fields:
                return ListedModelChoiceField(parties, label=capfirst(db_field.verbose_name), required=not db_field.blank)
            if default is not None:
                return default(db_field, **field_kwargs)
            return self.formfield_for_dbfield(db_field, request=request, **field_kwargs)

        return super().get_formset(request, obj, formfield_callback=formfield, **kwargs)


class PartsWithinWholeForm(forms.ModelForm):
    """Counts whose parts (the seriously wounded, the civilians) are never above their
    whole, said on the field rather than as a broken database rule; the service checks
    the same again."""

    parts = ()  # (part, whole) field names

    def clean(self):
        data = super().clean()
        for part, whole in self.parts:
            value, total = data.get(part), data.get(whole)
            if value is not None and total is not None and value > total:
                self.add_error(
                    part,
                    _("Part of “%(whole)s” (%(total)s), never more.") % {"whole": _label(self._meta.model, whole), "total": total},
                )
        return data


class CommitmentForm(PartsWithinWholeForm):
    parts = (("seriously_wounded_count", "count"),)


class CommitmentInline(PartiesOfTheNegotiationMixin, EditedWithParentMixin, RecordTabularInline):
    """What each releasing party undertook. Saved with the negotiation, as a whole list,
    through `services.negotiation_update` (NegotiationAdmin.save_related); whoever may
    change the negotiation may change them (the service asks the same). Not on the add
    page (NegotiationAdmin.get_inlines): the parties must take part first."""

    model = Commitment
    parent_model = Negotiation
    form = CommitmentForm
    extra = 1
    fields = ["party", "count", "seriously_wounded_count", "notes"]
    party_fields = ("party",)
    verbose_name_plural = _("commitments (empty count: all it holds)")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("party")

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "notes":
            kwargs["widget"] = forms.Textarea(attrs={"rows": 1, "cols": 30})
        return super().formfield_for_dbfield(db_field, request, **kwargs)


def commitments_from(formset):
    """The commitments list for the service, from the inline's rows."""
    rows = [form.cleaned_data for form in formset.forms if form.cleaned_data and not form.cleaned_data.get("DELETE")]
    return [
        {
            "party": row["party"],
            "count": row.get("count"),
            "seriously_wounded_count": row.get("seriously_wounded_count"),
            "notes": row.get("notes") or "",
        }
        for row in rows
        if row.get("party")
    ]


# The agreement at a glance ---------------------------------------------------------------


def _percent(value, scale):
    """A bar's width in CSS, never localised ("12.5", not "12,5")."""
    return f"{100 * value / scale:.2f}" if scale else "0"


def is_overdue(handover, today):
    return handover.state == HandoverState.PLANNED and handover.planned_on is not None and handover.planned_on < today


def glance(negotiation, user, *, today=None):
    """What the page shows of the agreement, read in three queries whatever its size
    (commitments, handovers, transfers), only what the login may see; None for a login
    that sees neither commitments nor handovers."""
    sees_commitments = policy.has_model_perm(user, Commitment)
    sees_handovers = policy.has_model_perm(user, Handover)
    if not (sees_commitments or sees_handovers):
        return None
    today = today or timezone.localdate()
    commitments = Commitment.objects.select_related("party").order_by("id")
    transfers = Transfer.objects.select_related("from_party", "to_party").order_by("id")
    handovers = Handover.objects.select_related("verified_by").order_by("sequence")
    handovers = handovers.prefetch_related(Prefetch("transfers", queryset=transfers))
    shadow = copy.copy(negotiation)  # the page's object keeps its own caches
    shadow._prefetched_objects_cache = {}
    prefetch_related_objects(
        [shadow],
        Prefetch("commitments", queryset=policy.restrict(commitments, user) if sees_commitments else commitments.none()),
        Prefetch("handovers", queryset=policy.restrict(handovers, user) if sees_handovers else handovers.none()),
    )
    parties = {str(c.party_id): c.party for c in shadow.commitments.all()}
    open_ended = {str(c.party_id) for c in shadow.commitments.all() if c.count is None}
    rows = []
    for handover in shadow.handovers.all():
        moves = list(handover.transfers.all())
        for transfer in moves:
            parties.setdefault(str(transfer.from_party_id), transfer.from_party)
        rows.append({"handover": handover, "overdue": is_overdue(handover, today), "transfers": moves,
                     "disputed": any(t.disputed for t in moves)})  # fmt: skip
    progress = selectors.progress(shadow)
    # One scale for every side, so that their bars compare.
    scale = max((max(e["committed"] or 0, e["released"], e["verified"]) for e in progress), default=0)
    sides = []
    for entry in progress:
        committed, released, verified = entry["committed"], entry["released"], entry["verified"]
        sides.append(
            {
                **entry,
                "name": parties.get(entry["party"], entry["party"]),
                "open_ended": entry["party"] in open_ended,
                "uncommitted": committed is None and entry["party"] not in open_ended,
                "released_width": _percent(released, scale),
                "verified_width": _percent(verified, scale),
                "committed_width": _percent(committed or 0, scale),
            }
        )
    return {
        "sides": sides,
        "handovers": rows,
        "overdue": sum(row["overdue"] for row in rows),
        "disputed": sum(row["disputed"] for row in rows),
        "sees_commitments": sees_commitments,
        "sees_handovers": sees_handovers,
    }


def page_context(request, negotiation):
    """The change page's extra context: the glance, and the link to record a handover."""
    allowed = policy.allows(request.user, "add", Handover, negotiation=negotiation)
    return {
        "agreement": glance(negotiation, request.user),
        "record_handover_url": reverse("admin:exchanges_negotiation_record_handover", args=[negotiation.pk]) if allowed else None,
    }


# Recording a handover ------------------------------------------------------------------


def _date_input():
    return forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class HandoverRecordForm(forms.Form):
    """A handover's own fields, exactly `services.HANDOVER_FIELDS`."""

    state = forms.ChoiceField(label=_label(Handover, "state"), choices=HandoverState.choices, initial=HandoverState.PLANNED)
    planned_on = forms.DateField(label=_label(Handover, "planned_on"), required=False, widget=_date_input())
    occurred_on = forms.DateField(
        label=_label(Handover, "occurred_on"), required=False, widget=_date_input(), help_text=Handover._meta.get_field("occurred_on").help_text
    )
    location = forms.CharField(label=_label(Handover, "location"), max_length=300, required=False)
    verified_by = forms.ModelChoiceField(
        label=_label(Handover, "verified_by"), queryset=Party.objects.order_by("name"), required=False,
        help_text=Handover._meta.get_field("verified_by").help_text,
    )  # fmt: skip
    source = forms.CharField(label=_label(Handover, "source"), max_length=1000, required=False)
    notes = forms.CharField(label=_label(Handover, "notes"), widget=forms.Textarea(attrs={"rows": 3}), required=False)


def _count_field(name):
    return forms.IntegerField(label=_label(Transfer, name), min_value=0, max_value=MAX_COUNT, required=False)


class TransferRowForm(forms.Form):
    """One direction of a handover: who releases, who receives, and the counts."""

    def __init__(self, *args, parties, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["from_party"] = ListedModelChoiceField(parties, label=_label(Transfer, "from_party"))
        self.fields["to_party"] = ListedModelChoiceField(parties, label=_label(Transfer, "to_party"))
        for name in services.TRANSFER_COUNTS:
            self.fields[name] = _count_field(name)


class TransferRowFormSet(forms.BaseFormSet):
    """Rows offered empty, some with a suggested direction: a row left as offered is not
    recorded (every row is an extra one, even a pre-filled one)."""

    def initial_form_count(self):
        return super().initial_form_count() if self.is_bound else 0


TransferFormSet = forms.formset_factory(TransferRowForm, formset=TransferRowFormSet, extra=4, max_num=50)


def suggested_directions(negotiation):
    """With exactly two sides, both directions between them, for the first two rows."""
    sides = [p.party for p in negotiation.participants.select_related("party").order_by("id") if p.role == ParticipantRole.SIDE]
    if len(sides) != 2:
        return []
    first, second = sides
    return [{"from_party": first, "to_party": second}, {"from_party": second, "to_party": first}]


def _show_service_errors(error, form, transfer_errors):
    """The service's refusal on the form: fields on fields, transfers above the rows."""
    errors = error.message_dict if hasattr(error, "error_dict") else {NON_FIELD_ERRORS: error.messages}
    for field, field_errors in errors.items():
        if field == "transfers" or field in services.TRANSFER_COUNTS or field in ("from_party", "to_party"):
            transfer_errors.extend(field_errors)
        else:
            form.add_error(field if field in form.fields else None, field_errors)


def record_handover_view(model_admin, request, object_id):
    """403 without the permission to record handovers here, 404 for a negotiation the login
    may not see; the handover and its transfers through `services.handover_create`."""
    if not model_admin.has_view_or_change_permission(request):
        raise PermissionDenied
    negotiation = model_admin.get_object(request, object_id)
    if negotiation is None:
        raise Http404
    policy.require(request.user, "add", Handover, negotiation=negotiation)  # Refused: a 403
    change_url = reverse("admin:exchanges_negotiation_change", args=[negotiation.pk])
    parties = participant_parties(negotiation)
    data = request.POST if request.method == "POST" else None
    form = HandoverRecordForm(data)
    formset = TransferFormSet(data, prefix="transfers", initial=suggested_directions(negotiation), form_kwargs={"parties": parties})
    transfer_errors = []
    if data is not None and all([form.is_valid(), formset.is_valid()]):
        rows = [row.cleaned_data for row in formset.forms if row.has_changed() and row.cleaned_data]
        transfers = [
            {"from_party": row["from_party"], "to_party": row["to_party"], **{name: row.get(name) for name in services.TRANSFER_COUNTS}}
            for row in rows
        ]
        fields = {name: form.cleaned_data[name] for name in services.HANDOVER_FIELDS}
        try:
            handover = services.handover_create(negotiation=negotiation, actor=request.user, transfers=transfers, **fields)
        except ValidationError as error:
            _show_service_errors(error, form, transfer_errors)
        else:
            messages.success(
                request,
                _("Handover %(sequence)d recorded (%(state)s).") % {"sequence": handover.sequence, "state": handover.get_state_display()},
            )
            return HttpResponseRedirect(change_url)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": Negotiation._meta,
        "original": negotiation,
        "negotiation": negotiation,
        "form": form,
        "formset": formset,
        "transfer_errors": transfer_errors,
        "has_parties": len(parties) >= 2,
        "title": _("Record a handover of %(ref)s") % {"ref": negotiation.reference},
        "change_url": change_url,
    }
    return TemplateResponse(request, "admin/exchanges/negotiation/record_handover.html", context)
