"""What the benchmark's parts share: where the datasets are, how the tracker is served and
driven (gunicorn, wrk) and how a part runs inside Django against a size's database."""
import json
import os
import re
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SIZES = [int(s) for s in os.environ.get("BENCH_SIZES", "10000,1000000").split(",")]
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
BASE_URL = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/tracker"
APP_PORT, FLOOR_PORT = 8801, 8802
NOW = datetime.now(timezone.utc).replace(microsecond=0)


def db_url(size):
    parts = urlsplit(BASE_URL)
    return urlunsplit(parts._replace(path=f"/tracker_bench_{size}"))


def admin_url():
    return urlunsplit(urlsplit(BASE_URL)._replace(path="/postgres"))


#: Bump when `load` changes what it writes; schema changes are applied by migrating a reused dataset.
DATA_VERSION = "4"  # 4: covered groups held by the sides; wounded released in done transfers; handovers during implementation; verified counts


def schema_version():
    return DATA_VERSION


def app_env(size, **extra):
    return {
        **os.environ,
        "DATABASE_URL": db_url(size),
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "DJANGO_DEBUG": "false",
        "TRACKER_API_RATE": "100000000/min",
        "CELERY_BROKER_URL": "memory://",
        "TRACKER_KICK_ON_COMMIT": "false",
        **extra,
    }



def wrk(url, token=None, *, script=None, env=None, warm_up=True):
    command = ["wrk", "-t2", "-c8", f"-d{SECONDS}s", "--latency", url]
    if token:
        command[1:1] = ["-H", f"Authorization: Bearer {token}"]
    if script:
        command[1:1] = ["-s", str(script)]
    env = {**os.environ, **(env or {})}
    if warm_up:
        subprocess.run([*command[:-1], "-d2s", url], capture_output=True, env=env)
    finished = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    if finished.stderr:
        print(finished.stderr[-2000:], file=sys.stderr)
    out = finished.stdout

    def millis(label):
        match = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)\b", out)
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": millis("50"),
        "p99": millis("99"),
        "errors": int(errors.group(1)) if errors else 0,
    }


def port_taken(port):
    import socket

    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def serve(size):
    """gunicorn for the tracker and for the floor; refuses to measure a server it did not start."""
    taken = [port for port in (APP_PORT, FLOOR_PORT) if port_taken(port)]
    if taken:
        sys.exit(f"bench: port(s) {taken} already in use (a server left running?); stop it and run again")
    common = ["-w", "2", "--worker-class", "sync", "--log-level", "warning"]
    app = subprocess.Popen([str(BIN / "gunicorn"), "config.wsgi", "-b", f"127.0.0.1:{APP_PORT}", *common], cwd=ROOT, env=app_env(size, DATABASE_CONN_MAX_AGE="600"))
    floor = subprocess.Popen(
        [str(BIN / "gunicorn"), "bench_floor:application", "-b", f"127.0.0.1:{FLOOR_PORT}", *common],
        cwd=ROOT / "scripts", env={**os.environ, "FLOOR_DSN": db_url(size)},
    )
    import urllib.request

    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{APP_PORT}/healthz", timeout=1)
            urllib.request.urlopen(f"http://127.0.0.1:{FLOOR_PORT}/floor/negotiations/?page_size=1", timeout=1)
            break
        except OSError:
            time.sleep(0.2)
    if app.poll() is not None or floor.poll() is not None:
        sys.exit("bench: gunicorn did not start (see its messages above)")
    return app, floor


def in_django(size, mode, *args):
    """Run `python scripts/bench.py --<mode>` against the size's database; returns its JSON."""
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench.py"), f"--{mode}", str(size), *args], cwd=ROOT, env=app_env(size), capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1])

