"""Benchmarks/shadow's driver: see Benchmarks/shadow. Every process it starts is stopped at the end,
also when a row fails."""
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RESOURCES = os.path.join(ROOT, "Sources/Traffic/Resources")
RECENGINE = os.environ["RECENGINE_BIN"]
WORK = os.environ.get("SHADOW_WORK", "/tmp/bench-shadow")
SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 20
# Rounds of every row, interleaved (row 1..5, then again): a busy machine's slow minute falls on
# every row alike instead of on one; the table gives each row's median and its spread.
ROUNDS = int(os.environ.get("SHADOW_ROUNDS", "3"))
CONNECTIONS = 16
USERS = 2000
MODULES = ["/usr/lib/nginx/modules/ndk_http_module.so", "/usr/lib/nginx/modules/ngx_http_lua_module.so"]


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def log(text):
    print(f"[shadow] {text}", file=sys.stderr, flush=True)


def write_ratings(path):
    """MovieLens-shaped ratings: USERS users, 1000 movies of Zipf-like popularity."""
    rng = random.Random(7)
    weights = [1 / (rank + 1) for rank in range(1000)]
    with open(path, "w") as out:
        out.write("user_id,movie_id,rating\n")
        for user in range(USERS):
            for movie in set(rng.choices(range(1000), weights, k=30)):
                out.write(f"u{user},m{movie},{rng.randint(1, 5)}\n")


def render(port, folder):
    """The configuration as NginxConfig.render makes it (its placeholders, filled in the same way)."""
    text = open(os.path.join(RESOURCES, "recommender.conf.template")).read()
    values = {
        "load_modules": "\n".join(f"load_module {module};" for module in MODULES),
        "pid_file": f"{folder}/nginx.pid", "error_log": f"{folder}/error.log", "temp_folder": folder,
        "listen_address": "127.0.0.1", "listen_port": str(port), "control_socket": f"{folder}/control.sock",
        "state_file": f"{folder}/traffic.state", "config_id": "benchmark",
        "traffic_lua": open(os.path.join(RESOURCES, "traffic.lua")).read(),
        "interleave_lua": open(os.path.join(RESOURCES, "interleave.lua")).read(),
        "shadow_lua": open(os.path.join(RESOURCES, "shadow.lua")).read(),
    }
    for name, value in values.items():
        text = text.replace("{{" + name + "}}", value)
    if "{{" in text:
        raise SystemExit(f"the template has a placeholder this driver does not fill: {re.findall('{{[a-z_]+}}', text)}")
    return text


def control(folder, method, path, body=None):
    connection = http.client.HTTPConnection("nginx", timeout=5)
    connection.sock = socket.socket(socket.AF_UNIX)
    connection.sock.connect(f"{folder}/control.sock")
    connection.request(method, path, body=body)
    response = connection.getresponse()
    text = response.read().decode()
    if response.status != 200:
        raise SystemExit(f"nginx answered {response.status} to {method} {path}: {text}")
    return text


def wait_healthy(port):
    for _ in range(600):
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"recengine serve on {port} did not become healthy")


def load_wrk(port):
    script = os.path.join(WORK, "users.lua")
    with open(script, "w") as out:
        out.write(f"""math.randomseed(42)
request = function() return wrk.format("GET", "/recommend/u" .. math.random(0, {USERS - 1}) .. "?k=10") end
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout
  io.write(string.format('JSON {{"requests": %d, "seconds": %.3f, "errors": %d, "p50_ms": %.3f, "p99_ms": %.3f}}\\n',
    summary.requests, summary.duration / 1e6, errors, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
""")
    output = subprocess.run(
        ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{int(SECONDS)}s", "--timeout", "10s", "-s", script, f"http://127.0.0.1:{port}"],
        capture_output=True, text=True, check=True).stdout
    return json.loads(output.split("JSON ", 1)[1])


