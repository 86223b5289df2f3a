"""Fault drills for the webhook outbox and the worker, against real PostgreSQL, a Redis of
the drill's own and real Celery worker and beat subprocesses. Each drill prints what was
lost (the goal: 0) and how long recovery took, and the whole run is written as a
markdown section (`--out`, default /tmp/drills_section.md).

    make drills        # or: .venv/bin/python scripts/fault_drills.py [--events 200] [--only slow,kill,broker,scan,cache,postgres]

- slow: one receiver that times out (it answers after 6.5 s; the tracker waits 5 s)
  beside two healthy ones; per-receiver delivery latency p50/max, duplicates, lost.
- kill: the whole worker (main process and pool) killed with -9 while a receiver is
  answering, then started again, as a supervisor would; and the pool processes alone
  killed with -9. Duplicates, whether each request received is in the attempt log, time to
  redelivery, lost.
- broker: the drill's Redis stopped (its queue lost: no persistence) for a while, with
  events written meanwhile, then started again; writes during the outage, time until
  everything is delivered, lost.
- scan: a stall scan killed with -9 mid-run (held on the scan's lock); time until it runs
  again on the restarted worker (the broker's visibility timeout).
- cache: the Redis used as the cache (a second one of the drill's own, behind a gunicorn
  serving the app) stopped for a while, then started again, and then frozen (SIGSTOP: a
  hung host, nothing answers) and thawed, while an API client writes
  status changes and staff log in to the admin; answers by status before, during and
  after, 5xx (the goal: 0), acknowledged writes missing from the database, and the
  webhooks of those writes delivered.
- postgres: PostgreSQL restarted under the same API writer and the worker (persistent
  connections, DATABASE_CONN_MAX_AGE=60 as in production): how long writes fail, 5xx once
  they succeed again (the goal: 0, no stale connection), acknowledged writes missing, the
  worker delivering what was queued. It restarts the server only when
  DRILL_PG_RESTART_COMMAND names how (e.g. `pg_ctlcluster --skip-systemctl-redirect 15 main
  restart`), and waits while any COPY runs on it (a bulk load); otherwise it ends every
  connection to the drill's database instead (pg_terminate_backend: what a restart does to
  the application, without the seconds of refused connections), as `make drills` does by
  default on a shared server.

It creates (dropping it first) the database `tracker_drills` on DATABASE_URL's server
(default postgres://postgres@127.0.0.1:5432/), or DATABASE_URL's own database when its
name contains "drill" (e.g. .../tracker_ha_drills, so that two runs do not share one) and starts redis-server on free ports (the
broker, and the cache for the web server); the shared Redis on 6379 is never touched.
"""
import argparse
import http.cookiejar
import json
import os
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.parse import urlencode, urlsplit, urlunsplit
from urllib.request import (
    HTTPCookieProcessor,
    HTTPRedirectHandler,
    Request,
    build_opener,
)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATABASE = "tracker_drills"
REPORT = []  # markdown lines


def say(line=""):
    print(line, flush=True)
    REPORT.append(line)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition, timeout, step=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return bool(condition())


class Receiver:
    """A webhook receiver on 127.0.0.1 that notes when each `webhook-id` arrived."""

    def __init__(self, name, delay=0.0):
        self.name, self.delay = name, delay
        self.arrivals = {}
        self.lock = threading.Lock()
        self.on_request = None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                message_id = self.headers.get("webhook-id", "")
                with receiver.lock:
                    receiver.arrivals.setdefault(message_id, []).append(time.time())
                if receiver.on_request:
                    receiver.on_request(message_id)
                time.sleep(receiver.delay)
                try:
                    self.send_response(204)
                    self.end_headers()
                except OSError:
                    pass  # the tracker gave up waiting

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def duplicates(self):
        with self.lock:
            return sum(len(times) - 1 for times in self.arrivals.values())


class _NoRedirect(HTTPRedirectHandler):
    """A redirect is an answer to count (the admin's 302 after a login), not to follow."""

    def redirect_request(self, *args, **kwargs):
        return None


