#!/usr/bin/env python3
"""Summarises bench/e2e.sh's per-run results into the tables it prints.

Input: a TSV file with a header line and one line per pgbench run:
  workload mode clients target rep tps latency_ms transactions cpu_ticks ok
cpu_ticks is the proxy's utime+stime delta over the run ("-" for direct).
Usage: report.py RESULTS.tsv CLK_TCK
"""
import csv
import re
import statistics
import sys
from collections import OrderedDict

TARGETS = ("direct", "policy-off", "audit-off", "audit-async", "audit-strict", "pgbouncer", "tls", "pgbouncer-tls")
MODES = ("simple", "extended", "prepared")
POLICY_TPS_TARGET = 0.95  # policy on / policy off (both with audit off)
AUDIT_TPS_TARGETS = {"audit-strict": 0.90, "audit-async": 0.97}  # / audit-off, at -c 64


def fmt(value, spec):
    """Formats like format(value, spec); a missing value is a right-aligned "-"."""
    width = int(re.match(r"\d*", spec).group() or 0)
    return f"{'-':>{width}}" if value is None else format(value, spec)


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def difference(a, b):
    return None if a is None or b is None else a - b


def order(key):
    """Sort key for (workload, mode, clients[, target])."""
    mode = MODES.index(key[1]) if key[1] in MODES else len(MODES)
    target = () if len(key) < 4 else (TARGETS.index(key[3]) if key[3] in TARGETS else len(TARGETS),)
    return (key[0], mode, key[2]) + target


