"""The bases of every admin here and in the tracker: rows through `policy.restrict`,
changes and deletes only as `policy.allows`, the audit trail only for those who may read it."""
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import F, Func, Subquery
from django.db.models.functions import Coalesce
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ERROR_FLAG, IGNORED_PARAMS, PAGE_VAR, SEARCH_VAR
from django.contrib.admin.widgets import FilteredSelectMultiple, RelatedFieldWidgetWrapper
from django.http import HttpResponseRedirect
from django.template.loader import render_to_string
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext_lazy as _

from .. import audit, policy
from ..models import AccessLogEntry, AuditEntry, Negotiation
from . import history
from .assets import LeanMediaMixin


def changed_fields(form, names):
    return {name: form.cleaned_data[name] for name in names if name in form.changed_data}


def adopt(obj, saved):
    """Make the admin's in-memory object the one the service saved (the admin redirects to obj.pk)."""
    obj.__dict__.update({key: value for key, value in saved.__dict__.items() if key != "_state"})
    obj._state.adding = False
    obj._state.db = saved._state.db


def render_audit(entries):
    """The audit entries as staff read them (`history.readable`): when, who by name, what
    record with a link, and each field's label with its value before and after."""
    rows = history.readable(entries)
    if not rows:
        return _("No changes recorded.")
    return render_to_string("admin/exchanges/history_table.html", {"rows": rows})


def viewer_of(obj):
    """The login an object was read for (`PolicyAdminMixin.get_object` notes it): display
    methods get no request, and must show only what that login may see and do."""
    return getattr(obj, "_admin_user", None)


def may(obj, action, target, **context):
    """Whether the login `obj` was read for may do `action` to `target` (policy.allows)."""
    user = viewer_of(obj)
    return user is not None and policy.allows(user, action, target, **context)


def is_saved(obj):
    return obj is not None and not obj._state.adding


def visible_negotiation_count(request, **link):
    """How many of the negotiations linked so (e.g. teams=OuterRef("pk")) the login may see:
    an annotation for a list's column, one subquery, never a count of hidden ones."""
    visible = policy.restrict(Negotiation.objects.filter(**link), request.user).order_by()
    count = Func(F("pk"), function="COUNT", output_field=models.IntegerField())
    return Coalesce(Subquery(visible.annotate(n=count).values("n")), 0)


