"""The controller under faults, on loopback: each case releases a model while a load generator that
keeps its connections alive and never retries sends requests through nginx, injects a fault, and
reports what a user of the service saw and what the controller cost.

Every row says: requests and failed requests; seconds from the fault until all traffic is on the
approved colour (nginx's control socket, read every 20 ms; the approved colour is the one
`current.json` names at the end); the peak resident memory of the controller's commands (each
started through /usr/bin/time, a small process: the peak of a child of this Python would count this
Python's memory, which the child shares until it execs; time's figure is the larger of the command's
own and that of the children it waited for: the stages it ran); their exit codes; and whether traffic was
all on the approved colour each time a controller command exited and at the end (must say yes: the
driver exits 1 otherwise, or when a case fails to run, or when a peak is over 200 MiB). Ingest's
rows measure `recengine ingest` instead, with no traffic.

Run by Benchmarks/faults (which builds the release binaries first); not a test. Full-disk cases
mount a small tmpfs (root only) and always unmount it.
"""
import errno
import gzip
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ORCHESTRATE = os.environ["ORCHESTRATE_BIN"]
RECENGINE = os.environ["RECENGINE_BIN"]
ROOT = os.environ.get("FAULTS_WORK", "/tmp/orchestrate-faults")
HERE = os.path.dirname(os.path.abspath(__file__))
PEAK_BOUND_MIB = 200


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listens on port {port}")


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
        if not self.stopping:
            self.stopping = True
            for thread in self.threads:
                thread.join()

    def failed(self):
        return sum(1 for _, status, _ in self.samples if status != 200)


class Measured:
    """A command started through /usr/bin/time, which reports the command's own peak resident memory
    when it ends. Signals go to the command itself, not to time."""

    def __init__(self, label, argv, cwd, environment=None, log=None, stdout=None, stdin=subprocess.DEVNULL):
        handle, self.peak_file = tempfile.mkstemp(prefix="peak-", dir=ROOT)
        os.close(handle)
        errors = open(log, "a") if log else subprocess.DEVNULL
        output = open(stdout, "w") if stdout else errors
        self.launcher = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", self.peak_file, *argv], cwd=cwd, stdin=stdin,
                                         stdout=output, stderr=errors, env={**os.environ, "RECENGINE_BIN": RECENGINE, **(environment or {})})
        self.label = label
        self.killed = False
        self.code = None
        self.peak_mib = None
        self.split_at_exit = None
        self.started = time.monotonic()
        self.seconds = None
        self.pid = self.child()

    def child(self):
        """The command's pid: time's only child."""
        path = f"/proc/{self.launcher.pid}/task/{self.launcher.pid}/children"
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                children = open(path).read().split()
            except OSError:
                return None
            if children:
                return int(children[0])
            if self.launcher.poll() is not None:
                return None
            time.sleep(0.001)
        return None

    def send_signal(self, signum):
        if signum == signal.SIGKILL:
            self.killed = True
        os.kill(self.pid, signum)

    def wait(self, timeout=None):
        """Its exit code (128 + the signal when a signal ended it), once it ended; its peak then read."""
        try:
            self.code = self.launcher.wait(timeout)
        except subprocess.TimeoutExpired:
            self.send_signal(signal.SIGKILL)
            self.code = self.launcher.wait()
            raise RuntimeError(f"{self.label} still ran after {timeout} s (killed)")
        finally:
            self.seconds = time.monotonic() - self.started
        try:
            with open(self.peak_file) as f:
                self.peak_mib = int(f.read().split()[-1]) / 1024  # "Command exited with non-zero status N" comes first
        except (OSError, ValueError, IndexError):
            self.peak_mib = None
        os.unlink(self.peak_file)
        return self.code

    def summary(self):
        return f"{self.label} {'killed' if self.killed else self.code}"


def read_split(state):
    """What nginx sends where, from its control socket: ((colour, weight), ...) of the colours with a
    share, or None when it does not answer."""
    connection = http.client.HTTPConnection("nginx", timeout=1)
    try:
        connection.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        connection.sock.settimeout(1)
        connection.sock.connect(os.path.join(state, "nginx/control.sock"))
        connection.request("GET", "/traffic")
        text = connection.getresponse().read().decode()
    except Exception:
        return None
    finally:
        connection.close()
    split = []
    for line in text.splitlines():
        fields = line.split()
        if line.startswith("backend ") and len(fields) >= 4 and float(fields[3]) != 0:
            weight = float(fields[3])
            split.append((fields[1], int(weight) if weight.is_integer() else weight))
    return tuple(sorted(split))


def only(colour):
    return ((colour, 100),)


class TrafficWatch:
    """nginx's split every 20 ms, with the time it was read."""

    def __init__(self, case):
        self.state = case.state
        self.samples = []  # (time, split or None)
        self.stopping = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stopping:
            self.samples.append((time.monotonic(), read_split(self.state)))
            time.sleep(0.02)

    def stop(self):
        self.stopping = True
        self.thread.join()

    def seconds_until(self, colour, since):
        """Seconds from `since` until nginx last came to send all traffic to `colour` (0 when it never
        sent any elsewhere after `since`); None when it did not end so."""
        seen = [(t, split) for t, split in self.samples if t >= since and split is not None]
        elsewhere = [t for t, split in seen if split != only(colour)]
        if not elsewhere:
            return 0.0
        back = [t for t, split in seen if t > elsewhere[-1]]
        return back[0] - since if back else None


ROWS = []


def said(path):
    """What a command said on stderr: its error line (the hint follows it), else its last line."""
    try:
        lines = open(path, errors="replace").read().strip().splitlines()
    except OSError:
        return ""
    errors = [line for line in lines if line.startswith("error")]
    return (errors[0] if errors else lines[-1] if lines else "").strip().replace(ROOT + "/", "")


class Row:
    def __init__(self, name, requests="-", failed="-", seconds="-", peak=None, exits="-", ends="n/a", outcome="-", verifies="-", note=""):
        self.name, self.requests, self.failed, self.seconds = name, requests, failed, seconds
        self.peak, self.exits, self.ends, self.outcome, self.verifies, self.note = peak, exits, ends, outcome, verifies, note

    def cells(self):
        seconds = f"{self.seconds:.2f}" if isinstance(self.seconds, float) else ("never" if self.seconds is None else self.seconds)
        return [self.name, str(self.requests), str(self.failed), seconds, f"{self.peak:.0f}" if self.peak is not None else "?",
                self.exits, self.ends, self.outcome, self.verifies, self.note or "-"]

    def failing(self):
        return self.ends.startswith("NO") or self.peak is None or self.peak > PEAK_BOUND_MIB or self.verifies == "NO"


