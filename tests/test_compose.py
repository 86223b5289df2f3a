"""docker-compose.yml runs the production shape. No Docker engine runs here, so the file is
validated by reading it, and by `docker-compose config` where that tool is installed."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_the_production_services_are_all_there_with_health_checks():
    services = compose()["services"]
    assert {"postgres", "redis", "web", "worker", "beat"} <= set(services)
    for name in ("postgres", "redis", "web", "worker"):
        assert "healthcheck" in services[name], name
    assert services["web"]["command"][:2] == ["gunicorn", "config.wsgi"]
    assert services["worker"]["command"][2:4] == ["config", "worker"]
    assert services["beat"]["command"][2:4] == ["config", "beat"]
    assert set(compose()["volumes"]) >= {"postgres-data", "redis-data"}


def test_the_app_services_point_at_postgres_and_redis_and_production_settings():
    for name in ("web", "worker", "beat"):
        environment = compose()["services"][name]["environment"]
        assert environment["DATABASE_URL"].startswith("postgres://")
        assert environment["CELERY_BROKER_URL"].startswith("redis://redis")
        assert environment["DJANGO_SETTINGS_MODULE"] == "config.settings.production"
        assert "DJANGO_SECRET_KEY:?" in environment["DJANGO_SECRET_KEY"]


def test_only_the_one_shot_migrate_service_connects_as_the_owner():
    """The tables' owner (the image's superuser, `tracker`) migrates and grants the app role
    its privileges, then exits; the long-running services connect as that role, which may
    not truncate, switch off triggers or change the schema (tests/test_db_roles.py)."""
    services = compose()["services"]
    migrate = services["migrate"]
    assert migrate["environment"]["DATABASE_URL"].startswith("postgres://tracker:")
    assert migrate["restart"] == "no"
    assert "manage.py migrate --noinput && python manage.py grant_app_role tracker_app" in migrate["command"][-1]
    assert "TRACKER_APP_DB_PASSWORD:?" in migrate["environment"]["TRACKER_APP_DB_PASSWORD"]
    for name in ("web", "worker", "beat"):
        service = services[name]
        assert service["environment"]["DATABASE_URL"].startswith("postgres://tracker_app:${TRACKER_APP_DB_PASSWORD:?"), name
        assert service["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}, name
        assert "migrate" not in " ".join(service["command"]), name


def test_every_variable_the_compose_file_passes_is_documented():
    documented = {line.split("=", 1)[0] for line in (ROOT / ".env.example").read_text().splitlines() if "=" in line and not line.startswith("#")}
    for name in ("web", "migrate"):
        environment = compose()["services"][name]["environment"]
        assert set(environment) - {"DJANGO_SETTINGS_MODULE"} <= documented, name


@pytest.mark.skipif(not shutil.which("docker-compose"), reason="docker-compose is not installed (apt-get install docker-compose)")
def test_docker_compose_accepts_the_file():
    env = {**os.environ, "DJANGO_SECRET_KEY": "x" * 60, "POSTGRES_PASSWORD": "secret", "TRACKER_APP_DB_PASSWORD": "app-secret"}
    result = subprocess.run(["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "config", "-q"], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_production_serves_the_admin_static_files_itself(tmp_path):
    """gunicorn alone serves the app in compose; the admin's CSS must come with it (WhiteNoise),
    collected as the Dockerfile does, with hashed names and a long cache lifetime."""
    assert "collectstatic --noinput" in (ROOT / "Dockerfile").read_text()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": "k7" * 30 + "abcdef",
        "DJANGO_STATIC_ROOT": str(tmp_path / "static"),
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "TRACKER_VAR_DIR": str(tmp_path / "var"),
    }
    env.pop("DATABASE_URL", None)
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    probe = (
        "import django; django.setup()\n"
        "from django.test import Client\n"
        "from django.contrib.staticfiles.storage import staticfiles_storage\n"
        "url = staticfiles_storage.url('admin/css/base.css')\n"
        "response = Client().get(url, secure=True)\n"
        "print(url, response.status_code, response.headers.get('Cache-Control'))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    url, status, cache = result.stdout.split(maxsplit=2)
    assert status == "200" and url != "/static/admin/css/base.css"  # a hashed name
    assert "max-age=315360000" in cache
