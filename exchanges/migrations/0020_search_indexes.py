"""Indexes for the admin's search (`exchanges.admin.search`) and the dashboard's chart.

PostgreSQL only, as 0016: trigram indexes (`pg_trgm`, `gin_trgm_ops`) on exactly the
expression Django's `icontains` compares, `UPPER(column::text)`, so a search for a word of
three characters or more reads the index, not the table; btree indexes for the ids and
codes matched exactly; the negotiations' opening date, for the chart's current month.
Built CONCURRENTLY (the migration is not atomic), so a live table keeps taking writes.
"""
from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

#: (index name, table, column): a trigram index on UPPER(column).
TRIGRAM = [
    ("negotiation_reference_trgm", "exchanges_negotiation", "reference"),
    ("negotiation_title_trgm", "exchanges_negotiation", "title"),
    ("negotiation_summary_trgm", "exchanges_negotiation", "summary"),
    ("status_change_note_trgm", "exchanges_statuschange", "note"),
    ("status_change_source_trgm", "exchanges_statuschange", "source"),
    ("event_summary_trgm", "exchanges_event", "summary"),
    ("event_source_trgm", "exchanges_event", "source"),
    ("handover_location_trgm", "exchanges_handover", "location"),
    ("handover_source_trgm", "exchanges_handover", "source"),
    ("handover_notes_trgm", "exchanges_handover", "notes"),
    ("group_name_trgm", "exchanges_detaineegroup", "name"),
    ("group_location_trgm", "exchanges_detaineegroup", "location"),
    ("group_notes_trgm", "exchanges_detaineegroup", "notes"),
    ("figure_source_trgm", "exchanges_reportedfigure", "source"),
    ("figure_notes_trgm", "exchanges_reportedfigure", "notes"),
    ("audit_object_repr_trgm", "exchanges_auditentry", "object_repr"),
    ("audit_actor_label_trgm", "exchanges_auditentry", "actor_label"),
    ("access_log_negotiation_repr_trgm", "exchanges_accesslogentry", "negotiation_repr"),
    ("access_log_user_label_trgm", "exchanges_accesslogentry", "user_label"),
]
#: (index name, table, column): a btree index for an exact match.
BTREE = [
    ("audit_object_id", "exchanges_auditentry", "object_id"),
    ("access_log_request_id", "exchanges_accesslogentry", "request_id"),
    ("negotiation_opened_on", "exchanges_negotiation", "opened_on"),
]


def statements(trigram, btree):
    for name, table, column in trigram:
        yield name, f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {table} USING gin ((UPPER({column}::text)) gin_trgm_ops)"
    for name, table, column in btree:
        yield name, f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {table} ({column})"


def create(trigram, btree):
    def forwards(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for _name, sql in statements(trigram, btree):
            schema_editor.execute(sql)

    return forwards


def drop(trigram, btree):
    def backwards(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for name, _sql in statements(trigram, btree):
            schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")

    return backwards


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("exchanges", "0019_export_jobs"),
    ]

    operations = [
        TrigramExtension(),
        migrations.RunPython(create(TRIGRAM, BTREE), drop(TRIGRAM, BTREE)),
    ]