class PolicyMixin:
    """Rows and choices through the policy, for admins and inlines alike."""

    def get_queryset(self, request):
        return policy.restrict(super().get_queryset(request), request.user)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.related_model is Negotiation and "queryset" not in kwargs:
            kwargs["queryset"] = policy.restrict(Negotiation.objects.all(), request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    #: Labels of the two-box pickers (filter_horizontal), as nouns naming what is chosen:
    #: the widget says "Available …" and "Choose all …" with it.
    filter_labels = {}

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if "widget" not in kwargs and db_field.name in (*self.filter_horizontal, *self.filter_vertical):
            label = self.filter_labels.get(db_field.name) or db_field.related_model._meta.verbose_name_plural
            kwargs["widget"] = FilteredSelectMultiple(label, db_field.name in self.filter_vertical)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        """No "delete" shortcut beside a related field: the red cross deletes the related
        record itself (a party, a group, a login shared by every negotiation), never the
        link; records are deleted from their own page, where what depends on them shows."""
        formfield = super().formfield_for_dbfield(db_field, request, **kwargs)
        if formfield is not None and isinstance(formfield.widget, RelatedFieldWidgetWrapper):
            formfield.widget.can_delete_related = False
        return formfield


class PolicyAdminMixin(PolicyMixin):
    """A ModelAdmin that shows only what the login may see and offers only what it may do.

    Model permissions decide the admin as a whole (Django's defaults, view included);
    `policy.allows` decides for the object at hand. A service's refusal (`policy.Refused`)
    is a 403; its validation errors show on the form, with what was typed, not as a 500.
    """

    def get_object(self, request, object_id, from_field=None):
        """The object, noted with the login it is read for; a page that shows a staff-only
        negotiation (its own, or one a row hangs off) is written to the access log."""
        obj = super().get_object(request, object_id, from_field)
        if obj is not None:
            obj._admin_user = request.user
            if request.method in ("GET", "HEAD") and self.logs_reads:
                audit.log_staff_reads_of(request.user, [obj], channel=AccessLogEntry.Channel.PAGE)
        return obj

    #: Whether pages of this admin are staff reads of negotiations for the access log (the
    #: logs themselves are not: reading the trail is not reading the record).
    logs_reads = True

    def changelist_view(self, request, extra_context=None):
        unknown = unknown_filter_values(self, request)
        if unknown:  # a value no filter offers: say so, rather than an empty list
            return _without(self, request, unknown, _("This list cannot be filtered by %(filters)s with that value: showing it without."))
        try:
            response = super().changelist_view(request, extra_context)
        except (ValidationError, ValueError, TypeError, OverflowError) as error:  # a value the database refused
            return _without_bad_filters(self, request, error)
        if _is_bad_filter_redirect(request, response):
            return _without_bad_filters(self, request, None)
        changelist = (getattr(response, "context_data", None) or {}).get("cl")
        if changelist is not None and self.logs_reads:
            audit.log_staff_reads_of(request.user, changelist.result_list, channel=AccessLogEntry.Channel.PAGE)
        return response

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and (
            obj is None or policy.allows(request.user, "change", obj)
        )

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and (
            obj is None or policy.allows(request.user, "delete", obj)
        )

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if request.method != "POST":
            return super().changeform_view(request, object_id, form_url, extra_context)
        try:
            with transaction.atomic():
                return super().changeform_view(request, object_id, form_url, extra_context)
        except ValidationError as error:
            # Nothing was written; show the form again, as typed, with the service's errors.
            request._service_errors = error
        return super().changeform_view(request, object_id, form_url, extra_context)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        error = getattr(request, "_service_errors", None)
        if error is None:
            return form

        class RefusedForm(form):
            def clean(self):
                cleaned_data = super().clean()
                errors = error.message_dict if hasattr(error, "error_dict") else {None: error.messages}
                for field, field_errors in errors.items():
                    for message in field_errors:
                        self.add_error(field if field in self.fields else None, message)
                return cleaned_data

        return RefusedForm


def _is_bad_filter_redirect(request, response):
    """Django answers a filter it cannot apply with a redirect to `?e=1`, then a page
    about a broken database: never shown here."""
    return ERROR_FLAG in request.GET or (
        isinstance(response, HttpResponseRedirect) and response.url.endswith(f"?{ERROR_FLAG}=1")
    )


def _filter_applies(model_admin, request, name, values):
    probe = request.GET.copy()
    for key in list(probe):
        if key not in IGNORED_PARAMS:
            del probe[key]
    probe.setlist(name, values)
    original = request.GET
    request.GET = probe
    try:
        changelist = model_admin.get_changelist_instance(request)
        list(changelist.queryset[:1])
    except Exception:  # noqa: BLE001 - any refusal means this filter is not understood
        return False
    finally:
        request.GET = original
    return True


def _simple_filters(model_admin, request):
    """{parameter: filter class} of the list's own filters (SimpleListFilter)."""
    return {
        item.parameter_name: item
        for item in model_admin.get_list_filter(request)
        if isinstance(item, type) and issubclass(item, admin.SimpleListFilter)
    }


def _field_and_lookup(model, name):
    """(field, lookup) a field parameter names ("status__in" -> status, "in"), or (None, "")."""
    from django.contrib.admin.utils import get_fields_from_path

    path, lookup = name.split("__"), []
    while path:
        try:
            return get_fields_from_path(model, "__".join(path))[-1], "__".join(lookup)
        except Exception:  # noqa: BLE001 - a lookup or a transform: try the shorter path
            lookup.insert(0, path.pop())
    return None, ""


def _filter_label(model_admin, request, name):
    """What staff call the filter a parameter belongs to (its title, or its field's name)."""
    simple = _simple_filters(model_admin, request)
    if name in simple:
        return simple[name].title
    if name == SEARCH_VAR:
        return _("search")
    field, _lookup = _field_and_lookup(model_admin.model, name)
    return field.verbose_name if field is not None else name


def unknown_filter_values(model_admin, request):
    """The list's filter parameters whose value is not one the filter offers: a choice
    ("status=nonsense", "stalled=maybe") that would otherwise show an empty or unfiltered
    list as if it were the answer. Other values (dates, ids) are checked by applying them
    (`_without_bad_filters`)."""
    simple = _simple_filters(model_admin, request)
    unknown = []
    for name in request.GET:
        if name in IGNORED_PARAMS or name in (ERROR_FLAG, PAGE_VAR):
            continue
        values = request.GET.getlist(name)
        if name in simple:
            spec = simple[name](request, request.GET.copy(), model_admin.model, model_admin)
            offered = {str(key) for key, _label in (spec.lookup_choices or ())}
            if offered and any(value and value not in offered for value in values):
                unknown.append(name)
            continue
        field, lookup = _field_and_lookup(model_admin.model, name)
        choices = getattr(field, "flatchoices", None)
        if not choices or lookup not in ("", "exact", "in"):
            continue
        offered = {str(key) for key, _label in choices}
        given = [part for value in values for part in (value.split(",") if lookup == "in" else [value])]
        if any(value not in offered for value in given):
            unknown.append(name)
    return unknown


def _without(model_admin, request, names, message):
    """The list again without the parameters `names`, with `message` naming their filters
    as staff know them (a plain message when there is none to name)."""
    from django.contrib import messages

    kept = request.GET.copy()
    kept.pop(ERROR_FLAG, None)
    for name in names:
        kept.pop(name, None)
    labels = sorted({str(_filter_label(model_admin, request, name)) for name in names})
    if labels:
        messages.error(request, message % {"filters": ", ".join(labels)})
    else:
        messages.error(request, _("This list could not be shown with those filters: showing it without."))
    query = urlencode(sorted((name, value) for name in kept for value in kept.getlist(name)))
    return HttpResponseRedirect(f"{request.path}?{query}" if query else request.path)


def _without_bad_filters(model_admin, request, error):
    """The list again without the filters it could not apply, saying which: a bad value
    in the address (typed, pasted, from an old link) is a message, never an error page."""
    kept = request.GET.copy()
    kept.pop(ERROR_FLAG, None)
    bad = [name for name in list(kept) if name not in IGNORED_PARAMS and not _filter_applies(model_admin, request, name, kept.getlist(name))]
    if not bad:  # the combination failed, or a search did: start again from the whole list
        bad = [name for name in list(kept) if name != "o"]
    return _without(model_admin, request, bad, _("This list cannot be filtered by %(filters)s: showing it without."))


def safe_next(request):
    """The admin page to come back to after a save (`?next=`), when it is one of ours."""
    target = request.GET.get("next") or request.POST.get("next") or ""
    if target.startswith("/admin/") and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return None


class ReturnToMixin:
    """After "Save", back to where the staff member came from (`?next=`: the case file that
    offered "Add event" or "Add figure"), not to a list."""

    def _back(self, request, response):
        target = safe_next(request)
        if target and isinstance(response, HttpResponseRedirect) and not any(
            key in request.POST for key in ("_continue", "_addanother", "_saveasnew")
        ):
            return HttpResponseRedirect(target)
        return response

    def response_add(self, request, obj, post_url_continue=None):
        return self._back(request, super().response_add(request, obj, post_url_continue))

    def response_change(self, request, obj):
        return self._back(request, super().response_change(request, obj))


class PolicyInlineMixin(PolicyMixin):
    """An inline whose rows are added, changed or deleted only as the policy allows for
    the negotiation (or other record) on the page."""

    def _allows(self, request, action, obj):
        negotiation = obj if isinstance(obj, Negotiation) and is_saved(obj) else None
        return policy.allows(request.user, action, self.model, negotiation=negotiation)

    def has_add_permission(self, request, obj=None):
        return super().has_add_permission(request, obj) and self._allows(request, "add", obj)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self._allows(request, "change", obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and self._allows(request, "delete", obj)


class ServiceDeleteMixin:
    """Deletes go through the record's delete service (audited, asked of the policy), and
    a record the service would refuse (still referred to) is shown as protected, with
    nothing deleted."""

    def delete_service(self, obj, actor):  # pragma: no cover - every user overrides it
        raise NotImplementedError

    #: Why a record the service refuses is kept, beside its name on the confirmation page.
    in_use_label = _("%(record)s (still referred to by other records)")
    #: Whether the rows that go with it are the record's own (no delete permission asked
    #: for each kind of them: the service's policy decides for the whole).
    deletes_own_rows = False

    def in_use(self, obj):
        return False

    def get_deleted_objects(self, objs, request):
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        referred = [self.in_use_label % {"record": obj} for obj in objs if self.in_use(obj)]
        return deleted, counts, set() if self.deletes_own_rows else perms_needed, [*protected, *referred]

    def delete_model(self, request, obj):
        self.delete_service(obj, request.user)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_service(obj, request.user)


class RecordAdmin(ReturnToMixin, PolicyAdminMixin, LeanMediaMixin, admin.ModelAdmin):
    """The base of every ModelAdmin here and in the tracker."""


class RecordTabularInline(PolicyInlineMixin, admin.TabularInline):
    """The base of every inline here and in the tracker."""


class EditedWithParentMixin:
    """An inline whose rows are written by the parent's service as one list (commitments
    by `negotiation_update`, transfers by `handover_update`): editable by whoever may
    change the parent (`parent_model`), seen also with the rows' own view permission."""

    parent_model = None

    def _may_edit(self, request, obj):
        """Whether the login may change this parent (obj None: such parents at all)."""
        return policy.allows(request.user, "change", obj if is_saved(obj) else self.parent_model)

    def has_view_permission(self, request, obj=None):
        return policy.has_model_perm(request.user, self.model) or self._may_edit(request, obj)

    def has_add_permission(self, request, obj=None):
        return self._may_edit(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._may_edit(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._may_edit(request, obj)


class AuditedAdminMixin:
    """Adds a read-only “Who changed what” section listing the object's audit entries, for
    logins that may read the audit trail."""

    audit_limit = 100
    #: Whether the change form adds the section (the negotiation's case file has its own).
    audit_section = True

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "audit_trail"]

    def get_fieldsets(self, request, obj=None):
        fieldsets = list(super().get_fieldsets(request, obj))
        fieldsets = [(name, {**opts, "fields": [f for f in opts["fields"] if f != "audit_trail"]}) for name, opts in fieldsets]
        if obj is not None and self.audit_section and policy.has_model_perm(request.user, AuditEntry):
            fieldsets.append((_("Who changed what"), {"fields": ["audit_trail"], "classes": ["collapse"]}))
        return fieldsets

    def audit_entries(self, obj):
        return AuditEntry.objects.filter(model=obj._meta.label_lower, object_id=str(obj.pk))

    def history_view(self, request, object_id, extra_context=None):
        """Django's "History" shows the audit trail, readable (it keeps no log of its own
        here), for logins that may read the trail."""
        response = super().history_view(request, object_id, extra_context)
        obj = getattr(response, "context_data", {}).get("object")
        if obj is not None:
            rows = None
            if policy.has_model_perm(request.user, AuditEntry):
                entries = policy.restrict(self.audit_entries(obj), request.user).exclude(action=AuditEntry.Action.READ)
                rows = history.readable(entries[: history.LIMIT])
            response.context_data["audit_rows"] = rows
        return response

    object_history_template = "admin/exchanges/object_history.html"

    @admin.display(description=_("audit trail"))
    def audit_trail(self, obj):
        user = viewer_of(obj)
        if not is_saved(obj) or not policy.has_model_perm(user, AuditEntry):
            return "-"
        return render_audit(policy.restrict(self.audit_entries(obj), user)[: self.audit_limit])


class ReadOnlyAdminMixin:
    """For append-only history: visible, never added, edited or deleted here (not even by
    a superuser)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
