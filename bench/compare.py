#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Issue 12's table in one run: parley-tools server and the zero-work relay under the same native load, side by side.

For each scenario, and for each server, a fresh server is started (parley with a database
in a temporary directory), bench/load_generator runs against it, and the server is stopped:

  1. M members x R msgs/s each (fixed rate; parley keeps its default rate limit): p50/p99
  2. M members, closed loop, K sends in flight each, acks on (parley's rate limit lifted):
     deliveries/s, p50
  3. the same without acks: deliveries/s

It prints the generator's result lines, then the markdown table and the ratios the issue's
targets are stated in. With --runs N every cell is the best of N runs (most deliveries/s
for the closed loops, lowest p99 for the fixed rate), runs interleaved so that a burst of
load from elsewhere does not hit one server only. --cpus LIST runs each server under
`taskset -c LIST`, --generator-cpus LIST the generator (unpinned otherwise, so by default it
shares every core with the server). Every process it starts is stopped on the way out, on
failure, timeout and Ctrl-C too. Exit status 1 if any run failed (error, gap, dup, missing
message) or the whole did not finish within --timeout.

--smoke (for ctest): 4 members, about a second per scenario, scenarios 1 and 2 only, against
whichever of --binary and --relay were given.
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--binary", help="parley-tools (default: $PARLEY_TOOLS, else build/tools/parley-tools)")
    p.add_argument("--generator", help="load_generator (default: build/bench/load_generator)")
    p.add_argument("--relay", help="zero_relay (default: build/bench/zero_relay)")
    p.add_argument("--members", type=int, default=100)
    p.add_argument("--rate", type=float, default=10, help="msgs/s per member in the fixed-rate row")
    p.add_argument("--in-flight", type=int, default=4)
    p.add_argument("--body", type=int, default=200)
    p.add_argument("--warmup", type=float, default=2)
    p.add_argument("--duration", type=float, default=10, help="measured seconds per run, after the warm-up")
    p.add_argument("--runs", type=int, default=1, help="runs per cell; the best is reported")
    p.add_argument("--cpus", help="run the servers under taskset -c LIST")
    p.add_argument("--generator-cpus", help="run the generator under taskset -c LIST")
    p.add_argument("--threads", help="parley's --threads (default: its own, the number of cores)")
    p.add_argument("--only", choices=["parley", "relay"], help="measure one server only")
    p.add_argument("--timeout", type=float, help="overall limit in seconds (default: from the run count and lengths)")
    p.add_argument("--smoke", action="store_true", help="a short correctness run for ctest")
    a = p.parse_args()
    if a.smoke:
        a.members, a.in_flight, a.warmup, a.duration, a.runs = 4, 2, 0.2, 1.0, 1
        if a.binary and not a.relay:
            a.only = "parley"
        elif a.relay and not a.binary:
            a.only = "relay"
    if a.members < 2 or a.runs < 1 or a.in_flight < 1 or a.duration <= 0:
        p.error("need --members >= 2, --runs >= 1, --in-flight >= 1, --duration > 0")
    a.binary = a.binary or os.environ.get("PARLEY_TOOLS") or os.path.join(ROOT, "build/tools/parley-tools")
    a.generator = a.generator or os.path.join(ROOT, "build/bench/load_generator")
    a.relay = a.relay or os.path.join(ROOT, "build/bench/zero_relay")
    return a


class Failure(Exception):
    pass


class Server:
    """One server process; its output goes to a file, where the `listening ws://HOST:PORT` line is awaited."""

    def __init__(self, kind, args, tmp):
        self.kind, self.args, self.tmp = kind, args, tmp
        self.proc = None
        self.log = None

    def start(self, lift_rate_limit):
        if self.kind == "parley":
            db_dir = tempfile.mkdtemp(prefix="db-", dir=self.tmp)
            cmd = [self.args.binary, "server", "--port", "0", "--db", os.path.join(db_dir, "parley.db"),
                   "--log-level", "warn"]
            if self.args.threads:
                cmd += ["--threads", self.args.threads]
            if lift_rate_limit:
                cmd += ["--rate-capacity", "1000000000", "--rate-per-second", "1000000000"]
        else:
            cmd = [self.args.relay, "--port", "0"]
        if self.args.cpus:
            cmd = ["taskset", "-c", self.args.cpus] + cmd
        self.log = tempfile.NamedTemporaryFile(prefix=self.kind + "-", suffix=".log", dir=self.tmp, delete=False)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with open(self.log.name, encoding="utf-8", errors="replace") as f:
                m = re.search(r"^listening ws://([^\s:]+):(\d+)$", f.read(), re.M)
            if m:
                return m.group(1), m.group(2)
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise Failure(f"{self.kind} did not start: {' '.join(cmd)}\n{self.tail()}")

    def tail(self):
        if not self.log:
            return ""
        with open(self.log.name, encoding="utf-8", errors="replace") as f:
            return "".join(f.readlines()[-20:])

    def cpu_seconds(self):
        """User plus system CPU time the server has used so far (taskset execs it, so the pid is the server's)."""
        try:
            with open(f"/proc/{self.proc.pid}/stat", encoding="ascii") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return float("nan")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def run_generator(args, host, port, mode, deadline):
    cmd = [args.generator, "--host", host, "--port", port, "--members", str(args.members), "--body", str(args.body),
           "--warmup", str(args.warmup), "--duration", str(args.duration), "--json"]
    if mode == "rate":
        cmd += ["--rate", str(args.rate)]
    else:
        cmd += ["--closed-loop", "--in-flight", str(args.in_flight)]
        if mode == "closed-noack":
            cmd += ["--no-ack"]
    if args.generator_cpus:
        cmd = ["taskset", "-c", args.generator_cpus] + cmd
    own = args.warmup + args.duration + 5 + 20  # the generator's own default --timeout is warmup + duration + 5 + 20
    limit = min(own + 5, deadline - time.monotonic())
    if limit <= 0:
        raise Failure("out of time (--timeout)")
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise Failure(f"load_generator did not finish in {limit:.0f} s: {' '.join(cmd)}")
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if not lines:
        raise Failure(f"load_generator printed no result (exit {proc.returncode}): {' '.join(cmd)}\n{out}{err}")
    result = json.loads(lines[-1])
    result["exit"] = proc.returncode
    return result


SCENARIOS = [
    ("rate", False),
    ("closed-ack", True),
    ("closed-noack", True),
]


def better(mode, a, b):
    """Whether result a beats b for the cell of this mode (failed runs never win)."""
    if b is None or (a["ok"] and not b["ok"]):
        return True
    if a["ok"] != b["ok"]:
        return False
    if mode == "rate":
        return a["p99_ms"] < b["p99_ms"]
    return a["deliveries_per_s"] > b["deliveries_per_s"]


def deliveries(v):
    return f"{v / 1e6:.2f}M" if v >= 1e6 else f"{v / 1e3:.0f}k"


def cell(mode, r, args):
    if r is None:
        return "—"
    if not r["ok"]:
        return f"FAILED: {r['first_error'][:80] or 'gaps %d, dups %d, missing %d' % (r['gaps'], r['dups'], r['missing'])}"
    if mode == "rate":
        text = f"p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms"
        nominal = args.members * (args.members - 1) * args.rate
        if abs(r["deliveries_per_s"] - nominal) > 0.05 * nominal:
            text += f" (only {deliveries(r['deliveries_per_s'])} deliveries/s)"
        return text
    if mode == "closed-ack":
        return f"{deliveries(r['deliveries_per_s'])} deliveries/s, p50 {r['p50_ms']:.{0 if r['p50_ms'] >= 10 else 1}f} ms"
    return f"{deliveries(r['deliveries_per_s'])} deliveries/s"


def summary(r):
    per_cpu = r["deliveries_total"] / r["server_cpu_s"] if r["server_cpu_s"] > 0 else float("nan")
    return (f"{deliveries(r['deliveries_per_s'])} deliveries/s, {r['messages_per_s']:.0f} msgs/s, "
            f"p50 {r['p50_ms']:.2f} ms, p90 {r['p90_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, max {r['max_ms']:.2f} ms; "
            f"server CPU {r['server_cpu_s']:.2f} s = {deliveries(per_cpu)} deliveries per CPU-second; "
            f"gaps {r['gaps']}, dups {r['dups']}, missing {r['missing']}; {'ok' if r['ok'] else 'FAILED'}")


def main():
    args = parse_args()
    targets = [t for t in ("parley", "relay") if args.only in (None, t)]
    scenarios = SCENARIOS[:2] if args.smoke else SCENARIOS
    for t in targets:
        path = args.binary if t == "parley" else args.relay
        if not os.access(path, os.X_OK):
            print(f"compare: {t} binary not found or not executable: {path}", file=sys.stderr)
            return 2
    if not os.access(args.generator, os.X_OK):
        print(f"compare: load_generator not found: {args.generator}", file=sys.stderr)
        return 2
    per_run = args.warmup + args.duration + 10
    budget = args.timeout or args.runs * len(targets) * len(scenarios) * (per_run + 10) + 30
    deadline = time.monotonic() + budget

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    tmp = tempfile.mkdtemp(prefix="parley-compare-")
    servers = {t: Server(t, args, tmp) for t in targets}
    best = {}
    failed = False
    try:
        if not args.smoke:
            version = subprocess.run([args.binary, "--version"], capture_output=True, text=True, timeout=10).stdout.strip() \
                if "parley" in targets else "-"
            print(f"compare: {version}; {args.members} members, body {args.body} B, warm-up {args.warmup:g} s, "
                  f"{args.duration:g} s measured, best of {args.runs}; servers on cpus {args.cpus or 'any'}, "
                  f"generator on cpus {args.generator_cpus or 'any'}; load average {os.getloadavg()[0]:.2f}")
        for run in range(args.runs):
            for mode, lift in scenarios:
                for t in targets:
                    server = servers[t]
                    try:
                        host, port = server.start(lift)
                        r = run_generator(args, host, port, mode, deadline)
                        r["server_cpu_s"] = server.cpu_seconds()
                        if server.proc.poll() is not None:
                            r["ok"] = False
                            r["first_error"] = f"{t} exited with {server.proc.returncode}"
                    finally:
                        server.stop()
                    if not r["ok"] or r["exit"] != 0:
                        r["ok"] = False
                        failed = True
                        print(f"compare: {t} {mode} run {run + 1} FAILED: {r.get('first_error')}\n{server.tail()}",
                              file=sys.stderr)
                    print(f"{t:6} {mode:12} run {run + 1}: {summary(r)}", flush=True)
                    if better(mode, r, best.get((mode, t))):
                        best[(mode, t)] = r
    except Failure as e:
        print(f"compare: {e}", file=sys.stderr)
        failed = True
    except KeyboardInterrupt as e:
        print(f"compare: interrupted ({e})", file=sys.stderr)
        failed = True
    finally:
        for s in servers.values():
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    m, k = args.members, args.in_flight
    labels = {
        "rate": f"{m} members × {args.rate:g} msgs/s ({deliveries(m * (m - 1) * args.rate)} deliveries/s)",
        "closed-ack": f"{m} members, closed loop, {k} sends in flight each (rate limit lifted), acks on",
        "closed-noack": "same, no acks",
    }
    print()
    print("| load | parley | zero-work relay |")
    print("|---|---|---|")
    for mode, _ in scenarios:
        print(f"| {labels[mode]} | {cell(mode, best.get((mode, 'parley')), args)} | "
              f"{cell(mode, best.get((mode, 'relay')), args)} |")
    p, r = best.get(("closed-ack", "parley")), best.get(("closed-ack", "relay"))
    if p and r and p["ok"] and r["ok"] and r["deliveries_per_s"] > 0:
        print(f"\nclosed loop with acks: parley at {100 * p['deliveries_per_s'] / r['deliveries_per_s']:.0f}% "
              "of the relay's deliveries/s (target: at least 50%)")
    if p and r and p["ok"] and r["ok"]:
        print("closed loop with acks, deliveries per server CPU-second (warm-up and drain included): "
              f"parley {deliveries(p['deliveries_total'] / p['server_cpu_s'])}, "
              f"relay {deliveries(r['deliveries_total'] / r['server_cpu_s'])}")
    p, r = best.get(("rate", "parley")), best.get(("rate", "relay"))
    if p and r and p["ok"] and r["ok"] and r["p99_ms"] > 0:
        print(f"fixed rate: parley's p99 is {p['p99_ms'] / r['p99_ms']:.2f}× the relay's (target: at most 1.25×)")
    if time.monotonic() > deadline:
        print("compare: the run went past --timeout", file=sys.stderr)
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
