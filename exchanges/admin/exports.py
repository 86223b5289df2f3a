"""The exports page: a login's own CSV exports, their progress, and the finished files.

Every staff login sees its own exports here, and nobody else's. The page refreshes itself
while one is queued or being written (a meta refresh: a few kilobytes, no script). A file
is downloaded only by its owner, only when complete, and only while the owner may still
view the list it came from.
"""
from django.contrib import admin, messages
from django.http import Http404, HttpResponseRedirect
from django.template.defaultfilters import filesizeformat
from django.urls import NoReverseMatch, path, reverse
from django.utils import formats
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.utils.translation import ngettext

from .. import exports
from ..models import ExportJob

#: Seconds between refreshes of the page while an export is queued or being written.
REFRESH_SECONDS = 5


def _number(value):
    return formats.number_format(value, force_grouping=True)


@admin.register(ExportJob)
class ExportJobAdmin(admin.ModelAdmin):
    list_display = ["created_at", "list_column", "state_column", "progress_column", "file_column"]
    list_display_links = None
    list_per_page = 50
    ordering = ["-created_at"]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(user=request.user)

    def has_module_permission(self, request):
        """For logins that may export some list (a login without any role sees none)."""
        return exports.may_export_any(request)

    def has_view_permission(self, request, obj=None):
        return exports.may_export_any(request) and (obj is None or obj.user_id == request.user.pk)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        return [
            path("<uuid:job_id>/download/", self.admin_site.admin_view(self.download_view), name="exchanges_exportjob_download"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        exports.mark_interrupted()
        exports.notify_finished(request)  # what this page shows needs no message later
        mine = ExportJob.objects.filter(user=request.user, state__in=ExportJob.ACTIVE)
        context = {
            "title": _("Your exports"),
            "exports_refresh": REFRESH_SECONDS if mine.exists() else None,
            "keep_days": exports.KEEP_DAYS,
        }
        return super().changelist_view(request, {**context, **(extra_context or {})})

    def download_view(self, request, job_id):
        """The owner's complete file, while the owner may still view its list."""
        exports.mark_interrupted()
        job = ExportJob.objects.filter(pk=job_id, user=request.user).first()
        if job is None:
            raise Http404(_("No such export."))
        model_admin = exports.list_admin(job.list_name)
        if model_admin is None or not exports.may_export(request.user, model_admin, request):
            raise Http404(_("No such export."))
        if not exports.downloadable(job):
            messages.warning(request, _("This export has no complete file to download."))
            return HttpResponseRedirect(reverse("admin:exchanges_exportjob_changelist"))
        return exports.download_response(job)

    @admin.display(description=gettext_lazy("list"))
    def list_column(self, job):
        """The list's name, linking to it with the export's filters (shown on hover)."""
        label = exports.list_label(job.list_name).capitalize()
        try:
            url = reverse("admin:{}_{}_changelist".format(*job.list_name.split(".", 1)))
        except (NoReverseMatch, TypeError):
            return label
        query = f"?{job.query_string}" if job.query_string else ""
        return format_html('<a href="{}{}" title="{}">{}</a>', url, query, job.query_string, label)

    @admin.display(description=gettext_lazy("state"))
    def state_column(self, job):
        return job.get_state_display()

    @admin.display(description=gettext_lazy("rows"))
    def progress_column(self, job):
        written, expected = job.rows_written, job.rows_expected
        if job.state == ExportJob.State.DONE or not expected:
            return ngettext("%(count)s row", "%(count)s rows", written) % {"count": _number(written)}
        text = ngettext("%(count)s of about %(expected)s row", "%(count)s of about %(expected)s rows", expected) % {
            "count": _number(written), "expected": _number(expected),
        }
        return format_html('<progress max="{}" value="{}"></progress> {}', expected, min(written, expected), text)

    @admin.display(description=gettext_lazy("file"))
    def file_column(self, job):
        if exports.downloadable(job):
            url = reverse("admin:exchanges_exportjob_download", args=[job.pk])
            return format_html('<a href="{}" class="export-download">{}</a> ({})', url, job.file_name, filesizeformat(job.path.stat().st_size))
        if job.state == ExportJob.State.INTERRUPTED:
            return _("Interrupted before the file was complete: export the list again.")
        if job.state == ExportJob.State.FAILED:
            return job.error
        if job.state == ExportJob.State.DONE:
            return _("Deleted: export the list again.")
        return "–"
