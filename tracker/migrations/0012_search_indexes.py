"""Trigram indexes for the admin's search of the tracker's big lists (as exchanges 0020,
whose functions and pg_trgm extension this uses): PostgreSQL only, built CONCURRENTLY."""
import importlib

from django.db import migrations

search_indexes = importlib.import_module("exchanges.migrations.0020_search_indexes")

TRIGRAM = [
    ("email_notification_subject_trgm", "tracker_emailnotification", "subject"),
]


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("exchanges", "0020_search_indexes"),
        ("tracker", "0011_list_sort_indexes"),
    ]

    operations = [
        migrations.RunPython(search_indexes.create(TRIGRAM, []), search_indexes.drop(TRIGRAM, [])),
    ]
