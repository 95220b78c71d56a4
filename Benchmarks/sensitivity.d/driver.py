"""How many users the A/B judge, A/B with CUPED and interleaving need, on loopback.

Phase 1, the real stack: MovieLens 100k, 20 % of the ratings held out at random (seed 22) and replayed by `recengine simulate` at 100 requests/s; the live colour serves
SVD (seed 0). The simulator records what each replayed user did (`--users`): before any release
(seed 7: the CUPED covariate), on the live model (seed 1), and, for each candidate, one
`orchestrate run` with steps [0, 100] and every user interleaved (`traffic.interleave.share:
100`): at 0 % nginx merges both colours' lists by team draft and the simulator records which
team placed each movie a user acted on; at 100 % every user is on the candidate (seed 1 again:
the same users, in the same order, as the live recording). The release is then rolled back.
Two more releases of the live model record nginx's sticky split at 50 % and at 45 %.

Phase 2, resampling: an experiment of N users draws users at random (with replacement) from the
recorded ones, each to a colour by a fair coin and to one of recengine's 16 user buckets; the
judge's own code (`orchestrate judge-counts`) decides at looks 15 % apart (20, 23, 26, ... users)
until it decides, as a step does. Per candidate and method: the users by which 95 % of the
experiments decided the right way (their 95th percentile, an experiment that never decided or
decided wrongly counting as never), the wrong decisions, and the minutes those users take at 100
requests/s with the recorded requests per user.

Run by Benchmarks/sensitivity (which builds the binaries first); not a test.
"""
import hashlib
import json
import math
import os
import random
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "faults.d"))
import driver as faults  # noqa: E402  (Case)

RECENGINE = os.environ["RECENGINE_BIN"]
ORCHESTRATE = os.environ["ORCHESTRATE_BIN"]
RATINGS = os.environ["SENS_RATINGS"]
STEP = int(os.environ.get("SENS_STEP", "30"))
# The recording before any release, CUPED's covariate: as long as the product's window would be
# (`cuped: 10m` in the shipped pipelines). A window as short as a step holds three requests per
# user, so each bucket's earlier rate is itself mostly noise and CUPED looks weaker than it is.
PRE = int(os.environ.get("SENS_PRE", "600"))
REPS = int(os.environ.get("SENS_REPS", "100"))
RATE = 100
BUCKETS = 16
# Looks 15 % apart, up to two million users.
GRID = sorted({int(round(20 * 1.15 ** k)) for k in range(200) if 20 * 1.15 ** k <= 2_000_000})
TARGETS = (0.05, 0.10, 0.20)
# The sample ratio check's resampled steps: users a step.
SRM_USERS = 10_000


def log(text):
    print(text, file=sys.stderr, flush=True)


