from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class TrackerConfig(AppConfig):
    name = "tracker"
    verbose_name = _("Stall tracker")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from exchanges import signals

        from . import receivers

        signals.status_changed.connect(receivers.on_status_changed, dispatch_uid="tracker.status_changed")
        signals.negotiation_touched.connect(receivers.on_negotiation_touched, dispatch_uid="tracker.touched")
        signals.handover_recorded.connect(receivers.on_handover_recorded, dispatch_uid="tracker.handover_recorded")
        # After every migrate (and a test database's flush), once the permissions of both
        # apps exist: the four staff roles as exchanges.roles defines them.
        post_migrate.connect(sync_roles, sender=self, dispatch_uid="tracker.sync_roles")


def sync_roles(sender, **kwargs):
    from django.contrib.auth.models import Group, Permission

    from exchanges.roles import sync_roles as sync

    sync(Group, Permission)


class TrackerAdminConfig(admin_apps.AdminConfig):
    """The Django admin, with the dashboard of what needs attention as its home page."""

    default = False  # named explicitly in INSTALLED_APPS
    default_site = "tracker.admin_site.TrackerAdminSite"
