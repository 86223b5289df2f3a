"""Who has access: API clients of the parties, and the staff teams."""
from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db.models import Count, OuterRef
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .. import audit, services
from ..models import (
    ApiClient,
    AuditEntry,
    Team,
)
from .base import AuditedAdminMixin, RecordAdmin, adopt, changed_fields, visible_negotiation_count


class ApiClientForm(forms.ModelForm):
    class Meta:
        model = ApiClient
        fields = ["name", "party", "read_only", "expires_at"]


@admin.register(ApiClient)
class ApiClientAdmin(AuditedAdminMixin, RecordAdmin):
    form = ApiClientForm
    list_display = ["name", "party", "read_only", "token_prefix", "state", "expires_at", "last_used_at"]
    list_filter = ["read_only", "party"]
    list_select_related = ["party"]
    search_fields = ["name", "party__name", "party__short_name", "token_prefix"]
    autocomplete_fields = ["party"]
    readonly_fields = ["token_prefix", "revoked_at", "last_used_at", "created_at"]
    actions = ["revoke"]

    @admin.display(description=_("state"))
    def state(self, client):
        if client.revoked_at:
            return _("revoked")
        if client.expires_at and client.expires_at <= timezone.now():
            return _("expired")
        return _("active")

    def save_model(self, request, obj, form, change):
        if change:
            services.api_client_update(client=obj, actor=request.user, **changed_fields(form, services.CLIENT_FIELDS))
            return
        client, token = services.api_client_create(
            name=form.cleaned_data["name"],
            party=form.cleaned_data["party"],
            read_only=form.cleaned_data["read_only"],
            expires_at=form.cleaned_data["expires_at"],
            actor=request.user,
        )
        adopt(obj, client)
        messages.warning(
            request,
            format_html(
                "{} <code style='user-select:all;font-size:1.1em'>{}</code>",
                _("Copy this token now: it is stored only as a hash and will not be shown again."),
                token,
            ),
        )

    @admin.action(description=_("Revoke the selected clients' tokens"), permissions=["change"])
    def revoke(self, request, queryset):
        for client in queryset:
            services.api_client_revoke(client=client, actor=request.user)
        revoked = queryset.count()
        messages.success(request, ngettext("%(n)d client revoked.", "%(n)d clients revoked.", revoked) % {"n": revoked})

    def has_delete_permission(self, request, obj=None):
        return False


def _team_snapshot(team):
    return audit.snapshot(team, members=sorted(team.members.values_list("username", flat=True)))


@admin.register(Team)
class TeamAdmin(AuditedAdminMixin, RecordAdmin):
    """Teams of staff: a staff-only negotiation is seen by the staff of its teams. Managed by
    whoever has the team permissions (Coordinators)."""

    list_display = ["name", "description", "member_count", "negotiation_count"]
    search_fields = ["name", "description"]
    fields = ["name", "description", "members"]
    filter_horizontal = ["members"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                member_count=Count("members", distinct=True),
                negotiation_count=visible_negotiation_count(request, teams=OuterRef("pk")),
            )
        )

    def save_model(self, request, obj, form, change):
        obj._audit_before = _team_snapshot(Team.objects.get(pk=obj.pk)) if change else None
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        """Who is in a team decides who sees its staff-only negotiations: kept in the trail."""
        super().save_related(request, form, formsets, change)
        team = form.instance
        action = AuditEntry.Action.UPDATE if change else AuditEntry.Action.CREATE
        audit.record(actor=request.user, action=action, instance=team, before=team._audit_before, after=_team_snapshot(team))

    def delete_model(self, request, obj):
        audit.record(actor=request.user, action=AuditEntry.Action.DELETE, instance=obj, before=_team_snapshot(obj))
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for team in queryset:
            self.delete_model(request, team)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "members":  # staff logins (inactive ones too, so saving keeps them)
            kwargs["queryset"] = get_user_model().objects.filter(is_staff=True).order_by("username")
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    @admin.display(description=_("members"), ordering="member_count")
    def member_count(self, team):
        return team.member_count

    @admin.display(description=_("negotiations"), ordering="negotiation_count")
    def negotiation_count(self, team):
        return team.negotiation_count
