"""What the dashboard's chart reads instead of every status change."""
from django.db import models


class StatusMonth(models.Model):
    """How many negotiations entered (+) and left (-) each status in each month (UTC), apart
    for staff-only ones: a negotiation enters `proposed` the month it opened, and each status
    change moves one from its `from_status` to its `to_status` the month it occurred. The
    chart's closed months are running sums of these few hundred rows rather than a grouped
    read of every status change (3 s over 5.2M at a million negotiations).

    Kept by database triggers on PostgreSQL (migration exchanges 0022), so every write
    counts whatever its path (services, admin, demo loader, a bulk load); never written by
    the application. Elsewhere than PostgreSQL it stays empty and the chart reads the
    status changes (`selectors.status_by_month`)."""

    month = models.DateField()
    status = models.CharField(max_length=32)
    staff_only = models.BooleanField()
    delta = models.BigIntegerField(default=0)

    class Meta:
        default_permissions = ()
        constraints = [models.UniqueConstraint(fields=["month", "status", "staff_only"], name="status_month_unique")]

    def __str__(self):
        return f"{self.month:%Y-%m} {self.status}{' (staff only)' if self.staff_only else ''}: {self.delta:+d}"
