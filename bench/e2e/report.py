#!/usr/bin/env python3
"""Summarises bench/e2e.sh's per-run results into the table it prints.

Input: a TSV file with a header line and one line per pgbench run:
  mode clients target rep tps latency_ms transactions cpu_ticks ok
cpu_ticks is the proxy's utime+stime delta over the run ("-" for direct).
Usage: report.py RESULTS.tsv CLK_TCK
"""
import csv
import re
import statistics
import sys
from collections import OrderedDict

TARGETS = ("direct", "sluice", "pgbouncer")


def fmt(value, spec):
    """Formats like format(value, spec); a missing value is a right-aligned "-"."""
    width = int(re.match(r"\d*", spec).group() or 0)
    return f"{'-':>{width}}" if value is None else format(value, spec)


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def main() -> None:
    path, clk_tck = sys.argv[1], int(sys.argv[2])
    groups = OrderedDict()  # (mode, clients, target) -> list of runs
    with open(path, newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            key = (row["mode"], int(row["clients"]), row["target"])
            groups.setdefault(key, []).append(row)

    summary = {}
    print(f"{'mode':<9} {'clients':>7}  {'target':<10} {'runs':>4} {'TPS':>10} {'spread':>7}"
          f" {'lat ms':>8} {'proxy CPU us/txn':>17}")
    for key in sorted(groups, key=lambda k: (k[0] != "simple", k[0] != "extended", k[1],
                                             TARGETS.index(k[2]) if k[2] in TARGETS else 9)):
        runs = groups[key]
        good = [r for r in runs if r["ok"] == "1"]
        failed = len(runs) - len(good)
        tps = lat = cpu = spread = None
        if good:
            tps_values = [float(r["tps"]) for r in good]
            tps = statistics.mean(tps_values)
            spread = 100.0 * (max(tps_values) - min(tps_values)) / tps if tps else None
            lat = statistics.mean(float(r["latency_ms"]) for r in good)
            if all(r["cpu_ticks"] != "-" for r in good):
                ticks = sum(int(r["cpu_ticks"]) for r in good)
                txns = sum(int(r["transactions"]) for r in good)
                cpu = ticks * 1e6 / clk_tck / txns if txns else None
        summary[key] = (tps, cpu)
        runs_text = f"{len(good)}" + (f"+{failed}F" if failed else "")
        print(f"{key[0]:<9} {key[1]:>7}  {key[2]:<10} {runs_text:>4} {fmt(tps, '10.0f')}"
              f" {fmt(spread, '6.1f') + ('%' if spread is not None else ' '):>7}"
              f" {fmt(lat, '8.3f')} {fmt(cpu, '17.1f')}")

    print()
    print("Ratios (TPS: higher is better for sluice; CPU per transaction: lower is better)")
    print(f"{'mode':<9} {'clients':>7}  {'TPS sluice/pgbouncer':>21} {'TPS sluice/direct':>18}"
          f" {'CPU/txn sluice/pgbouncer':>25}")
    for mode, clients in OrderedDict(((k[0], k[1]), None) for k in sorted(
            summary, key=lambda k: (k[0] != "simple", k[0] != "extended", k[1]))):
        s_tps, s_cpu = summary.get((mode, clients, "sluice"), (None, None))
        p_tps, p_cpu = summary.get((mode, clients, "pgbouncer"), (None, None))
        d_tps, _ = summary.get((mode, clients, "direct"), (None, None))
        print(f"{mode:<9} {clients:>7}  {fmt(ratio(s_tps, p_tps), '21.2f')}"
              f" {fmt(ratio(s_tps, d_tps), '18.2f')} {fmt(ratio(s_cpu, p_cpu), '25.2f')}")


if __name__ == "__main__":
    main()
