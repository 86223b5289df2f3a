"""The staff's admin site: its home page is the dashboard of what needs attention today."""
from django.contrib import admin
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from exchanges import audit
from exchanges.models import AccessLogEntry


class TrackerAdminSite(admin.AdminSite):
    site_header = _("Exchange tracker")
    site_title = _("Exchange tracker")
    index_title = _("What needs attention today")
    index_template = "admin/tracker/dashboard.html"

    def index(self, request, extra_context=None):
        from . import dashboard

        board = dashboard.build(user=request.user, today=timezone.localdate())
        shown = [
            *board.get("overdue", ()), *board.get("due", ()), *board.get("flags", ()),
            *(row["negotiation"] for row in board.get("mine", ())),
        ]  # fmt: skip
        audit.log_staff_reads_of(request.user, shown, channel=AccessLogEntry.Channel.PAGE)
        return super().index(request, {"dashboard": board, **(extra_context or {})})
