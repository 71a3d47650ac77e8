"""Latency (p50, with p95 as a dashed line) vs N per operation, log-x: growth at a glance.

python -m bench.plot [results.json ...] [--out bench/results/latency_vs_n.png]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"

PANELS = {
    "browse: newest 50 of one user": [
        ("service, one app", ("browse", "browse_user_one_app", "service")),
        ("raw FT.SEARCH, one app", ("browse", "browse_user_one_app", "raw_ft_search")),
        ("service, 3 apps", ("browse", "browse_user_all_apps", "service")),
        ("raw FT.SEARCH x3", ("browse", "browse_user_all_apps", "raw_ft_search")),
    ],
    "semantic search, user filter, top 10": [
        ("service, one app", ("search", "search_user_one_app", "service")),
        ("mem0 Memory.search", ("search", "search_user_one_app", "mem0_search")),
        ("service, 3 apps", ("search", "search_user_all_apps", "service")),
        ("query embedding alone", ("search", "embed_query_only")),
    ],
    "counts per user / agent": [
        ("service, one user", ("counts", "counts_user", "service")),
        ("raw, one user", ("counts", "counts_user", "raw_ft_aggregate")),
        ("service, whole tenant", ("counts", "counts_tenant", "service")),
        ("raw, whole tenant", ("counts", "counts_tenant", "raw_ft_aggregate")),
    ],
    "erasure, p50 and its floor (FT.SEARCH + UNLINK + history)": [
        ("typical user (10), service", ("erasure", "typical_user", "service")),
        ("typical user, floor", ("erasure", "typical_user", "floor")),
        ("one run (10), service", ("erasure", "run", "service")),
        ("one memory, service", ("erasure", "one_memory", "service")),
        ("one memory, floor", ("erasure", "one_memory", "floor")),
    ],
    "HTTP at concurrency 8 (gunicorn)": [
        ("browser page", ("http", "browser_full", "levels", "8")),
        ("browser partial (HTMX)", ("http", "browser_partial", "levels", "8")),
        ("API get_all", ("http", "api_get_all", "levels", "8")),
        ("API search", ("http", "api_search", "levels", "8")),
    ],
}


def dig(data, path):
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def latest_runs(paths: list[Path], section: str = "browse") -> dict[int, dict]:
    """The newest non-smoke run per N across result files that measured ``section``."""
    by_n: dict[int, tuple[str, dict]] = {}
    for path in paths:
        data = json.loads(Path(path).read_text())
        if data.get("smoke"):
            continue
        for run in data.get("runs", []):
            stamp = data.get("started_at", "")
            if section in run and (run["n"] not in by_n or by_n[run["n"]][0] <= stamp):
                by_n[run["n"]] = (stamp, run)
    return {n: run for n, (_, run) in sorted(by_n.items())}


def plot(paths: list[Path], out: Path) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = latest_runs(paths)
    if not runs:
        return None
    fig, grid = plt.subplots(2, 4, figsize=(21, 9.5))
    axes = list(grid.flat)
    for ax, (title, series) in zip(axes, PANELS.items()):
        section_runs = latest_runs(paths, series[0][1][0])
        for label, path in series:
            points = [(n, dig(section_runs[n], path)) for n in section_runs]
            points = [(n, v) for n, v in points if isinstance(v, dict) and v.get("p50_ms") is not None]
            if not points:
                continue
            xs = [n for n, _ in points]
            line = ax.plot(xs, [v["p50_ms"] for _, v in points], marker="o", label=label)[0]
            ax.plot(xs, [v["p95_ms"] for _, v in points], linestyle="--", color=line.get_color(), alpha=0.5)
        _style(ax, title, "latency ms (p50 solid, p95 dashed)")
    exports = latest_runs(paths, "export")
    ax = axes[5]
    for label, case in (("export one user", "export_user"), ("export one app", "export_app")):
        points = [(n, dig(exports[n], ("export", case, "service", "memories_per_s"))) for n in exports]
        points = [(n, v) for n, v in points if v]
        if points:
            ax.plot([n for n, _ in points], [v for _, v in points], marker="o", label=label)
    _style(ax, "export throughput (service)", "memories / s")
    ax = axes[6]
    for label, case in (("export one user", "export_user"), ("export one app", "export_app")):
        points = [(n, dig(exports[n], ("export", case, "service", "peak_rss_mb_sampled"))) for n in exports]
        points = [(n, v) for n, v in points if v]
        if points:
            ax.plot([n for n, _ in points], [v for _, v in points], marker="o", label=label)
    ax.axhline(300, color="red", linestyle=":", label="target 300 MB")
    _style(ax, "export peak RSS (subprocess)", "MB")
    ax = axes[7]
    walks = (
        ("heavy user erasure, service", ("erasure", "heavy_user", "service_memories_per_s")),
        ("heavy user erasure, floor", ("erasure", "heavy_user", "floor_memories_per_s")),
        ("monitor, count-first pass", ("monitor", "keys_per_s")),
        ("monitor, membership pass", ("monitor", "membership_pass", "keys_per_s")),
    )
    for label, path in walks:
        section_runs = latest_runs(paths, path[0])
        points = [(n, dig(section_runs[n], path)) for n in section_runs]
        points = [(n, v) for n, v in points if v]
        if points:
            ax.plot([n for n, _ in points], [v for _, v in points], marker="o", label=label)
    ax.axhline(10_000, color="red", linestyle=":", label="heavy-user target 10k/s")
    ax.axhline(100_000, color="grey", linestyle=":", label="monitor target 100k/s")
    _style(ax, "erasure of 1,000 memories and the monitor's walk", "memories or keys / s")
    fig.suptitle("memadmin latency vs store size N (log-log); 2-core machine", fontsize=12)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _style(ax, title, ylabel):
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("N memories in the tenant")
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("paths", nargs="*", type=Path)
    parser.add_argument("--out", type=Path, default=RESULTS / "latency_vs_n.png")
    args = parser.parse_args()
    print(plot(args.paths or sorted(RESULTS.glob("bench-*.json")), args.out))


if __name__ == "__main__":
    main()
