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
HTTP = [("browser page", "browser_full"), ("browser partial (HTMX)", "browser_partial"),
        ("API get_all", "api_get_all"), ("API search", "api_search"), ("API add (infer=false)", "api_add")]  # fmt: skip


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
    lines += ["", "| HTTP, gunicorn (p50 ms, req/s, errors) | "
              + " | ".join(f"N={n:,} c={c}" for n in ns for c in (1, 8, 32)) + " |"]  # fmt: skip
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
    lines += ["", "| HTTP c=8 vs Mem0 in process (req/s over calls/s x cores) | " + " | ".join(f"N={n:,}" for n in ns)
              + " |", "|---|" + "---|" * len(ns)]  # fmt: skip
    for label, name in (("search", "api_search"), ("add, infer=false", "api_add")):
        cells = []
        for n in ns:
            r = dig(runs[n], ("http", "throughput_vs_inprocess", name)) or {}
            busy = f" (per core busy: {r['ratio_per_core_busy']:.2f}x)" if r.get("ratio_per_core_busy") else ""
            cells.append(f"{r['http_requests_per_s']}/s vs {r['inprocess_calls_per_s_per_core']}/s x "
                         f"{r['cores_used']} = {r['ratio_per_core']:.2f}x{busy}" if r else "n/a")  # fmt: skip
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "| export (memories/s, peak RSS) | " + " | ".join(f"N={n:,}" for n in ns) + " |",
              "|---|" + "---|" * len(ns)]  # fmt: skip
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("paths", nargs="*", type=Path)
    args = parser.parse_args()
    print(tables(latest_runs(args.paths or sorted(RESULTS.glob("bench-*.json")))))


if __name__ == "__main__":
    main()
