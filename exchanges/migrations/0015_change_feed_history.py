"""The change feed from the start: a `created` row for every record a partner may copy
that existed before the feed did, oldest first, numbered when the feed is first read."""
from django.db import migrations

#: (type, table, negotiation id column, group id column), in the order a copy is built.
TABLES = [
    ("party", "exchanges_party", "NULL", "NULL"),
    ("detainee_group", "exchanges_detaineegroup", "NULL", "id"),
    ("figure", "exchanges_reportedfigure", "NULL", "group_id"),
    ("negotiation", "exchanges_negotiation", "id", "NULL"),
    ("status_change", "exchanges_statuschange", "negotiation_id", "NULL"),
    ("event", "exchanges_event", "negotiation_id", "NULL"),
    ("handover", "exchanges_handover", "negotiation_id", "NULL"),
    ("flag", "tracker_flag", "negotiation_id", "NULL"),
]


def backfill(apps, schema_editor):
    for kind, table, negotiation, group in TABLES:
        schema_editor.execute(
            "INSERT INTO exchanges_change (at, object_type, object_id, action, negotiation_id, group_id, audience_mode, audience) "
            f"SELECT created_at, '{kind}', id, 'created', {negotiation}, {group}, '', '' FROM {table} ORDER BY created_at, id"
        )


class Migration(migrations.Migration):
    dependencies = [("exchanges", "0014_handover_sequence_counter"), ("tracker", "0007_handover_flags")]
    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
