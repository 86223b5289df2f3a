"""Create an API client for a party and print its token once, alone on the last line."""
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q
from django.utils import timezone

from exchanges import services
from exchanges.models import Party


class Command(BaseCommand):
    help = "Create an API client for a party; its token is printed once, on the last line."

    def add_arguments(self, parser):
        parser.add_argument("--party", required=True, help="The party's name or short name.")
        parser.add_argument("--read-only", action="store_true", help="The client may only read.")
        parser.add_argument("--name", help="A label for the client (default: the party's short name + API).")
        parser.add_argument("--expires-in-days", type=int, help="The token stops working after this many days.")

    def handle(self, *args, party, read_only, name, expires_in_days, **options):
        matches = list(Party.objects.filter(Q(name__iexact=party) | Q(short_name__iexact=party)))
        if not matches:
            raise CommandError(f"No party is named {party!r}. Known: {', '.join(Party.objects.values_list('name', flat=True)) or 'none'}.")
        if len(matches) > 1:
            raise CommandError(f"{party!r} matches several parties: {', '.join(str(m) for m in matches)}.")
        if expires_in_days is not None and expires_in_days < 1:
            raise CommandError("--expires-in-days must be at least 1.")
        party_obj = matches[0]
        expires_at = timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
        client, token = services.api_client_create(
            name=name or f"{party_obj.short_name or party_obj.name} API",
            party=party_obj,
            read_only=read_only,
            expires_at=expires_at,
        )
        self.stdout.write(
            f"Created API client {client.name!r} (id {client.pk}) for {party_obj}, "
            f"{'read-only' if read_only else 'read-write'}"
            f"{', expires ' + expires_at.isoformat() if expires_at else ''}."
        )
        self.stdout.write("The token is shown once and stored only as a hash. Send it as: Authorization: Bearer <token>")
        self.stdout.write(token)
