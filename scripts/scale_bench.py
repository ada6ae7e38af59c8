#!/usr/bin/env python3
"""The scale bench (`scripts/bench`, part `scale`): N simulated renders at once, in a few
worker processes of the real engine (`scale-bench` binary), against this machine's
PostgreSQL and Redis, while the real API answers status polls and holds WebSockets.

For each N of SCALE_STEPS it prints one line: leases held, lease-renewal p50/p99, jobs
finished per second, leases lost, jobs run twice, PostgreSQL commits/s, Redis commands/s,
status-poll p99 and the events the watchers got. Then the soak (SCALE_SOAK_JOBS short jobs,
workers SIGKILLed at random, Redis restarted once) prints its throughput and recovery.

Everything it needs comes from the environment scripts/bench sets up (ports, the API, a
bench user and its token); only the Python standard library is used.
"""

import asyncio
import base64
import http.client
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ENV = os.environ
PG = ["psql", "-h", "127.0.0.1", "-p", ENV["PG_PORT"], "-U", "montage", "-d", "montage", "-tAq"]
REDIS = ["redis-cli", "-p", ENV["REDIS_PORT"]]
API_HOST, API_PORT = ENV["API_BIND"].split(":")
TOKEN, USER_ID = ENV["SCALE_TOKEN"], ENV["SCALE_USER_ID"]
# The bench's jobs: its user's, and one each of the watchers' (users made for them), all of
# them `scale-…@example.com`, so a step also clears what an interrupted run left.
OWNED = "user_id IN (SELECT id FROM users WHERE email LIKE 'scale-%@example.com')"
WATCHER_EMAIL = f"scale-watch-{USER_ID}-"
BENCH = Path(ENV["BENCH"])
BINARY = Path(ENV["TARGET"]) / "release" / "scale-bench"
PROCESSES = int(ENV.get("SCALE_PROCESSES", "4"))
RENDER_SECS = float(ENV.get("SCALE_RENDER_SECS", "120"))
WINDOW_SECS = float(ENV.get("SCALE_WINDOW_SECS", "15"))
WATCHERS = int(ENV.get("SCALE_WATCHERS", "200"))
METRICS_PORT = 19100


