from django.apps import AppConfig
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
