#!/usr/bin/env python3
"""Regenerates BENCHMARKS.md (and docs/benchmarks.svg) from criterion's output.

Reads every target/criterion/**/new/{benchmark,estimates}.json, tabulates the
medians per group, and computes the ratios declared in benches/ratios.toml.
Nothing here is typed by hand: rerun the benchmarks, rerun this script.

Usage: python3 scripts/bench-report.py [--criterion-dir DIR] [--out BENCHMARKS.md] [--carry-over FILE]

With --carry-over (usually the current BENCHMARKS.md), what this criterion output does not
hold (groups not re-run, on a fresh checkout or after `--bench <name>`) is copied from that
earlier report: its group sections verbatim (with the date they ran), its ratio rows, and its
comparison section. Nothing carried over is recomputed or edited.
"""
import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_results(crit_dir):
    out = {}
    for bench_json in crit_dir.glob("**/new/benchmark.json"):
        est_json = bench_json.with_name("estimates.json")
        if not est_json.exists():
            continue
        b = json.loads(bench_json.read_text())
        e = json.loads(est_json.read_text())
        out[b["full_id"]] = {
            "group": b["group_id"],
            "function": b.get("function_id") or "",
            "param": b.get("value_str") or "",
            "throughput": b.get("throughput"),
            "median_ns": e["median"]["point_estimate"],
            "mad_ns": e["median_abs_dev"]["point_estimate"],
            "ci": (e["median"]["confidence_interval"]["lower_bound"],
                   e["median"]["confidence_interval"]["upper_bound"]),
            "when": datetime.datetime.fromtimestamp(est_json.stat().st_mtime, datetime.UTC),
        }
    return fold_rounds(out)


# A benchmark measured in alternating rounds has the parameter "<size>~r<round>".
ROUND = re.compile(r"^(.*)~r(\d+)$")


def fold_rounds(raw):
    """One row per implementation measured in rounds: the median of its round
    medians (MAD: the median of the rounds' MADs; interval: the widest), with the
    round medians kept for pairing ratios round by round."""
    out, rounds = {}, {}
    for full_id, r in raw.items():
        m = ROUND.match(r["param"])
        if not m:
            out[full_id] = r
            continue
        base_id = full_id[: len(full_id) - len(r["param"])] + m.group(1)
        rounds.setdefault(base_id, []).append((int(m.group(2)), r))
    for base_id, rs in rounds.items():
        rs.sort(key=lambda kr: kr[0])
        first = rs[0][1]
        out[base_id] = {
            **first,
            "param": ROUND.match(first["param"]).group(1),
            "median_ns": statistics.median(r["median_ns"] for _, r in rs),
            "mad_ns": statistics.median(r["mad_ns"] for _, r in rs),
            "ci": (min(r["ci"][0] for _, r in rs), max(r["ci"][1] for _, r in rs)),
            "when": max(r["when"] for _, r in rs),
            "rounds": {k: r["median_ns"] for k, r in rs},
        }
    return out


def round_quotients(a, b):
    """b's time ÷ a's in every round both ran in (each pair measured minutes apart at
    most), or the one quotient of their medians when they share no round."""
    common = sorted(set(a.get("rounds", {})) & set(b.get("rounds", {})))
    if common:
        return [b["rounds"][k] / a["rounds"][k] for k in common]
    return [b["median_ns"] / a["median_ns"]]


def time_ratio(a, b):
    """b's median time ÷ a's: the median of the per-round quotients."""
    return statistics.median(round_quotients(a, b))


def per_element_scale(a, b):
    """What turns b's time ÷ a's into a's throughput ÷ b's (their elements per iteration
    differ), or None when either has no throughput."""
    pa, pb = per_second(a), per_second(b)
    if not pa or not pb:
        return None
    return (pa[0] * a["median_ns"]) / (pb[0] * b["median_ns"])


def rate_ratio(a, b):
    """a's median throughput ÷ b's, paired by round like `time_ratio`, or None."""
    scale = per_element_scale(a, b)
    return None if scale is None else scale * time_ratio(a, b)


