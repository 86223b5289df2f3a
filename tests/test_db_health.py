"""The connection health check (config/db/base.py): no round trip for a healthy idle
connection, and a connection the server closed is replaced before a request uses it."""
import time

import psycopg
import pytest
from django.db import connection, connections
from django.db.backends.postgresql.base import DatabaseWrapper as DjangoWrapper

from tests.services import require_postgres

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def postgres():
    require_postgres()  # the backend is PostgreSQL's


@pytest.fixture
def wrapper():
    """A second connection to the test database, outside the test's transaction."""
    other = connections.create_connection("default")
    other.ensure_connection()
    yield other
    other.close()


def test_the_backend_is_ours_with_health_checks_on():
    assert type(connections["default"]).__module__ == "config.db.base"
    assert connection.settings_dict["CONN_HEALTH_CHECKS"] is True


def test_a_healthy_idle_connection_is_kept_without_a_query(wrapper, monkeypatch):
    asked = []
    monkeypatch.setattr(DjangoWrapper, "is_usable", lambda self: asked.append(self) or True)
    wrapper.health_check_done = False
    wrapper.close_if_health_check_failed()
    assert wrapper.connection is not None and not asked


def test_a_connection_the_server_closed_is_replaced_before_use(wrapper):
    pid = wrapper.connection.info.backend_pid
    dsn = wrapper.connection.info.dsn
    with psycopg.connect(dsn, password=wrapper.settings_dict.get("PASSWORD") or None, autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0]
        for _ in range(100):
            if not admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone():
                break
            time.sleep(0.05)
    time.sleep(0.05)
    wrapper.health_check_done = False
    wrapper.close_if_health_check_failed()
    assert wrapper.connection is None  # dropped, not handed to the request
    with wrapper.cursor() as cursor:  # the next use connects afresh
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != pid
