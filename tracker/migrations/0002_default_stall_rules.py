from django.db import migrations

DEFAULT_RULES = {"urgent": (7, 14), "high": (14, 28), "routine": (30, 60), "deadline": (1, 7)}


def create_rules(apps, schema_editor):
    StallRule = apps.get_model("tracker", "StallRule")
    for key, (overdue, very_overdue) in DEFAULT_RULES.items():
        StallRule.objects.get_or_create(key=key, defaults={"overdue_days": overdue, "very_overdue_days": very_overdue})


class Migration(migrations.Migration):
    dependencies = [("tracker", "0001_initial")]
    operations = [migrations.RunPython(create_rules, migrations.RunPython.noop)]
