"""Staff logins' two-factor devices, for whoever recovers a login whose phone is lost.

These replace django-otp's own admins, which show a device's secret key and QR code and
the backup codes themselves, and delete without the audit trail or the policy. Here a
device is listed and read (whose, which kind, when made and last used, how many backup
codes are left), never its key, QR code or codes; nothing is added or edited (staff enrol
on their own two-factor page). Removing one goes through `two_factor.devices_remove`,
as `policy.require_two_factor_removal` allows (a Coordinator or a superuser; a
superuser's devices only a superuser), audited, and it removes the login's second factor
altogether, app and backup codes: the login enrols again.
"""
from django.contrib import admin
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from .. import policy, two_factor
from .base import AuditedAdminMixin, RecordAdmin

def refusal(user, owner):
    """Why `user` may not remove `owner`'s two-factor devices (None: they may)."""
    try:
        policy.require_two_factor_removal(user, owner)
    except policy.Refused as refused:
        return refused.detail
    return None


FIELDS = ["login", "device_name", "is_confirmed", "made_at", "used_at", "backup_codes_left"]


class ConfirmedFilter(admin.SimpleListFilter):
    """django-otp's `confirmed`, titled in the site's languages."""

    title = _("confirmed")
    parameter_name = "confirmed"

    def lookups(self, request, model_admin):
        return [("yes", _("Confirmed")), ("no", _("Not confirmed (enrolment not finished)"))]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(confirmed=self.value() == "yes")
        return queryset


class TwoFactorDeviceAdmin(AuditedAdminMixin, RecordAdmin):
    """A device of either kind: read-only, removed only through the service."""

    list_display = FIELDS
    list_filter = [ConfirmedFilter]
    list_select_related = ["user"]
    search_fields = ["user__username", "user__email"]
    fields = FIELDS
    readonly_fields = FIELDS
    logs_reads = False  # no negotiation is read here

    def get_queryset(self, request):
        codes = (
            StaticToken.objects.filter(device__user=OuterRef("user"), device__confirmed=True)
            .order_by()
            .values("device__user")
            .annotate(n=Count("pk"))
            .values("n")
        )
        return super().get_queryset(request).annotate(codes_left=Coalesce(Subquery(codes), 0))

    # django-otp's fields, labelled in the site's languages (its own labels are English only).
    @admin.display(description=_("staff login"), ordering="user__username")
    def login(self, device):
        return device.user

    @admin.display(description=_("device name"), ordering="name")
    def device_name(self, device):
        return device.name

    @admin.display(description=_("confirmed"), boolean=True, ordering="confirmed")
    def is_confirmed(self, device):
        return device.confirmed

    @admin.display(description=_("created"), ordering="created_at")
    def made_at(self, device):
        return device.created_at

    @admin.display(description=_("last used"), ordering="last_used_at")
    def used_at(self, device):
        return device.last_used_at

    @admin.display(description=_("backup codes left"))
    def backup_codes_left(self, device):
        return getattr(device, "codes_left", "-")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request) and (
            obj is None or refusal(request.user, obj.user) is None
        )

    def get_deleted_objects(self, objs, request):
        """What a removal takes, per login, instead of Django's list of the rows (which
        would name every backup code and ask for the permission to delete them): each
        login's second factor as a whole, and the logins this one may not touch, which
        stop the removal."""
        owners = {device.user_id: device.user for device in objs}
        removed = [
            _("The two-factor authentication of %(user)s: authenticator app and backup codes (enrolled again at the next login)")
            % {"user": owner.get_username()}
            for owner in owners.values()
        ]
        refused = [
            _("%(user)s (%(reason)s)") % {"user": owner.get_username(), "reason": reason}
            for owner in owners.values()
            if (reason := refusal(request.user, owner))
        ]
        return removed, {self.model._meta.verbose_name_plural: len(objs)}, set(), refused

    def delete_model(self, request, obj):
        two_factor.devices_remove(user=obj.user, actor=request.user)

    def delete_queryset(self, request, queryset):
        for owner in {device.user_id: device.user for device in queryset.select_related("user")}.values():
            two_factor.devices_remove(user=owner, actor=request.user)


for model in (TOTPDevice, StaticDevice):
    if admin.site.is_registered(model):  # django-otp's own, which shows keys and codes
        admin.site.unregister(model)
    admin.site.register(model, TwoFactorDeviceAdmin)
