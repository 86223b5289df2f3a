"""The staff interface. Every save goes through `exchanges.services`, like the API.

Who sees and does what is `exchanges.policy`'s answer, here as everywhere: every admin and
inline reads through `policy.restrict` (lists, pages, inlines, autocompletes, filters),
asks `policy.allows` before offering a change or a delete, and Django's model permissions
(given by the staff roles) decide which admins a login has at all.
"""
from . import access, groups, handovers, negotiations, parties, timeline, trail  # noqa: F401 - each registers its admins
from . import case_file
from . import two_factor  # noqa: F401 - replaces django-otp's device admins (no keys, audited removal)
from . import exports  # noqa: F401 - the exports page (CSV exports written by a worker)
from .base import AuditedAdminMixin, ReadOnlyAdminMixin, RecordAdmin, RecordTabularInline, ServiceDeleteMixin, render_audit
from .negotiations import NegotiationAdmin

__all__ = ["case_file", "AuditedAdminMixin", "NegotiationAdmin", "ReadOnlyAdminMixin", "RecordAdmin", "RecordTabularInline", "ServiceDeleteMixin", "render_audit"]
