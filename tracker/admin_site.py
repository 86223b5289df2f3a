"""The staff's admin site: its home page is the dashboard of what needs attention today.

Every page of it first asks whether the login owes a two-factor code or an enrolment
(exchanges.two_factor) and sends it there if so.
"""
from functools import update_wrapper

from django.contrib import admin
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from exchanges import audit
from exchanges.models import AccessLogEntry
from exchanges.two_factor import views as two_factor


class TrackerAdminSite(admin.AdminSite):
    site_header = _("Exchange tracker")
    site_title = _("Exchange tracker")
    index_title = _("What needs attention today")
    index_template = "admin/tracker/dashboard.html"
    #: Admin views a login owing a code or an enrolment may still reach (logging out).
    OPEN_BEFORE_TWO_FACTOR = frozenset({"logout", "i18n_javascript"})

    def index(self, request, extra_context=None):
        from . import dashboard

        board = dashboard.build(user=request.user, today=timezone.localdate())
        shown = [
            *board.get("overdue", ()), *board.get("due", ()), *board.get("flags", ()),
            *(row["negotiation"] for row in board.get("mine", ())),
        ]  # fmt: skip
        audit.log_staff_reads_of(request.user, shown, channel=AccessLogEntry.Channel.PAGE)
        return super().index(request, {"dashboard": board, **(extra_context or {})})

    def admin_view(self, view, cacheable=False):
        inner = super().admin_view(view, cacheable)
        if getattr(view, "two_factor_page", False) or getattr(view, "__name__", "") in self.OPEN_BEFORE_TWO_FACTOR:
            return inner

        def guarded(request, *args, **kwargs):
            return two_factor.redirect_if_pending(request, self) or inner(request, *args, **kwargs)

        return update_wrapper(guarded, inner)

    def get_urls(self):
        pages = [
            path("two-factor/", self._two_factor_page(two_factor.manage), name="two_factor"),
            path("two-factor/verify/", self._two_factor_page(two_factor.verify), name="two_factor_verify"),
        ]
        return pages + super().get_urls()

    def _two_factor_page(self, view):
        def page(request):
            return view(request, self)

        page.two_factor_page = True
        return self.admin_view(page)