def http_status(base, path):
    return Http(base).request("GET", path)[0]


class Http:
    """One HTTP session (its own cookies): `request` answers (status, body), status 0 when
    no answer came at all."""

    def __init__(self, base, token=None):
        self.base, self.token = base, token
        self.cookies = http.cookiejar.CookieJar()
        self.opener = build_opener(HTTPCookieProcessor(self.cookies), _NoRedirect)

    def cookie(self, name):
        return next((cookie.value for cookie in self.cookies if cookie.name == name), "")

    def request(self, method, path, *, json_body=None, form=None):
        headers, data = {"Referer": self.base + path}, None
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if json_body is not None:
            data, headers["Content-Type"] = json.dumps(json_body).encode(), "application/json"
        if form is not None:
            data, headers["Content-Type"] = urlencode(form).encode(), "application/x-www-form-urlencoded"
        try:
            with self.opener.open(Request(self.base + path, data=data, method=method, headers=headers), timeout=30) as response:
                return response.status, response.read()
        except HTTPError as error:
            return error.code, error.read()
        except (URLError, OSError):
            return 0, b""


class Traffic:
    """An API client writing status changes and staff logging in to the admin, over HTTP,
    each in a thread, until stopped. Every request is noted (kind, started, ended, status);
    `acknowledged` holds the ids of the status changes answered 2xx."""

    def __init__(self, base, *, token, negotiation_ids, login=None, pause=0.1):
        self.base, self.token, self.login, self.pause = base, token, login, pause
        self.negotiation_ids = negotiation_ids
        self.requests, self.acknowledged = [], []
        self.stop_event = threading.Event()
        self.threads = [threading.Thread(target=self._writes, daemon=True)]
        if login:
            self.threads.append(threading.Thread(target=self._logins, daemon=True))

    def start(self):
        for thread in self.threads:
            thread.start()

    def stop(self):
        self.stop_event.set()
        for thread in self.threads:
            thread.join(60)

    def _note(self, kind, started, status):
        self.requests.append((kind, started, time.time(), status))

    def _writes(self):
        api = Http(self.base, token=self.token)
        states = {pk: None for pk in self.negotiation_ids}
        n = 0
        while not self.stop_event.is_set():
            pk = self.negotiation_ids[n % len(self.negotiation_ids)]
            n += 1
            if states[pk] is None:  # not known (start, or after an answer that was no 2xx)
                status, body = api.request("GET", f"/api/v1/negotiations/{pk}/")
                if status != 200:
                    time.sleep(self.pause)
                    continue
                states[pk] = json.loads(body)["status"]
            target = "suspended" if states[pk] == "in_talks" else "in_talks"
            started = time.time()
            status, body = api.request("POST", f"/api/v1/negotiations/{pk}/status-changes/", json_body={"to_status": target})
            self._note("API write", started, status)
            if 200 <= status < 300:
                self.acknowledged.append(json.loads(body)["id"])
                states[pk] = target
            else:
                states[pk] = None
            time.sleep(self.pause)

    def _logins(self):
        username, password = self.login
        while not self.stop_event.is_set():
            browser = Http(self.base)
            started = time.time()
            status, _body = browser.request("GET", "/admin/login/")
            self._note("admin page", started, status)
            if status == 200:
                started = time.time()
                status, _body = browser.request("POST", "/admin/login/", form={
                    "username": username, "password": password, "next": "/admin/",
                    "csrfmiddlewaretoken": browser.cookie("csrftoken"),
                })  # fmt: skip
                self._note("admin login", started, status)
                if status == 302:
                    started = time.time()
                    status, _body = browser.request("GET", "/admin/")  # the dashboard (its chart is cached)
                    self._note("admin page", started, status)
            time.sleep(self.pause * 3)

    def table(self, phases):
        """Answers by phase ((name, from, to) by start time) and kind, as markdown rows."""
        rows = ["| phase | requests | kind | 2xx/3xx | 4xx | 5xx | no answer | p50 ms | max ms |",
                "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for name, start, end in phases:
            for kind in ("API write", "admin login", "admin page"):
                chosen = [r for r in self.requests if r[0] == kind and start <= r[1] < end]
                if not chosen:
                    continue
                codes = [r[3] for r in chosen]
                took = [(r[2] - r[1]) * 1000 for r in chosen]
                rows.append(
                    f"| {name} | {len(chosen)} | {kind} | {sum(200 <= c < 400 for c in codes)} | "
                    f"{sum(400 <= c < 500 for c in codes)} | {sum(c >= 500 for c in codes)} | {codes.count(0)} | "
                    f"{statistics.median(took):.0f} | {max(took):.0f} |"
                )
        return rows

    def failures(self, since=0.0, until=float("inf")):
        """Requests started in [since, until) answered 5xx or not at all."""
        return [r for r in self.requests if since <= r[1] < until and (r[3] >= 500 or r[3] == 0)]


class Processes:
    """The drill's own redis-server and Celery worker and beat (each in its own session, so
    that a -9 reaches a worker's pool too and nothing else)."""

    def __init__(self, workdir, env):
        self.workdir, self.env = workdir, env
        self.redis_port, self.cache_port, self.web_port = free_port(), free_port(), free_port()
        self.redis = self.cache = self.web = self.worker = self.beat = None
        self.count = 0

    def _redis_server(self, port):
        process = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir), "--loglevel", "warning"],
            stdout=open(self.workdir / "redis.log", "a"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        assert wait_for(lambda: self._redis_answers(port), 10), "redis-server did not start"
        return process

    @staticmethod
    def _redis_answers(port):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def start_redis(self):
        self.redis = self._redis_server(self.redis_port)

    def stop_redis(self):
        self.redis.terminate()
        self.redis.wait(10)

    def start_cache(self):
        """The web server's cache: a Redis of its own, apart from the broker's."""
        self.cache = self._redis_server(self.cache_port)

    def stop_cache(self):
        self.cache.terminate()
        self.cache.wait(10)

    @property
    def web_url(self):
        return f"http://127.0.0.1:{self.web_port}"

    def start_web(self):
        """gunicorn serving the app as in production (two workers, persistent database
        connections with health checks: DATABASE_CONN_MAX_AGE=60), with the Redis cache."""
        env = {**self.env, "DATABASE_CONN_MAX_AGE": "60", "CACHE_URL": f"redis://127.0.0.1:{self.cache_port}/1"}
        self.web = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{self.web_port}",
             "--workers", "2", "--timeout", "60", "--access-logfile", "-"],
            cwd=ROOT, env=env, stdout=open(self.workdir / "web.log", "a"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        assert wait_for(lambda: http_status(self.web_url, "/healthz") == 200, 60), "the web server did not start"

    def restart_worker(self, **env):
        """Stop the worker gracefully and start it again with these settings changed."""
        self.env.update(env)
        self.worker.terminate()
        self.worker.wait(60)
        self.start_worker()

    def _celery(self, *args, log):
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", *args], cwd=ROOT, env=self.env,
            stdout=open(self.workdir / log, "a"), stderr=subprocess.STDOUT, start_new_session=True,
        )

    def start_worker(self):
        self.count += 1
        self.worker = self._celery(
            "worker", "--loglevel", "INFO", "--concurrency", "2", "--hostname", f"drill{self.count}@%h", log="worker.log"
        )
        assert wait_for(lambda: "ready." in (self.workdir / "worker.log").read_text(errors="replace").split("drill%d@" % self.count)[-1], 60), "worker did not start"

    def start_beat(self):
        self.beat = self._celery("beat", "--loglevel", "INFO", "--schedule", str(self.workdir / "beat-schedule"), log="beat.log")

    def pool_pids(self):
        try:
            return [int(pid) for pid in Path(f"/proc/{self.worker.pid}/task/{self.worker.pid}/children").read_text().split()]
        except OSError:
            return []

    def kill_worker(self):
        os.killpg(self.worker.pid, signal.SIGKILL)
        self.worker.wait(10)

    def stop_all(self):
        everything = (self.web, self.worker, self.beat, self.redis, self.cache)
        for process in everything:
            if process and process.poll() is None:
                process.terminate()
        for process in everything:
            if process:
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)


