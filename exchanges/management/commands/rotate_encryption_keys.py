"""Re-encrypt every stored secret with the first key of TRACKER_ENCRYPTION_KEYS."""
from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import transaction

from exchanges.encryption import EncryptedTextField


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored secret with the first key of TRACKER_ENCRYPTION_KEYS (put the new key "
        "first, run this, then drop the old key)."
    )

    @transaction.atomic
    def handle(self, *args, **options):
        total = 0
        for model in apps.get_models():
            for field in model._meta.concrete_fields:
                if not isinstance(field, EncryptedTextField):
                    continue
                # Read decrypted (with any key), written back encrypted (with the first).
                for pk, value in model.objects.select_for_update().values_list("pk", field.attname).iterator():
                    if value:
                        model.objects.filter(pk=pk).update(**{field.attname: value})
                        total += 1
        self.stdout.write(f"Re-encrypted {total} stored secret(s) with the first key.")
