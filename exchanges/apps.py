from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ExchangesConfig(AppConfig):
    default = True  # the app "exchanges"; the two below label django-otp's apps
    name = "exchanges"
    verbose_name = _("The record")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from celery import signals as celery_signals

        from django.db.models.signals import post_delete, post_save

        from . import audit, changes

        post_save.connect(changes.on_save, dispatch_uid="exchanges.changes.saved")
        post_delete.connect(changes.on_delete, dispatch_uid="exchanges.changes.deleted")

        def task_started(task_id=None, task=None, **kwargs):
            task.request.audit_token = audit.set_context(request_id=task_id or "", channel=f"task:{task.name}")

        def task_finished(task=None, **kwargs):
            token = getattr(task.request, "audit_token", None)
            if token is not None:
                audit.reset_context(token)

        celery_signals.task_prerun.connect(task_started, weak=False, dispatch_uid="exchanges.audit.task_started")
        celery_signals.task_postrun.connect(task_finished, weak=False, dispatch_uid="exchanges.audit.task_finished")


# django-otp's apps as staff see them in the admin (exchanges/admin/two_factor.py lists
# their devices): named in the site's languages rather than "Otp_Totp" and "TOTP devices",
# which django-otp leaves untranslated. Only the labels shown change: the tables, the
# permissions and the migrations stay django-otp's (Meta as declared is what migrations read).


class AuthenticatorAppsConfig(AppConfig):
    name = "django_otp.plugins.otp_totp"
    label = "otp_totp"
    verbose_name = _("Two-factor: authenticator apps")
    default_auto_field = "django.db.models.AutoField"

    def ready(self):
        model = self.get_model("TOTPDevice")
        model._meta.verbose_name = _("authenticator app")
        model._meta.verbose_name_plural = _("authenticator apps")


class BackupCodesConfig(AppConfig):
    name = "django_otp.plugins.otp_static"
    label = "otp_static"
    verbose_name = _("Two-factor: backup codes")
    default_auto_field = "django.db.models.AutoField"

    def ready(self):
        model = self.get_model("StaticDevice")
        model._meta.verbose_name = _("set of backup codes")
        model._meta.verbose_name_plural = _("sets of backup codes")
