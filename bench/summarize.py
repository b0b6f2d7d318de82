"""Medians of each scenario's runs (bench/run.sh's JSON files), as Markdown,
with the Sluice / native ratios taken from the same run set."""

import json
import pathlib
import statistics
import sys
from collections import defaultdict

out = pathlib.Path(sys.argv[1])
runs = defaultdict(list)
for path in sorted(out.glob("*.json")):
    runs[path.name.rsplit(".", 2)[0]].append(json.loads(path.read_text()))


def median(name, pick):
    values = [pick(r) for r in runs.get(name, [])]
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(value, digits=1):
    return "-" if value is None else f"{value:,.{digits}f}"


def latency(q):
    return lambda r: (r.get("latency_us") or {}).get(q)


print(f"# Benchmark run {out.name}\n")
print(f"Medians of {max((len(v) for v in runs.values()), default=0)} runs per scenario.\n")
print("| scenario | bridge | deliveries/s | lost | p50 ms | p99 ms | p99.9 ms | server RSS KiB |")
print("|---|---|---|---|---|---|---|---|")
scenarios = sorted({n.rsplit("-", 1)[0] for n in runs if n.startswith("fanout")},
                   key=lambda s: (int(s.split("-")[1].rstrip("B")), int(s[6:].split("-")[0])))
for scenario in scenarios:
    for bridge in ("native", "sluice"):
        name = f"{scenario}-{bridge}"
        per_sec = median(name, lambda r: r["deliveries"]["per_sec"])
        lost = median(name, lambda r: r["deliveries"]["lost"])
        p50, p99, p999 = (median(name, latency(q)) for q in ("p50", "p99", "p99_9"))
        rss = median(name, lambda r: (r.get("memory") or {}).get("end_kib"))
        print(f"| {scenario} | {bridge} | {fmt(per_sec, 0)} | {fmt(lost, 0)} | "
              f"{fmt(p50 and p50 / 1000, 2)} | {fmt(p99 and p99 / 1000, 2)} | "
              f"{fmt(p999 and p999 / 1000, 2)} | {fmt(rss, 0)} |")
print()
print("| idle connections | bridge | per connection KiB |")
print("|---|---|---|")
for name in sorted(n for n in runs if n.startswith("idle")):
    per = median(name, lambda r: (r.get("memory") or {}).get("per_connection_kib"))
    print(f"| {name.split('-')[0]} | {name.split('-')[1]} | {fmt(per, 2)} |")
print()
name = "inbound-sluice"
if name in runs:
    acks = median(name, lambda r: r["inbound"]["acks_per_sec"])
    print(f"Inbound with ACKs (Sluice): {fmt(acks, 0)} acks/s, ACK latency "
          f"p50 {fmt((median(name, latency('p50')) or 0) / 1000, 2)} ms, "
          f"p99 {fmt((median(name, latency('p99')) or 0) / 1000, 2)} ms.")