class Bench(faults.Case):
    def write_ratings(self):
        """MovieLens 100k: 20 % of the ratings held out at random (test.csv, replayed), the rest trains."""
        rows = []
        with open(RATINGS) as f:
            for line in f:
                user, item, rating, _ = line.split("\t")
                rows.append((user, item, rating))
        rng = random.Random(22)
        rng.shuffle(rows)
        test, train = rows[: len(rows) // 5], rows[len(rows) // 5:]
        for name, part in (("train.csv", train), ("test.csv", test)):
            with open(os.path.join(self.folder, name), "w") as f:
                f.write("user_id,movie_id,rating\n" + "".join(f"{a},{b},{c}\n" for a, b, c in part))
        os.makedirs(os.path.join(self.folder, "rec"), exist_ok=True)

    def bench_pipeline(self, algorithm="svd", seed=0, args=(), steps="[0, 100]", interleave=True):
        simulate = (f"n=$(cat rec/counter 2>/dev/null || echo 0); echo $((n+1)) > rec/counter; "
                    f"exec {RECENGINE} simulate --ratings test.csv --url http://127.0.0.1:{self.nginx_port} "
                    f"--rate {RATE} --seed 1 --users rec/$SENS_LABEL-$n.json --output json > rec/$SENS_LABEL-$n.out")
        text = f"""version: 1
name: svc
history: releases/history.jsonl
stages:
  - name: train
    uses: train
    with: {{ratings: train.csv, model: models/m, algorithm: {algorithm}, seed: {seed}}}
deploy:
  runtime: process
  service: svc
  args: {json.dumps(list(args))}
  health: {{path: /health, timeout: 30s}}
traffic:
  nginx: {{config: releases/state/svc/nginx.conf, listen: {self.nginx_port}}}
  mode: sticky
  steps: {steps}
{"  interleave: {share: 100}" if interleave else ""}
  wait: {STEP}s
  stopOld: true
  drain: 1s
{self.judge_block() if interleave else ""}
hooks:
  duringStep:
    - [bash, -c, {json.dumps(simulate)}]
"""
        with open(os.path.join(self.folder, "pipeline.yml"), "w") as f:
            f.write(text)

    def judge_block(self):
        """nginx's interleaving wants a judge of it: one with a margin too small to decide, that
        holds the step at `maxWait` for `orchestrate promote` (sent after the step's seconds)."""
        return f"""analysis:
  prometheus: http://127.0.0.1:{self.prometheus_port}
  judge:
    interval: 1s
    maxWait: {STEP}s
    onInconclusive: hold
    metrics:
      - name: preference
        interleaving: {{}}
        bad: decrease
        effect: {{absolute: 0.0001}}
        critical: true
"""

    def release(self, label, **pipeline):
        """One release recorded step by step (rec/LABEL-0.json, -1.json), then rolled back."""
        self.bench_pipeline(**pipeline)
        try:
            os.remove(os.path.join(self.folder, "rec/counter"))
        except OSError:
            pass
        started = time.monotonic()
        run = subprocess.Popen([ORCHESTRATE, "run", "pipeline.yml", "--force"], cwd=self.folder,
                               env={**os.environ, "RECENGINE_BIN": RECENGINE, "SENS_LABEL": label},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if pipeline.get("interleave", True):
            # The interleaving step holds once its seconds are over: promote it to 100 %.
            self.wait_for(lambda: (self.run_state() or {}).get("phase") == "shifting"
                          and (self.run_state() or {}).get("weight") == 0, timeout=120)
            time.sleep(STEP + 1)
            while run.poll() is None and (self.run_state() or {}).get("weight") == 0:
                self.orchestrate("promote", "pipeline.yml")
                time.sleep(0.5)
        _, stderr = run.communicate(timeout=300)
        result = subprocess.CompletedProcess(run.args, run.returncode, "", stderr)
        outcome = self.records()[-1]["outcome"]
        log(f"  {label}: run exited {result.returncode} ({outcome}) in {time.monotonic() - started:.0f} s")
        if result.returncode != 0 or outcome != "succeeded":
            raise RuntimeError(f"{label}: {result.stderr[-2000:]}")
        # Back to the first release, by name: `rollback` alone returns to the promoted release
        # before the live one, which after an earlier candidate's rollback is that candidate. And
        # with the first release's pipeline: the colour is started with the pipeline file's
        # deploy args, which are still the candidate's (`--fault-random-share`) until rewritten.
        # A candidate with the first release's model (a random share is a serve argument) is
        # taken for the live release already: `rollback` keeps its colour running, with the
        # candidate's argument. Through a release of another model first, the colour restarts.
        released = self.records()[-1]
        self.bench_pipeline(steps="[100]", interleave=False)
        if released["model"]["sha256"] == self.base["model"]["sha256"] and self.other:
            self.orchestrate("rollback", "pipeline.yml", "--to", self.other["release_id"], check=True,
                             environment={"SENS_LABEL": "rollback"})
        elif released["model"]["sha256"] != self.base["model"]["sha256"] and not self.other:
            self.other = released
        self.orchestrate("rollback", "pipeline.yml", "--to", self.base["release_id"], check=True,
                         environment={"SENS_LABEL": "rollback"})
        back = self.records()[-1]
        if back.get("model", {}).get("sha256") != self.base["model"]["sha256"]:
            raise RuntimeError(f"{label}: rolled back to model {back.get('model')}, not the live one {self.base['model']}")
        return [self.users(f"{label}-{n}") for n in range(2)]

    def simulate(self, label, seed, duration=STEP):
        subprocess.run([RECENGINE, "simulate", "--ratings", "test.csv", "--url", f"http://127.0.0.1:{self.nginx_port}",
                        "--rate", str(RATE), "--duration", str(duration), "--seed", str(seed), "--users", f"rec/{label}-0.json",
                        "--output", "json"], cwd=self.folder, check=True, capture_output=True)
        return self.users(f"{label}-0")

    def users(self, name):
        with open(os.path.join(self.folder, "rec", name + ".json")) as f:
            return json.load(f)


def alone(users):
    """Per user who was answered by one colour alone: (events, recommended, requests, colour)."""
    found = {}
    for user, counts in users.items():
        colours = {c: v for c, v in counts["colors"].items() if c != "interleaved"}
        if colours:
            colour = max(colours, key=lambda c: colours[c]["requests"])
            found[user] = (sum(v["events"] for v in colours.values()), sum(v["recommended"] for v in colours.values()),
                           sum(v["requests"] for v in colours.values()), colour)
    return found


def engagement(records):
    return sum(r[0] for r in records.values()) / max(1, sum(r[1] for r in records.values()))


class Judge:
    """`orchestrate judge-counts`, one request and one answer at a time."""

    def __init__(self):
        self.process = subprocess.Popen([ORCHESTRATE, "judge-counts"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True, bufsize=1)
        self.asked = 0

    def ask(self, request):
        self.asked += 1
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("orchestrate judge-counts stopped")
        return json.loads(line)

    def close(self):
        self.process.stdin.close()
        self.process.wait()


def groups(successes, trials):
    return {str(b): [float(successes[b]), float(trials[b])] for b in range(BUCKETS)}


def ab_experiments(judge, rng, live, new, pre, margin, bad, cuped_too=True):
    """REPS experiments of users drawn from `live` and `new` (arrays of events, recommended per
    user), each to a colour by a coin and to a bucket; the first look where the judge decides,
    for the plain comparison and with the users' earlier counts (`pre`, same order as `live` and
    `new` users) as CUPED's covariate. Returns per method a list of (users at the decision or
    None, classification) and the variance reductions at CUPED's decisions."""
    results = {"ab": [], "cuped": []}
    reductions = []
    live_s, live_t, live_pre_s, live_pre_t = live
    new_s, new_t, new_pre_s, new_pre_t = new
    for _ in range(REPS):
        sums = np.zeros((2, 2, BUCKETS))  # colour (new, live), (successes, trials), bucket
        covariate = np.zeros((2, BUCKETS))
        decided = {}
        drawn = 0
        for size in GRID:
            step = size - drawn
            drawn = size
            to_new = rng.binomial(step, 0.5)
            for colour, count, (s, t, ps, pt) in ((0, to_new, (new_s, new_t, new_pre_s, new_pre_t)),
                                                  (1, step - to_new, (live_s, live_t, live_pre_s, live_pre_t))):
                if count == 0:
                    continue
                cells = rng.multinomial(count, np.full(len(s) * BUCKETS, 1 / (len(s) * BUCKETS))).reshape(len(s), BUCKETS)
                sums[colour, 0] += cells.T @ s
                sums[colour, 1] += cells.T @ t
                covariate[0] += cells.T @ ps
                covariate[1] += cells.T @ pt
            base = {"method": "ab", "bad": bad, "effect": margin, "absolute": False,
                    "new": groups(sums[0, 0], sums[0, 1]), "live": groups(sums[1, 0], sums[1, 1])}
            for method in ("ab", "cuped") if cuped_too else ("ab",):
                if method in decided:
                    continue
                request = dict(base)
                if method == "cuped":
                    request["covariate"] = groups(covariate[0], covariate[1])
                answer = judge.ask(request)
                if answer["classification"] in ("Pass", "Low", "High"):
                    decided[method] = (size, answer["classification"])
                    if method == "cuped" and answer.get("varianceReduction") is not None:
                        reductions.append(answer["varianceReduction"])
            if len(decided) == (2 if cuped_too else 1):
                break
        for method in ("ab", "cuped") if cuped_too else ("ab",):
            results[method].append(decided.get(method, (None, "Undecided")))
    return results, reductions


def interleaving_experiments(judge, rng, outcomes, margin, bad):
    """REPS experiments of users drawn from the interleaved users' outcomes (win, loss, tie, none)."""
    share = np.array(outcomes, dtype=float) / sum(outcomes)
    found = []
    for _ in range(REPS):
        counts = np.zeros(4)
        drawn = 0
        decision = (None, "Undecided")
        for size in GRID:
            counts += rng.multinomial(size - drawn, share)
            drawn = size
            answer = judge.ask({"method": "interleaving", "bad": bad, "effect": margin, "absolute": True,
                                "wins": counts[0], "losses": counts[1], "ties": counts[2]})
            if answer["classification"] in ("Pass", "Low", "High"):
                decision = (size, answer["classification"])
                break
        found.append(decision)
    return found


def srm_experiments(judge, rng, requests, share, users_per_step):
    """REPS steps of `users_per_step` users, each to the new colour with probability `share`, checked
    against 50 % at every look, by users and by requests (the users' recorded requests). Returns
    per count the users at the first mismatch (None: none), and with chi-squared (one degree of
    freedom, the reference before) instead of F(1, 15)."""
    found = {"users": [], "requests": [], "users chi2": [], "requests chi2": []}
    grid = [n for n in GRID if n <= users_per_step] + [users_per_step]
    for _ in range(REPS):
        sums = np.zeros((2, 2, BUCKETS))  # colour, (users, requests), bucket
        drawn = 0
        first = {}
        for size in grid:
            step = size - drawn
            drawn = size
            if step <= 0:
                continue
            picks = rng.integers(0, len(requests), step)
            colours = (rng.random(step) >= share).astype(int)
            buckets = rng.integers(0, BUCKETS, step)
            np.add.at(sums, (colours, 0, buckets), 1)
            np.add.at(sums, (colours, 1, buckets), requests[picks])
            users = {"new": {str(b): [float(sums[0, 0, b])] for b in range(BUCKETS)},
                     "live": {str(b): [float(sums[1, 0, b])] for b in range(BUCKETS)}}
            for index, count in enumerate(("users", "requests")):
                # The requests with the users of each bucket: no test while a bucket holds too few.
                answer = judge.ask({"method": "srm", "weight": 50, "count": count, "users": users,
                                    "new": {str(b): [float(sums[0, index, b])] for b in range(BUCKETS)},
                                    "live": {str(b): [float(sums[1, index, b])] for b in range(BUCKETS)}})
                if answer.get("mismatch") and count not in first:
                    first[count] = size
                if answer.get("statistic") is not None and math.erfc(math.sqrt(answer["statistic"] / 2)) < 0.001:
                    first.setdefault(count + " chi2", size)
        for key in found:
            found[key].append(first.get(key))
    return found


def bucket(user):
    return int(hashlib.md5(user.encode()).hexdigest()[:8], 16) % BUCKETS


def real_split(judge, records, weight):
    """The sample ratio check of a recorded step: users and requests each colour answered, by bucket."""
    colours = sorted({r[3] for r in records.values()})
    checks = []
    counted = {}
    for index, count in ((0, "users"), (1, "requests")):
        sums = {c: [0.0] * BUCKETS for c in colours}
        for user, record in records.items():
            sums[record[3]][bucket(user)] += 1 if index == 0 else record[2]
        counted[count] = sums
    # The new colour is the one with the smaller share of users at a step below 50 %, else either.
    new = min(colours, key=lambda c: sum(counted["users"][c]))
    live = next(c for c in colours if c != new)
    users = {"new": {str(b): [counted["users"][new][b]] for b in range(BUCKETS)},
             "live": {str(b): [counted["users"][live][b]] for b in range(BUCKETS)}}
    for count, sums in counted.items():
        totals = {c: sum(v) for c, v in sums.items()}
        answer = judge.ask({"method": "srm", "weight": weight, "count": count, "users": users,
                            "new": {str(b): [sums[new][b]] for b in range(BUCKETS)},
                            "live": {str(b): [sums[live][b]] for b in range(BUCKETS)}})
        checks.append((count, totals[new] / (totals[new] + totals[live]), answer))
    return checks


def percentile95(decisions, right):
    """Users by which 95 % of the experiments decided `right` (None: fewer than 95 % ever did)."""
    sizes = sorted(size if classification in right else math.inf for size, classification in decisions)
    value = sizes[math.ceil(0.95 * len(sizes)) - 1]
    return None if value == math.inf else value


def fmt(value):
    return "never (> 2,000,000)" if value is None else f"{value:,}"


def main():
    os.makedirs(faults.ROOT, exist_ok=True)
    case = Bench("sensitivity")
    judge = Judge()
    rng = np.random.default_rng(22)
    started = time.monotonic()
    try:
        # Phase 1: the real stack.
        case.start_prometheus()
        case.bench_pipeline(steps="[100]", interleave=False)
        case.orchestrate("run", "pipeline.yml", "--force", environment={"SENS_LABEL": "first"}, check=True)
        case.base = case.records()[-1]
        case.other = None
        log(f"live: SVD on {sum(1 for _ in open(os.path.join(case.folder, 'train.csv'))) - 1} ratings; recording {STEP} s steps at {RATE} requests/s")
        pre = alone(case.simulate("pre", seed=7, duration=PRE))
        live = alone(case.simulate("live", seed=1))
        rate_live = engagement(live)
        # A share s of random movies moves engagement from p to (1 - s) p + s q, q a random movie's
        # chance to be one the user liked: s = drop / (1 - q / p).
        liked = {}
        items = set()
        with open(os.path.join(case.folder, "test.csv")) as f:
            next(f)
            for line in f:
                user, item, rating = line.strip().split(",")
                if int(rating) >= 4:
                    liked[user] = liked.get(user, 0) + 1
        with open(os.path.join(case.folder, "train.csv")) as f:
            next(f)
            items = {line.split(",")[1] for line in f}
        q = sum(liked.get(u, 0) * r[1] for u, r in live.items()) / len(items) / max(1, sum(r[1] for r in live.values()))
        shares = {d: min(1.0, d / (1 - q / rate_live)) for d in TARGETS}
        log(f"live engagement {rate_live:.4f}, a random movie {q:.4f}: random shares "
            + ", ".join(f"{s:.3f} for -{d:.0%}" for d, s in shares.items()))
        # A/A: SVD again with other initial factors (equal quality, other lists): the very same
        # model would give both teams the same movie at every round, which credits nobody.
        candidates = [("A/A (SVD, another seed)", {"seed": 7})]
        candidates += [(f"-{d:.0%}", {"args": ["--fault-random-share", f"{shares[d]:.3f}"]}) for d in TARGETS]
        candidates += [("ALS against SVD", {"algorithm": "als"})]
        recorded = {}
        for index, (label, pipeline) in enumerate(candidates):
            interleaved, alone_step = case.release(f"c{index}", **pipeline)
            recorded[label] = (interleaved, alone(alone_step))
        split50 = alone(case.release("split50", steps="[50, 100]", interleave=False)[0])
        split45 = alone(case.release("split45", steps="[45, 100]", interleave=False)[0])
        log(f"recorded in {time.monotonic() - started:.0f} s; resampling {REPS} experiments per row")
    finally:
        case.close()

    # Phase 2: resampled experiments decided by the judge's code.
    users = sorted(set(live))

    def arrays(records):
        chosen = sorted(records)
        return (np.array([records[u][0] for u in chosen], float), np.array([records[u][1] for u in chosen], float),
                np.array([pre.get(u, (0, 0))[0] for u in chosen], float), np.array([pre.get(u, (0, 0))[1] for u in chosen], float))

    live_arrays = arrays(live)
    requests_per_user = sum(r[2] for r in live.values()) / len(live)
    rows = []
    summary = {}
    margins_10 = None
    for label, (interleaved, candidate) in [(l, recorded[l]) for l, _ in candidates[1:]] + [(candidates[0][0], recorded[candidates[0][0]])]:
        change = engagement(candidate) / rate_live - 1
        outcomes = [0, 0, 0, 0]
        colours = sorted({c for counts in interleaved.values() for c in counts.get("credits", {})})
        new_colour = next((r[3] for r in candidate.values()), None)
        interleaved_requests = []
        for counts in interleaved.values():
            credits = counts.get("credits", {})
            mine = credits.get(new_colour, 0)
            theirs = sum(v for c, v in credits.items() if c not in (new_colour, "neutral"))
            outcomes[0 if mine > theirs else 1 if theirs > mine else 2 if mine > 0 else 3] += 1
            interleaved_requests.append(sum(v["requests"] for v in counts["colors"].values()))
        preferred = outcomes[0] / max(1, outcomes[0] + outcomes[1])
        aa = label.startswith("A/A")
        if aa:
            ab_margin, il_margin, bad = margins_10
        else:
            ab_margin, il_margin = abs(change) / 2, abs(preferred - 0.5) / 2
            bad = "decrease" if change < 0 else "increase"
            if label == "-10%":
                margins_10 = (ab_margin, il_margin, "decrease")
        log(f"  {label}: engagement {change:+.1%}, interleaved users preferring new {outcomes[0]}, live {outcomes[1]}, "
            f"ties {outcomes[2]}, none {outcomes[3]}; margins A/B {ab_margin:.4f} (relative), interleaving {il_margin:.4f}")
        if aa:
            # Both colours serve the same model, so their users are exchangeable: both drawn from
            # the two recordings together, and each interleaved user's preference by a coin (an
            # exact null, not the few hundred recorded users' chance lean).
            both = {**{u + "#live": r for u, r in live.items()}, **{u + "#new": r for u, r in candidate.items()}}
            pooled = arrays({u: r for u, r in both.items()})
            pooled = tuple(np.array(x) for x in pooled)
            pre_both = {u: pre.get(u.split("#")[0], (0, 0)) for u in both}
            pooled = (pooled[0], pooled[1], np.array([pre_both[u][0] for u in sorted(both)], float),
                      np.array([pre_both[u][1] for u in sorted(both)], float))
            ab, reductions = ab_experiments(judge, rng, pooled, pooled, pre, ab_margin, bad)
            decided = outcomes[0] + outcomes[1]
            il = interleaving_experiments(judge, rng, [decided / 2, decided / 2, outcomes[2], outcomes[3]], il_margin, bad)
        else:
            ab, reductions = ab_experiments(judge, rng, live_arrays, arrays(candidate), pre, ab_margin, bad)
            il = interleaving_experiments(judge, rng, outcomes, il_margin, bad)
        right = {"Pass"} if aa else ({"Low"} if bad == "decrease" else {"High"})
        wrong = ({"Low", "High"} if aa else {"Pass"})
        per_request = {"ab": requests_per_user, "cuped": requests_per_user,
                       "interleaving": sum(interleaved_requests) / max(1, len(interleaved_requests))}
        summary[label] = {"change": change, "preferred": preferred}
        for method, decisions in (("ab", ab["ab"]), ("cuped", ab["cuped"]), ("interleaving", il)):
            needed = percentile95(decisions, right)
            wrongs = sum(c in wrong for _, c in decisions)
            undecided = sum(c == "Undecided" for _, c in decisions)
            minutes = None if needed is None else needed * per_request[method] / RATE / 60
            summary[label][method] = needed
            rows.append((label, f"{change:+.1%}", f"{preferred:.3f}", method, wrongs, undecided, needed, minutes,
                         (f"{float(np.median(reductions)):.0%}" if method == "cuped" and reductions else "")))
            log(f"    {method}: 95 % by {fmt(needed)} users; wrong {wrongs}/{REPS}, undecided {undecided}")

    srm_fair = srm_experiments(judge, rng, np.array([live[u][2] for u in users], float), 0.5, SRM_USERS)
    srm_skew = srm_experiments(judge, rng, np.array([live[u][2] for u in users], float), 0.45, SRM_USERS)
    real = [("sticky split at 50 %, checked against 50 %", real_split(judge, split50, 50)),
            ("sticky split at 45 %, checked against 50 %", real_split(judge, split45, 50)),
            ("sticky split at 45 %, checked against 45 %", real_split(judge, split45, 45))]
    judge.close()

    names = {"ab": "A/B judge", "cuped": "A/B + CUPED", "interleaving": "interleaving"}
    print()
    print(f"MovieLens 100k, 20 % held out and replayed; {len(live)} users replayed at {RATE} requests/s, "
          f"{requests_per_user:.1f} requests per user in a {STEP} s recording; {REPS} resampled experiments per row, "
          f"judge at 95 %, looks 15 % apart; margin: half the candidate's measured effect, on each method's scale "
          f"(A/A: the -10 % candidate's margins)")
    print()
    print("| candidate | engagement vs live | interleaved users preferring it | method | users for 95 % power | minutes at 100 requests/s | wrong decisions | undecided at 2,000,000 | CUPED variance reduction (median) |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|")
    for label, change, preferred, method, wrongs, undecided, needed, minutes, reduction in rows:
        print(f"| {label} | {change} | {preferred} | {names[method]} | {fmt(needed)} | "
              f"{'-' if minutes is None else f'{minutes:,.1f}'} | {wrongs}/{REPS} | {undecided}/{REPS} | {reduction} |")
    print()
    print(f"| sample ratio check (by 16 user buckets, p < 0.001, looks 15 % apart up to {SRM_USERS:,} users) | "
          "F(1, 15): steps with an alarm | by 2,000 users | by 5,000 users | users at the alarm (median) | "
          "chi-squared (1 df, as before): steps with an alarm | by 2,000 users |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, results in (("A/A: a fair split", srm_fair), ("skewed to 45/55", srm_skew)):
        for count in ("users", "requests"):
            hits = [v for v in results[count] if v is not None]
            chi = [v for v in results[count + " chi2"] if v is not None]
            median = f"{int(np.median(hits)):,}" if hits else "-"
            print(f"| {name}: {count} | {len(hits)}/{REPS} | {sum(v <= 2000 for v in hits)}/{REPS} | "
                  f"{sum(v <= 5000 for v in hits)}/{REPS} | {median} | {len(chi)}/{REPS} | {sum(v <= 2000 for v in chi)}/{REPS} |")
    print()
    print("| the real stack's split, one step of the simulator | count | share seen | p | mismatch |")
    print("|---|---|---:|---:|---|")
    for name, checks in real:
        for count, share, answer in checks:
            print(f"| {name} | {count} | {share:.3f} | {answer.get('pValue') or 0:.2g} | {answer.get('mismatch')} |")
    print()
    for label in summary:
        if label.startswith("A/A"):
            continue
        ab, il, cu = summary[label]["ab"], summary[label]["interleaving"], summary[label]["cuped"]
        ratio = "n/a" if il is None else ("A/B never decided" if ab is None else f"{ab / il:.1f}x")
        print(f"{label}: interleaving needs {ratio} fewer users than the A/B judge (target >= 10x); "
              f"A/B {fmt(ab)}, CUPED {fmt(cu)}, interleaving {fmt(il)}")
    log(f"judge-counts answered {judge.asked} looks; {time.monotonic() - started:.0f} s in all")


if __name__ == "__main__":
    main()
