# Writes report-history.jsonl, the history the release report tests read: python3 make-report-history.py
import json, datetime
T0 = datetime.datetime(2026, 12, 1, 14, 0, 0, tzinfo=datetime.timezone.utc)
def t(s): return (T0 + datetime.timedelta(seconds=s)).strftime("%Y-%m-%dT%H:%M:%SZ")
def base(rid, start, end, outcome, action="release"):
    return {"schema": "orchestrate.release/v1", "action": action, "release_id": rid, "started_on": t(start), "finished_on": t(end),
            "invocation": {"trigger": "manual", "user": "ops", "host": "serving-1", "command": ["orchestrate", "run", "pipelines/demo.yml"]},
            "builder": {"id": "orchestrate", "version": "test"}, "source": {"git_commit": "0123456789abcdef0123456789abcdef01234567", "git_dirty": False},
            "pipeline": {"name": "demo", "path": "pipelines/demo.yml", "sha256": "00" * 32}, "overrides": [], "dry_run": False,
            "stages": [], "outcome": outcome}
def stage(name, metrics, gates=(), dur=1.5):
    return {"status": "succeeded", "name": name, "attempts": 1, "exit_status": 0, "duration_seconds": dur,
            "inputs": [{"path": "data/train.csv", "sha256": "11" * 32}], "outputs": [{"path": "models/demo", "sha256": "22" * 32}],
            "metrics": metrics, "gates": [dict(metric=m, condition=c, value=v, passed=p) for m, c, v, p in gates]}
def meas(gate, cond, at, value, outcome, color):
    q = {"error-rate": 'sum(rate(recengine_http_requests_total{color="%s",status=~"5.."}[10s])) / sum(rate(recengine_http_requests_total{color="%s"}[10s]))' % (color, color),
         "engagement": 'sum(rate(recengine_conversions_total{color="%s"}[10s])) / sum(rate(recengine_recommendations_served_total{color="%s"}[10s]))' % (color, color)}[gate]
    m = {"outcome": outcome, "gate": gate, "query": q, "condition": cond, "at": t(at)}
    if value is not None: m["value"] = value
    return m
A = "ab" * 32; B = "cd" * 32; C = "ef" * 32
# rel-1: first release, blue, promoted.
r1 = base("rel-20261201T135000Z-aaaaaa", -600, -560, "succeeded")
r1["stages"] = [stage("train", {"train_rmse": 0.70}), stage("evaluate", {"rmse": 0.95, "precision_at_k": 0.60}, [("rmse", "<= 0.97", 0.95, True)])]
r1["model"] = {"path": "models/demo", "sha256": A, "version": "abababababab"}
r1["deployment"] = {"runtime": "process", "color": "blue", "model_sha256": A}
r1["rollout"] = {"target": "blue", "mode": "sticky", "steps": [
    {"weight": 100, "started_on": t(-590), "finished_on": t(-570), "passed": True,
     "measurements": [meas("error-rate", "<= 0.05", -585, 0.0, "success", "blue"), meas("error-rate", "<= 0.05", -580, 0.001, "success", "blue")]}],
    "events": [{"at": t(-595), "kind": "plan", "detail": "live none, releasing to blue"}, {"at": t(-594), "kind": "deploy", "detail": "starting blue"},
               {"at": t(-591), "kind": "healthy", "detail": "blue answers /health at 127.0.0.1:40001 (model abababababab)"},
               {"at": t(-590), "kind": "shift", "detail": "blue 100% / none 0%"}, {"at": t(-570), "kind": "promote", "detail": "blue is live with model abababababab"}]}
# rel-2: green, 25% passed (gates + judge), 50% failed engagement -> rolled back.
r2 = base("rel-20261201T140000Z-bbbbbb", 0, 60, "rolled_back")
r2["failure"] = "gate engagement >= 0.02 failed with 0.011"
r2["stages"] = [stage("train", {"train_rmse": 0.68}), stage("evaluate", {"rmse": 0.93, "precision_at_k": 0.62}, [("rmse", "<= 0.97", 0.93, True)])]
r2["model"] = {"path": "models/demo", "sha256": B, "version": "cdcdcdcdcdcd"}
def comparison(ns, nt, ls, lt, d, lo, up, cls):
    return {"new_successes": ns, "new_trials": nt, "live_successes": ls, "live_trials": lt, "difference": d, "lower": lo, "upper": up, "margin": 0.004, "classification": cls}
def look(at, el, comp, decision, rule):
    return {"at": t(at), "elapsed": el, "metrics": [{"metric": "engagement", "classification": comp["classification"], "comparisons": [comp], "rule": rule, "critical": True, "weight": 1}],
            "decision": decision, "rule": rule}
