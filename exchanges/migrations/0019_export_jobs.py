"""Export jobs: "Export CSV" of a big admin list written by a worker (issue 17)."""

import django.db.models.deletion
import django.utils.timezone
import uuid
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('exchanges', '0018_list_sort_indexes'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='ExportJob',
            fields=[
                ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('list_name', models.CharField(max_length=100, verbose_name='list')),
                ('query_string', models.TextField(blank=True, verbose_name='filters')),
                ('language', models.CharField(max_length=16, verbose_name='language')),
                ('state', models.CharField(choices=[('queued', 'Queued'), ('running', 'Being written'), ('done', 'Ready'), ('failed', 'Failed'), ('interrupted', 'Interrupted')], default='queued', max_length=16, verbose_name='state')),
                ('rows_written', models.PositiveBigIntegerField(default=0, verbose_name='rows written')),
                ('rows_expected', models.PositiveBigIntegerField(blank=True, null=True, verbose_name='rows expected')),
                ('file_name', models.CharField(max_length=200, verbose_name='file name')),
                ('error', models.TextField(blank=True, verbose_name='error')),
                ('address', models.GenericIPAddressField(blank=True, null=True, verbose_name='address')),
                ('request_id', models.CharField(blank=True, max_length=64, verbose_name='request')),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, verbose_name='asked at')),
                ('started_at', models.DateTimeField(blank=True, null=True, verbose_name='started at')),
                ('progress_at', models.DateTimeField(blank=True, null=True, verbose_name='last progress')),
                ('finished_at', models.DateTimeField(blank=True, null=True, verbose_name='finished at')),
                ('notified_at', models.DateTimeField(blank=True, null=True, verbose_name='notified at')),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='staff login')),
            ],
            options={
                'verbose_name': 'export',
                'verbose_name_plural': 'exports',
                'ordering': ['-created_at'],
                'indexes': [models.Index(fields=['user', '-created_at'], name='export_job_by_user'), models.Index(condition=models.Q(('state__in', ['queued', 'running'])), fields=['state', 'progress_at'], name='export_job_active')],
                'constraints': [models.CheckConstraint(condition=models.Q(('state__in', ['queued', 'running', 'done', 'failed', 'interrupted'])), name='export_job_state_valid')],
            },
        ),
    ]
