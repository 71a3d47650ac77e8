"""Markdown tables from results JSON: python -m bench.report [results.json ...] (default: every committed run)."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.plot import RESULTS, dig, latest_runs

ROWS = [
    ("browse newest 50, one user (~1k), 1 app", ("browse", "browse_user_one_app"), "service", "raw_ft_search"),
    ("browse newest 50, one user (~1k), 3 apps", ("browse", "browse_user_all_apps"), "service", "raw_ft_search"),
    ("browse newest 50, typical user (~10), 3 apps", ("browse", "browse_typical_user"), "service", "raw_ft_search"),
    ("counts, one user (per app/agent/user)", ("counts", "counts_user"), "service", "raw_ft_aggregate"),
    ("counts, whole tenant (overview)", ("counts", "counts_tenant"), "service", "raw_ft_aggregate"),
    ("search top 10, user filter, 1 app (vs mem0)", ("search", "search_user_one_app"), "service", "mem0_search"),
    ("search top 10, user filter, 3 apps", ("search", "search_user_all_apps"), "service", None),
]
HTTP = [
    ("browser page", "browser_full"),
    ("browser partial (HTMX)", "browser_partial"),
    ("API get_all", "api_get_all"),
    ("API search", "api_search"),
    ("API add (infer=false)", "api_add"),
]


def _ms(node) -> str:
    if not isinstance(node, dict) or node.get("p50_ms") is None:
        return "n/a"
    return f"{node['p50_ms']:.1f} / {node['p95_ms']:.1f}"


def tables(runs: dict[int, dict]) -> str:
    ns = list(runs)
    head = "| operation (p50 / p95 ms) | " + " | ".join(f"N={n:,}: ours | baseline | ratio" for n in ns) + " |"
    lines = [head, "|---|" + "---|---|---|" * len(ns)]
    for label, path, ours, base in ROWS:
        cells = []
        for n in ns:
            node = dig(runs[n], path) or {}
            b = node.get(base) if base else None
            r = node.get("ratio_vs_raw") or node.get("ratio_vs_mem0")
            cells += [_ms(node.get(ours)), _ms(b) if base else "-", f"{r:.2f}x" if r else "-"]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| HTTP, gunicorn (p50 ms, req/s, errors) | "
        + " | ".join(f"N={n:,} c={c}" for n in ns for c in (1, 8, 32))
        + " |",
    ]
    lines.append("|---|" + "---|" * (3 * len(ns)))
    for label, name in HTTP:
        cells = []
        for n in ns:
            node = dig(runs[n], ("http", name)) or {}
            for c in ("1", "8", "32"):
                level = dig(node, ("levels", c))
                if level:
                    cells.append(f"{level['p50_ms']:.0f} ms, {level['requests_per_s']:.1f}/s, {level['errors']} err")
                else:
                    cells.append(node.get("status", "n/a"))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| HTTP c=8 vs Mem0 in process (req/s over calls/s x cores) | " + " | ".join(f"N={n:,}" for n in ns) + " |",
        "|---|" + "---|" * len(ns),
    ]
    for label, name in (("search", "api_search"), ("add, infer=false", "api_add")):
        cells = []
        for n in ns:
            r = dig(runs[n], ("http", "throughput_vs_inprocess", name)) or {}
            busy = f" (per core busy: {r['ratio_per_core_busy']:.2f}x)" if r.get("ratio_per_core_busy") else ""
            cells.append(
                f"{r['http_requests_per_s']}/s vs {r['inprocess_calls_per_s_per_core']}/s x "
                f"{r['cores_used']} = {r['ratio_per_core']:.2f}x{busy}"
                if r
                else "n/a"
            )
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| export (memories/s, peak RSS) | " + " | ".join(f"N={n:,}" for n in ns) + " |",
        "|---|" + "---|" * len(ns),
    ]
    for label, case in (("one user", "export_user"), ("one app", "export_app")):
        cells = []
        for n in ns:
            s = dig(runs[n], ("export", case, "service")) or {}
            r = dig(runs[n], ("export", case, "raw_cursor")) or {}
            if s.get("memories_per_s"):
                cells.append(
                    f"{s['memories']:,} in {s['seconds']:.2f}s = {s['memories_per_s']:,.0f}/s "
                    f"(raw cursor {r.get('memories_per_s', 0):,.0f}/s), {s.get('peak_rss_mb_sampled')} MB"
                )
            else:
                cells.append("n/a")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "| load | " + " | ".join(f"N={n:,}" for n in ns) + " |", "|---|" + "---|" * len(ns)]
    cells = []
    for n in ns:
        load = runs[n].get("load", {})
        cells.append(
            f"{load.get('seconds', 0):,.0f}s, {load.get('write_memories_per_s') or load.get('memories_per_s')}"
            f" mem/s, Valkey {runs[n].get('valkey_used_memory_mb')} MB"
        )
    lines.append("| time, write rate, server memory | " + " | ".join(cells) + " |")
    return "\n".join(lines)


ERASURE = [
    ("erase a typical user (10 memories, 3 apps)", "typical_user"),
    ("delete one run (10 memories)", "run"),
    ("delete one memory", "one_memory"),
]


def _loads(runs: dict[int, dict], section: str) -> str:
    """How busy the machine was (other processes share it): absolute times move with it, ratios much less."""
    values = [dig(run, (section + "_context", "loadavg_1m_before")) for run in runs.values()]
    return " | ".join("n/a" if value is None else f"{value:.1f}" for value in values)


def erasure_tables(erasure_runs: dict[int, dict], purge_runs: dict[int, dict]) -> str:
    """The erasure section beside its floor, and the disk purge's AOF rewrite, from the newest run per N of each."""
    lines = []
    if erasure_runs:
        ns = list(erasure_runs)
        lines += [
            "| erasure, p50 (ratio to its floor) | " + " | ".join(f"N={n:,}" for n in ns) + " |",
            "|---|" + "---|" * len(ns),
        ]
        for label, case in ERASURE:
            cells = []
            for n in ns:
                node = dig(erasure_runs[n], ("erasure", case)) or {}
                p50 = dig(node, ("service", "p50_ms"))
                cells.append(f"{p50:,.1f} ms ({node['ratio_vs_floor']:.2f}x)" if p50 else "n/a")
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        cells = []
        for n in ns:
            node = dig(erasure_runs[n], ("erasure", "heavy_user")) or {}
            cells.append(
                f"{node['service_memories_per_s']:,.0f}/s (floor {node['floor_memories_per_s']:,.0f}/s)"
                if node.get("service_memories_per_s")
                else "n/a"
            )
        lines.append("| erase a heavy user (1,000 memories), memories/s | " + " | ".join(cells) + " |")
        lines.append("| load average (1 min) before the section | " + _loads(erasure_runs, "erasure") + " |")
    if purge_runs:
        ns = list(purge_runs)
        lines += [
            "",
            "| disk purge (one AOF rewrite) | " + " | ".join(f"N={n:,}" for n in ns) + " |",
            "|---|" + "---|" * len(ns),
        ]
        rows = [
            ("AOF rewrite (the run, wall clock)", lambda p: f"{p['run_seconds']:,.1f} s"),
            ("AOF base written", lambda p: f"{p['aof_base_mb']:,.0f} MB"),
            (
                "erasures served by the rewrite(s)",
                lambda p: f"{p['erasures']} by {p['aof_rewrites']}: {p['erasures_per_rewrite']} per rewrite",
            ),
            ("marking one erasure, p50 / p95", lambda p: f"{p['mark']['p50_ms']:.2f} / {p['mark']['p95_ms']:.2f} ms"),
            (
                "at 1,000 erasures an hour: rewrites an hour, erasures per rewrite",
                lambda p: (
                    f"{p['at_1000_erasures_per_hour']['rewrites_per_hour']}, "
                    f"{p['at_1000_erasures_per_hour']['erasures_per_rewrite']}"
                ),
            ),
            ("complete", lambda p: f"{p['complete']} ({p['aof']})"),
        ]
        for label, cell in rows:
            lines.append(f"| {label} | " + " | ".join(cell(purge_runs[n]["purge"]) for n in ns) + " |")
        lines.append("| load average (1 min) before the section | " + _loads(purge_runs, "purge") + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("paths", nargs="*", type=Path)
    args = parser.parse_args()
    paths = args.paths or sorted(RESULTS.glob("bench-*.json"))
    print(tables(latest_runs(paths)))
    erasure = erasure_tables(latest_runs(paths, "erasure"), latest_runs(paths, "purge"))
    if erasure:
        print("\n" + erasure)


if __name__ == "__main__":
    main()
