#!/usr/bin/env python3
"""Vecgo's torture suite and soak (standard library only): writers killed at random, readers
checked against a fault-free reference, compaction and vacuum, all through a fault-injecting
proxy in front of moto; then the invariants, checked from the store.

  python3 torture/torture.py --size small             # CI: a few minutes
  python3 torture/torture.py --size large             # by hand: 8 writers x 50 commits, 100 kills
  python3 torture/torture.py --soak 1800              # 30 minutes of mixed load (CI: --soak 120)
  options: --writers N --commits C --rows R --dim D --kills K --readers M --fault-rate F
           --flip-get P --flip-list P --seed S --maintain-interval S --bin-dir DIR --json FILE

It starts moto_server on a free 127.0.0.1 port and torture/fault_proxy.py in front of it, and
runs the agent executable (.build/debug/VecgoStressWriter, see its main.swift) in its roles:

  torture  N writer slots, each committing C batches of R rows; K times a running writer is
           killed with SIGKILL at a random moment and its slot restarts under a NEW writer id
           with the batches it still owes. M readers refresh and search through the proxy with
           a disk cache, each answer compared with a fault-free reference at the same version;
           one maintainer compacts and vacuums every few seconds through the proxy.
  soak     2 writers committing for the whole duration (no kills), 2 readers, compaction and
           vacuum every --maintain-interval (60 s), 5 % faults; every ~10 s it samples each
           reader's resident memory (VmRSS) and disk cache size.

Then, fault-free against moto: the agent's checker (every acknowledged batch whole exactly once,
in the newest version and in the version its commit returned; every batch in every kept version
whole or absent; versions contiguous), `vecgo verify`, zero MISMATCH lines from readers, no
temporary file left in a reader's cache directory. The soak also fails when a cache directory
outgrows its limit or a reader's RSS grows by more than --rss-growth-mib (default 128 MiB)
between the end of the warm-up (the first quarter, at least 20 s) and the end. Prints a summary
table and exits 1 on any violation.
"""
import argparse
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SIZES = {
    "small": dict(writers=3, commits=20, rows=10, dim=8, kills=10, readers=2, fault_rate=0.10, flip_get=0.01, flip_list=0.01,
                  maintain_interval=3.0, timeout=900),
    "large": dict(writers=8, commits=50, rows=10, dim=8, kills=100, readers=3, fault_rate=0.10, flip_get=0.01, flip_list=0.01,
                  maintain_interval=5.0, timeout=7200),
    "soak": dict(writers=2, commits=10**6, rows=50, dim=32, kills=0, readers=2, fault_rate=0.05, flip_get=0.0, flip_list=0.0,
                 maintain_interval=60.0, timeout=None),
}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http(method, url, body=None):
    req = urllib.request.Request(url, data=body, method=method)
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.read()


class Agent:
    """One agent process and the lines it printed (read by a thread as they come)."""

    def __init__(self, role, args, env, name, log_dir):
        self.role, self.name = role, name
        self.lines, self.lock = [], threading.Lock()
        self.killed = False
        self.started = time.monotonic()
        self.stderr = open(os.path.join(log_dir, f"{name}.stderr"), "w")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.stderr, env=env, text=True)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            with self.lock:
                self.lines.append(line.rstrip("\n"))

    def output(self):
        with self.lock:
            return list(self.lines)

    def running(self):
        return self.proc.poll() is None

    def kill(self):
        self.killed = True
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def finish(self, timeout):
        """Waits for the exit (SIGKILL after `timeout` seconds); returns whether it exited by itself."""
        try:
            self.proc.wait(timeout=timeout)
            clean = True
        except subprocess.TimeoutExpired:
            self.kill()
            clean = False
        self.thread.join(timeout=5)
        self.stderr.close()
        return clean


