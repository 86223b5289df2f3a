"""The trail's hash chain: `seq` and `hash` on audit and access-log entries, filled once
by the sealer (`exchanges.chain`), and the chains' heads. On PostgreSQL the append-only
trigger of 0003 (and 0008) now lets an UPDATE through only when it fills `seq` and `hash`
from empty and changes nothing else; the heads may only move forward."""

import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


APPEND_ONLY = """
CREATE OR REPLACE FUNCTION exchanges_audit_append_only() RETURNS trigger AS $$
DECLARE
    new_seq bigint := NEW.seq;
    new_hash text := NEW.hash;
BEGIN
    -- The one update allowed: the sealer giving a row its place in the chain, once, with
    -- every other column as it was (compared as whole rows, so later columns are covered).
    IF TG_OP = 'UPDATE' AND OLD.seq IS NULL AND OLD.hash IS NULL AND new_seq IS NOT NULL AND new_hash IS NOT NULL THEN
        NEW.seq := NULL;
        NEW.hash := NULL;
        IF NEW IS NOT DISTINCT FROM OLD THEN
            NEW.seq := new_seq;
            NEW.hash := new_hash;
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'the audit trail is append-only';
END;
$$ LANGUAGE plpgsql;
"""
APPEND_ONLY_BEFORE = """
CREATE OR REPLACE FUNCTION exchanges_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only';
END;
$$ LANGUAGE plpgsql;
"""
HEAD_FORWARD_ONLY = """
CREATE OR REPLACE FUNCTION exchanges_trail_head_forward_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.chain = OLD.chain AND NEW.seq > OLD.seq THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'a trail head only moves forward';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER exchanges_trailhead_forward_only
    BEFORE UPDATE OR DELETE ON exchanges_trailhead
    FOR EACH ROW EXECUTE FUNCTION exchanges_trail_head_forward_only();
"""
HEAD_FORWARD_ONLY_DROP = """
DROP TRIGGER IF EXISTS exchanges_trailhead_forward_only ON exchanges_trailhead;
DROP FUNCTION IF EXISTS exchanges_trail_head_forward_only();
"""


def triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(APPEND_ONLY)
        schema_editor.execute(HEAD_FORWARD_ONLY)


def triggers_before(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(HEAD_FORWARD_ONLY_DROP)
        schema_editor.execute(APPEND_ONLY_BEFORE)


class Migration(migrations.Migration):

    dependencies = [
        ('exchanges', '0016_scan_crossing_indexes'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='TrailHead',
            fields=[
                ('chain', models.CharField(max_length=16, primary_key=True, serialize=False, verbose_name='chain')),
                ('seq', models.BigIntegerField(verbose_name='last sealed position')),
                ('hash', models.CharField(max_length=64, verbose_name='last sealed hash')),
                ('sealed_at', models.DateTimeField(default=django.utils.timezone.now, verbose_name='sealed at')),
            ],
            options={
                'verbose_name': 'trail head',
            },
        ),
        migrations.AddField(
            model_name='accesslogentry',
            name='hash',
            field=models.CharField(blank=True, editable=False, max_length=64, null=True, verbose_name='chain hash'),
        ),
        migrations.AddField(
            model_name='accesslogentry',
            name='seq',
            field=models.BigIntegerField(blank=True, editable=False, null=True, verbose_name='chain position'),
        ),
        migrations.AddField(
            model_name='auditentry',
            name='hash',
            field=models.CharField(blank=True, editable=False, max_length=64, null=True, verbose_name='chain hash'),
        ),
        migrations.AddField(
            model_name='auditentry',
            name='seq',
            field=models.BigIntegerField(blank=True, editable=False, null=True, verbose_name='chain position'),
        ),
        migrations.AddIndex(
            model_name='accesslogentry',
            index=models.Index(condition=models.Q(('seq__isnull', True)), fields=['id'], name='access_log_unsealed'),
        ),
        migrations.AddIndex(
            model_name='auditentry',
            index=models.Index(condition=models.Q(('seq__isnull', True)), fields=['id'], name='audit_unsealed'),
        ),
        migrations.AddConstraint(
            model_name='accesslogentry',
            constraint=models.UniqueConstraint(fields=('seq',), name='access_log_seq_unique'),
        ),
        migrations.AddConstraint(
            model_name='auditentry',
            constraint=models.UniqueConstraint(fields=('seq',), name='audit_seq_unique'),
        ),
        migrations.RunPython(triggers, triggers_before),
    ]
