"""Times the seed's in-process top-20 (the `algo.predict` loop) for random users; prints JSON."""
import json
import os
import random
import statistics
import sys
import time

os.environ.setdefault("RATINGS", sys.argv[1])
sys.path.insert(0, os.path.dirname(__file__))
import seed_app  # noqa: E402  (trains the model)

random.seed(1)
users = [str(random.randint(1, 943)) for _ in range(int(sys.argv[2]) if len(sys.argv) > 2 else 100)]
samples = []
for user in users:
    start = time.perf_counter()
    seed_app.recommend(user)
    samples.append((time.perf_counter() - start) * 1e6)
samples.sort()
print(json.dumps({"repetitions": len(samples), "mean_us": statistics.mean(samples), "p50_us": samples[len(samples) // 2]}))