class Run:
    def __init__(self, a):
        self.a = a
        self.rng = random.Random(a.seed)
        self.work = a.work_dir or tempfile.mkdtemp(prefix="vecgo-torture-")
        os.makedirs(self.work, exist_ok=True)
        self.stop_file = os.path.join(self.work, "stop")
        self.bucket = f"torture-{os.getpid()}-{self.rng.randrange(10**6)}"
        self.url = f"s3://{self.bucket}/db/"
        self.servers = []
        self.violations = []
        self.writers, self.readers, self.maintainer = [], [], None
        self.kills = self.extra_commits = 0
        self.check_summary, self.verify_line = {}, "not run"
        self.agent_bin = os.path.join(a.bin_dir, "VecgoStressWriter")
        self.vecgo_bin = os.path.join(a.bin_dir, "vecgo")
        for b in (self.agent_bin, self.vecgo_bin):
            if not os.access(b, os.X_OK):
                raise SystemExit(f"{b} is missing: build it with `swift build` (or give --bin-dir)")
        self.env = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_REGION="us-east-1")

    def violation(self, text):
        self.violations.append(text)
        print(f"VIOLATION {text}", flush=True)

    # --- servers

    def start_servers(self):
        port = free_port()
        log = open(os.path.join(self.work, "moto.log"), "w")
        self.servers.append(subprocess.Popen(["moto_server", "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log))
        self.moto = f"http://127.0.0.1:{port}"
        self._wait_for(f"{self.moto}/moto-api/", "moto_server")
        http("PUT", f"{self.moto}/{self.bucket}")
        port_file = os.path.join(self.work, "proxy.port")
        a = self.a
        log = open(os.path.join(self.work, "proxy.log"), "w")
        self.servers.append(subprocess.Popen(
            [sys.executable, os.path.join(HERE, "fault_proxy.py"), "--upstream", self.moto, "--port-file", port_file,
             "--seed", str(a.seed), "--fault-rate", str(a.fault_rate), "--flip-get", str(a.flip_get),
             "--flip-list", str(a.flip_list), "--slow-ms", str(a.slow_ms)], stdout=log, stderr=log))
        for _ in range(100):
            if os.path.exists(port_file):
                break
            time.sleep(0.1)
        self.proxy = f"http://127.0.0.1:{open(port_file).read().strip()}"
        self._wait_for(f"{self.proxy}/_proxy/stats", "fault proxy")
        print(f"moto {self.moto}, fault proxy {self.proxy}, store {self.url}, work directory {self.work}", flush=True)

    def _wait_for(self, url, what):
        for _ in range(150):
            try:
                http("GET", url)
                return
            except OSError:
                time.sleep(0.2)
        raise SystemExit(f"{what} did not start ({url}); see {self.work}")

    def stop_servers(self):
        for p in self.servers:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    # --- agents

    def agent(self, role, name, *extra, endpoint=None):
        args = [self.agent_bin, self.url, "--endpoint", endpoint or self.proxy, "--role", role, "--dim", str(self.a.dim),
                *map(str, extra)]
        return Agent(role, args, self.env, name, self.work)

    def start_writer(self, writer_id, commits):
        return self.agent("writer", f"writer-{writer_id}", "--writer", writer_id, "--commits", commits, "--rows", self.a.rows,
                          "--timed", "--stop-file", self.stop_file, "--max-commit-age", self.a.max_commit_age)

    def start_readers(self):
        self.readers = []
        for i in range(self.a.readers):
            cache = os.path.join(self.work, f"cache-{i}")
            os.makedirs(cache, exist_ok=True)
            self.readers.append((self.agent("reader", f"reader-{i}", "--reference-endpoint", self.moto, "--cache", cache,
                                            "--seed", self.a.seed * 100 + i, "--disk-cache-size", self.a.disk_cache_bytes,
                                            "--stop-file", self.stop_file), cache))

    def start_maintainer(self):
        self.maintainer = self.agent("maintainer", "maintainer", "--interval", self.a.maintain_interval, "--retain", self.a.retain,
                                     "--grace", self.a.grace, "--max-commit-age", self.a.max_commit_age,
                                     "--stop-file", self.stop_file)

    # --- the load

    def drive(self):
        """Runs the writer slots (and kills) until every slot committed its batches and every kill happened."""
        a = self.a
        self.writers = []  # every Agent ever started, with its slot
        slots = [dict(agent=None, owed=a.commits) for _ in range(a.writers)]
        next_id, kills, extra = 1, 0, 0
        started = time.monotonic()
        next_kill = started + self.rng.uniform(0.5, 3.0)
        others_started = False
        sample_at = started
        deadline = started + (a.soak if a.soak else a.timeout)
        while True:
            now = time.monotonic()
            acked = self.acks()
            for slot in slots:
                ag = slot["agent"]
                if ag is not None and ag.running():
                    continue
                if ag is not None:
                    slot["owed"] -= len([l for l in ag.output() if l.startswith("ACK ")])
                    if not ag.killed and ag.proc.returncode != 0:
                        ag.stderr.flush()
                        with open(os.path.join(self.work, f"{ag.name}.stderr")) as f:
                            why = (f.read().strip().splitlines() or [f"exit {ag.proc.returncode}"])[-1]
                        print(f"{ag.name} failed, restarting: {why}", flush=True)
                    slot["agent"] = None
                if slot["owed"] > 0 and not (a.soak and now >= deadline):
                    slot["agent"] = self.start_writer(next_id, slot["owed"])
                    self.writers.append(slot["agent"])
                    next_id += 1
            if not others_started and acked:
                self.start_readers()
                self.start_maintainer()
                others_started = True
            if a.soak:
                if now >= sample_at and others_started:
                    self.sample(now - started)
                    sample_at = now + a.sample_seconds
                if now >= deadline:
                    break
            else:
                if kills < a.kills and now >= next_kill:
                    running = [s["agent"] for s in slots if s["agent"] is not None and s["agent"].running()]
                    if running:
                        self.rng.choice(running).kill()
                        kills += 1
                    # The next kill: spread the kills left over the time the commits left should take.
                    owed = sum(s["owed"] for s in slots)
                    per_commit = (now - started) / max(1, len(acked))
                    gap = max(0.3, owed * per_commit / (a.kills - kills + 0.5)) if acked else 2.0
                    next_kill = now + self.rng.uniform(0.2, 1.8) * gap
                done = all(s["owed"] <= 0 and s["agent"] is None for s in slots)
                if done and kills < a.kills:
                    # Commits all made, kills left: one more batch for a slot so a writer runs.
                    self.rng.choice(slots)["owed"] += 1
                    extra += 1
                    next_kill = min(next_kill, now + self.rng.uniform(0.3, 2.0))
                elif done:
                    break
                if now >= deadline:
                    self.violation(f"the run did not finish within {a.timeout} s")
                    break
            time.sleep(0.05)
        # Stop: writers finish the batch they are on, readers and the maintainer their loop.
        open(self.stop_file, "w").close()
        for s in slots:
            if s["agent"] is not None and not s["agent"].finish(timeout=120):
                self.violation(f"{s['agent'].name} did not stop within 120 s of the stop file")
        self.kills, self.extra_commits = kills, extra
        if not others_started:
            self.violation("no writer committed anything: readers and maintainer never started")
            self.readers, self.maintainer = [], None
            return
        for r, _ in self.readers:
            if not r.finish(timeout=120):
                self.violation(f"{r.name} did not stop within 120 s of the stop file")
            elif r.proc.returncode != 0:
                self.violation(f"{r.name} exited with {r.proc.returncode} (see {self.work}/{r.name}.stderr)")
        if not self.maintainer.finish(timeout=300):
            self.violation("the maintainer did not stop within 300 s of the stop file")

    def acks(self):
        out = []
        for w in getattr(self, "writers", []):
            for line in w.output():
                f = line.split()
                if len(f) >= 4 and f[0] == "ACK":
                    out.append((int(f[1]), int(f[2]), int(f[3]), float(f[4]) if len(f) > 4 else None))
        return out

    # --- soak samples

    def sample(self, t):
        if not hasattr(self, "samples"):
            self.samples = []
        row = dict(t=t, rss={}, cache={})
        for r, cache in self.readers:
            try:
                with open(f"/proc/{r.proc.pid}/status") as f:
                    rss = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmRSS:"))
            except (OSError, StopIteration):
                rss = None
            row["rss"][r.name] = rss
            row["cache"][r.name] = cache_bytes(cache)
        self.samples.append(row)

    # --- checks

    def check(self):
        a = self.a
        acks = self.acks()
        acks_file = os.path.join(self.work, "acks.txt")
        with open(acks_file, "w") as f:
            for v, w, c, _ in acks:
                f.write(f"{v} {w} {c}\n")
            if a.sabotage == "fake-ack":
                # A batch nobody wrote, acknowledged as the newest version: the checker must object.
                f.write(f"{max(v for v, *_ in acks)} 999999 0\n")
        if a.sabotage == "delete-segment":
            # One segment object removed behind the database's back: the checks must notice.
            listing = http("GET", f"{self.moto}/{self.bucket}?list-type=2&prefix=db/segment_").decode()
            name = listing.split("<Key>")[1].split("</Key>")[0]
            subprocess.run(["curl", "-sf", "-X", "DELETE", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user", "testing:testing",
                            f"{self.moto}/{self.bucket}/{name}"], check=True)
            print(f"sabotage: deleted {name}", flush=True)
        checker = self.agent("check", "checker", "--acks", acks_file, "--rows", a.rows, "--max-versions", a.check_versions,
                             endpoint=self.moto)
        started = time.monotonic()
        checker.finish(timeout=1800)
        out = checker.output()
        for line in out:
            if line.startswith("VIOLATION "):
                self.violation("store: " + line[len("VIOLATION "):])
        summary = next((json.loads(l[6:]) for l in out if l.startswith("CHECK ")), None)
        print(f"store checked in {time.monotonic() - started:.0f} s", flush=True)
        if summary is None:
            with open(os.path.join(self.work, "checker.stderr")) as f:
                why = (f.read().strip().splitlines() or ["no message"])[-1]
            self.violation(f"the checker failed (exit {checker.proc.returncode}): {why}")
        self.check_summary = summary or {}
        verify = subprocess.run([self.vecgo_bin, "verify", self.url, "--endpoint", self.moto], env=self.env,
                                capture_output=True, text=True)
        self.verify_line = (verify.stdout.strip().splitlines() or [verify.stderr.strip()])[0]
        if verify.returncode != 0:
            self.violation(f"vecgo verify: {verify.stdout.strip()} {verify.stderr.strip()}")
        for r, cache in self.readers:
            tmp = [n for _, _, files in os.walk(cache) for n in files if n.startswith(".tmp-")]
            if tmp:
                self.violation(f"{r.name} left {len(tmp)} temporary files in its cache directory ({tmp[:3]})")
        for r, _ in self.readers:
            for line in r.output():
                if line.startswith("MISMATCH"):
                    self.violation(f"{r.name}: {line}")
            if not any(l.startswith("QUERY") for l in r.output()):
                self.violation(f"{r.name} answered no query that could be compared: nothing was checked")
        target = a.writers * a.commits
        if not a.soak and len(acks) < target:
            self.violation(f"{len(acks)} commits acknowledged, {target} asked for")

    def report(self):
        a = self.a
        acks = self.acks()
        try:
            proxy = json.loads(http("GET", f"{self.proxy}/_proxy/stats"))
        except OSError:
            proxy = dict(requests=0, faults={}, lost_as={})
        errors = {}
        lines = [(ag.role, l) for ag in self.writers + [r for r, _ in self.readers] + ([self.maintainer] if self.maintainer else [])
                 for l in ag.output()]
        for role, l in lines:
            if l.startswith("ERROR ") or l.startswith("FAILED "):
                key = f"{role} {l.split()[1]}"
                errors[key] = errors.get(key, 0) + 1
        count = lambda role, prefix: sum(1 for r, l in lines if r == role and l.startswith(prefix))
        rows = [
            ("mode", f"soak {a.soak:g} s" if a.soak else f"torture ({a.size})"),
            ("writers x commits x rows", f"{a.writers} x {a.commits if not a.soak else '-'} x {a.rows} (dim {a.dim})"),
            ("writer processes started", len(self.writers)),
            ("commits acknowledged", f"{len(acks)}" + (f" ({self.extra_commits} extra to place the kills)" if self.extra_commits else "")),
            ("kills (SIGKILL)", self.kills),
            ("proxy requests", proxy.get("requests", 0)),
            ("faults injected", ", ".join(f"{k} {v}" for k, v in proxy.get("faults", {}).items()) or "none"),
            ("lost answers as", ", ".join(f"{k} {v}" for k, v in proxy.get("lost_as", {}).items())),
            ("fault rate / flips GET, LIST", f"{a.fault_rate:g} / {a.flip_get:g}, {a.flip_list:g}"),
            ("reader queries compared", count("reader", "QUERY")),
            ("reader mismatches", count("reader", "MISMATCH")),
            ("reader skips (version vacuumed)", count("reader", "SKIP")),
            ("compactions committed / none / conflict", f"{count('maintainer', 'COMPACT ') - count('maintainer', 'COMPACT none') - count('maintainer', 'COMPACT conflict')}"
                                                        f" / {count('maintainer', 'COMPACT none')} / {count('maintainer', 'COMPACT conflict')}"),
            ("vacuums", count("maintainer", "VACUUM")),
            ("errors by code", ", ".join(f"{k} {v}" for k, v in sorted(errors.items())) or "none"),
            ("store check", json.dumps(self.check_summary, sort_keys=True)),
            ("vecgo verify", self.verify_line),
        ]
        result = dict(mode="soak" if a.soak else a.size, acks=len(acks), kills=self.kills, proxy=proxy, errors=errors,
                      queries=count("reader", "QUERY"), mismatches=count("reader", "MISMATCH"), check=self.check_summary,
                      violations=self.violations)
        if a.soak:
            rows += self.soak_rows(acks, result)
        rows.append(("violations", len(self.violations)))
        width = max(len(k) for k, _ in rows)
        print("\n== summary")
        for k, v in rows:
            print(f"  {k:<{width}}  {v}")
        for v in self.violations:
            print(f"  VIOLATION {v}")
        if a.json:
            with open(a.json, "w") as f:
                json.dump(result, f, indent=2, sort_keys=True)

    def soak_rows(self, acks, result):
        a, rows = self.a, []
        samples = getattr(self, "samples", [])
        warm = max(20.0, a.soak / 4)
        result["samples"] = samples
        for r, _ in self.readers:
            series = [(s["t"], s["rss"][r.name]) for s in samples if s["rss"].get(r.name)]
            if not series:
                self.violation(f"{r.name}: no RSS sample")
                continue
            after = [(t, v) for t, v in series if t >= warm] or series[-1:]
            growth = after[-1][1] - after[0][1]
            slope = 0.0
            if len(after) >= 2:
                mt, mv = statistics.mean(t for t, _ in after), statistics.mean(v for _, v in after)
                den = sum((t - mt) ** 2 for t, _ in after)
                slope = sum((t - mt) * (v - mv) for t, v in after) / den * 60 if den else 0.0
            mib = lambda b: f"{b / 2**20:.1f}"
            rows.append((f"{r.name} RSS MiB first/last/max",
                         f"{mib(series[0][1])} / {mib(series[-1][1])} / {mib(max(v for _, v in series))}; "
                         f"after warm-up ({warm:.0f} s) {mib(growth)} MiB, slope {mib(slope)} MiB/min, {len(series)} samples"))
            if growth > a.rss_growth_mib * 2**20:
                self.violation(f"{r.name}: RSS grew {mib(growth)} MiB after warm-up (limit {a.rss_growth_mib} MiB)")
            caches = [s["cache"][r.name] for s in samples]
            most = max(caches) if caches else 0
            rows.append((f"{r.name} disk cache max / limit", f"{mib(most)} / {mib(a.disk_cache_bytes)} MiB"))
            if most > a.disk_cache_bytes:
                self.violation(f"{r.name}: disk cache reached {most} bytes, over its limit {a.disk_cache_bytes}")
        for w in sorted({w for _, w, _, _ in acks}):
            ms = sorted(d for _, ww, _, d in acks if ww == w and d is not None)
            if ms:
                p = lambda q: ms[min(len(ms) - 1, int(q * len(ms)))]
                rows.append((f"writer {w} commit ms p50 / p99", f"{p(0.5):.0f} / {p(0.99):.0f} ({len(ms)} commits)"))
        return rows


def cache_bytes(directory):
    """Bytes allocated on disk by the block files of a cache directory (temporary files and the lock file left out)."""
    total = 0
    for dirpath, _, files in os.walk(directory):
        for n in files:
            if n.startswith(".tmp-") or n.startswith(".lock") or n.endswith(".lock"):
                continue
            try:
                total += os.stat(os.path.join(dirpath, n)).st_blocks * 512
            except OSError:
                pass
    return total


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", choices=["small", "large"], default="small")
    p.add_argument("--soak", type=float, default=0, help="run the soak for this many seconds instead")
    for name, kind in [("writers", int), ("commits", int), ("rows", int), ("dim", int), ("kills", int), ("readers", int),
                       ("fault-rate", float), ("flip-get", float), ("flip-list", float), ("maintain-interval", float),
                       ("timeout", float)]:
        p.add_argument(f"--{name}", type=kind)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--slow-ms", type=float, default=400)
    p.add_argument("--retain", type=int, default=20, help="versions vacuum keeps")
    p.add_argument("--grace", type=float, default=20, help="vacuum's grace period, seconds")
    p.add_argument("--max-commit-age", type=float, default=10, help="writers' maxCommitObjectAge, seconds (at most --grace)")
    p.add_argument("--disk-cache-mib", type=float, default=8, help="each reader's disk cache limit")
    p.add_argument("--check-versions", type=int, help="kept versions the checker reads batch by batch (newest first; default all, soak 5)")
    p.add_argument("--sample-seconds", type=float, default=10)
    p.add_argument("--rss-growth-mib", type=float, default=128, help="soak: most RSS growth allowed after warm-up")
    p.add_argument("--bin-dir", default=os.path.join(ROOT, ".build", "debug"))
    p.add_argument("--work-dir", help="logs, caches and acks (default: a new temporary directory, removed on success)")
    p.add_argument("--json", help="write the results here")
    p.add_argument("--sabotage", choices=["fake-ack", "delete-segment"],
                   help="damage the run before the checks, to show they fail (the run must exit 1)")
    a = p.parse_args()
    defaults = SIZES["soak" if a.soak else a.size]
    for k, v in defaults.items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    if a.check_versions is None:
        a.check_versions = 5 if a.soak else 10**9
    a.disk_cache_bytes = int(a.disk_cache_mib * 2**20)
    run = Run(a)
    try:
        run.start_servers()
        run.drive()
        run.check()
        run.report()
    finally:
        open(run.stop_file, "w").close()
        for ag in getattr(run, "writers", []) + [r for r, _ in getattr(run, "readers", [])] + \
                ([run.maintainer] if getattr(run, "maintainer", None) else []):
            if ag.running():
                ag.kill()
        run.stop_servers()
    if run.violations:
        print(f"torture: {len(run.violations)} violations; logs in {run.work}")
        sys.exit(1)
    if not a.work_dir:
        shutil.rmtree(run.work, ignore_errors=True)
    print("torture: no violation")


if __name__ == "__main__":
    main()
