"""On PostgreSQL, the database itself refuses to change or delete audit entries."""
from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION exchanges_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER exchanges_auditentry_append_only
    BEFORE UPDATE OR DELETE ON exchanges_auditentry
    FOR EACH ROW EXECUTE FUNCTION exchanges_audit_append_only();
"""
DROP = """
DROP TRIGGER IF EXISTS exchanges_auditentry_append_only ON exchanges_auditentry;
DROP FUNCTION IF EXISTS exchanges_audit_append_only();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("exchanges", "0002_audit_trail_and_idempotency")]
    operations = [migrations.RunPython(forwards, backwards)]