def sql(query):
    done = subprocess.run(PG + ["-c", query], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{query}: {done.stderr}")
    return done.stdout.strip()


def redis_commands():
    info = subprocess.run(REDIS + ["info", "stats"], capture_output=True, text=True).stdout
    match = re.search(r"total_commands_processed:(\d+)", info)
    return int(match.group(1)) if match else 0


def pg_commits():
    return int(sql("SELECT xact_commit FROM pg_stat_database WHERE datname = 'montage'"))


class Workers:
    """K worker processes sharing N concurrent renders, each with its metrics port."""

    def __init__(self, concurrency, render_secs, effects):
        self.effects = effects
        self.procs = {}
        self.env = dict(
            ENV,
            WORKER_CONCURRENCY=str(concurrency),
            QUEUE_PREFETCH=str(max(concurrency * PROCESSES, 100)),
            DATABASE_POOL_SIZE=ENV.get("SCALE_POOL_SIZE", "24"),
            MEDIA_PROGRAM=str(Path(ENV["TARGET"]) / "release" / "worker"),
            SIM_RENDER_SECS=str(render_secs),
            SIM_EFFECTS=str(effects),
        )

    def start(self, index):
        env = dict(self.env, WORKER_METRICS_BIND=f"127.0.0.1:{METRICS_PORT + index}")
        log = open(BENCH / "scale-worker.log", "a")
        self.procs[index] = subprocess.Popen([BINARY], env=env, stdout=log, stderr=log)

    def start_all(self):
        for index in range(PROCESSES):
            self.start(index)

    def kill(self, index):
        self.procs[index].send_signal(signal.SIGKILL)
        self.procs[index].wait()

    def stop_all(self):
        for proc in self.procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()

    def scrape(self):
        """Sums each series over the processes that answer."""
        totals = {}
        for index in self.procs:
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{METRICS_PORT + index}/metrics", timeout=5).read()
            except OSError:
                continue
            for line in body.decode().splitlines():
                if line.startswith("montage_lease") and " " in line:
                    name, value = line.rsplit(" ", 1)
                    totals[name] = totals.get(name, 0) + float(value)
        return totals


def quantile(before, after, q):
    """Prometheus's histogram_quantile over the renewals between two scrapes, in ms."""
    buckets = []
    for name, count in after.items():
        match = re.match(r'montage_lease_renewal_seconds_bucket\{le="([^"]+)"\}', name)
        if match:
            bound = float("inf") if match.group(1) == "+Inf" else float(match.group(1))
            buckets.append((bound, count - before.get(name, 0)))
    buckets.sort()
    if not buckets or buckets[-1][1] == 0:
        return None
    rank, lower, below = q * buckets[-1][1], 0.0, 0
    for bound, cumulative in buckets:
        if cumulative >= rank:
            if bound == float("inf"):
                return lower * 1000
            share = (rank - below) / max(cumulative - below, 1)
            return (lower + (bound - lower) * share) * 1000
        lower, below = bound, cumulative
    return None


def counter(snapshot, name):
    return sum(value for key, value in snapshot.items() if key.split("{")[0] == name)


def insert_jobs(count):
    """One job for each watcher, the rest for the bench user."""
    sql(
        "INSERT INTO jobs (id, user_id, stage, target_duration, style, formats, hud_remove, watermark) "
        "SELECT gen_random_uuid(), owner, 'queued', 10, 'cinematic', ARRAY['landscape'], false, false FROM "
        f"(SELECT id AS owner FROM users WHERE email LIKE '{WATCHER_EMAIL}%' UNION ALL "
        f"SELECT '{USER_ID}' FROM generate_series(1, {count} - {WATCHERS})) AS owners"
    )


def watcher_tokens():
    """Signs in WATCHERS users made for the bench (with the bench user's password), each to
    watch its own job, as players do."""
    sql(
        "INSERT INTO users (id, email, password_hash) SELECT gen_random_uuid(), "
        f"'{WATCHER_EMAIL}' || i || '@example.com', (SELECT password_hash FROM users WHERE id = '{USER_ID}') "
        f"FROM generate_series(1, {WATCHERS}) AS i"
    )
    tokens = []
    for i in range(1, WATCHERS + 1):
        body = json.dumps({"email": f"{WATCHER_EMAIL}{i}@example.com", "password": ENV["SCALE_PASSWORD"]})
        request = urllib.request.Request(
            f"http://{ENV['API_BIND']}/api/auth/login", body.encode(), {"content-type": "application/json"}
        )
        tokens.append(json.load(urllib.request.urlopen(request))["access_token"])
    return tokens


def count_jobs(condition):
    return int(sql(f"SELECT count(*) FROM jobs WHERE {OWNED} AND {condition}"))


def eventually(condition, timeout, every=0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return condition()


class Pollers:
    """Clients polling job statuses through the API, each over one kept-alive connection."""

    def __init__(self, job_ids, clients=4, every=0.02):
        self.job_ids, self.every, self.latencies, self.errors = job_ids, every, [], 0
        self.running = True
        self.threads = [threading.Thread(target=self.poll, daemon=True) for _ in range(clients)]
        for thread in self.threads:
            thread.start()

    def poll(self):
        conn = http.client.HTTPConnection(API_HOST, int(API_PORT), timeout=10)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        while self.running:
            started = time.perf_counter()
            try:
                conn.request("GET", f"/api/v2/jobs/{random.choice(self.job_ids)}", headers=headers)
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    self.errors += 1
            except (OSError, http.client.HTTPException):
                self.errors += 1
                conn = http.client.HTTPConnection(API_HOST, int(API_PORT), timeout=10)
            self.latencies.append(time.perf_counter() - started)
            time.sleep(self.every)

    def stop(self):
        self.running = False
        for thread in self.threads:
            thread.join()
        ordered = sorted(self.latencies)
        p99 = ordered[int(0.99 * (len(ordered) - 1))] * 1000 if ordered else None
        return len(ordered), p99, self.errors


async def watch(token, stop, counts):
    """One WebSocket client of /ws: counts the job events it is sent, answers pings."""
    reader, writer = await asyncio.open_connection(API_HOST, int(API_PORT))
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"GET /ws?token={token} HTTP/1.1\r\nHost: {API_HOST}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    status = await reader.readuntil(b"\r\n\r\n")
    if b" 101 " not in status.split(b"\r\n")[0]:
        counts["refused"] += 1
        return
    counts["open"] += 1
    while not stop.is_set():
        try:
            head = await asyncio.wait_for(reader.readexactly(2), 1)
        except asyncio.TimeoutError:
            continue
        except (asyncio.IncompleteReadError, OSError):
            counts["dropped"] += 1
            return
        opcode, length = head[0] & 0x0F, head[1] & 0x7F
        if length == 126:
            length = int.from_bytes(await reader.readexactly(2), "big")
        elif length == 127:
            length = int.from_bytes(await reader.readexactly(8), "big")
        payload = await reader.readexactly(length)
        if opcode == 1:
            counts["events"] += 1
        elif opcode == 9:
            mask = os.urandom(4)
            masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            writer.write(bytes([0x8A, 0x80 | len(payload)]) + mask + masked)
        elif opcode == 8:
            counts["dropped"] += 1
            return
    writer.close()


class Watchers:
    """M WebSocket sessions held open on an event loop of their own."""

    def __init__(self, tokens):
        self.counts = {"open": 0, "refused": 0, "dropped": 0, "events": 0}
        self.loop = asyncio.new_event_loop()
        self.stop_event = None
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self.run, args=(tokens,), daemon=True)
        self.thread.start()
        self.ready.wait()

    def run(self, tokens):
        asyncio.set_event_loop(self.loop)
        self.stop_event = asyncio.Event()
        self.ready.set()
        tasks = [watch(token, self.stop_event, self.counts) for token in tokens]
        self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))

    def stop(self):
        self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(timeout=30)
        return dict(self.counts)


