"""The judge against today's fixed-threshold gates, side by side, on loopback: repeated short
rollouts of an equal-quality candidate (A/A: the same data, another training seed) and of known
regressions (faults injected into the candidate's server, named as such), each under the traffic
simulator replaying held-out ratings neither colour trained on.

Run by Benchmarks/judge (which builds the release binaries first); not a test.
"""
import json
import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "faults.d"))
import driver as faults  # noqa: E402  (Case, Load, free_port)

RECENGINE = os.environ["RECENGINE_BIN"]
TRIALS = int(os.environ.get("JUDGE_TRIALS", "20"))
RATE = os.environ.get("JUDGE_RATE", "600")

FIXED = """  gates:
    - name: error-rate
      query: (sum(rate(recengine_http_requests_total{color="{{color}}",status=~"5.."}[10s])) or vector(0)) / sum(rate(recengine_http_requests_total{color="{{color}}"}[10s]))
      max: 0.05
      initialDelay: 4s
      interval: 2s
      count: 2
      onNoData: inconclusive
    - name: engagement-vs-live
      query: (sum(rate(recengine_conversions_total{color="{{color}}"}[10s])) / sum(rate(recengine_recommendations_served_total{color="{{color}}"}[10s]))) / (sum(rate(recengine_conversions_total{color="{{live}}"}[10s])) / sum(rate(recengine_recommendations_served_total{color="{{live}}"}[10s])))
      min: 0.8
      initialDelay: 4s
      interval: 2s
      count: 2
      onNoData: inconclusive
    - name: p95-latency
      query: histogram_quantile(0.95, sum by (le) (rate(recengine_http_request_duration_seconds_bucket{color="{{color}}",route="/recommend/{userId}"}[10s])))
      max: 0.1
      initialDelay: 4s
      interval: 2s
      count: 2
      onNoData: inconclusive
"""

JUDGE = """  judge:
    interval: 1s
    maxWait: 180s
    metrics:
      - name: engagement
        proportion:
          successes: sum by (user_bucket) (recengine_conversions_total{color="{{color}}"})
          trials: sum by (user_bucket) (recengine_recommendations_served_total{color="{{color}}"})
          units: user_bucket
        bad: decrease
        effect: 0.1
        critical: true
      - name: errors
        proportion:
          successes: sum(recengine_http_requests_total{color="{{color}}",status=~"5.."})
          trials: sum(recengine_http_requests_total{color="{{color}}"})
        bad: increase
        effect: {absolute: 0.01}
        critical: true
      - name: latency
        histogram: sum by (le) (recengine_http_request_duration_seconds_bucket{color="{{color}}",route="/recommend/{userId}"})
        quantiles: [0.5, 0.95]
        bad: increase
        effect: 1.0
        critical: true
"""


