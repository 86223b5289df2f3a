"""A write's kick (tracker.notify.kick: `apply_async(retry=False)` after the commit) gives
up on a broker that is down at once, instead of kombu's ~6 s of reconnection attempts."""
import socket
import time

import pytest
from kombu.exceptions import OperationalError

from tracker import notify, tasks


def closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def broker_down(monkeypatch):
    app = tasks.dispatch_notifications.app
    down = f"redis://127.0.0.1:{closed_port()}/0"
    monkeypatch.setitem(app.conf, "broker_url", down)
    monkeypatch.setitem(app.conf, "broker_write_url", down)
    monkeypatch.setitem(app.conf, "task_always_eager", False)
    getattr(tasks, "_drop_kick_connection", lambda: None)()
    yield
    getattr(tasks, "_drop_kick_connection", lambda: None)()


def test_a_kick_with_the_broker_down_fails_in_well_under_a_second(broker_down):
    for _ in range(3):  # each time: no reconnection loop, no sleeps
        started = time.monotonic()
        with pytest.raises(OperationalError):
            tasks.dispatch_notifications.apply_async(retry=False)
        assert time.monotonic() - started < 1.0


def test_a_write_kicking_with_the_broker_down_is_not_held_up(broker_down, settings):
    settings.TRACKER_KICK_ON_COMMIT = True
    started = time.monotonic()
    notify.kick()  # logs a warning, raises nothing
    assert time.monotonic() - started < 1.0