def per_second(r):
    """(value, unit) of the median throughput, or None."""
    t = r["throughput"]
    if not t:
        return None
    secs = r["median_ns"] / 1e9
    if "Bytes" in t:
        return t["Bytes"] / secs / 1e9, "GB/s"
    if "BytesDecimal" in t:
        return t["BytesDecimal"] / secs / 1e9, "GB/s"
    if "Elements" in t:
        return t["Elements"] / secs, "ops/s"
    return None


def fmt_time(ns):
    for unit, div in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= div:
            return f"{ns / div:.3g} {unit}"
    return f"{ns:.3g} ns"


def fmt_rate(r):
    ps = per_second(r)
    if ps is None:
        return ""
    v, unit = ps
    if unit == "ops/s":
        if v >= 1e6:
            return f"{v / 1e6:.3g} M ops/s"
        if v >= 1e3:
            return f"{v / 1e3:.3g} k ops/s"
        return f"{v:.3g} ops/s"
    return f"{v:.3g} {unit}"


def ratio_value(spec, results):
    a, b = results.get(spec["numerator"]), results.get(spec["denominator"])
    if not a or not b:
        return None
    if spec.get("metric", "time") == "throughput":
        return rate_ratio(a, b)
    return time_ratio(a, b)


def fmt_ratio(v, target):
    """A ratio to two decimals, or three where two would round it across its target."""
    if v is None:
        return ""
    digits = 3 if target is not None and (round(v, 2) >= target) != (v >= target) else 2
    return f"{v:.{digits}f}x"


def ratio_spread(spec, results):
    """The lowest and highest per-round ratio behind `ratio_value` and the number of
    rounds, as table text ("" for a ratio of one round or a missing benchmark)."""
    a, b = results.get(spec["numerator"]), results.get(spec["denominator"])
    if not a or not b:
        return ""
    quotients = round_quotients(a, b)
    if len(quotients) < 2:
        return ""
    if spec.get("metric", "time") == "throughput":
        scale = per_element_scale(a, b)
        if scale is None:
            return ""
        quotients = [scale * q for q in quotients]
    return f"{min(quotients):.2f}–{max(quotients):.2f} ({len(quotients)})"


def machine():
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} × {cpu}, Linux {platform.release()}, file system {filesystem()}"


def run_when(rows):
    """When a group's rows were measured: the span from the first to the last (one run, or a
    run and filtered re-runs of some of its rows; each ratio still pairs rows of one run)."""
    first = min(r["when"] for _, r in rows)
    last = max(r["when"] for _, r in rows)
    fmt = "%Y-%m-%d %H:%M UTC"
    if (last - first).total_seconds() <= 60:
        return f"Run {last.strftime(fmt)}."
    return f"Rows measured between {first.strftime(fmt)} and {last.strftime(fmt)}."


def filesystem():
    """The type of the file system holding the repository (where the benches write), and for
    ext4 whether it has a journal: fsync costs differ (jbd2 commit or not)."""
    try:
        found = subprocess.run(["findmnt", "-n", "-o", "FSTYPE,SOURCE", "-T", str(ROOT)],
                               capture_output=True, text=True).stdout.split()
    except OSError:
        found = []
    if not found:
        return "?"
    fstype, source = found[0], found[1] if len(found) > 1 else ""
    if fstype == "ext4" and source.startswith("/dev/"):
        dev = Path(source).name
        journals = Path("/proc/fs/jbd2")
        if journals.is_dir() and not any(p.name.startswith(dev + "-") for p in journals.iterdir()):
            return "ext4 (no journal)"
    return fstype


