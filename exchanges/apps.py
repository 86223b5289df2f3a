from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ExchangesConfig(AppConfig):
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
