"""Run the stall scan in the foreground and print what changed."""
import json

from django.core.management.base import BaseCommand

from tracker import services


class Command(BaseCommand):
    help = "Raise, escalate and resolve stall flags now, and print a summary as JSON."

    def add_arguments(self, parser):
        parser.add_argument(
            "--full", action="store_true", help="Look at every negotiation, not only what changed since the last scan."
        )

    def handle(self, *args, full=False, **options):
        self.stdout.write(json.dumps(services.scan_stalls(full=full)))
