"""Rebuild the dashboard's monthly status deltas (`StatusMonth`) from the record.

The database's triggers keep them with every write; rebuild them after anything that
wrote with the triggers off (a restore with `--disable-triggers`, a bulk load with
`session_replication_role = replica`). Writes to negotiations and status changes wait
for the rebuild (a SHARE lock), which reads every status change once (seconds at a
million negotiations)."""
import importlib

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from exchanges.models import StatusMonth


class Command(BaseCommand):
    help = "Rebuild the dashboard's monthly status deltas from the negotiations and their status changes (PostgreSQL)."

    def handle(self, *args, **options):
        if connection.vendor != "postgresql":
            raise CommandError("The monthly deltas are kept on PostgreSQL only; elsewhere the dashboard reads the record.")
        fill = importlib.import_module("exchanges.migrations.0022_status_months").FILL
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("LOCK TABLE exchanges_negotiation, exchanges_statuschange IN SHARE MODE")
            cursor.execute(fill)
        self.stdout.write(f"Rebuilt {StatusMonth.objects.count():,} monthly rows.")