def svg_chart(rows, path):
    """A horizontal bar chart of the ratios, with each target as a tick."""
    rows = [r for r in rows if r[1] is not None]
    if not rows:
        return False
    w, bar_h, left = 900, 26, 430
    h = 40 + bar_h * len(rows)
    top = max(max(v, t or 0) for _, v, t in rows) * 1.1
    scale = (w - left - 40) / top
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
             '<text x="10" y="20" font-size="14">tidemark: ratios to baselines measured in the same run (higher is better)</text>']
    for i, (name, v, target) in enumerate(rows):
        y = 32 + i * bar_h
        ok = target is None or v >= target
        parts.append(f'<text x="10" y="{y + 15}">{name[:62]}</text>')
        parts.append(f'<rect x="{left}" y="{y + 3}" width="{v * scale:.1f}" height="{bar_h - 8}" fill="{"#3a7" if ok else "#d55"}"/>')
        parts.append(f'<text x="{left + v * scale + 4:.1f}" y="{y + 15}">{v:.2f}x</text>')
        if target is not None:
            x = left + target * scale
            parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y}" y2="{y + bar_h - 2}" stroke="#000" stroke-width="2"/>')
    parts.append("</svg>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts) + "\n")
    return True


# The comparison of issue 6: criterion groups named compare_*, one per scenario.
COMPARE_PREFIX = "compare_"
SUBJECT = "tidemark"


def natural_key(text):
    """Sorts "8w" before "32w"."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def comparison_section(results, specs):
    """Markdown lines: every compare_* scenario (medians, spread, ratio of
    tidemark's rate to each other implementation's) and the issue's bars."""
    groups = {}
    for full_id, r in results.items():
        if r["group"].startswith(COMPARE_PREFIX):
            groups.setdefault(r["group"], []).append(r)
    if not groups:
        return []
    lines = ["## Comparison", "",
             "tidemark-wal beside okaywal 0.3, raft-engine 0.4 and the machine's own limits "
             "(`benches/benches/compare/`, one criterion group per scenario). Scenarios (a) to (c) "
             "alternate: every implementation is measured once per round, in turn, three rounds in a "
             "full run; a row's median is the median of its round medians, and every ratio between two "
             "of them is the median of the per-round ratios. Spread: median absolute deviation, and the "
             "widest of criterion's 95% intervals of the median. Last column: tidemark's rate divided by "
             "the row's (> 1: tidemark is faster).", "",
             "| scenario | implementation | size | median | ± MAD | 95% CI of median | throughput | tidemark ÷ it |",
             "|---|---|---|---|---|---|---|---|"]
    for group in sorted(groups, key=natural_key):
        rows = sorted(groups[group], key=lambda r: (r["param"], r["function"] != SUBJECT, r["function"]))
        subject = {r["param"]: r for r in rows if r["function"] == SUBJECT}
        for r in rows:
            ref = subject.get(r["param"])
            speed = rate_ratio(ref, r) if ref and r is not ref else None
            rel = "" if speed is None else f"{speed:.2f}x"
            lo, hi = r["ci"]
            lines.append(f"| `{group}` | {r['function']} | {r['param']} | {fmt_time(r['median_ns'])} | "
                         f"{fmt_time(r['mad_ns'])} ({100 * r['mad_ns'] / r['median_ns']:.1f}%) | "
                         f"{fmt_time(lo)} – {fmt_time(hi)} | {fmt_rate(r)} | {rel} |")
    bars = [spec for spec in specs.get("ratio", []) if spec["numerator"].startswith(COMPARE_PREFIX)]
    if bars:
        lines += ["", "| bar | ratio | target | verdict |", "|---|---|---|---|"]
        for spec in bars:
            v = ratio_value(spec, results)
            t = spec.get("target")
            verdict = "not measured" if v is None else ("—" if t is None else ("meets" if v >= t else "**misses**"))
            lines.append(f"| {spec['name']} | {'' if v is None else f'{v:.2f}x'} | "
                         f"{'' if t is None else f'>= {t}x'} | {verdict} |")
    return lines


def earlier_report(path):
    """An earlier BENCHMARKS.md as {section heading: lines} and {ratio row prefix: line}."""
    sections, rows = {}, {}
    if not path:
        return sections, rows
    current = None
    for line in Path(path).read_text().splitlines():
        if line.startswith("## "):
            current = line[3:].strip()
            sections[current] = [line]
        elif current is not None:
            sections[current].append(line)
        if current == "Ratios" and line.startswith("| ") and " | " in line:
            rows[line.split(" | ", 1)[0]] = line
    for lines in sections.values():
        while lines and not lines[-1].strip():
            lines.pop()
    return sections, rows


def carried_ratio(line):
    """The ratio value of a carried-over row, for the chart."""
    m = re.search(r"\| ([0-9.]+)x \|", line)
    return float(m.group(1)) if m else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--criterion-dir", default=str(ROOT / "target" / "criterion"))
    ap.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    ap.add_argument("--carry-over", default=None,
                    help="an earlier report whose groups, ratio rows and comparison fill in what was not re-run")
    args = ap.parse_args()
    old_sections, old_rows = earlier_report(args.carry_over)
    results = load_results(Path(args.criterion_dir))
    specs = tomllib.loads((ROOT / "benches" / "ratios.toml").read_text())
    lines = ["# Benchmarks", "",
             "Generated by `scripts/bench-report.py` from criterion's output; do not edit by hand.",
             "Every figure is a criterion **median** (± median absolute deviation); every claim is a ratio",
             "between two benchmarks of the same run. These machines are shared and noisy: compare ratios, not absolutes.", "",
             f"- Machine: {machine()}",
             "- Reproduce: `cargo bench -p tidemark-benches` (or `--bench <name>` for one file), then `python3 scripts/bench-report.py`",
             "  (after a partial run: `--carry-over BENCHMARKS.md` keeps the sections and ratio rows of groups not re-run, "
             "as they were; each group section says when it ran)", ""]
    lines += ["## Ratios", "",
              "Round range: the lowest and highest of the per-round ratios whose median is the ratio, and how many "
              "rounds there were.", "",
              "| claim | ratio | target | verdict | round range |", "|---|---|---|---|---|"]
    chart = []
    for spec in specs.get("ratio", []):
        v = ratio_value(spec, results)
        t = spec.get("target")
        head = f"| {spec['name']} (`{spec['numerator']}` vs `{spec['denominator']}`)"
        if v is None and head in old_rows:
            lines.append(old_rows[head])
            chart.append((spec["name"], carried_ratio(old_rows[head]), t))
            continue
        verdict = "not measured" if v is None else ("—" if t is None else ("meets" if v >= t else "**misses**"))
        lines.append(f"{head} | {fmt_ratio(v, t)} | {'' if t is None else f'>= {t}x'} | "
                     f"{verdict} | {ratio_spread(spec, results)} |")
        chart.append((spec["name"], v, t))
    for spec in specs.get("absolute", []):
        r = results.get(spec["id"])
        ps = per_second(r) if r else None
        t = spec.get("target")
        verdict = "not measured" if ps is None else ("—" if t is None else ("meets" if ps[0] >= t else "**misses**"))
        val = "" if ps is None else f"{ps[0]:.2f} {ps[1]}"
        bar = "" if t is None else ">= {} {}".format(t, spec.get("unit", ""))
        head = f"| {spec['name']} (`{spec['id']}`)"
        if ps is None and head in old_rows:
            lines.append(old_rows[head])
            continue
        lines.append(f"{head} | {val} | {bar} | {verdict} | |")
    if svg_chart(chart, ROOT / "docs" / "benchmarks.svg"):
        lines += ["", "![ratios](docs/benchmarks.svg)"]
    comparison = comparison_section(results, specs) or old_sections.get("Comparison", [])
    if comparison:
        lines += [""] + comparison
    notes = ROOT / "benches" / "notes.md"
    if notes.exists():
        lines += ["", notes.read_text().rstrip()]
    groups = {}
    for full_id, r in sorted(results.items()):
        groups.setdefault(r["group"], []).append((full_id, r))
    carried = {name: section for name, section in old_sections.items()
               if name not in groups and name not in ("Ratios", "Comparison", "How to read these figures")}
    for group in sorted(set(groups) | set(carried)):
        if group not in groups:
            lines += [""] + carried[group]
            continue
        rows = groups[group]
        lines += ["", f"## {group}", "", run_when(rows), "",
                  "| benchmark | median | ± MAD | throughput |", "|---|---|---|---|"]
        for full_id, r in rows:
            lines.append(f"| `{full_id}` | {fmt_time(r['median_ns'])} | {fmt_time(r['mad_ns'])} | {fmt_rate(r)} |")
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out} ({len(results)} benchmarks)")


if __name__ == "__main__":
    main()
