"""Negotiating parties."""
from django.contrib import admin
from django.db.models import OuterRef
from django.utils.translation import gettext_lazy as _

from .. import services
from ..models import (
    Party,
)
from .base import AuditedAdminMixin, RecordAdmin, adopt, changed_fields, visible_negotiation_count


@admin.register(Party)
class PartyAdmin(AuditedAdminMixin, RecordAdmin):
    list_display = ["name", "short_name", "kind", "country", "negotiation_count"]
    list_filter = ["kind", "country"]
    search_fields = ["name", "short_name"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            negotiation_count=visible_negotiation_count(request, participants__party=OuterRef("pk"))
        )

    @admin.display(description=_("negotiations"), ordering="negotiation_count")
    def negotiation_count(self, party):
        return party.negotiation_count

    def save_model(self, request, obj, form, change):
        data = changed_fields(form, services.PARTY_FIELDS) if change else {
            name: form.cleaned_data.get(name) for name in services.PARTY_FIELDS
        }
        if change:
            services.party_update(party=obj, actor=request.user, **data)
        else:
            adopt(obj, services.party_create(actor=request.user, **data))