def effects_count(path):
    ids = path.read_text().split() if path.exists() else []
    return len(ids), len(ids) - len(set(ids))


def reset_step():
    sql(f"DELETE FROM jobs WHERE {OWNED}")


def step(n, tokens):
    """One step of the ramp: n renders at once; returns its figures as a dict."""
    reset_step()
    effects = BENCH / f"scale-effects-{n}"
    effects.unlink(missing_ok=True)
    workers = Workers(-(-n // PROCESSES), RENDER_SECS, effects)
    workers.start_all()
    try:
        return run_step(n, workers, effects, tokens)
    finally:
        workers.stop_all()


def run_step(n, workers, effects, tokens):
    started = time.monotonic()
    insert_jobs(n)
    ramped = eventually(lambda: count_jobs("status = 'PROCESSING'") >= n, RENDER_SECS * 0.6, 1)
    ramp_secs = time.monotonic() - started
    held = count_jobs("status = 'PROCESSING'")
    job_ids = sql(f"SELECT id FROM jobs WHERE user_id = '{USER_ID}' LIMIT 500").split()
    watchers = Watchers(tokens)
    pollers = Pollers(job_ids)
    before, commits, commands, at = workers.scrape(), pg_commits(), redis_commands(), time.monotonic()
    time.sleep(WINDOW_SECS)
    after, window = workers.scrape(), time.monotonic() - at
    commits, commands = (pg_commits() - commits) / window, (redis_commands() - commands) / window
    polls, poll_p99, poll_errors = pollers.stop()
    finished = eventually(lambda: count_jobs("finished_at IS NULL") == 0, RENDER_SECS * 3 + 120, 1)
    seen = watchers.stop()
    final = workers.scrape()
    rate = sql(
        "SELECT round((count(*) / extract(epoch FROM max(finished_at) - min(started_at)))::numeric, 1) "
        f"FROM jobs WHERE {OWNED}"
    )
    effects_total, twice = effects_count(effects)
    return {
        "n": n, "ramped": ramped, "ramp_secs": round(ramp_secs, 1), "held": held,
        "renewal_p50_ms": quantile(before, after, 0.5), "renewal_p99_ms": quantile(before, after, 0.99),
        "jobs_per_sec": rate, "lost": counter(final, "montage_leases_lost_total"),
        "run_twice": twice, "effects": effects_total, "all_ended": finished,
        "succeeded": count_jobs("status = 'SUCCESS'"),
        "pg_commits_per_sec": round(commits), "redis_commands_per_sec": round(commands),
        "polls": polls, "poll_p99_ms": poll_p99, "poll_errors": poll_errors, "watchers": seen,
    }


def restart_redis():
    """Stops Redis (it saves its append-only file) and starts it again the way the scripts do."""
    subprocess.run(REDIS + ["shutdown"], capture_output=True)
    started = time.monotonic()
    subprocess.run(["bash", "-c", f"source '{ENV['ROOT']}/scripts/lib.sh' && start_redis"], check=True, capture_output=True)
    return time.monotonic() - started


def held_leases():
    rows = sql(f"SELECT id, lease_token FROM jobs WHERE {OWNED} AND status = 'PROCESSING'")
    return dict(line.split("|") for line in rows.splitlines() if line)


def recovered(snapshot):
    """Whether every job running at `snapshot` has ended or is run by a new attempt."""
    still = held_leases()
    return not any(still.get(job) == lease for job, lease in snapshot.items())


def soak(jobs, concurrency):
    """`jobs` one-second renders while a worker is SIGKILLed every SCALE_SOAK_KILL_SECS and
    Redis is restarted once; every job must end exactly once and none stay waiting."""
    reset_step()
    effects = BENCH / "scale-effects-soak"
    effects.unlink(missing_ok=True)
    workers = Workers(concurrency, 1, effects)
    workers.start_all()
    started, recoveries, redis_down = time.monotonic(), [], None
    try:
        insert_jobs(jobs)
        every = float(ENV.get("SCALE_SOAK_KILL_SECS", "40"))
        while count_jobs("finished_at IS NULL") > 0 and time.monotonic() - started < 3600:
            time.sleep(every)
            if redis_down is None and recoveries:
                redis_down = restart_redis()
                continue
            victim = random.randrange(PROCESSES)
            snapshot = held_leases()
            killed = time.monotonic()
            workers.kill(victim)
            workers.start(victim)
            eventually(lambda: recovered(snapshot), 300, 1)
            recoveries.append(time.monotonic() - killed)
    finally:
        workers.stop_all()
    elapsed = time.monotonic() - started
    ended_once = int(sql(
        f"SELECT count(*) FROM jobs WHERE {OWNED} AND status = 'SUCCESS'"
    ))
    renders, twice = effects_count(effects)
    pending = count_jobs("status = 'PENDING'")
    print(
        f"scale: soak: {jobs} jobs of 1 s, {PROCESSES} processes x {concurrency}: {ended_once} ended once "
        f"(SUCCESS), {count_jobs('finished_at IS NULL')} not ended, "
        f"{pending} still PENDING, in {elapsed:.0f} s ({jobs / elapsed:.0f} jobs/s); "
        f"{len(recoveries)} workers SIGKILLed, their jobs running again after "
        f"{', '.join(f'{r:.0f}' for r in recoveries)} s; Redis restarted once ({redis_down or 0:.1f} s down); "
        f"{renders} renders finished, {twice} of them a second time (a kill between a render's end and its "
        f"record: the record is fenced by the lease, so the job still ended once)",
        flush=True,
    )


def show(figures):
    def ms(value):
        return "n/a" if value is None else f"{value:.1f} ms"

    f = figures
    watchers = f["watchers"]
    print(
        f"scale: N={f['n']}: {f['held']} leases held (ramp {f['ramp_secs']} s), renewal p50 {ms(f['renewal_p50_ms'])} "
        f"p99 {ms(f['renewal_p99_ms'])}, {f['jobs_per_sec']} jobs/s, {int(f['lost'])} leases lost, "
        f"{f['run_twice']} run twice, {f['succeeded']}/{f['n']} succeeded, "
        f"PostgreSQL {f['pg_commits_per_sec']} commits/s, Redis {f['redis_commands_per_sec']} commands/s, "
        f"status poll p99 {ms(f['poll_p99_ms'])} ({f['polls']} polls, {f['poll_errors']} errors), "
        f"{watchers['open']} WebSockets ({watchers['refused']} refused, {watchers['dropped']} dropped, "
        f"{watchers['events']} events)",
        flush=True,
    )


def main():
    results, tokens = [], watcher_tokens()
    for n in [int(x) for x in ENV.get("SCALE_STEPS", "1000,2500,5000,10000").split(",")]:
        figures = step(n, tokens)
        show(figures)
        results.append(figures)
    (BENCH / "scale.json").write_text(json.dumps(results, indent=1))
    soak_jobs = int(ENV.get("SCALE_SOAK_JOBS", "100000"))
    if soak_jobs:
        soak(soak_jobs, int(ENV.get("SCALE_SOAK_CONCURRENCY", "500")))
    reset_step()


if __name__ == "__main__":
    sys.exit(main())