def main() -> None:
    path, clk_tck = sys.argv[1], int(sys.argv[2])
    groups = OrderedDict()  # (workload, mode, clients, target) -> list of runs
    with open(path, newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            key = (row["workload"], row["mode"], int(row["clients"]), row["target"])
            groups.setdefault(key, []).append(row)

    summary = {}
    print(f"{'workload':<11} {'mode':<9} {'clients':>7}  {'target':<12} {'runs':>4} {'TPS':>10} {'spread':>7}"
          f" {'lat ms':>8} {'proxy CPU us/txn':>17}")
    for key in sorted(groups, key=order):
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
        print(f"{key[0]:<11} {key[1]:<9} {key[2]:>7}  {key[3]:<12} {runs_text:>4} {fmt(tps, '10.0f')}"
              f" {fmt(spread, '6.1f') + ('%' if spread is not None else ' '):>7}"
              f" {fmt(lat, '8.3f')} {fmt(cpu, '17.1f')}")

    configurations = sorted(OrderedDict(((k[0], k[1], k[2]), None) for k in summary), key=order)

    def get(config, target):
        return summary.get(config + (target,), (None, None))

    def paired(config, a, b):
        """Median, min and max over repetitions of TPS(a) / TPS(b) within one repetition.
        The targets of a repetition run back to back, so the machine's drift from one
        repetition to the next (large on a shared VM) cancels out of each ratio."""
        def by_rep(target):
            return {r["rep"]: float(r["tps"]) for r in groups.get(config + (target,), []) if r["ok"] == "1"}
        on, off = by_rep(a), by_rep(b)
        ratios = [on[rep] / off[rep] for rep in on if rep in off and off[rep] > 0]
        return (statistics.median(ratios), min(ratios), max(ratios)) if ratios else (None, None, None)

    def present(target):
        return any(k[3] == target for k in summary)

    if present("audit-off") and present("policy-off"):
        print()
        print("Policy: audit-off (policy on) against policy-off (both with audit off);"
              f" target TPS ratio >= {POLICY_TPS_TARGET:.2f}, judged on the paired median")
        print(f"{'workload':<11} {'mode':<9} {'clients':>7}  {'TPS on/off':>10} {'paired median':>13} {'(min-max)':>11}"
              f" {'CPU/txn on/off':>15} {'policy CPU us/txn':>18}")
        for config in configurations:
            on_tps, on_cpu = get(config, "audit-off")
            off_tps, off_cpu = get(config, "policy-off")
            median, low, high = paired(config, "audit-off", "policy-off")
            verdict = "" if median is None else ("  ok" if median >= POLICY_TPS_TARGET else "  BELOW TARGET")
            span = "" if median is None else f"{low:.2f}-{high:.2f}"
            print(f"{config[0]:<11} {config[1]:<9} {config[2]:>7}  {fmt(ratio(on_tps, off_tps), '10.2f')}"
                  f" {fmt(median, '13.2f')} {span:>11}"
                  f" {fmt(ratio(on_cpu, off_cpu), '15.2f')} {fmt(difference(on_cpu, off_cpu), '18.1f')}{verdict}")

    audit_modes = [t for t in AUDIT_TPS_TARGETS if present(t)]
    if audit_modes and present("audit-off"):
        print()
        targets_text = ", ".join(f"{t} >= {AUDIT_TPS_TARGETS[t]:.2f}" for t in audit_modes)
        print(f"Audit: TPS (paired median) and CPU per transaction against audit-off (policy on in all);"
              f" targets at -c 64: {targets_text}")
        header = f"{'workload':<11} {'mode':<9} {'clients':>7} "
        for t in audit_modes:
            header += f" {'TPS ' + t + '/off':>21} {'CPU/txn ' + t + '/off':>25}"
        print(header)
        for config in configurations:
            _, off_cpu = get(config, "audit-off")
            line = f"{config[0]:<11} {config[1]:<9} {config[2]:>7} "
            for t in audit_modes:
                _, cpu = get(config, t)
                tps_ratio = paired(config, t, "audit-off")[0]
                mark = " "
                if tps_ratio is not None and config[2] == 64:
                    mark = "+" if tps_ratio >= AUDIT_TPS_TARGETS[t] else "!"
                line += f" {fmt(tps_ratio, '20.2f')}{mark} {fmt(ratio(cpu, off_cpu), '25.2f')}"
            print(line)
        print("  (+: meets its -c 64 target, !: below it)")

    if present("tls") and present("pgbouncer-tls"):
        print()
        print("TLS (client side): what encrypting costs each proxy, against its own plaintext run"
              " (sluice: tls vs audit-off; pgbouncer: pgbouncer-tls vs pgbouncer);"
              " target: sluice's added CPU per transaction below pgbouncer's")
        print(f"{'workload':<11} {'mode':<9} {'clients':>7}  {'TPS tls/plain sluice':>20} {'pgbouncer':>10}"
              f" {'added CPU us/txn sluice':>24} {'pgbouncer':>10} {'TPS sluice-tls/pgb-tls':>23}")
        for config in configurations:
            t_tps, t_cpu = get(config, "tls")
            p_tps, p_cpu = get(config, "audit-off")
            bt_tps, bt_cpu = get(config, "pgbouncer-tls")
            b_tps, b_cpu = get(config, "pgbouncer")
            sluice_added, bouncer_added = difference(t_cpu, p_cpu), difference(bt_cpu, b_cpu)
            mark = ""
            if sluice_added is not None and bouncer_added is not None:
                mark = " +" if sluice_added < bouncer_added else " !"
            print(f"{config[0]:<11} {config[1]:<9} {config[2]:>7}  {fmt(paired(config, 'tls', 'audit-off')[0], '20.2f')}"
                  f" {fmt(paired(config, 'pgbouncer-tls', 'pgbouncer')[0], '10.2f')}"
                  f" {fmt(sluice_added, '24.1f')} {fmt(bouncer_added, '10.1f')}"
                  f" {fmt(paired(config, 'tls', 'pgbouncer-tls')[0], '23.2f')}{mark}")
        print("  (TPS columns: paired medians; +: sluice's TLS costs less CPU than pgbouncer's, !: it does not)")

    product = next((t for t in ("audit-strict", "audit-async", "audit-off") if present(t)), None)
    if product is not None:
        print()
        print(f"Ratios for sluice as {product} (TPS: higher is better for sluice; CPU per transaction: lower is better)")
        print(f"{'workload':<11} {'mode':<9} {'clients':>7}  {'TPS sluice/pgbouncer':>21} {'TPS sluice/direct':>18}"
              f" {'TPS policy-off/direct':>22} {'CPU/txn sluice/pgbouncer':>25}")
        for config in configurations:
            s_tps, s_cpu = get(config, product)
            o_tps, _ = get(config, "policy-off")
            p_tps, p_cpu = get(config, "pgbouncer")
            d_tps, _ = get(config, "direct")
            print(f"{config[0]:<11} {config[1]:<9} {config[2]:>7}  {fmt(ratio(s_tps, p_tps), '21.2f')}"
                  f" {fmt(ratio(s_tps, d_tps), '18.2f')} {fmt(ratio(o_tps, d_tps), '22.2f')}"
                  f" {fmt(ratio(s_cpu, p_cpu), '25.2f')}")


if __name__ == "__main__":
    main()
