"""Releases one pipeline on the process runtime and on a 3-node swarm and prints what it cost.

Environment: ORCHESTRATE_BIN, SWARM_MANAGER, SWARM_ENGINES, SWARM_NODE_ADDRESSES, SWARM_IMAGE,
BENCH_WORK (from Benchmarks/swarm).
"""
import base64
import http.client
import json
import os
import random
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from datetime import datetime

ORCHESTRATE = os.environ["ORCHESTRATE_BIN"]
WORK = os.environ["BENCH_WORK"]
STEPS = [25, 50, 75, 100]
WAIT = 3.0
ROUNDS = int(os.environ.get("SWARM_BENCH_ROUNDS", "2"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_ratings(path):
    rng = random.Random(11)
    lines = ["user_id,movie_id,rating"]
    for u in range(300):
        for i in sorted(rng.sample(range(200), 20)):
            lines.append(f"u{u},m{i},{min(5, max(1, 3 + (u % 3) - (i % 3) + rng.randrange(2)))}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def pipeline(runtime, folder, listen, prometheus):
    swarm = ""
    if runtime == "swarm":
        engines = ", ".join(f'"{e}"' for e in os.environ["SWARM_ENGINES"].split())
        swarm = f"""  swarm:
    host: "{os.environ['SWARM_MANAGER']}"
    engines: [{engines}]
    image: {os.environ['SWARM_IMAGE']}
    replicas: 3
    minHealthyReplicas: 2
    ports: {{blue: 28181, green: 28182}}
    spread: [node.labels.zone]
"""
    return f"""version: 1
name: bench
history: releases/history.jsonl
stages:
  - name: train
    uses: train
    with: {{ratings: ratings.csv, model: models/m, factors: 8, epochs: "${{EPOCHS:-10}}"}}
deploy:
  runtime: {runtime}
  service: bench-{runtime}
  health: {{path: /health, timeout: 120s}}
{swarm}traffic:
  nginx: {{config: releases/state/bench-{runtime}/nginx.conf, listen: {listen}}}
  mode: sticky
  steps: {json.dumps(STEPS)}
  wait: {int(WAIT)}s
  stopOld: true
  drain: 1s
analysis:
  prometheus: http://127.0.0.1:{prometheus}
  gates:
    - name: error-rate
      query: (sum(rate(recengine_http_requests_total{{color="{{{{color}}}}",status=~"5.."}}[5s])) or vector(0)) / sum(rate(recengine_http_requests_total{{color="{{{{color}}}}"}}[5s]))
      max: 0.05
      initialDelay: 1s
      interval: 1s
      count: 1
      onNoData: pass
"""


class Load:
    """Keep-alive requests through nginx, never retried; counts answers and failures (a request
    that cannot connect at all is not counted: nginx is not up before the first release)."""

    def __init__(self, port):
        self.port, self.ok, self.failed, self.stopped = port, 0, 0, False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        connection, user = None, 0
        while not self.stopped:
            user += 1
            try:
                if connection is None:
                    connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                connection.request("GET", f"/recommend/u{user % 300}?k=5")
                response = connection.getresponse()
                response.read()
                if response.status == 200:
                    self.ok += 1
                else:
                    self.failed += 1
            except (OSError, http.client.HTTPException):
                # A connection lost after answers came is a failed request; nginx not up yet is not.
                if self.ok > 0:
                    self.failed += 1
                connection = None
                time.sleep(0.05)
            time.sleep(0.005)

    def stop(self):
        self.stopped = True
        self.thread.join()


def traffic_generation(path):
    """The generation of the split nginx has in force (GET /traffic on its control socket)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(1)
        s.connect(path)
        s.sendall(b"GET /traffic HTTP/1.0\r\nHost: nginx\r\n\r\n")
        answer = b""
        while chunk := s.recv(4096):
            answer += chunk
    for line in answer.decode().splitlines():
        if line.startswith("generation "):
            return int(line.split()[1])
    raise OSError("no generation")


def records(path):
    out = []
    for line in open(path):
        entry = json.loads(line)
        if "payload" in entry:
            entry = json.loads(base64.b64decode(entry["payload"]))
        out.append(entry)
    return out


def when(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def release(runtime, prometheus_port, targets):
    folder = os.path.join(WORK, runtime)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    write_ratings(os.path.join(folder, "ratings.csv"))
    listen = free_port()
    with open(os.path.join(folder, "pipeline.yml"), "w") as f:
        f.write(pipeline(runtime, folder, listen, prometheus_port))
    targets.append(os.path.join(folder, f"releases/state/bench-{runtime}/targets.json"))
    write_prometheus_config(targets)
    env = dict(os.environ, EPOCHS="10")
    subprocess.run([ORCHESTRATE, "run", "pipeline.yml", "--output", "json"], cwd=folder, env=env, check=True, stdout=subprocess.DEVNULL)
    results = []
    for round in range(ROUNDS):
        load = Load(listen)
        env["EPOCHS"] = str(11 + round)
        started = time.time()
        controller = subprocess.Popen([ORCHESTRATE, "run", "pipeline.yml", "--force", "--output", "json"], cwd=folder, env=env, stdout=subprocess.DEVNULL)
        # When each traffic step is in force in nginx (its control socket, polled every 10 ms).
        socket_path = os.path.join(folder, f"releases/state/bench-{runtime}/nginx/control.sock")
        generations, shifts = set(), []
        while controller.poll() is None:
            try:
                generation = traffic_generation(socket_path)
                if generation not in generations:
                    generations.add(generation)
                    shifts.append(time.time())
            except OSError:
                pass
            time.sleep(0.01)
        if controller.returncode != 0:
            raise SystemExit(f"orchestrate run on {runtime} exited with {controller.returncode}")
        load.stop()
        record = records(os.path.join(folder, "releases/history.jsonl"))[-1]
        rollout = record["rollout"]
        # shifts[0] is the split in force before the run; then one per step (25, 50, 75, 100).
        steps = shifts[1:len(STEPS) + 1]
        spans = [b - a - WAIT for a, b in zip(steps, steps[1:])]
        results.append({
            "outcome": record["outcome"],
            "run_to_first_traffic": steps[0] - started,
            "overhead_per_step": sum(spans) / len(spans),
            "requests": load.ok + load.failed, "failed": load.failed,
        })
    return results, folder


def write_prometheus_config(targets):
    files = json.dumps(targets)
    with open(os.path.join(WORK, "prometheus.yml"), "w") as f:
        f.write(f"global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: recengine\n    file_sd_configs:\n      - files: {files}\n        refresh_interval: 1s\n")


def node_memory():
    """Resident MiB per swarm node: its dockerd, containerd and shims (named by its exec root) and
    every process in its network namespace."""
    prefix = os.environ.get("SWARM_PREFIX", "orchsw")
    out = []
    for i in range(1, len(os.environ["SWARM_ENGINES"].split()) + 1):
        pids = set(subprocess.run(["ip", "netns", "pids", f"{prefix}{i}"], capture_output=True, text=True).stdout.split())
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if f"/run/{prefix}-n{i}".encode() in open(f"/proc/{entry}/cmdline", "rb").read():
                        pids.add(entry)
                except OSError:
                    pass
        rss = 0
        for pid in pids:
            try:
                for line in open(f"/proc/{pid}/status"):
                    if line.startswith("VmRSS:"):
                        rss += int(line.split()[1])
            except OSError:
                pass
        out.append(rss / 1024)
    return out


def main():
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    prometheus_port = free_port()
    targets = []
    write_prometheus_config(targets)
    prometheus = subprocess.Popen(
        ["/usr/bin/prometheus", f"--config.file={WORK}/prometheus.yml", f"--storage.tsdb.path={WORK}/tsdb",
         f"--web.listen-address=127.0.0.1:{prometheus_port}", "--log.level=warn"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        measured = {}
        memory = None
        for runtime in ["process", "swarm"]:
            measured[runtime], folder = release(runtime, prometheus_port, targets)
            if runtime == "swarm":
                # Memory with one colour's 3 tasks running (measured before the rollback removed it).
                memory = node_memory()
    finally:
        prometheus.terminate()
        prometheus.wait()
        # The colours' processes and nginx of both runs (the swarm's services go with scripts/swarm down).
        subprocess.run(["pkill", "-f", WORK + "/"], check=False)
    print(f"{'runtime':8} {'outcome':10} {'run->first traffic s':>21} {'overhead/step s':>16} {'requests':>9} {'failed':>7}")
    for runtime, results in measured.items():
        for r in results:
            print(f"{runtime:8} {r['outcome']:10} {r['run_to_first_traffic']:21.2f} {r['overhead_per_step']:16.2f} {r['requests']:9d} {r['failed']:7d}")
    mean = lambda runtime, key: sum(r[key] for r in measured[runtime]) / len(measured[runtime])
    print(f"swarm/process: run->first traffic x{mean('swarm', 'run_to_first_traffic') / mean('process', 'run_to_first_traffic'):.2f}, "
          f"overhead per step {mean('swarm', 'overhead_per_step'):.2f} s against {mean('process', 'overhead_per_step'):.2f} s")
    if memory:
        print("memory per swarm node (dockerd + containerd + shims + tasks): " + ", ".join(f"node{i + 1} {m:.0f} MiB" for i, m in enumerate(memory)))


if __name__ == "__main__":
    main()
