"""Run the stall scan in the foreground and print what changed."""
import json

from django.core.management.base import BaseCommand

from tracker import services


class Command(BaseCommand):
    help = "Raise, escalate and resolve stall flags now, and print a summary as JSON."

    def handle(self, *args, **options):
        self.stdout.write(json.dumps(services.scan_stalls()))