class Bench(faults.Case):
    def write_data(self):
        """Ratings with a low-rank structure, 20,000 users (a sticky split compares groups of users:
        with few users, their differences swamp a model's); 20 % held out as the replayed 'future'."""
        rng = random.Random(21)
        users = [[rng.gauss(0, 1) for _ in range(3)] for _ in range(20000)]
        items = [[rng.gauss(0, 1) for _ in range(3)] for _ in range(200)]
        rows = []
        for u, user in enumerate(users):
            for i in rng.sample(range(200), 20):
                score = 3 + sum(a * b for a, b in zip(user, items[i]))
                rows.append((f"u{u}", f"m{i}", int(min(5, max(1, round(score))))))
        rng.shuffle(rows)
        test, train = rows[: len(rows) // 5], rows[len(rows) // 5:]
        for name, part in (("train.csv", train), ("test.csv", test)):
            with open(os.path.join(self.folder, name), "w") as f:
                f.write("user_id,movie_id,rating\n" + "".join(f"{a},{b},{c}\n" for a, b, c in part))

    def bench_pipeline(self, analysis, seed=0, args="[]"):
        text = f"""version: 1
name: svc
history: releases/history.jsonl
stages:
  - name: train
    uses: train
    with: {{ratings: train.csv, model: models/m, factors: 8, epochs: 40, lr: 0.01, seed: {seed}}}
deploy:
  runtime: process
  service: svc
  args: {args}
  health: {{path: /health, timeout: 20s}}
traffic:
  nginx: {{config: releases/state/svc/nginx.conf, listen: {self.nginx_port}}}
  mode: sticky
  steps: [25, 100]
  wait: 8s
  stopOld: true
  drain: 1s
analysis:
  prometheus: http://127.0.0.1:{self.prometheus_port}
{analysis}
hooks:
  duringStep:
    - [{RECENGINE}, simulate, --ratings, test.csv, --url, "http://127.0.0.1:{self.nginx_port}", --rate, "{RATE}"]
"""
        with open(os.path.join(self.folder, "pipeline.yml"), "w") as f:
            f.write(text)


def trial(case, analysis, seed, args):
    case.bench_pipeline(analysis, seed=seed, args=args)
    result = case.orchestrate("run", "pipeline.yml", "--force")
    record = case.records()[-1]
    steps = record.get("rollout", {}).get("steps", [])
    first = steps[0] if steps else None
    decided = None
    if first and first.get("finished_on"):
        decided = faults.iso_seconds(first["finished_on"]) - faults.iso_seconds(first["started_on"])
    rolled_back = record["outcome"] != "succeeded"
    if not rolled_back and args != "[]":
        # A regression promoted by mistake: put the good model back for the next trial.
        case.orchestrate("rollback", "pipeline.yml")
    failure = record.get("failure") or ""
    return {"rolled_back": rolled_back, "at_first_step": rolled_back and len(steps) == 1, "decided": decided,
            "inconclusive": "inconclusive" in failure, "failure": failure, "exit": result.returncode}


def run(name, analysis):
    case = Bench(f"judge-{name}")
    results = {}
    try:
        case.write_data()
        case.bench_pipeline(analysis)
        case.start_prometheus()
        case.first_release()
        plans = [("A/A", "[]", TRIALS), ("engagement -20 %", '[--fault-random-share, "0.35"]', TRIALS),
                 ("+2 points of 5xx", '[--fault-rate, "0.02"]', 3),
                 ("+40 ms p95, same median", '[--fault-latency-ms, "40", --fault-latency-share, "0.1"]', 3)]
        for label, args, count in plans:
            outcomes = []
            for index in range(count):
                outcome = trial(case, analysis, seed=100 + index, args=args)
                outcomes.append(outcome)
                print(f"  {name} {label} #{index + 1}: {'rolled back' if outcome['rolled_back'] else 'promoted'}"
                      f"{' at step 1' if outcome['at_first_step'] else ''}, step 1 decided in {outcome['decided'] or 0:.1f} s; {outcome['failure'][:120]}",
                      file=sys.stderr, flush=True)
            results[label] = outcomes
    finally:
        case.close()
    return results


def summary(results):
    aa = results["A/A"]
    worse = results["engagement -20 %"]
    errors = results["+2 points of 5xx"]
    tail = results["+40 ms p95, same median"]
    mean = lambda values: sum(values) / len(values) if values else 0
    return [
        f"{sum(o['rolled_back'] and not o['inconclusive'] for o in aa)}/{len(aa)} (+{sum(o['inconclusive'] for o in aa)} inconclusive)",
        f"{sum(o['rolled_back'] for o in worse)}/{len(worse)} ({sum(o['at_first_step'] for o in worse)} at 25 %)",
        f"{sum(o['at_first_step'] for o in errors)}/{len(errors)}",
        f"{sum(o['at_first_step'] for o in tail)}/{len(tail)}",
        f"{mean([o['decided'] for o in aa if o['decided']]):.1f} s / {mean([o['decided'] for o in worse + errors + tail if o['decided'] and o['rolled_back']]):.1f} s",
    ]


def main():
    os.makedirs(faults.ROOT, exist_ok=True)
    judge = run("judge", JUDGE)
    fixed = run("fixed", FIXED)
    print()
    print(f"{TRIALS} A/A and {TRIALS} known-worse rollouts each, 3 of each fault; simulator at {RATE} requests/s; steps 25/100, wait 8 s (judge: up to 180 s)")
    print()
    print("| | A/A false rollbacks (on evidence) | known-worse (engagement -20 %) rolled back | +2 points 5xx caught at 25 % | +40 ms p95 (same median) caught at 25 % | mean step-1 time to decision (A/A / regressions) |")
    print("|---|---|---|---|---|---|")
    print("| judge | " + " | ".join(summary(judge)) + " |")
    print("| fixed thresholds (today's demo gates) | " + " | ".join(summary(fixed)) + " |")


if __name__ == "__main__":
    main()