def load_python(port):
    """The fallback without wrk: CONNECTIONS keep-alive connections in threads, each sending its next
    request when the last one answered; a failed request is counted, never retried. Python bounds
    the throughput here: the figures compare rows, they are not nginx's ceiling."""
    latencies, errors, lock = [], [0], threading.Lock()
    deadline = time.monotonic() + SECONDS

    def run(index):
        rng = random.Random(index)
        connection = None
        while time.monotonic() < deadline:
            if connection is None:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            started = time.monotonic()
            try:
                connection.request("GET", f"/recommend/u{rng.randrange(USERS)}?k=10")
                response = connection.getresponse()
                response.read()
                failed = response.status != 200
            except OSError:
                failed = True
                connection.close()
                connection = None
            with lock:
                latencies.append((time.monotonic() - started) * 1000)
                errors[0] += failed

    threads = [threading.Thread(target=run, args=(index,)) for index in range(CONNECTIONS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    latencies.sort()
    return {"requests": len(latencies), "seconds": time.monotonic() - started, "errors": errors[0],
            "p50_ms": latencies[len(latencies) // 2], "p99_ms": latencies[int(len(latencies) * 0.99)]}


def main():
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    children = []
    folder = os.path.join(WORK, "nginx")
    os.makedirs(folder)
    try:
        log("training one model for both colours")
        write_ratings(f"{WORK}/ratings.csv")
        subprocess.run([RECENGINE, "train", "--ratings", f"{WORK}/ratings.csv", "--out", f"{WORK}/model"],
                       check=True, stdout=subprocess.DEVNULL)
        ports = {"blue": free_port(), "green": free_port(), "slow": free_port()}
        extra = {"slow": ["--fault-latency-ms", "500", "--fault-latency-share", "1"]}
        for color, port in ports.items():
            children.append(subprocess.Popen(
                [RECENGINE, "serve", "--model", f"{WORK}/model", "--port", str(port), "--color", color, *extra.get(color, [])],
                stdout=subprocess.DEVNULL, stderr=open(f"{WORK}/{color}.log", "w")))
        for port in ports.values():
            wait_healthy(port)
        nginx_port = free_port()
        with open(f"{WORK}/nginx.conf", "w") as out:
            out.write(render(nginx_port, folder))
        subprocess.run(["nginx", "-c", f"{WORK}/nginx.conf", "-p", folder], check=True)
        down = free_port()  # nothing listens there
        rows = [
            ("no shadow", None, None),
            ("shadow 10 %", f"127.0.0.1:{ports['green']}", 10),
            ("shadow 100 %", f"127.0.0.1:{ports['green']}", 100),
            ("shadow 100 %, new colour 500 ms late", f"127.0.0.1:{ports['slow']}", 100),
            ("shadow 100 %, new colour down", f"127.0.0.1:{down}", 100),
        ]
        results = {name: [] for name, _, _ in rows}
        loads = []
        generation = 0
        for round_number in range(1, ROUNDS + 1):
            for name, address, share in rows:
                generation += 1
                split = f"generation {generation}\nmode sticky\nbackend blue 127.0.0.1:{ports['blue']} 100\n"
                if address:
                    split += f"backend green {address} 0\nshadow green {share} bench-{generation}\n"
                control(folder, "POST", "/traffic", split)
                log(f"round {round_number}/{ROUNDS}, {name}: {SECONDS:.0f} s of load")
                measured = load_wrk(nginx_port) if shutil.which("wrk") else load_python(nginx_port)
                loads.append(os.getloadavg()[0])
                time.sleep(2.5)  # the last comparisons end (2 s timeout)
                counts = dict(line.split(" ", 1) for line in control(folder, "GET", "/shadow").splitlines()
                              if re.match(r"^(compared|errors|dropped|timeouts|sampled) ", line))
                results[name].append((measured, counts))
    finally:
        if os.path.exists(f"{folder}/nginx.pid"):
            subprocess.run(["nginx", "-c", f"{WORK}/nginx.conf", "-p", folder, "-s", "quit"], check=False)
        for child in children:
            child.send_signal(signal.SIGTERM)
        for child in children:
            child.wait()

    def spread(values, format_):
        """The median, and the lowest and highest of the rounds."""
        return f"{format_(statistics.median(values))} ({format_(min(values))}–{format_(max(values))})"

    def rate(measured):
        return measured["requests"] / measured["seconds"]

    base = results[rows[0][0]]
    base_rate = statistics.median(rate(measured) for measured, _ in base)
    base_p99 = statistics.median(measured["p99_ms"] for measured, _ in base)
    tool = f"wrk -t2 -c{CONNECTIONS}" if shutil.which("wrk") else f"Python, {CONNECTIONS} keep-alive connections (no wrk)"
    print(f"\n## Live traffic through nginx: {tool}, {SECONDS:.0f} s per row, {ROUNDS} rounds of the rows interleaved, "
          f"random users, k = 10\n")
    print("Median of the rounds (lowest–highest). Ratios are of the medians to the no-shadow row's; failed live")
    print("requests and nginx's counts are the sums over the rounds. 1-minute load average at the end of each")
    print(f"measurement: median {statistics.median(loads):.1f} (lowest {min(loads):.1f}, highest {max(loads):.1f}) "
          f"on {os.cpu_count()} cores.\n")
    print("| row | requests/s | vs no shadow | p50 ms | p99 ms | p99 vs no shadow | failed live | compared | shadow errors | dropped |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, _, _ in rows:
        runs = results[name]
        rates = [rate(measured) for measured, _ in runs]
        p99s = [measured["p99_ms"] for measured, _ in runs]

        def total(key):
            values = [counts.get(key) for _, counts in runs]
            return "-" if any(value is None for value in values) else str(sum(int(value) for value in values))

        print(f"| {name} | {spread(rates, lambda v: f'{v:.0f}')} | {statistics.median(rates) / base_rate * 100:.1f} % | "
              f"{spread([measured['p50_ms'] for measured, _ in runs], lambda v: f'{v:.2f}')} | "
              f"{spread(p99s, lambda v: f'{v:.2f}')} | {statistics.median(p99s) / base_p99 * 100:.0f} % | "
              f"{sum(measured['errors'] for measured, _ in runs)} | {total('compared')} | {total('errors')} | "
              f"{total('dropped')} |")


if __name__ == "__main__":
    main()
