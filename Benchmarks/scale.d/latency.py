"""Sequential top-k latency of `recengine serve` over one keep-alive connection.

Usage: latency.py PORT USERS REQUESTS K  -> JSON {p50_ms, p99_ms, mean_ms, requests}
Users are drawn at random from 1..USERS (the generator's ids).
"""
import http.client
import json
import random
import sys
import time

port, users, requests, k = (int(a) for a in sys.argv[1:5])
random.seed(7)
connection = http.client.HTTPConnection("127.0.0.1", port)
samples = []
for n in range(requests + 100):
    start = time.perf_counter()
    connection.request("GET", f"/recommend/{random.randint(1, users)}?k={k}")
    response = connection.getresponse()
    body = response.read()
    elapsed = time.perf_counter() - start
    if response.status != 200 or body.count(b",") != k - 1:
        sys.exit(f"unexpected answer {response.status}: {body[:200]!r}")
    if n >= 100:  # the first hundred warm up
        samples.append(elapsed * 1000)
samples.sort()
print(json.dumps({"requests": len(samples), "p50_ms": samples[len(samples) // 2], "p99_ms": samples[int(len(samples) * 0.99)],
                  "mean_ms": sum(samples) / len(samples)}))