def add_row(row):
    ROWS.append(row)
    print("  " + " | ".join(row.cells()), file=sys.stderr, flush=True)


def unmount_under(folder):
    with open("/proc/mounts") as f:
        points = [line.split()[1] for line in f]
    for point in sorted((p for p in points if p.startswith(folder + "/")), reverse=True):
        subprocess.run(["umount", "-l", point])


class Disk:
    """A small tmpfs mounted at `folder`: a real full disk once filled."""

    def __init__(self, folder, size="16m"):
        self.folder = folder
        self.filler = os.path.join(folder, ".filler")
        os.makedirs(folder, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", folder], check=True)

    def fill(self):
        size = 1 << 16
        with open(self.filler, "ab", buffering=0) as f:
            while size:
                try:
                    f.write(b"." * size)
                except OSError as error:
                    if error.errno != errno.ENOSPC:
                        raise
                    size //= 2

    def free(self):
        os.unlink(self.filler)

    def unmount(self):
        subprocess.run(["umount", "-l", self.folder])


class Case:
    def __init__(self, name, history="releases/history.jsonl"):
        self.name = name
        self.folder = os.path.join(ROOT, name)
        unmount_under(self.folder)
        shutil.rmtree(self.folder, ignore_errors=True)
        os.makedirs(self.folder)
        self.nginx_port, self.prometheus_port = free_port(), free_port()
        self.state = os.path.join(self.folder, os.path.dirname(history), "state/svc")  # the controller keeps it beside the history
        self.history = history
        self.prometheus = None
        self.peer = None
        self.disks = []
        self.commands = []
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
history: {self.history}
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

    def start_peer(self, mode, port):
        """hostile-peer.py answering as `mode` on `port`; the requests it had in peer-requests.txt."""
        self.peer = subprocess.Popen([sys.executable, os.path.join(HERE, "hostile-peer.py"), mode, str(port), os.path.join(self.folder, "peer-requests.txt")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(port)

    def orchestrate(self, *arguments, environment=None, check=False):
        """A command that is not measured (promote, abort, status, verify)."""
        result = subprocess.run([ORCHESTRATE, *arguments], cwd=self.folder, capture_output=True, text=True,
                                env={**os.environ, "RECENGINE_BIN": RECENGINE, **(environment or {})})
        if check and result.returncode != 0:
            raise RuntimeError(f"orchestrate {' '.join(arguments)} exited {result.returncode}: {result.stderr}")
        return result

    def start(self, *arguments, environment=None, label=None):
        """A controller command, measured; its log goes to controller.log."""
        command = Measured(label or arguments[0], [ORCHESTRATE, *arguments], self.folder, environment, log=os.path.join(self.folder, "controller.log"))
        self.commands.append(command)
        return command

    def wait(self, command, timeout=180):
        code = command.wait(timeout)
        command.split_at_exit = read_split(self.state)
        return code

    def run(self, *arguments, environment=None, label=None, timeout=180):
        command = self.start(*arguments, environment=environment, label=label)
        self.wait(command, timeout)
        return command

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
        """The history's records; a torn last line is not one."""
        found = []
        try:
            with open(os.path.join(self.folder, self.history)) as f:
                for line in f:
                    try:
                        found.append(json.loads(line))
                    except ValueError:
                        pass
        except OSError:
            pass
        return found

    def last_outcome(self):
        records = self.records()
        return records[-1]["outcome"] if records else "no record"

    def verified(self):
        return self.orchestrate("history", "verify", "--pipeline", "pipeline.yml").returncode == 0

    def processes(self):
        """pid and command line of the live processes of this case: its folder in their command line,
        or the marker of its runs in their environment."""
        found = []
        marker = f"ORCHESTRATE_STATE_FOLDER={os.path.realpath(self.state)}".encode()
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or int(pid) == os.getpid():
                continue
            try:
                with open(f"/proc/{pid}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                        continue
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    command = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
                with open(f"/proc/{pid}/environ", "rb") as f:
                    environment = f.read().split(b"\0")
            except (OSError, IndexError):
                continue
            if self.folder in command or marker in environment:
                found.append((int(pid), command))
        return found

    def orphans(self, live_color):
        """Processes of this case that should not run any more (nginx, Prometheus and the live
        colour's server may)."""
        return [command[:80] for _, command in self.processes()
                if not any(word in command for word in ("prometheus", "nginx", "hostile-peer"))
                and not ("serve" in command and f"--color {live_color}" in command)]

    def finish(self, name, load=None, watch=None, since=None, outcome=None, note=""):
        """The case's row, once its last controller command ended."""
        if load:
            load.stop()
        if watch:
            watch.stop()
        approved = (self.live() or {}).get("color")
        final = read_split(self.state)
        wrong = [f"{c.label} exited with {c.split_at_exit}" for c in self.commands if not c.killed and c.split_at_exit != only(approved)]
        if final != only(approved):
            wrong.append(f"at the end {final}")
        peaks = [c.peak_mib for c in self.commands]
        add_row(Row(name, requests=len(load.samples) if load else "-", failed=load.failed() if load else "-",
                    seconds=watch.seconds_until(approved, since) if watch else "-",
                    peak=max(peaks) if peaks and None not in peaks else None,
                    exits=", ".join(c.summary() for c in self.commands),
                    ends="yes" if not wrong else f"NO (approved {approved}; {'; '.join(wrong)})",
                    outcome=outcome or self.last_outcome(), verifies="yes" if self.verified() else "NO", note=note))

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
        for process in (self.prometheus, self.peer):
            if process:
                process.kill()
                process.wait()
        time.sleep(0.3)
        for pid, _ in self.processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        for disk in self.disks:
            disk.unmount()

    def mount(self, relative, size="16m"):
        disk = Disk(os.path.join(self.folder, relative), size)
        self.disks.append(disk)
        return disk


def case_release(gates=None, name="healthy release 25/50/75/100"):
    case = Case("release" if gates is None else "gate")
    try:
        case.pipeline()
        case.start_prometheus()
        case.first_release()
        case.pipeline(gates=gates)
        watch = TrafficWatch(case)
        load = Load(case.nginx_port).start()
        started = time.monotonic()
        decision = LogWatch(os.path.join(case.folder, "controller.log"), "FAILED")
        case.run("run", "pipeline.yml", "--force", environment={"EPOCHS": "12"})
        decided = decision.stop()
        if decided is None:
            case.finish(name, load, watch, started, note="seconds from the run's start")
        else:
            case.finish(name, load, watch, decided, note=f"seconds from the decision (the controller's FAILED line, {decided - started:.2f} s after the run's start)")
    finally:
        case.close()


class LogWatch:
    """When `text` first appears in the log file at `path` (read every 10 ms), on the monotonic clock."""

    def __init__(self, path, text):
        self.path, self.text = path, text
        self.offset = os.path.getsize(path) if os.path.exists(path) else 0
        self.seen = None
        self.stopping = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stopping and self.seen is None:
            try:
                with open(self.path, "rb") as f:
                    f.seek(self.offset)
                    if self.text.encode() in f.read():
                        self.seen = time.monotonic()
            except OSError:
                pass
            time.sleep(0.01)

    def stop(self):
        self.stopping = True
        self.thread.join()
        return self.seen


def case_signal(step, signum):
    case = Case(f"signal-{step}-{signum}")
    try:
        case.pipeline(wait="30s")
        case.start_prometheus()
        live = case.first_release()
        watch = TrafficWatch(case)
        load = Load(case.nginx_port).start()
        controller = case.start("run", "pipeline.yml", "--force", environment={"EPOCHS": "12"})
        case.advance_to([25, 50, 75][step - 1])
        time.sleep(1)
        signalled = time.monotonic()
        controller.send_signal(signum)
        case.wait(controller, timeout=60)
        time.sleep(0.5)
        orphans = case.orphans(live)
        case.finish(f"{signal.Signals(signum).name} at step {step}", load, watch, signalled, note="no orphan" if not orphans else f"ORPHANS {orphans}")
    finally:
        case.close()


def case_kill(phase, weight=None):
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
        case.first_release()
        if phase == "stages":
            case.write_ratings(users=3000, per_user=20, items=500)
            case.pipeline(wait="30s", extra=extra, train=train)
        if phase == "draining":
            case.pipeline(wait="2s", drain="30s", extra=extra)
        watch = TrafficWatch(case)
        load = Load(case.nginx_port).start()
        controller = case.start("run", "pipeline.yml", "--force", environment={"EPOCHS": "12"})

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
        killed = time.monotonic()
        controller.send_signal(signal.SIGKILL)
        case.wait(controller)
        recover = case.run("recover", "pipeline.yml")
        converged_at = time.monotonic()
        time.sleep(0.5)
        final_live = (case.live() or {}).get("color")
        status = case.orchestrate("status", "pipeline.yml")
        orphans = case.orphans(final_live)
        ok = recover.code == 0 and status.returncode == 0 and not orphans
        case.finish(f"kill -9 while {phase}" + (f" at {weight}%" if weight else "") + ", then recover", load, watch, killed,
                    note=(f"kill to converged {converged_at - killed:.2f} s, no orphan" if ok else
                          f"NOT converged (status {status.returncode}, orphans {orphans})"))
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
        watch = TrafficWatch(case)
        load = Load(case.nginx_port).start()
        started = time.monotonic()
        case.run("run", "pipeline.yml", "--force")
        time.sleep(1)
        still = [c for _, status, c in load.samples[-50:] if status == 200]
        case.run("repair", "pipeline.yml")
        serving = bool(still) and all(c == live for c in still)
        case.finish("unreadable current.json, then repair", load, watch, started, outcome="refused",
                    note=f"{live} kept serving" if serving else "the serving colour STOPPED")
    finally:
        case.close()


def case_prometheus_gone():
    case = Case("prometheus-gone")
    try:
        case.pipeline(wait="8s")
        case.start_prometheus()
        case.first_release()
        watch = TrafficWatch(case)
        load = Load(case.nginx_port).start()
        controller = case.start("run", "pipeline.yml", "--force", environment={"EPOCHS": "12"})
        case.wait_for(lambda: (case.run_state() or {}).get("phase") == "shifting")
        killed = time.monotonic()
        case.prometheus.kill()
        case.prometheus.wait()
        case.prometheus = None
        case.wait(controller, timeout=120)
        time.sleep(0.5)
        case.finish("Prometheus killed mid-step", load, watch, killed)
    finally:
        case.close()


def case_colour_killed():
    case = Case("colour-killed")
    try:
        case.pipeline(wait="8s")
        case.start_prometheus()
        case.first_release()
        watch = TrafficWatch(case)
        load = Load(case.nginx_port).start()
        controller = case.start("run", "pipeline.yml", "--force", environment={"EPOCHS": "12"})
        case.advance_to(50)
        target = case.run_state()["target"]
        killed = time.monotonic()
        with open(os.path.join(case.state, f"{target}.json")) as f:
            os.kill(json.load(f)["pid"], signal.SIGKILL)
        case.wait(controller, timeout=120)
        time.sleep(0.5)
        case.finish("the new colour killed at 50%", load, watch, killed)
    finally:
        case.close()


def case_abort_drain():
    case = Case("abort-drain")
    try:
        case.pipeline(wait="2s", drain="30s")
        case.start_prometheus()
        case.first_release()
        watch = TrafficWatch(case)
        load = Load(case.nginx_port).start()
        controller = case.start("run", "pipeline.yml", "--force", environment={"EPOCHS": "12"})
        case.wait_for(lambda: (case.run_state() or {}).get("phase") == "draining")
        aborted = time.monotonic()
        case.orchestrate("abort", "pipeline.yml")
        case.wait(controller, timeout=60)
        time.sleep(0.5)
        case.finish("abort during the drain", load, watch, aborted)
    finally:
        case.close()


def case_stage_timeout():
    case = Case("stage-timeout")
    try:
        case.pipeline()
        case.start_prometheus()
        live = case.first_release()
        case.write_ratings(users=3000, per_user=20, items=500)
        case.pipeline(train="factors: 200, epochs: 10000", timeout="1s")
        watch = TrafficWatch(case)
        load = Load(case.nginx_port).start()
        started = time.monotonic()
        case.run("run", "pipeline.yml")
        stage = case.records()[-1]["stages"][0]
        leftover = case.orphans(live)
        case.finish("built-in stage timeout 1 s (train)", load, watch, started,
                    note=f"stage stopped after {stage['duration_seconds']:.2f} s, {'no process left' if not leftover else 'LEFT: ' + str(leftover)}")
    finally:
        case.close()


# Issue 20, item 1: a hostile Prometheus mid-step, and an endless engine.

HOSTILE_GATE = """    - name: error-rate
      query: (sum(rate(recengine_http_requests_total{color="{{color}}",status=~"5.."}[5s])) or vector(0)) / sum(rate(recengine_http_requests_total{color="{{color}}"}[5s]))
      max: 0.05
      initialDelay: 1s
      interval: 1s
      count: 50
      consecutiveErrorLimit: 2
      onNoData: inconclusive
"""

HOSTILITIES = {
    "series": "Prometheus turns hostile at 25%: 1.4 million series (a query without sum)",
    "endless": "Prometheus turns hostile at 25%: an answer without end",
    "drip": "Prometheus turns hostile at 25%: a byte every 100 ms",
    "escapes": "Prometheus turns hostile at 25%: an 850 KB error of escape sequences",
    "neginf": "Prometheus turns hostile at 25%: every value -Inf (the gate is max 0.05)",
}


def case_hostile_prometheus(mode):
    """Prometheus answers well up to the 25 % step, then a hostile peer takes its port mid-step."""
    case = Case(f"hostile-{mode}")
    try:
        case.pipeline()
        case.start_prometheus()
        case.first_release()
        case.pipeline(gates=HOSTILE_GATE, wait="60s")
        watch = TrafficWatch(case)
        load = Load(case.nginx_port).start()
        controller = case.start("run", "pipeline.yml", "--force", environment={"EPOCHS": "12"})
        case.advance_to(25)
        time.sleep(2.5)
        turned = time.monotonic()
        case.prometheus.kill()
        case.prometheus.wait()
        case.prometheus = None
        case.start_peer(mode, case.prometheus_port)
        case.wait(controller, timeout=180)
        time.sleep(0.5)
        with open(os.path.join(case.folder, case.history), "rb") as f:
            line = f.read().rstrip(b"\n").rsplit(b"\n", 1)[-1]
        raw = b"\x1b" in open(os.path.join(case.folder, "controller.log"), "rb").read()
        failure = case.records()[-1].get("failure", "")
        case.finish(HOSTILITIES[mode], load, watch, turned,
                    note=f"\"{failure[:70]}\"; record {len(line):,} bytes; {'RAW' if raw else 'no'} escape on stderr")
    finally:
        case.close()


def received(case):
    try:
        return sum(1 for line in open(os.path.join(case.folder, "peer-requests.txt")) if line.startswith("POST"))
    except OSError:
        return 0


def case_webhook_endless():
    """A healthy release whose webhook receiver answers every event with a body without end."""
    case = Case("webhook-endless")
    try:
        port = free_port()
        case.start_peer("receiver", port)
        case.pipeline()
        case.start_prometheus()
        case.first_release()
        case.pipeline(extra=f"notify:\n  timeout: 5s\n  retries: 1\n  webhooks:\n    - name: endless\n      url: http://127.0.0.1:{port}/hook\n")
        watch = TrafficWatch(case)
        load = Load(case.nginx_port).start()
        started = time.monotonic()
        release = case.run("run", "pipeline.yml", "--force", environment={"EPOCHS": "12"})
        case.finish("a webhook receiver whose answers never end, on every event", load, watch, started,
                    note=f"seconds from the run's start; the run took {release.seconds:.2f} s; the receiver had {received(case)} POSTs")
    finally:
        case.close()


def case_engine_endless():
    case = Case("engine-endless")
    try:
        port = free_port()
        case.start_peer("engine", port)
        with open(os.path.join(case.folder, "compose.yml"), "w") as f:
            f.write("name: hostile\nservices: {}\n")
        command = case.run("compose", "ps", "compose.yml", "--host", f"tcp://127.0.0.1:{port}", label="compose ps")
        add_row(Row("`compose ps` against an engine whose list never ends", peak=command.peak_mib, exits=command.summary(),
                    note=f"\"{said(os.path.join(case.folder, 'controller.log'))[:110]}\"; {command.seconds:.2f} s"))
    finally:
        case.close()


# Issue 20, items 2, 5, 6: a full disk, races with the deploy, an unreadable run.json.

PRELOADS = {}


def preload(name):
    """The fault injector `name`.c of the tests' (Tests/TestSupport/Faults), compiled once."""
    if name not in PRELOADS:
        library = os.path.join(ROOT, f"{name}.so")
        subprocess.run(["cc", "-shared", "-fPIC", "-o", library, os.path.join(HERE, "..", "..", "Tests", "TestSupport", "Faults", f"{name}.c"), "-ldl"], check=True)
        PRELOADS[name] = library
    return PRELOADS[name]


def case_full(slug, name, mount_at, signal_too=False):
    """The disk under `mount_at` fills at the 50 % step (with SIGTERM right after, if asked)."""
    case = Case(slug)
    try:
        disk = case.mount(mount_at)
        case.pipeline(wait="30s")
        case.start_prometheus()
        live = case.first_release()
        watch = TrafficWatch(case)
        load = Load(case.nginx_port).start()
        controller = case.start("run", "pipeline.yml", "--force", environment={"EPOCHS": "12"})
        case.advance_to(50)
        time.sleep(1)
        disk.fill()
        filled = time.monotonic()
        if signal_too:
            controller.send_signal(signal.SIGTERM)
        case.wait(controller, timeout=120)
        note = f"orphans {case.orphans(live) or 'none'}; status on the full disk exit {case.orchestrate('status', 'pipeline.yml').returncode}"
        if mount_at == "releases":
            case.run("recover", "pipeline.yml", label="recover on the full disk")
            disk.free()
            case.run("recover", "pipeline.yml", label="recover once freed")
        else:
            disk.free()
        time.sleep(0.3)
        case.finish(name, load, watch, filled, note=note)
    finally:
        case.close()


def case_recover_full():
    case = Case("recover-full")
    try:
        disk = case.mount("releases")
        case.pipeline(wait="30s")
        case.start_prometheus()
        live = case.first_release()
        watch = TrafficWatch(case)
        load = Load(case.nginx_port).start()
        controller = case.start("run", "pipeline.yml", "--force", environment={"EPOCHS": "12"})
        case.advance_to(50)
        time.sleep(1)
        killed = time.monotonic()
        controller.send_signal(signal.SIGKILL)
        case.wait(controller)
        disk.fill()
        case.run("recover", "pipeline.yml", label="recover on the full disk")
        orphans = case.orphans(live)
        disk.free()
        case.run("recover", "pipeline.yml", label="recover once freed")
        time.sleep(0.3)
        case.finish("kill -9 at 50%, the disk fills, recover, free, recover", load, watch, killed,
                    note=f"orphans {orphans or 'none'}; status exit {case.orchestrate('status', 'pipeline.yml').returncode}")
    finally:
        case.close()


def case_start_sigterm():
    """SIGTERM reaches the controller as the new colour writes its state file (it started)."""
    case = Case("start-sigterm")
    try:
        case.pipeline(wait="30s")
        case.start_prometheus()
        live = case.first_release()
        target = "green" if live == "blue" else "blue"
        watch = TrafficWatch(case)
        load = Load(case.nginx_port).start()
        fault = {"LD_PRELOAD": preload("at_rename"), "KILL_AT_RENAME_TARGET": f"/svc/{target}.json", "KILL_AT_RENAME_WHEN": "before",
                 "KILL_AT_RENAME_SIGNAL": str(int(signal.SIGTERM)), "KILL_AT_RENAME_RECIPIENT": "parent", "KILL_AT_RENAME_WAIT_MS": "1000"}
        started = time.monotonic()
        case.run("run", "pipeline.yml", "--force", environment={"EPOCHS": "12", **fault})
        time.sleep(2)
        on_target = sum(1 for _, _, colour in load.samples if colour == target)
        case.finish("SIGTERM while the new colour starts", load, watch, started,
                    note=f"{on_target} answers from {target}; orphans {case.orphans(live) or 'none'}; status exit {case.orchestrate('status', 'pipeline.yml').returncode}")
    finally:
        case.close()


def case_abort_deploy():
    """`abort` lands as the deploy ends (the new colour's Prometheus targets are written)."""
    case = Case("abort-deploy")
    try:
        case.pipeline(wait="30s")
        case.start_prometheus()
        live = case.first_release()
        target = "green" if live == "blue" else "blue"
        watch = TrafficWatch(case)
        load = Load(case.nginx_port).start()
        fault = {"LD_PRELOAD": preload("at_rename"), "KILL_AT_RENAME_TARGET": "/svc/targets.json", "KILL_AT_RENAME_WHEN": "before",
                 "KILL_AT_RENAME_WRITE_PATH": os.path.join(case.state, "control"), "KILL_AT_RENAME_WRITE_TEXT": "abort"}
        started = time.monotonic()
        case.run("run", "pipeline.yml", "--force", environment={"EPOCHS": "12", **fault})
        time.sleep(0.3)
        on_target = sum(1 for _, _, colour in load.samples if colour == target)
        steps = [s["weight"] for s in case.records()[-1].get("rollout", {}).get("steps", [])]
        case.finish("abort as the deploy ends", load, watch, started, note=f"{on_target} answers from {target}; steps applied {steps}")
    finally:
        case.close()


def case_hook_no_runjson():
    """kill -9 during a step whose hook started a process in a session of its own; run.json garbled."""
    case = Case("hook-no-runjson")
    try:
        pids = os.path.join(case.folder, "sleeper.pids")
        sleeper = os.path.join(case.folder, "sleeper.sh")
        with open(sleeper, "w") as f:
            f.write(f"#!/bin/sh\necho $$ >> {pids}\nsetsid sleep 600 &\necho $! >> {pids}\nexec sleep 600\n")
        os.chmod(sleeper, 0o755)
        case.pipeline(wait="30s", extra=f"hooks:\n  duringStep:\n    - [{sleeper}]\n")
        case.start_prometheus()
        live = case.first_release()
        if os.path.exists(pids):
            os.unlink(pids)
        watch = TrafficWatch(case)
        load = Load(case.nginx_port).start()
        controller = case.start("run", "pipeline.yml", "--force", environment={"EPOCHS": "12"})
        case.wait_for(lambda: os.path.exists(pids) and len(open(pids).read().split()) == 2, timeout=90)
        killed = time.monotonic()
        controller.send_signal(signal.SIGKILL)
        case.wait(controller)
        with open(os.path.join(case.state, "run.json"), "w") as f:
            f.write('{"release_id": "rel-')
        case.run("recover", "pipeline.yml")
        time.sleep(0.5)
        alive = [p for p in open(pids).read().split() if os.path.exists(f"/proc/{p}") and ") Z " not in open(f"/proc/{p}/stat").read()]
        case.finish("kill -9 at 25%, run.json garbled, recover", load, watch, killed, note=f"hook processes left: {alive or 'none'}")
    finally:
        case.close()


# Issue 20, items 3 and 4: nginx's master or a colour killed mid-rollout.

def master_pid(case):
    try:
        return int(open(os.path.join(case.state, "nginx/nginx.pid")).read().strip())
    except Exception:
        return None


def parent_of(pid):
    try:
        return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
    except Exception:
        return None


def alive(pid):
    try:
        os.kill(pid, 0)
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except Exception:
        return False


def failures_after(load, moment):
    """When the failed requests failed, in seconds after `moment`, for a note ("" when none failed)."""
    times = [f"{t - moment:+.2f}" for t, status, _ in load.samples if status != 200]
    return f"; failed at {', '.join(times[:10])} s after the kill" if times else ""


def kill_master(case):
    """kill -9 of nginx's master, as the OOM killer does; its workers run on."""
    master = master_pid(case)
    workers = [int(p) for p in os.listdir("/proc") if p.isdigit() and parent_of(p) == master]
    os.kill(master, signal.SIGKILL)
    return master, workers


def fresh_master_after(case, old, since, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = master_pid(case)
        if pid and pid != old and alive(pid):
            return time.monotonic() - since
        time.sleep(0.01)
    return None


def case_master_killed(then_abort=False):
    case = Case("master-killed-abort" if then_abort else "master-killed")
    workers = []
    try:
        case.pipeline(wait="30s" if then_abort else "6s")
        case.start_prometheus()
        case.first_release()
        watch = TrafficWatch(case)
        load = Load(case.nginx_port).start()
        controller = case.start("run", "pipeline.yml", "--force", environment={"EPOCHS": "12"})
        case.advance_to(50)
        time.sleep(1)
        killed = time.monotonic()
        old, workers = kill_master(case)
        if then_abort:
            case.orchestrate("abort", "pipeline.yml")
        fresh = fresh_master_after(case, old, killed)
        case.wait(controller, timeout=120)
        time.sleep(0.5)
        left = [w for w in workers if alive(w)]
        note = (f"a fresh nginx {fresh:.2f} s after the kill" if fresh is not None else "NO fresh nginx") + \
            ("; no orphaned worker" if not left else f"; ORPHANS {left}") + failures_after(load, killed)
        case.finish("nginx master killed at 50%, then abort" if then_abort else "nginx master killed at 50%, the rollout goes on",
                    load, watch, killed, note=note)
    finally:
        for worker in workers:
            if alive(worker):
                os.kill(worker, signal.SIGKILL)
        case.close()


def case_master_and_controller_killed():
    case = Case("master-controller-killed")
    workers = []
    try:
        case.pipeline(wait="30s")
        case.start_prometheus()
        case.first_release()
        watch = TrafficWatch(case)
        load = Load(case.nginx_port).start()
        controller = case.start("run", "pipeline.yml", "--force", environment={"EPOCHS": "12"})
        case.advance_to(50)
        time.sleep(1)
        killed = time.monotonic()
        controller.send_signal(signal.SIGKILL)
        case.wait(controller)
        old, workers = kill_master(case)
        status = case.orchestrate("status", "pipeline.yml")
        case.run("recover", "pipeline.yml")
        after = case.orchestrate("status", "pipeline.yml")
        case.run("repair", "pipeline.yml")
        time.sleep(0.5)
        left = [w for w in workers if alive(w)]
        case.finish("nginx master and controller killed at 50%, then recover", load, watch, killed,
                    note=f"status exit {status.returncode} before recover, {after.returncode} after; " + ("no orphaned worker" if not left else f"ORPHANS {left}")
                    + failures_after(load, killed))
    finally:
        for worker in workers:
            if alive(worker):
                os.kill(worker, signal.SIGKILL)
        case.close()


def case_live_colour_killed():
    case = Case("live-killed")
    try:
        case.pipeline(wait="30s")
        case.start_prometheus()
        live = case.first_release()
        watch = TrafficWatch(case)
        load = Load(case.nginx_port).start()
        controller = case.start("run", "pipeline.yml", "--force", environment={"EPOCHS": "12"})
        case.advance_to(50)
        time.sleep(1)
        with open(os.path.join(case.state, f"{live}.json")) as f:
            victim = json.load(f)["pid"]
        killed = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        case.wait(controller, timeout=120)
        time.sleep(0.5)
        case.finish("the live colour killed at 50%", load, watch, killed, note=f"{live} redeployed; the controller exited {controller.seconds:.2f} s after its start")
    finally:
        case.close()


def case_rollback_to_after_live_killed():
    """The controller and the live colour killed at 50 %; the load starts after, then `rollback --to`
    the first release."""
    case = Case("rollback-to")
    try:
        case.pipeline(wait="30s")
        case.start_prometheus()
        live = case.first_release()
        first = case.records()[-1]["release_id"]
        controller = case.start("run", "pipeline.yml", "--force", environment={"EPOCHS": "12"})
        case.advance_to(50)
        time.sleep(1)
        controller.send_signal(signal.SIGKILL)
        case.wait(controller)
        with open(os.path.join(case.state, f"{live}.json")) as f:
            os.kill(json.load(f)["pid"], signal.SIGKILL)
        time.sleep(0.5)
        watch = TrafficWatch(case)
        load = Load(case.nginx_port).start()
        time.sleep(1)
        started = time.monotonic()
        rollback = case.run("rollback", "pipeline.yml", "--to", first)
        time.sleep(1)
        said = open(os.path.join(case.folder, "controller.log"), errors="replace").read()
        case.finish("controller and live colour killed at 50%, then `rollback --to`", load, watch, started,
                    note=f"redeployed on {'the idle ' + live if ('redeploying it on ' + live) in said else 'THE COLOUR WITH TRAFFIC'}; took {rollback.seconds:.2f} s")
    finally:
        case.close()


# Issue 20, item 2 (the history): an append on a full disk, kill -9 in the middle of one.

def case_history_full():
    """The history's disk (and so the state folder's, which is beside it) fills while the release
    drains: the release is live, its record cannot be appended (exit 5); once freed, recover records
    it."""
    case = Case("history-full", history="history/history.jsonl")
    try:
        disk = case.mount("history")
        case.pipeline(wait="2s", drain="5s")
        case.start_prometheus()
        case.first_release()
        watch = TrafficWatch(case)
        load = Load(case.nginx_port).start()
        controller = case.start("run", "pipeline.yml", "--force", environment={"EPOCHS": "12"})
        case.wait_for(lambda: (case.run_state() or {}).get("phase") == "draining", timeout=90)
        disk.fill()
        filled = time.monotonic()
        case.wait(controller, timeout=120)
        records = len(case.records())
        disk.free()
        case.run("recover", "pipeline.yml", label="recover once freed")
        time.sleep(0.3)
        case.finish("the history's disk full as the release drains, free, recover", load, watch, filled,
                    note=f"records {records} after the run, {len(case.records())} after recover")
    finally:
        case.close()


def case_history_torn():
    """The controller killed halfway through writing its record."""
    case = Case("history-torn")
    try:
        case.pipeline(wait="2s")
        case.start_prometheus()
        case.first_release()
        watch = TrafficWatch(case)
        load = Load(case.nginx_port).start()
        fault = {"LD_PRELOAD": preload("kill_mid_write"), "KILL_MID_WRITE_TARGET": "/history.jsonl"}
        started = time.monotonic()
        controller = case.start("run", "pipeline.yml", "--force", environment={"EPOCHS": "12", **fault})
        case.wait(controller, timeout=120)
        controller.killed = controller.code == 128 + signal.SIGKILL
        torn = not open(os.path.join(case.folder, case.history), "rb").read().endswith(b"\n")
        verify_torn = case.orchestrate("history", "verify", "--pipeline", "pipeline.yml").returncode
        case.run("recover", "pipeline.yml")
        time.sleep(0.3)
        repair = case.records()[-1].get("history_repair")
        case.finish("kill -9 halfway through the history append, recover", load, watch, started,
                    note=f"{'torn line' if torn else 'NO torn line'}, verify exit {verify_torn} before recover; "
                         f"{'repair recorded' if repair else 'NO repair recorded'}; seconds from the run's start")
    finally:
        case.close()


def case_history_append():
    """A 200 MB history (Benchmarks/history.d/generate.py): what one append costs (recorded dry runs
    less plain dry runs, 10 of each, medians), then a release under load appending to it."""
    case = Case("history-append")
    try:
        generated = os.path.join(ROOT, "inputs/history-200mb/history.jsonl")
        if not os.path.exists(generated + ".head"):
            os.makedirs(os.path.dirname(generated), exist_ok=True)
            subprocess.run([sys.executable, os.path.join(HERE, "../history.d/generate.py"), generated, "200"], check=True, stdout=subprocess.DEVNULL)
        os.makedirs(os.path.join(case.folder, "releases"))
        for suffix in ("", ".head"):
            shutil.copyfile(generated + suffix, os.path.join(case.folder, case.history + suffix))
        case.pipeline()
        case.start_prometheus()
        case.first_release()
        size = os.path.getsize(os.path.join(case.folder, case.history))
        plans, appends = [], []
        for _ in range(10):
            plans.append(case.run("run", "pipeline.yml", "--dry-run", label="run --dry-run"))
            appends.append(case.run("run", "pipeline.yml", "--dry-run", "--record-dry-run", label="run --dry-run --record-dry-run"))
        median = lambda values: sorted(values)[len(values) // 2]
        plan_seconds, both_seconds = median([c.seconds for c in plans]), median([c.seconds for c in appends])
        spread = f"{min(c.seconds for c in plans):.3f}-{max(c.seconds for c in plans):.3f} s"
        plan_peak, append_peak = max(c.peak_mib for c in plans), max(c.peak_mib for c in appends)
        dry_exits = sorted({c.code for c in plans + appends})
        case.commands = []  # the row's exits and peak are the release's; the dry runs' are in the note
        watch = TrafficWatch(case)
        load = Load(case.nginx_port).start()
        started = time.monotonic()
        release = case.run("run", "pipeline.yml", "--force", environment={"EPOCHS": "12"})
        case.finish(f"a release appending to a {size / 1e6:.0f} MB history", load, watch, started,
                    note=f"the append alone {1000 * (both_seconds - plan_seconds):.0f} ms: median of 10 recorded dry runs {both_seconds:.3f} s "
                         f"less median of 10 dry runs {plan_seconds:.3f} s (those spread {spread}); peak {append_peak:.1f} MiB recorded, "
                         f"{plan_peak:.1f} MiB not (exits {dry_exits}); "
                         f"the release {release.seconds:.2f} s; seconds from the run's start")
    finally:
        case.close()


# Issue 20, item 7: ingest's hostile inputs (the peak is `recengine ingest`'s).

GOOD_LINES = ["2022-03-18T05:00:00,17,GET /rate/up+2009=2", "2022-03-18T05:00:01,34,GET /rate/heat+1995=4",
              "2022-03-18T05:00:02,51,GET /rate/alien+1979=3"]


def ingest_inputs():
    """The hostile sources, made once (the 1 GB line and the bomb take a while)."""
    inputs = os.path.join(ROOT, "inputs")
    os.makedirs(inputs, exist_ok=True)
    bomb = os.path.join(inputs, "bomb/movielog.gz")
    if not os.path.exists(bomb):
        os.makedirs(os.path.dirname(bomb), exist_ok=True)
        # 1 GiB of lines of 1000 zeros in about 1 MB, ten times: a 10 MB gzip of 10 GiB.
        member = subprocess.run(f"yes \"$(printf '%01000d' 0)\" | head -c 1073741824 | gzip -9", shell=True, check=True,
                                capture_output=True).stdout
        with open(bomb + ".part", "wb") as f:
            for _ in range(10):
                f.write(member)
        os.rename(bomb + ".part", bomb)
    garbage = os.path.join(inputs, "garbage/movielog.log")
    if not os.path.exists(garbage):
        os.makedirs(os.path.dirname(garbage), exist_ok=True)
        subprocess.run(f"{{ printf '%s\\n' '{GOOD_LINES[0]}'; yes \"$(printf 'garbage %0200d' 0)\" | head -n 100000; printf '%s\\n' '{GOOD_LINES[1]}'; }} > '{garbage}.part'",
                       shell=True, check=True)
        os.rename(garbage + ".part", garbage)
    long_line = os.path.join(inputs, "long/movielog.log")
    if not os.path.exists(long_line):
        os.makedirs(os.path.dirname(long_line), exist_ok=True)
        subprocess.run(f"{{ printf '%s\\n' '{GOOD_LINES[0]}'; head -c 1073741824 /dev/zero | tr '\\0' x; printf '\\n%s\\n%s\\n' '{GOOD_LINES[1]}' '{GOOD_LINES[2]}'; }} > '{long_line}.part'",
                       shell=True, check=True)
        os.rename(long_line + ".part", long_line)
    return {"bomb": os.path.dirname(bomb), "garbage": os.path.dirname(garbage), "long": os.path.dirname(long_line)}


def case_ingest(kind):
    names = {"bomb": "ingest: a gzip of 10 GiB", "garbage": "ingest: 20 MB of garbage lines", "long": "ingest: a 1 GB line between good lines",
             "fifo": "ingest: a FIFO nobody writes", "zero": "ingest: /dev/zero", "stdin": "ingest: a standard input that stays open (--max-seconds 3)"}
    folder = os.path.join(ROOT, f"ingest-{kind}")
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    stdin = subprocess.DEVNULL
    deadline = []
    if kind in ("bomb", "garbage", "long"):
        source = ingest_inputs()[kind]
        if kind == "bomb":
            names[kind] = f"ingest: a {os.path.getsize(os.path.join(source, 'movielog.gz')) / 1e6:.0f} MB gzip of 10 GiB"
    elif kind == "fifo":
        source = os.path.join(folder, "movielog.fifo")
        os.mkfifo(source)
        deadline = ["--max-seconds", "5"]
    elif kind == "zero":
        source, deadline = "/dev/zero", ["--max-seconds", "5"]
    else:
        source, deadline, stdin = "-", ["--max-seconds", "3"], subprocess.PIPE
    command = Measured("ingest", [RECENGINE, "ingest", "--source", source, "--store", os.path.join(folder, "store"), "--out",
                                  os.path.join(folder, "ratings.csv"), "--rejects", os.path.join(folder, "rejects.tsv"), *deadline, "--output", "json"],
                       folder, log=os.path.join(folder, "stderr.txt"), stdout=os.path.join(folder, "report.json"), stdin=stdin)
    try:
        command.wait(timeout=600)
    finally:
        if command.launcher.stdin:
            command.launcher.stdin.close()
    try:
        report = json.load(open(os.path.join(folder, "report.json")))
        said_text = f"{report.get('lines')} lines, {report.get('ratings_read')} ratings, rejected {report.get('rejected_by_reason')}"
    except (OSError, ValueError):
        said_text = f"\"{said(os.path.join(folder, 'stderr.txt'))[:110]}\""
    add_row(Row(names[kind], peak=command.peak_mib, exits=command.summary(), note=f"{said_text}; {command.seconds:.2f} s"))
    shutil.rmtree(folder, ignore_errors=True)


IMPOSSIBLE_GATE = """    - name: impossible
      query: sum(recengine_model_info{color="{{color}}"})
      max: 0.5
      initialDelay: 2s
      interval: 1s
      onNoData: inconclusive
"""

KILLS = []

CASES = {
    "release": case_release,
    "gate": lambda: case_release(gates=IMPOSSIBLE_GATE, name="gate fails at 25%"),
    "sigterm-1": lambda: case_signal(1, signal.SIGTERM),
    "sigterm-2": lambda: case_signal(2, signal.SIGTERM),
    "sigterm-3": lambda: case_signal(3, signal.SIGTERM),
    "sigint-2": lambda: case_signal(2, signal.SIGINT),
    "kill-stages": lambda: KILLS.append(case_kill("stages")),
    "kill-deploying": lambda: KILLS.append(case_kill("deploying")),
    "kill-25": lambda: KILLS.append(case_kill("shifting", 25)),
    "kill-50": lambda: KILLS.append(case_kill("shifting", 50)),
    "kill-75": lambda: KILLS.append(case_kill("shifting", 75)),
    "kill-draining": lambda: KILLS.append(case_kill("draining")),
    "unreadable": case_unreadable_current,
    "prometheus": case_prometheus_gone,
    "abort": case_abort_drain,
    "timeout": case_stage_timeout,
    "colour": case_colour_killed,
    "hostile-series": lambda: case_hostile_prometheus("series"),
    "hostile-endless": lambda: case_hostile_prometheus("endless"),
    "hostile-drip": lambda: case_hostile_prometheus("drip"),
    "hostile-escapes": lambda: case_hostile_prometheus("escapes"),
    "hostile-neginf": lambda: case_hostile_prometheus("neginf"),
    "webhook": case_webhook_endless,
    "engine": case_engine_endless,
    "full-state": lambda: case_full("full-state", "the state folder's disk full at 50%", "releases/state"),
    "sigterm-full": lambda: case_full("sigterm-full", "SIGTERM on a full state folder at 50%", "releases/state", signal_too=True),
    "full-history": lambda: case_full("full-history", "state and history full at 50%, recover, free, recover", "releases"),
    "recover-full": case_recover_full,
    "start-sigterm": case_start_sigterm,
    "abort-deploy": case_abort_deploy,
    "hook-no-runjson": case_hook_no_runjson,
    "master": case_master_killed,
    "master-abort": lambda: case_master_killed(then_abort=True),
    "master-controller": case_master_and_controller_killed,
    "live": case_live_colour_killed,
    "rollback-to": case_rollback_to_after_live_killed,
    "history-full": case_history_full,
    "history-torn": case_history_torn,
    "history-append": case_history_append,
    "ingest-bomb": lambda: case_ingest("bomb"),
    "ingest-garbage": lambda: case_ingest("garbage"),
    "ingest-long": lambda: case_ingest("long"),
    "ingest-fifo": lambda: case_ingest("fifo"),
    "ingest-zero": lambda: case_ingest("zero"),
    "ingest-stdin": lambda: case_ingest("stdin"),
}

GROUPS = {
    "signals": ["sigterm-1", "sigterm-2", "sigterm-3", "sigint-2"],
    "kills": ["kill-stages", "kill-deploying", "kill-25", "kill-50", "kill-75", "kill-draining"],
    "hostile": ["hostile-series", "hostile-endless", "hostile-drip", "hostile-escapes", "hostile-neginf", "webhook", "engine"],
    "disk": ["full-state", "sigterm-full", "full-history", "recover-full"],
    "races": ["start-sigterm", "abort-deploy", "hook-no-runjson"],
    "nginx": ["master", "master-abort", "master-controller", "live", "rollback-to"],
    "history": ["history-full", "history-torn", "history-append"],
    "ingest": ["ingest-bomb", "ingest-garbage", "ingest-long", "ingest-fifo", "ingest-zero", "ingest-stdin"],
}

DEFAULT = ["release", "gate", "signals", "kills", "unreadable", "prometheus", "abort", "timeout", "colour",
           "hostile", "disk", "races", "nginx", "history", "ingest"]


def main():
    os.makedirs(ROOT, exist_ok=True)
    names = [name for word in (sys.argv[1:] or DEFAULT) for name in GROUPS.get(word, [word])]
    unknown = [name for name in names if name not in CASES]
    if unknown:
        sys.exit(f"unknown cases {unknown}; cases: {' '.join(CASES)}; groups: {' '.join(GROUPS)}")
    baseline = Measured("version", [ORCHESTRATE, "--version"], ROOT)
    baseline.wait(30)
    print(f"orchestrate --version peaks at {baseline.peak_mib:.0f} MiB (the measure's floor); load average {os.getloadavg()[0]:.1f}",
          file=sys.stderr, flush=True)
    for name in names:
        print(f"== {name}", file=sys.stderr, flush=True)
        try:
            CASES[name]()
        except Exception as error:
            add_row(Row(name, ends="NO (the case failed to run)", note=f"ERROR: {error}"))
    print()
    print("| case | requests | failed | s until all traffic on the approved colour | peak MiB | exit | all traffic on an approved colour | outcome | history verifies | note |")
    print("|---|---:|---:|---:|---:|---|---|---|---|---|")
    for row in ROWS:
        print("| " + " | ".join(cell.replace("|", "\\|") for cell in row.cells()) + " |")
    if KILLS:
        print(f"\nkill -9 at every phase: {sum(KILLS)}/{len(KILLS)} converged with no orphaned process")
    failing = [row.name for row in ROWS if row.failing()]
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}; "
          + (f"FAILING ({len(failing)}): {'; '.join(failing)}" if failing else "every row: traffic on an approved colour, peaks within 200 MiB"))
    sys.exit(1 if failing else 0)


if __name__ == "__main__":
    main()