r2["rollout"] = {"live": "blue", "target": "green", "mode": "sticky", "steps": [
    {"weight": 25, "started_on": t(10), "finished_on": t(25), "passed": True,
     "measurements": [meas("error-rate", "<= 0.05", 14, 0.0, "success", "green"), meas("engagement", ">= 0.02", 14, 0.031, "success", "green"),
                      meas("error-rate", "<= 0.05", 18, 0.002, "success", "green"), meas("engagement", ">= 0.02", 18, 0.027, "success", "green")],
     "judge": [look(16, 6, comparison(30, 1000, 90, 3000, 0.0, -0.02, 0.02, "Undecided"), "undecided", "the interval still straddles the margin"),
               look(22, 12, comparison(80, 2500, 240, 7500, 0.0005, -0.003, 0.004, "Pass"), "pass", "every critical metric passed")],
     "judge_decision": "pass", "judge_rule": "every critical metric passed"},
    {"weight": 50, "started_on": t(25), "finished_on": t(40), "passed": False,
     "measurements": [meas("error-rate", "<= 0.05", 29, None, "nodata", "green"), meas("engagement", ">= 0.02", 29, 0.011, "failure", "green")]}],
    "events": [{"at": t(5), "kind": "plan", "detail": "live blue, releasing to green"}, {"at": t(6), "kind": "deploy", "detail": "starting green"},
               {"at": t(9), "kind": "healthy", "detail": "green answers /health at 127.0.0.1:40002 (model cdcdcdcdcdcd)"},
               {"at": t(10), "kind": "shift", "detail": "green 25% / blue 75%"}, {"at": t(25), "kind": "shift", "detail": "green 50% / blue 50%"},
               {"at": t(40), "kind": "rollback", "detail": "gate engagement >= 0.02 failed with 0.011"},
               {"at": t(41), "kind": "shift", "detail": "blue 100% (traffic restored)"}, {"at": t(43), "kind": "stop", "detail": "green stopped"}]}
# rel-3: rollback to rel-1's model on green? -> `orchestrate rollback` record, then rel-4 promoted green with C.
r3 = base("rel-20261201T141000Z-cccccc", 600, 650, "succeeded")
r3["stages"] = [stage("train", {"train_rmse": 0.66}), stage("evaluate", {"rmse": 0.92, "precision_at_k": 0.63}, [("rmse", "<= 0.97", 0.92, True)])]
r3["model"] = {"path": "models/demo", "sha256": C, "version": "efefefefefef"}
r3["deployment"] = {"runtime": "process", "color": "green", "model_sha256": C}
r3["rollout"] = {"live": "blue", "target": "green", "mode": "sticky", "steps": [
    {"weight": 50, "started_on": t(610), "finished_on": t(620), "passed": True, "measurements": [meas("error-rate", "<= 0.05", 615, 0.0, "success", "green")]},
    {"weight": 100, "started_on": t(620), "finished_on": t(630), "passed": True, "measurements": [meas("error-rate", "<= 0.05", 625, 0.0, "success", "green")]}],
    "events": [{"at": t(605), "kind": "plan", "detail": "live blue, releasing to green"},
               {"at": t(610), "kind": "shift", "detail": "green 50% / blue 50%"}, {"at": t(620), "kind": "shift", "detail": "green 100% / blue 0%"},
               {"at": t(630), "kind": "promote", "detail": "green is live with model efefefefefef"}, {"at": t(632), "kind": "drain", "detail": "blue drains for 2s"},
               {"at": t(634), "kind": "stop", "detail": "blue stopped after the drain"}]}
# rel-4: orchestrate rollback to rel-1's model, redeployed on blue.
r4 = base("rel-20261201T143000Z-dddddd", 1800, 1810, "succeeded", action="rollback")
r4["model"] = {"path": "", "sha256": A, "version": "abababababab"}
r4["deployment"] = {"runtime": "process", "color": "blue", "model_sha256": A}
r4["rollout"] = {"live": "green", "target": "blue", "mode": "sticky", "steps": [],
    "events": [{"at": t(1805), "kind": "deploy", "detail": "blue redeployed with abababababab"}, {"at": t(1806), "kind": "shift", "detail": "blue 100%"}]}
with open(__import__("os").path.join(__import__("os").path.dirname(__file__), "report-history.jsonl"), "w") as f:
    for r in (r1, r2, r3, r4): f.write(json.dumps(r, sort_keys=True) + "\n")
