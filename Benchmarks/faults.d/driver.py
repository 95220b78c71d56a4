"""The controller under faults, on loopback: each case releases a model while a load generator that
keeps its connections alive and never retries sends requests through nginx, injects a fault, and
reports what a user of the service saw.

Run by Benchmarks/faults (which builds the release binaries first); not a test.
"""
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

ORCHESTRATE = os.environ["ORCHESTRATE_BIN"]
RECENGINE = os.environ["RECENGINE_BIN"]
ROOT = os.environ.get("FAULTS_WORK", "/tmp/orchestrate-faults")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Load:
    """CONNECTIONS keep-alive connections, each sending the next request as soon as the last one
    answered; a failed request is counted and never retried (a new connection takes the next one)."""

    def __init__(self, port, connections=8):
        self.port, self.connections = port, connections
        self.samples = []  # (time, status, colour)
        self.lock = threading.Lock()
        self.stopping = False
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True) for i in range(connections)]

    def run(self, index):
        rng = random.Random(index)
        connection = None
        while not self.stopping:
            if connection is None:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            user = rng.randrange(5000)
            try:
                connection.request("GET", f"/recommend/u{user}?k=5")
                response = connection.getresponse()
                response.read()
                sample = (time.monotonic(), response.status, response.getheader("X-Model-Color"))
            except Exception:
                sample = (time.monotonic(), 0, None)
                connection.close()
                connection = None
            with self.lock:
                self.samples.append(sample)
            time.sleep(0.002)

    def start(self):
        for thread in self.threads:
            thread.start()
        return self

    def stop(self):
        self.stopping = True
        for thread in self.threads:
            thread.join()


