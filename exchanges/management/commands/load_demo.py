"""Load the demo data (the Azovstal story and a few more); running it twice changes nothing."""
from django.core.management.base import BaseCommand

from exchanges.demo import load_demo
from exchanges.models import DetaineeGroup, Negotiation, Party


class Command(BaseCommand):
    help = "Load the demo data. Idempotent: what exists is left alone."

    def handle(self, *args, **options):
        load_demo()
        self.stdout.write(
            f"Demo data loaded: {Party.objects.count()} parties, {DetaineeGroup.objects.count()} detainee groups, "
            f"{Negotiation.objects.count()} negotiations."
        )
