"""The four staff roles (Viewer, Editor, Coordinator, Auditor) as groups with their
permissions. Idempotent: running it again corrects the groups to `exchanges.roles`."""
from django.contrib.auth.management import create_permissions
from django.db import migrations

from exchanges.roles import sync_roles


def forwards(apps, schema_editor):
    # Permissions are normally created after all migrations (post_migrate); the roles
    # need them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    sync_roles(apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"), strict=False)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("exchanges", "0008_teams_recorders_access_log"),
        ("tracker", "0004_scan_runs"),
    ]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
