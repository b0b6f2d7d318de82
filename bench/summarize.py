"""Medians of each scenario's runs (bench/run.sh's JSON files), as Markdown,
with ratios taken from the same run set: Sluice / native (the ceiling),
Sluice / baseline (an older Sluice build, with BASELINE=...), and the plugin
overhead (router + auth as components / the same logic built in)."""

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
    values = []
    for r in runs.get(name, []):
        try:
            value = pick(r)
        except (KeyError, TypeError):
            value = None
        if value is not None:
            values.append(value)
    return statistics.median(values) if values else None


def fmt(value, digits=1):
    return "-" if value is None else f"{value:,.{digits}f}"


def ms(value):
    return None if value is None else value / 1000


def ratio(a, b):
    return "-" if a is None or not b else f"{a / b:.2f}"


def latency(q):
    return lambda r: r["latency_us"][q]


per_sec = lambda r: r["deliveries"]["per_sec"]  # noqa: E731
lost = lambda r: r["deliveries"]["lost"]  # noqa: E731
rss = lambda r: r["memory"]["end_kib"]  # noqa: E731
cpu = lambda r: r["memory"]["cpu_s"]  # noqa: E731


def handshake(q):
    return lambda r: r["connect"]["handshake_us"][q]


print(f"# Benchmark run {out.name}\n")
print(f"Medians of {max((len(v) for v in runs.values()), default=0)} runs per scenario.\n")

fanout = sorted({n.rsplit("-", 1)[0] for n in runs if n.startswith("fanout")},
                key=lambda s: (int(s.split("-")[1].rstrip("B")), int(s[6:].split("-")[0])))
bridges = [b for b in ("native", "sluice", "baseline") if any(n.endswith("-" + b) for n in runs)]
if fanout:
    print("| scenario | bridge | deliveries/s | lost | p50 ms | p99 ms | p99.9 ms | server CPU s | server RSS KiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for scenario in fanout:
        for bridge in bridges:
            name = f"{scenario}-{bridge}"
            if name not in runs:
                continue
            p50, p99, p999 = (ms(median(name, latency(q))) for q in ("p50", "p99", "p99_9"))
            print(f"| {scenario} | {bridge} | {fmt(median(name, per_sec), 0)} | "
                  f"{fmt(median(name, lost), 0)} | {fmt(p50, 2)} | {fmt(p99, 2)} | "
                  f"{fmt(p999, 2)} | {fmt(median(name, cpu), 2)} | {fmt(median(name, rss), 0)} |")
    print()
    others = [b for b in bridges if b != "sluice"]
    head = " | ".join(f"{k} sluice/{b}" for b in others for k in ("CPU", "p50", "p99"))
    print(f"| scenario | {head} |")
    print("|---|" + "---|" * (3 * len(others)))
    for scenario in fanout:
        cells = []
        for b in others:
            s, o = f"{scenario}-sluice", f"{scenario}-{b}"
            cells += [ratio(median(s, cpu), median(o, cpu)),
                      ratio(median(s, latency("p50")), median(o, latency("p50"))),
                      ratio(median(s, latency("p99")), median(o, latency("p99")))]
        print(f"| {scenario} | " + " | ".join(cells) + " |")
    print()

if "overhead-plugins" in runs or "overhead-builtin" in runs:
    print("Plugin overhead: router + Basic auth as components vs built in (`native:`).\n")
    print("| pipeline | deliveries/s | lost | p50 ms | p99 ms | server CPU s | handshake p50 ms | handshake p99 ms |")
    print("|---|---|---|---|---|---|---|---|")
    for kind in ("plugins", "builtin"):
        name = f"overhead-{kind}"
        print(f"| {kind} | {fmt(median(name, per_sec), 0)} | {fmt(median(name, lost), 0)} | "
              f"{fmt(ms(median(name, latency('p50'))), 2)} | {fmt(ms(median(name, latency('p99'))), 2)} | "
              f"{fmt(median(name, cpu), 2)} | {fmt(ms(median(name, handshake('p50'))), 2)} | "
              f"{fmt(ms(median(name, handshake('p99'))), 2)} |")
    p, b = "overhead-plugins", "overhead-builtin"
    print(f"\nplugins / built in: server CPU {ratio(median(p, cpu), median(b, cpu))}, "
          f"p50 {ratio(median(p, latency('p50')), median(b, latency('p50')))}, "
          f"p99 {ratio(median(p, latency('p99')), median(b, latency('p99')))}, "
          f"handshake p50 {ratio(median(p, handshake('p50')), median(b, handshake('p50')))}.\n")

idle = sorted(n for n in runs if n.startswith("idle"))
if idle:
    print("| idle connections | bridge | per connection KiB | runs (each from a fresh process) |")
    print("|---|---|---|---|")
    for name in idle:
        per = median(name, lambda r: r["memory"]["per_connection_kib"])
        each = ", ".join(fmt(r.get("memory", {}).get("per_connection_kib"), 1) for r in runs[name])
        print(f"| {name.split('-')[0]} | {name.split('-')[1]} | {fmt(per, 2)} | {each} |")
    print()
name = "inbound-sluice"
if name in runs:
    acks = median(name, lambda r: r["inbound"]["acks_per_sec"])
    print(f"Inbound with ACKs (Sluice): {fmt(acks, 0)} acks/s, ACK latency "
          f"p50 {fmt(ms(median(name, latency('p50'))), 2)} ms, "
          f"p99 {fmt(ms(median(name, latency('p99'))), 2)} ms.")