def prepare(workdir):
    import psycopg

    global DATABASE
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    parts = urlsplit(base)
    named = parts.path.lstrip("/")
    if "drill" in named:  # a database meant for the drills (it is dropped): use that one
        DATABASE = named
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{DATABASE}"')
    return {
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "DATABASE_URL": urlunsplit(parts._replace(path=f"/{DATABASE}")),
        "DATABASE_CONN_MAX_AGE": "0",
        "TRACKER_WEBHOOK_ALLOW_PRIVATE": "true",  # the receivers are on 127.0.0.1, over http
        "TRACKER_WEBHOOK_REQUIRE_HTTPS": "false",
        "TRACKER_VAR_DIR": str(workdir),
        "TRACKER_SCAN_INTERVAL_SECONDS": "86400",  # the scan drill starts its own
        "CACHE_URL": "",
        "DJANGO_LOG_LEVEL": "WARNING",
    }


class Drills:
    def __init__(self, processes, events):
        from exchanges import services

        self.processes, self.events = processes, events
        self.ua = services.party_create(actor=None, name="Drill Ukraine", short_name="DUA", kind="state")
        self.ru = services.party_create(actor=None, name="Drill Russia", short_name="DRU", kind="state")
        self.negotiations = [
            services.negotiation_create(
                actor=None, title=f"Drill {n}", visibility="all_partners",
                participants=[{"party": self.ua, "role": "side"}, {"party": self.ru, "role": "side"}],
            )
            for n in range(20)
        ]
        self.status = {negotiation.pk: "proposed" for negotiation in self.negotiations}

    def subscribe(self, receiver):
        from exchanges import services
        from tracker import services as tracker_services

        client, _token = services.api_client_create(name=f"drill {receiver.name} {time.time()}", party=self.ua)
        return tracker_services.webhook_subscription_create(
            client=client, actor=client, url=receiver.url, events=["negotiation.status_changed"]
        )

    def emit(self, count, pause=0.05):
        """`count` status changes (each one event to every subscription); their write times."""
        from exchanges import services

        took = []
        for n in range(count):
            negotiation = self.negotiations[n % len(self.negotiations)]
            target = "suspended" if self.status[negotiation.pk] == "in_talks" else "in_talks"
            started = time.monotonic()
            services.negotiation_change_status(negotiation=negotiation, to_status=target, actor=None)
            took.append(time.monotonic() - started)
            self.status[negotiation.pk] = target
            time.sleep(pause)
        return took

    @staticmethod
    def deliveries(subscription):
        from tracker.models import WebhookDelivery

        return list(WebhookDelivery.objects.filter(subscription=subscription))

    @staticmethod
    def latencies(receiver, deliveries):
        return [receiver.arrivals[d.message_id][0] - d.created_at.timestamp() for d in deliveries if d.message_id in receiver.arrivals]

    @staticmethod
    def attempts_logged(deliveries):
        from tracker.models import DeliveryAttempt

        return DeliveryAttempt.objects.filter(delivery__in=deliveries).count()

    def lost(self, deliveries):
        """Neither delivered nor still pending (dropped or given up on)."""
        return sum(1 for d in deliveries if d.status not in ("delivered", "pending"))

    def slow(self):
        say(f"### Drill: one receiver timing out beside two healthy ones ({self.events} events)")
        say()
        slow, healthy = Receiver("slow", delay=6.5), [Receiver("healthy-a"), Receiver("healthy-b")]
        subscriptions = {receiver: self.subscribe(receiver) for receiver in [slow, *healthy]}
        started = time.monotonic()
        self.emit(self.events)
        for receiver in healthy:
            wait_for(lambda: len(receiver.arrivals) >= self.events, timeout=900)
        elapsed = time.monotonic() - started
        say("| receiver | delivered | p50 latency s | max latency s | duplicates | lost |")
        say("|---|---|---|---|---|---|")
        for receiver in healthy:
            deliveries = self.deliveries(subscriptions[receiver])
            lat = self.latencies(receiver, deliveries)
            missing = len(deliveries) - len(lat)
            say(f"| {receiver.name} | {sum(d.status == 'delivered' for d in deliveries)}/{len(deliveries)} | "
                f"{statistics.median(lat):.2f} | {max(lat):.2f} | {receiver.duplicates()} | {missing + self.lost(deliveries)} |")
        deliveries = self.deliveries(subscriptions[slow])
        say(f"| slow (times out) | {sum(d.status == 'delivered' for d in deliveries)}/{len(deliveries)} | - | - | - | {self.lost(deliveries)} |")
        say()
        say(f"Both healthy receivers had every event {elapsed:.1f} s after the first was written "
            f"(events written over {self.events * 0.05:.0f} s). The slow receiver was sent {sum(map(len, slow.arrivals.values()))} "
            f"requests meanwhile ({self.attempts_logged(deliveries)} attempts logged).")
        slow.delay = 0
        healed = time.monotonic()
        subscription = subscriptions[slow]
        done = wait_for(lambda: all(d.status == "delivered" for d in self.deliveries(subscription)), timeout=240, step=1)
        deliveries = self.deliveries(subscription)
        waiting = [d for d in deliveries if d.status == "pending"]
        say(f"Once it answered in time again: {sum(d.status == 'delivered' for d in deliveries)}/{len(deliveries)} delivered "
            f"{time.monotonic() - healed:.0f} s later" + ("" if done else f", {len(waiting)} still pending on the retry schedule"
            f" (next at most {max((d.next_attempt_at.timestamp() - time.time() for d in waiting), default=0):.0f} s away)") + ".")
        say(f"lost: {self.lost(deliveries) + sum(self.lost(self.deliveries(subscriptions[r])) for r in healthy)}")
        say()

    def kill(self, *, pool_only):
        what = "the pool processes (the main process stays up)" if pool_only else "the whole worker (main process and pool)"
        say(f"### Drill: {what} killed with -9 mid-delivery")
        say()
        receiver = Receiver("hold" + ("-pool" if pool_only else ""), delay=3)
        arrived = threading.Event()
        receiver.on_request = lambda message_id: arrived.set()
        subscription = self.subscribe(receiver)
        self.emit(5, pause=0)
        assert arrived.wait(60), "nothing reached the receiver"
        killed_at = time.time()
        if pool_only:
            for pid in self.processes.pool_pids():
                os.kill(pid, signal.SIGKILL)
        else:
            self.processes.kill_worker()
            self.processes.start_worker()
        first = next(iter(receiver.arrivals))
        wait_for(lambda: all(d.status == "delivered" for d in self.deliveries(subscription)), timeout=600, step=0.5)
        deliveries = self.deliveries(subscription)
        again = [times[1] for times in receiver.arrivals.values() if len(times) > 1]
        received = sum(map(len, receiver.arrivals.values()))
        logged = self.attempts_logged(deliveries)
        from tracker.models import DeliveryAttempt

        interrupted = DeliveryAttempt.objects.filter(delivery__in=deliveries, error__icontains="interrupted").count()
        say(f"- requests received: {received} for {len(deliveries)} deliveries; duplicates: {receiver.duplicates()} "
            f"(same `webhook-id`)")
        say(f"- attempts in the attempt log: {logged} ({interrupted} marked interrupted); every request received is "
            f"in the log: {'yes' if logged >= received else 'no'}")
        say(f"- time from the kill to the interrupted delivery being sent again: "
            + (f"{min(again) - killed_at:.1f} s" if again else "never sent again")
            + f"; all {len(deliveries)} delivered {max(t[-1] for t in receiver.arrivals.values()) - killed_at:.1f} s after the kill")
        say(f"- the interrupted message: {first} received {len(receiver.arrivals[first])} times")
        say(f"lost: {len(deliveries) - sum(d.status == 'delivered' for d in deliveries)}")
        say()

    def broker(self, down_for=20):
        say(f"### Drill: the broker (the drill's own Redis) down for {down_for} s, queue lost")
        say()
        receiver = Receiver("after-outage")
        subscription = self.subscribe(receiver)
        self.processes.stop_redis()
        stopped = time.monotonic()
        took = self.emit(10, pause=0.5)
        time.sleep(max(0, down_for - (time.monotonic() - stopped)))
        self.processes.start_redis()
        back = time.monotonic()
        wait_for(lambda: len(receiver.arrivals) >= 10, timeout=300, step=0.5)
        deliveries = self.deliveries(subscription)
        say(f"- 10 status changes written while it was down: all committed; each write took median "
            f"{statistics.median(took) * 1000:.0f} ms, at most {max(took) * 1000:.0f} ms")
        say(f"- after Redis came back: {sum(d.status == 'delivered' for d in deliveries)}/10 delivered, the last "
            f"{time.monotonic() - back:.1f} s after (dispatcher tick: TRACKER_DISPATCH_INTERVAL_SECONDS, 30 s)")
        say(f"lost: {10 - len(receiver.arrivals)}")
        say()

    def scan(self):
        from django.db import connection

        from tracker.models import ScanRun
        from tracker.services import SCAN_LOCK_KEY
        from tracker.tasks import scan_stalls

        say("### Drill: the stall scan killed with -9 mid-run")
        say()
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [SCAN_LOCK_KEY])  # the scan waits here, mid-run
        before = ScanRun.objects.count()
        scan_stalls.delay()
        running = wait_for(lambda: self._waiting_on_advisory_lock(), timeout=60)
        killed = time.monotonic()
        self.processes.kill_worker()
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [SCAN_LOCK_KEY])
        self.processes.start_worker()
        resumed = wait_for(lambda: ScanRun.objects.count() > before, timeout=1800, step=1)
        say(f"- scan was running when killed: {'yes' if running else 'no'}; it ran again "
            + (f"{time.monotonic() - killed:.0f} s after the kill" if resumed else "not within 30 minutes"))
        say(f"lost: {0 if resumed else 1}")
        say()

    # Drills over HTTP: a gunicorn serving the app, an API client and staff ---------------

    def web_traffic(self, label, *, with_logins):
        """A subscription to a fresh receiver, an API client of its own and five fresh
        negotiations for it to write to, a staff login (an Editor: no second factor asked),
        and the gunicorn, started on first use; returns (traffic, receiver, subscription)."""
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import Group

        from exchanges import services

        if self.processes.cache is None:
            self.processes.start_cache()
        if self.processes.web is None:
            self.processes.start_web()
        from tracker import services as tracker_services

        # Parties of its own and `participants` negotiations: the earlier drills'
        # subscribers do not see these writes, so their receivers are not sent them.
        stamp = f"{label} {time.time():.0f}"
        side = services.party_create(actor=None, name=f"Drill side {stamp}", short_name=f"S{stamp[-6:]}", kind="state")
        other = services.party_create(actor=None, name=f"Drill other {stamp}", short_name=f"O{stamp[-6:]}", kind="state")
        client, token = services.api_client_create(name=f"drill writer {stamp}", party=side)
        receiver = Receiver(label)
        subscription = tracker_services.webhook_subscription_create(
            client=client, actor=client, url=receiver.url, events=["negotiation.status_changed"]
        )
        negotiations = [
            services.negotiation_create(
                actor=None, title=f"Drill {label} {n}", visibility="participants",
                participants=[{"party": side, "role": "side"}, {"party": other, "role": "side"}],
            ).pk
            for n in range(5)
        ]  # fmt: skip
        login = None
        if with_logins:
            password = f"drill-{time.time()}-password"
            staff = get_user_model().objects.create_user(f"drill-{label}-{int(time.time())}", password=password, is_staff=True)
            staff.groups.add(Group.objects.get(name="Editor"))
            login = (staff.username, password)
        traffic = Traffic(self.processes.web_url, token=token, negotiation_ids=negotiations, login=login)
        return traffic, receiver, subscription

    @staticmethod
    def missing_writes(traffic):
        """Status changes answered 2xx that are not in the database."""
        from exchanges.models import StatusChange

        return len(set(traffic.acknowledged)) - StatusChange.objects.filter(pk__in=traffic.acknowledged).count()

    def delivered_after(self, subscription, traffic, since, timeout=300):
        """Waits until every acknowledged write's webhook is delivered; (delivered, expected,
        seconds from `since` to the last arrival)."""
        expected = len(traffic.acknowledged)
        wait_for(lambda: sum(d.status == "delivered" for d in self.deliveries(subscription)) >= expected, timeout, step=1)
        deliveries = self.deliveries(subscription)
        done = [d for d in deliveries if d.status == "delivered"]
        last = max((d.delivered_at.timestamp() for d in done if d.delivered_at), default=since)
        return len(done), expected, last - since

    def cache(self, down_for=20, frozen=False):
        """`frozen`: the cache's Redis stopped with SIGSTOP (a hung host, a network that drops
        packets: connections open, nothing answers), else ended (connections refused)."""
        how = "frozen (SIGSTOP: nothing answers)" if frozen else "stopped (connections refused)"
        say(f"### Drill: the cache (the web server's Redis) {how} for {down_for} s under API writes and admin logins")
        say()
        traffic, _receiver, subscription = self.web_traffic("frozen-cache" if frozen else "cache", with_logins=True)
        started = time.time()
        traffic.start()
        time.sleep(10)
        down = time.time()
        if frozen:
            os.kill(self.processes.cache.pid, signal.SIGSTOP)
        else:
            self.processes.stop_cache()
        status, body = Http(self.processes.web_url).request("GET", "/readyz")
        seen = json.loads(body).get("cache", "?") if status else "no answer"
        time.sleep(max(0, down_for - (time.time() - down)))
        if frozen:
            os.kill(self.processes.cache.pid, signal.SIGCONT)
        else:
            self.processes.start_cache()
        back = time.time()
        time.sleep(10)
        traffic.stop()
        ended = time.time()
        for row in traffic.table([("before", started, down), ("cache down", down, back), ("after", back, ended)]):
            say(row)
        say()
        missing = self.missing_writes(traffic)
        delivered, expected, after = self.delivered_after(subscription, traffic, back)
        say(f"- 5xx or no answer: {len(traffic.failures())} of {len(traffic.requests)} requests (gunicorn, 2 workers, "
            f"CACHE_URL on the drill's Redis; rate limits and login protection let requests through while it is down); "
            f"`/readyz` said cache: {seen} while it was down")
        say(f"- acknowledged writes: {len(traffic.acknowledged)}, missing from the database: {missing}")
        say(f"- their webhooks: {delivered}/{expected} delivered, the last {after:.1f} s after the cache was back")
        say(f"lost: {missing + max(0, expected - delivered)}")
        say()

    def postgres(self, restart_command):
        """PostgreSQL restarted (or every connection to the drill's database ended) under
        API writes, admin logins and the worker."""
        from django.db import connection

        how = f"restarted (`{restart_command}`)" if restart_command else "connections ended (pg_terminate_backend)"
        say(f"### Drill: PostgreSQL {how} under API writes, admin logins and the worker")
        say()
        if restart_command:
            self._wait_for_no_copy()
        self.processes.restart_worker(DATABASE_CONN_MAX_AGE="60")  # persistent, as in production
        traffic, _receiver, subscription = self.web_traffic("postgres", with_logins=True)
        started = time.time()
        traffic.start()
        time.sleep(10)
        hit = time.time()
        if restart_command:
            done = subprocess.run(shlex.split(restart_command), capture_output=True, text=True, check=False)
            assert done.returncode == 0, done.stdout + done.stderr
        else:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
        command_took = time.time() - hit
        connection.close()  # the drill's own connection, if the restart ended it
        def writes():
            return [r for r in traffic.requests if r[0] == "API write"]

        wait_for(lambda: any(r[1] >= hit and 200 <= r[3] < 300 for r in writes()), timeout=300, step=0.2)
        recovered_at = min((r[2] for r in writes() if r[1] >= hit and 200 <= r[3] < 300), default=None)
        time.sleep(20)
        traffic.stop()
        ended = time.time()
        recovered = recovered_at or ended
        failed = traffic.failures(since=hit - 30)
        for row in traffic.table([("before", started, hit), ("until writes succeed again", hit, recovered), ("after", recovered, ended)]):
            say(row)
        say()
        missing = self.missing_writes(traffic)
        delivered, expected, after = self.delivered_after(subscription, traffic, hit)
        stale = traffic.failures(since=recovered)
        say(f"- the {'restart command' if restart_command else 'termination'} took {command_took:.1f} s; "
            + (f"the first write to succeed after it answered {recovered_at - hit:.1f} s after it began" if recovered_at else "no write succeeded again within 300 s"))
        say(f"- 5xx or no answer: {len(failed)} (all during the outage: {'yes' if not stale else 'no'}); "
            f"after writes succeeded again: {len(stale)} (a stale connection would fail here, request after request)")
        say(f"- acknowledged writes: {len(traffic.acknowledged)}, missing from the database: {missing}")
        say(f"- the worker (DATABASE_CONN_MAX_AGE=60) delivered their webhooks: {delivered}/{expected}, the last "
            f"{after:.1f} s after the {'restart' if restart_command else 'termination'}"
            + (f" (more than acknowledged: {delivered - expected} write(s) answered 5xx had committed)" if delivered > expected else ""))
        say(f"lost: {missing + max(0, expected - delivered)}")
        say()

    @staticmethod
    def _wait_for_no_copy(timeout=3600):
        """A restart would break a bulk load (COPY) running on the same server: wait for it."""
        from django.db import connection

        def copying():
            with connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE query ILIKE 'copy%%' AND state = 'active'")
                return cursor.fetchone()[0]

        if copying():
            print("A COPY is running on the server; waiting for it to end before restarting.", flush=True)
        assert wait_for(lambda: not copying(), timeout, step=10), "a COPY kept running; not restarted"

    @staticmethod
    def _waiting_on_advisory_lock():
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'advisory' AND datname = current_database()")
            return cursor.fetchone()[0] > 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200, help="events in the slow-receiver drill")
    parser.add_argument("--only", default="slow,kill,broker,scan,cache,postgres", help="comma-separated drills to run")
    parser.add_argument("--out", default="/tmp/drills_section.md")
    args = parser.parse_args()
    if not shutil.which("redis-server"):
        sys.exit("The drills need redis-server (Debian: apt-get install redis-server).")
    workdir = Path(tempfile.mkdtemp(prefix="tracker-drills-"))
    env = {**os.environ, **prepare(workdir)}
    processes = Processes(workdir, env)
    env["CELERY_BROKER_URL"] = f"redis://127.0.0.1:{processes.redis_port}/0"
    os.environ.update(env)
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    say("## Fault drills (`make drills`)")
    say()
    say(f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `scripts/fault_drills.py`: PostgreSQL, a Redis of "
        f"the drill's own, a real Celery worker (`--concurrency 2`, as in docker-compose) and beat; webhook timeout "
        f"{settings.TRACKER_WEBHOOK_TIMEOUT_SECONDS} s, retry schedule {settings.TRACKER_WEBHOOK_RETRY_SCHEDULE[:4]}... s. "
        f"Worker and beat logs: `{workdir}`.")
    say()
    try:
        processes.start_redis()
        processes.start_worker()
        processes.start_beat()
        drills = Drills(processes, args.events)
        chosen = args.only.split(",")
        if "slow" in chosen:
            drills.slow()
        if "kill" in chosen:
            drills.kill(pool_only=False)
            drills.kill(pool_only=True)
        if "broker" in chosen:
            drills.broker()
        if "scan" in chosen:
            drills.scan()
        if "cache" in chosen:
            drills.cache()
            drills.cache(frozen=True)
        if "postgres" in chosen:
            drills.postgres(os.environ.get("DRILL_PG_RESTART_COMMAND", "").strip())
    finally:
        processes.stop_all()
        Path(args.out).write_text("\n".join(REPORT) + "\n")
        print(f"Written to {args.out}")


if __name__ == "__main__":
    main()