class Case:
    def __init__(self, name):
        self.name = name
        self.folder = os.path.join(ROOT, name)
        shutil.rmtree(self.folder, ignore_errors=True)
        os.makedirs(self.folder)
        self.nginx_port, self.prometheus_port = free_port(), free_port()
        self.state = os.path.join(self.folder, "releases/state/svc")
        self.prometheus = None
        self.write_ratings()

    def write_ratings(self, users=300, per_user=20, items=200):
        rng = random.Random(11)
        with open(os.path.join(self.folder, "ratings.csv"), "w") as f:
            f.write("user_id,movie_id,rating\n")
            for u in range(users):
                for i in sorted(rng.sample(range(items), per_user)):
                    f.write(f"u{u},m{i},{min(5, max(1, 3 + u % 3 - i % 3 + rng.randrange(2)))}\n")

    def pipeline(self, gates=None, wait="3s", drain="1s", extra="", train="factors: 8, epochs: \"${EPOCHS:-10}\"", timeout=None):
        error_rate = """    - name: error-rate
      query: (sum(rate(recengine_http_requests_total{color="{{color}}",status=~"5.."}[5s])) or vector(0)) / sum(rate(recengine_http_requests_total{color="{{color}}"}[5s]))
      max: 0.05
      initialDelay: 2s
      interval: 1s
      count: 1
      onNoData: inconclusive
"""
        text = f"""version: 1
name: svc
history: releases/history.jsonl
stages:
  - name: train
    uses: train
    with: {{ratings: {"ratings.csv"}, model: models/m, {train}}}
{f"    timeout: {timeout}" if timeout else ""}
deploy:
  runtime: process
  service: svc
  health: {{path: /health, timeout: 20s}}
traffic:
  nginx: {{config: releases/state/svc/nginx.conf, listen: {self.nginx_port}}}
  mode: sticky
  steps: [25, 50, 75, 100]
  wait: {wait}
  stopOld: true
  drain: {drain}
analysis:
  prometheus: http://127.0.0.1:{self.prometheus_port}
  gates:
{gates or error_rate}
{extra}
"""
        with open(os.path.join(self.folder, "pipeline.yml"), "w") as f:
            f.write(text)

    def start_prometheus(self):
        config = os.path.join(self.folder, "prometheus.yml")
        with open(config, "w") as f:
            f.write(f"""global:
  scrape_interval: 1s
scrape_configs:
  - job_name: recengine
    file_sd_configs:
      - files: ["{self.state}/targets.json"]
        refresh_interval: 1s
""")
        self.prometheus = subprocess.Popen(
            ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={self.folder}/tsdb",
             f"--web.listen-address=127.0.0.1:{self.prometheus_port}", "--log.level=error"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                http.client.HTTPConnection("127.0.0.1", self.prometheus_port, timeout=1).request("GET", "/-/ready")
                break
            except Exception:
                time.sleep(0.1)
        time.sleep(0.5)

    def orchestrate(self, *arguments, environment=None, check=False):
        result = subprocess.run([ORCHESTRATE, *arguments], cwd=self.folder, capture_output=True, text=True,
                                env={**os.environ, "RECENGINE_BIN": RECENGINE, **(environment or {})})
        if check and result.returncode != 0:
            raise RuntimeError(f"orchestrate {' '.join(arguments)} exited {result.returncode}: {result.stderr}")
        return result

    def spawn(self, *arguments, environment=None):
        log = open(os.path.join(self.folder, "controller.log"), "a")
        return subprocess.Popen([ORCHESTRATE, *arguments], cwd=self.folder, stdout=log, stderr=log,
                                env={**os.environ, "RECENGINE_BIN": RECENGINE, **(environment or {})})

    def run_state(self):
        try:
            with open(os.path.join(self.state, "run.json")) as f:
                return json.load(f)
        except Exception:
            return None

    def live(self):
        try:
            with open(os.path.join(self.state, "current.json")) as f:
                return json.load(f)
        except Exception:
            return None

    def wait_for(self, predicate, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.02)
        raise RuntimeError(f"{self.name}: timed out waiting")

    def advance_to(self, weight):
        """Waits until the rollout holds the step at `weight`, ending earlier steps' waits with
        `orchestrate promote` (their gates still decide)."""
        promoted = set()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            state = self.run_state() or {}
            if state.get("phase") == "shifting":
                if state.get("weight") == weight:
                    return
                if state.get("weight", 0) < weight and state.get("weight") not in promoted:
                    self.orchestrate("promote", "pipeline.yml")
                    promoted.add(state.get("weight"))
            time.sleep(0.02)
        raise RuntimeError(f"{self.name}: the rollout did not reach {weight}%")

    def first_release(self):
        """The release the case starts from, all traffic at once, under load so the gates have data."""
        load = Load(self.nginx_port, connections=2).start()
        try:
            self.orchestrate("run", "pipeline.yml", "--no-staged-shift", "--set", "traffic.wait=5s", check=True)
        finally:
            load.stop()
        return self.live()["color"]

    def records(self):
        with open(os.path.join(self.folder, "releases/history.jsonl")) as f:
            return [json.loads(line) for line in f if line.strip()]

    def orphans(self, live_color):
        """recengine or hook processes of this case that should not run any more."""
        found = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    command = f.read().replace(b"\0", b" ").decode()
                with open(f"/proc/{pid}/stat") as f:
                    if ") Z " in f.read():
                        continue
            except OSError:
                continue
            if self.folder not in command or "prometheus" in command or "nginx" in command:
                continue
            if "serve" in command and f"--color {live_color}" in command:
                continue
            found.append(command.strip()[:80])
        return found

    def close(self):
        for color in ("blue", "green"):
            try:
                with open(os.path.join(self.state, f"{color}.json")) as f:
                    os.kill(json.load(f)["pid"], signal.SIGTERM)
            except Exception:
                pass
        try:
            with open(os.path.join(self.state, "nginx/nginx.pid")) as f:
                os.kill(int(f.read().strip()), signal.SIGQUIT)
        except Exception:
            pass
        if self.prometheus:
            self.prometheus.terminate()
            self.prometheus.wait()


def unapproved_seconds(samples, colour, since):
    """Seconds between the decision against `colour` and the last answer it gave."""
    last = max((t for t, status, c in samples if c == colour and t >= since), default=since)
    return max(0.0, last - since)


def traffic_restored_after(case, live_color, since, timeout=30):
    """Seconds from `since` until nginx sends all traffic to the live colour (its control socket)."""
    socket_path = os.path.join(case.state, "nginx/control.sock")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("nginx")
            connection.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            connection.sock.connect(socket_path)
            connection.request("GET", "/traffic")
            text = connection.getresponse().read().decode()
            backends = [line.split() for line in text.splitlines() if line.startswith("backend ")]
            if [(b[1], b[3]) for b in backends if b[3] != "0"] == [(live_color, "100")]:
                return time.monotonic() - since
        except Exception:
            pass
        time.sleep(0.02)
    return None


RESULTS = []


def report(name, load, outcome, unapproved, verified, converged="", note=""):
    requests = len(load.samples) if load else 0
    failed = sum(1 for _, status, _ in load.samples if status != 200) if load else 0
    RESULTS.append((name, requests, failed, unapproved, outcome, verified, converged, note))
    print(f"  {name}: {requests} requests, {failed} failed, {unapproved:.2f} s on the unapproved colour, {outcome}, "
          f"history {'verifies' if verified else 'BROKEN'}{', ' + converged if converged else ''}{', ' + note if note else ''}",
          file=sys.stderr, flush=True)


def verified(case):
    return case.orchestrate("history", "verify", "--pipeline", "pipeline.yml").returncode == 0


def case_release(gates=None, name="healthy release 25/50/75/100"):
    case = Case("release" if gates is None else "gate")
    try:
        case.pipeline()
        case.start_prometheus()
        live = case.first_release()
        case.pipeline(gates=gates)
        load = Load(case.nginx_port).start()
        result = case.orchestrate("run", "pipeline.yml", "--force", environment={"EPOCHS": "12"})
        load.stop()
        record = case.records()[-1]
        report(name, load, f"{record['outcome']} (exit {result.returncode})", after_rollback(record, load), verified(case))
    finally:
        case.close()


def after_rollback(record, load):
    """Seconds the target answered after the record's rollback event (the decision against it)."""
    decided = next((e for e in record.get("rollout", {}).get("events", []) if e["kind"] == "rollback"), None)
    if not decided:
        return 0.0
    decided_at = time.monotonic() - (time.time() - iso_seconds(decided["at"]))
    return unapproved_seconds(load.samples, record["rollout"]["target"], decided_at)


def iso_seconds(text):
    from datetime import datetime
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def case_signal(step, signum):
    name = f"{signal.Signals(signum).name} at step {step}"
    case = Case(f"signal-{step}-{signum}")
    try:
        case.pipeline(wait="30s")
        case.start_prometheus()
        live = case.first_release()
        load = Load(case.nginx_port).start()
        controller = case.spawn("run", "pipeline.yml", "--force", environment={"EPOCHS": "12"})
        case.advance_to([25, 50, 75][step - 1])
        time.sleep(1)
        target = case.run_state()["target"]
        signalled = time.monotonic()
        controller.send_signal(signum)
        restored = traffic_restored_after(case, live, signalled)
        status = controller.wait(timeout=60)
        time.sleep(0.5)
        load.stop()
        record = case.records()[-1]
        orphans = case.orphans(live)
        report(name, load, f"{record['outcome']} (exit {status})", unapproved_seconds(load.samples, target, signalled), verified(case),
               note=f"100% on {live} after {restored:.2f} s" if restored is not None else "traffic NOT restored",
               converged="no orphan" if not orphans else f"ORPHANS {orphans}")
    finally:
        case.close()


def case_kill(phase, weight=None):
    name = f"kill -9 while {phase}" + (f" at {weight}%" if weight else "")
    case = Case(f"kill-{phase}-{weight}")
    try:
        slow_hook = os.path.join(case.folder, "slow.sh")
        with open(slow_hook, "w") as f:
            f.write("#!/bin/sh\nexec sleep 3\n")
        os.chmod(slow_hook, 0o755)
        sleeper = os.path.join(case.folder, "sleeper.sh")
        with open(sleeper, "w") as f:
            f.write("#!/bin/sh\nexec sleep 600\n")
        os.chmod(sleeper, 0o755)
        extra = f"hooks:\n  duringStep:\n    - [{sleeper}]\n" + (f"  preRollout:\n    - [{slow_hook}]\n" if phase == "deploying" else "")
        train = "factors: 200, epochs: 10000" if phase == "stages" else "factors: 8, epochs: \"${EPOCHS:-10}\""
        case.pipeline(wait="30s", drain="30s" if phase == "draining" else "1s", extra=extra)
        case.start_prometheus()
        live = case.first_release()
        if phase == "stages":
            case.write_ratings(users=3000, per_user=20, items=500)
            case.pipeline(wait="30s", extra=extra, train=train)
        if phase == "draining":
            case.pipeline(wait="2s", drain="30s", extra=extra)
        load = Load(case.nginx_port).start()
        controller = case.spawn("run", "pipeline.yml", "--force", environment={"EPOCHS": "12"})

        def reached():
            state = case.run_state() or {}
            if state.get("phase") != phase:
                return False
            if phase == "stages":
                return any(c.get("role") == "stage train" for c in state.get("children", []))
            return True
        if weight:
            case.advance_to(weight)
        else:
            case.wait_for(reached, timeout=90)
        time.sleep(0.5)
        state = case.run_state()
        killed = time.monotonic()
        controller.send_signal(signal.SIGKILL)
        controller.wait()
        recover = case.orchestrate("recover", "pipeline.yml")
        converged_at = time.monotonic()
        time.sleep(0.5)
        load.stop()
        final_live = (case.live() or {}).get("color")
        status = case.orchestrate("status", "pipeline.yml")
        orphans = case.orphans(final_live)
        ok = recover.returncode == 0 and status.returncode == 0 and not orphans
        record = case.records()[-1]
        target = state.get("target")
        unapproved = unapproved_seconds(load.samples, target, killed) if target and record["outcome"] != "succeeded" else 0.0
        report(name, load, record["outcome"], unapproved, verified(case), converged="converged, no orphan" if ok else
               f"NOT converged (recover {recover.returncode}, status {status.returncode}, orphans {orphans})",
               note=f"kill to converged {converged_at - killed:.2f} s")
        return ok
    finally:
        case.close()


def case_unreadable_current():
    case = Case("unreadable-current")
    try:
        case.pipeline()
        case.start_prometheus()
        live = case.first_release()
        path = os.path.join(case.state, "current.json")
        data = open(path, "rb").read()
        open(path, "wb").write(data[: len(data) // 2])
        load = Load(case.nginx_port).start()
        result = case.orchestrate("run", "pipeline.yml", "--force")
        time.sleep(1)
        still = [c for _, status, c in load.samples[-50:] if status == 200]
        repair = case.orchestrate("repair", "pipeline.yml")
        load.stop()
        serving = bool(still) and all(c == live for c in still)
        report("unreadable current.json", load, f"refused (exit {result.returncode}); repair exit {repair.returncode}", 0.0, verified(case),
               note=f"{live} kept serving" if serving else "the serving colour STOPPED")
    finally:
        case.close()


def case_prometheus_gone():
    case = Case("prometheus-gone")
    try:
        case.pipeline(wait="8s")
        case.start_prometheus()
        live = case.first_release()
        load = Load(case.nginx_port).start()
        controller = case.spawn("run", "pipeline.yml", "--force", environment={"EPOCHS": "12"})
        case.wait_for(lambda: (case.run_state() or {}).get("phase") == "shifting")
        case.prometheus.kill()
        case.prometheus.wait()
        case.prometheus = None
        status = controller.wait(timeout=120)
        time.sleep(0.5)
        load.stop()
        record = case.records()[-1]
        report("Prometheus killed mid-step", load, f"{record['outcome']} (exit {status})", after_rollback(record, load), verified(case))
    finally:
        case.close()


def case_colour_killed():
    case = Case("colour-killed")
    try:
        case.pipeline(wait="8s")
        case.start_prometheus()
        live = case.first_release()
        load = Load(case.nginx_port).start()
        controller = case.spawn("run", "pipeline.yml", "--force", environment={"EPOCHS": "12"})
        case.advance_to(50)
        target = case.run_state()["target"]
        with open(os.path.join(case.state, f"{target}.json")) as f:
            os.kill(json.load(f)["pid"], signal.SIGKILL)
        status = controller.wait(timeout=120)
        time.sleep(0.5)
        load.stop()
        record = case.records()[-1]
        report("the new colour killed at 50% (the one case allowed to fail requests)", load, f"{record['outcome']} (exit {status})",
               after_rollback(record, load), verified(case))
    finally:
        case.close()


def case_abort_drain():
    case = Case("abort-drain")
    try:
        case.pipeline(wait="2s", drain="30s")
        case.start_prometheus()
        live = case.first_release()
        load = Load(case.nginx_port).start()
        controller = case.spawn("run", "pipeline.yml", "--force", environment={"EPOCHS": "12"})
        case.wait_for(lambda: (case.run_state() or {}).get("phase") == "draining")
        target = case.run_state()["target"]
        aborted = time.monotonic()
        case.orchestrate("abort", "pipeline.yml")
        restored = traffic_restored_after(case, live, aborted)
        status = controller.wait(timeout=60)
        time.sleep(0.5)
        load.stop()
        record = case.records()[-1]
        report("abort during the drain", load, f"{record['outcome']} (exit {status})", unapproved_seconds(load.samples, target, aborted), verified(case),
               note=f"100% on {live} after {restored:.2f} s" if restored is not None else "traffic NOT restored")
    finally:
        case.close()


def case_stage_timeout():
    case = Case("stage-timeout")
    try:
        case.write_ratings(users=3000, per_user=20, items=500)
        case.pipeline(train="factors: 200, epochs: 10000", timeout="1s")
        case.start_prometheus()
        started = time.monotonic()
        result = case.orchestrate("run", "pipeline.yml")
        record = case.records()[-1]
        stage = record["stages"][0]
        leftover = case.orphans("none")
        report("built-in stage timeout 1 s (train)", None, f"{record['outcome']} (exit {result.returncode})", 0.0, verified(case),
               note=f"stage stopped after {stage['duration_seconds']:.2f} s, {'no process left' if not leftover else 'LEFT: ' + str(leftover)}")
    finally:
        case.close()


def main():
    os.makedirs(ROOT, exist_ok=True)
    cases = sys.argv[1:] or ["release", "gate", "signals", "kills", "unreadable", "prometheus", "abort", "timeout", "colour"]
    impossible = """    - name: impossible
      query: sum(recengine_model_info{color="{{color}}"})
      max: 0.5
      initialDelay: 2s
      interval: 1s
      onNoData: inconclusive
"""
    kills = []
    for name in cases:
        print(f"== {name}", file=sys.stderr, flush=True)
        if name == "release":
            case_release()
        elif name == "gate":
            case_release(gates=impossible, name="gate fails at 25%")
        elif name == "signals":
            for step in (1, 2, 3):
                case_signal(step, signal.SIGTERM)
            case_signal(2, signal.SIGINT)
        elif name == "kills":
            kills += [case_kill("stages"), case_kill("deploying"), case_kill("shifting", 25), case_kill("shifting", 50),
                      case_kill("shifting", 75), case_kill("draining")]
        elif name == "unreadable":
            case_unreadable_current()
        elif name == "prometheus":
            case_prometheus_gone()
        elif name == "abort":
            case_abort_drain()
        elif name == "timeout":
            case_stage_timeout()
        elif name == "colour":
            case_colour_killed()
    print()
    print("| case | requests | failed | s on unapproved colour | outcome | history verifies | convergence | note |")
    print("|---|---:|---:|---:|---|---|---|---|")
    for name, requests, failed, unapproved, outcome, ok, converged, note in RESULTS:
        print(f"| {name} | {requests} | {failed} | {unapproved:.2f} | {outcome} | {'yes' if ok else 'NO'} | {converged or '-'} | {note or '-'} |")
    if kills:
        print(f"\nkill -9 at every phase: {sum(kills)}/{len(kills)} converged with no orphaned process")


if __name__ == "__main__":
    main()
