"""Fault drills for the webhook outbox and the worker, against real PostgreSQL, a Redis of
the drill's own and real Celery worker and beat subprocesses. Each drill prints what was
lost (the goal: 0) and how long recovery took, and the whole run is written as a
markdown section (`--out`, default /tmp/drills_section.md).

    make drills        # or: .venv/bin/python scripts/fault_drills.py [--events 200] [--only slow,kill,broker,scan]

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

It creates (dropping it first) the database `tracker_drills` on DATABASE_URL's server
(default postgres://postgres@127.0.0.1:5432/) and starts redis-server on a free port; the
shared Redis on 6379 is never touched.
"""
import argparse
import os
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
from urllib.parse import urlsplit, urlunsplit

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


class Processes:
    """The drill's own redis-server and Celery worker and beat (each in its own session, so
    that a -9 reaches a worker's pool too and nothing else)."""

    def __init__(self, workdir, env):
        self.workdir, self.env = workdir, env
        self.redis_port = free_port()
        self.redis = self.worker = self.beat = None
        self.count = 0

    def start_redis(self):
        self.redis = subprocess.Popen(
            ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir), "--loglevel", "warning"],
            stdout=open(self.workdir / "redis.log", "a"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        assert wait_for(self._redis_answers, 10), "redis-server did not start"

    def _redis_answers(self):
        try:
            with socket.create_connection(("127.0.0.1", self.redis_port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop_redis(self):
        self.redis.terminate()
        self.redis.wait(10)

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
        for process in (self.worker, self.beat, self.redis):
            if process and process.poll() is None:
                process.terminate()
        for process in (self.worker, self.beat, self.redis):
            if process:
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)


def prepare(workdir):
    import psycopg

    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    parts = urlsplit(base)
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

    @staticmethod
    def _waiting_on_advisory_lock():
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'advisory' AND datname = current_database()")
            return cursor.fetchone()[0] > 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200, help="events in the slow-receiver drill")
    parser.add_argument("--only", default="slow,kill,broker,scan", help="comma-separated drills to run")
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
    finally:
        processes.stop_all()
        Path(args.out).write_text("\n".join(REPORT) + "\n")
        print(f"Written to {args.out}")


if __name__ == "__main__":
    main()
