"""The negotiation list filtered by a status, in its order: (status, -last_activity_at, -id).

Built CONCURRENTLY on PostgreSQL (the migration is not atomic), so a live table of a
million negotiations keeps taking writes while it is built; a plain index elsewhere."""
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class AddIndexConcurrentlyOnPostgres(AddIndexConcurrently):
    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        return migrations.AddIndex.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        return migrations.AddIndex.database_backwards(self, app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("exchanges", "0022_status_months"),
    ]

    operations = [
        AddIndexConcurrentlyOnPostgres(
            model_name="negotiation",
            index=models.Index(fields=["status", "-last_activity_at", "-id"], name="negotiation_status_activity"),
        ),
    ]
