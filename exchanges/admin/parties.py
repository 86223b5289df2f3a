"""Negotiating parties."""
from django import forms
from django.contrib import admin
from django.db.models import OuterRef
from django.utils.translation import gettext_lazy as _

from .. import services
from ..filters import aliases_match
from ..models import (
    Party,
)
from .base import AuditedAdminMixin, RecordAdmin, ServiceDeleteMixin, adopt, changed_fields, visible_negotiation_count


class AliasesField(forms.CharField):
    """Aliases typed one per line; stored as a list (the model checks and tidies it)."""

    widget = forms.Textarea(attrs={"rows": 3, "cols": 40})

    def prepare_value(self, value):
        return "\n".join(value) if isinstance(value, list) else value

    def to_python(self, value):
        return [line.strip() for line in (value or "").splitlines() if line.strip()]


class PartyForm(forms.ModelForm):
    aliases = AliasesField(
        label=_("aliases"), required=False, help_text=_("One per line: other names, abbreviations, spellings in any script.")
    )

    class Meta:
        model = Party
        fields = ["name", "short_name", "kind", "country", "aliases"]


@admin.register(Party)
class PartyAdmin(ServiceDeleteMixin, AuditedAdminMixin, RecordAdmin):
    form = PartyForm
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

    def get_search_results(self, request, queryset, search_term):
        """Name and short name as Django searches them, and any alias (`aliases_match`)."""
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if search_term.strip():
            results |= queryset.filter(aliases_match(search_term.strip()))
        return results, may_have_duplicates

    def delete_service(self, party, actor):
        services.party_delete(party=party, actor=actor)

    def in_use(self, party):
        return services.party_in_use(party)

    def save_model(self, request, obj, form, change):
        data = changed_fields(form, services.PARTY_FIELDS) if change else {
            name: form.cleaned_data.get(name) for name in services.PARTY_FIELDS
        }
        if change:
            services.party_update(party=obj, actor=request.user, **data)
        else:
            adopt(obj, services.party_create(actor=request.user, **data))
