# Writes a release history of about SIZE bytes (hash-chained, with its head file), made of the
# report tests' four records (Tests/OrchestratorTests/Fixtures/report-history.jsonl) repeated one
# hour apart under new release ids, so that `orchestrate history verify` accepts it:
#
#   python3 Benchmarks/history.d/generate.py OUT.jsonl [SIZE_MB]   (default 200)
import datetime, hashlib, json, os, sys

here = os.path.dirname(os.path.abspath(__file__))
fixture = os.path.join(here, "..", "..", "Tests", "OrchestratorTests", "Fixtures", "report-history.jsonl")
out = sys.argv[1]
target = int(float(sys.argv[2] if len(sys.argv) > 2 else 200) * 1_000_000)
templates = [json.loads(line) for line in open(fixture, encoding="utf-8") if line.strip()]
for template in templates:
    template.pop("previous_sha256", None)
FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def shifted(value, hours):
    """Every timestamp in the record moved `hours` later, so that the history runs forward in time."""
    if isinstance(value, dict):
        return {key: shifted(item, hours) for key, item in value.items()}
    if isinstance(value, list):
        return [shifted(item, hours) for item in value]
    if isinstance(value, str) and len(value) == 20 and value.endswith("Z") and value[10] == "T":
        try:
            moment = datetime.datetime.strptime(value, FORMAT) + datetime.timedelta(hours=hours)
            return moment.strftime(FORMAT)
        except ValueError:
            return value
    return value


written, previous, count = 0, None, 0
with open(out, "wb") as history:
    while written < target:
        record = shifted(templates[count % len(templates)], count // len(templates) * 4 - 24 * 365 * 20)
        record["release_id"] = "rel-gen-%08d" % count
        if previous is not None:
            record["previous_sha256"] = previous
        line = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        history.write(line + b"\n")
        previous = hashlib.sha256(line).hexdigest()
        written += len(line) + 1
        count += 1
with open(out + ".head", "w") as head:
    head.write(json.dumps({"bytes": written, "last_sha256": previous, "lines": count}, sort_keys=True, separators=(",", ":")))
print(f"{out}: {count} records, {written} bytes")
