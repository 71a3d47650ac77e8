"""The bench's targets (stated for N = 1,000,000 on the 2-core machine), checked against measured figures."""

from __future__ import annotations


def _get(data: dict, *path):
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _check(value, limit, *, at_most: bool = True) -> dict:
    if value is None:
        return {"value": None, "limit": limit, "met": None}
    return {"value": value, "limit": limit, "met": value <= limit if at_most else value >= limit}


def evaluate(runs: list[dict]) -> dict:
    """Targets for the largest N measured so far (and growth from the smallest)."""
    measured = [r for r in runs if "browse" in r or "erasure" in r or "http" in r]
    if not measured:
        return {}
    run = max(measured, key=lambda r: r["n"])
    smallest = min(measured, key=lambda r: r["n"])
    browse = _get(run, "browse", "browse_user_one_app") or {}
    browse_all = _get(run, "browse", "browse_user_all_apps") or {}
    search = _get(run, "search", "search_user_one_app") or {}
    http8 = lambda name: _get(run, "http", name, "levels", "8")  # noqa: E731
    out = {
        "n": run["n"],
        "browse_p50_ms<=15 (one app)": _check(_get(browse, "service", "p50_ms"), 15),
        "browse_p50_ms<=15 (all apps)": _check(_get(browse_all, "service", "p50_ms"), 15),
        "browse_vs_raw<=1.5x (one app)": _check(browse.get("ratio_vs_raw"), 1.5),
        "browse_vs_raw<=1.5x (all apps)": _check(browse_all.get("ratio_vs_raw"), 1.5),
        "search_p50_ms<=40": _check(_get(search, "service", "p50_ms"), 40),
        "search_vs_mem0<=1.1x": _check(search.get("ratio_vs_mem0"), 1.1),
        "http_c8_browser_p50_ms<=80": _check(_get(http8("browser_full"), "p50_ms"), 80),
        "http_c8_api_get_all_p50_ms<=50": _check(_get(http8("api_get_all"), "p50_ms"), 50),
        "export_app_memories_per_s>=20000": _check(
            _get(run, "export", "export_app", "service", "memories_per_s"), 20000, at_most=False
        ),
    }
    routes = ("browser_full", "browser_partial", "api_get_all", "api_search", "api_add")
    errors = [lvl.get("errors", 0) for name in routes for lvl in (_get(run, "http", name, "levels") or {}).values()]
    out["http_zero_errors (every level, c=32 included)"] = {
        "value": sum(errors) if errors else None,
        "limit": 0,
        "met": (sum(errors) == 0) if errors else None,
    }
    for route, ratio in (_get(run, "http", "throughput_vs_inprocess") or {}).items():
        out[f"http_c8_{route}_throughput_vs_inprocess_per_core>=0.8x"] = _check(
            ratio.get("ratio_per_core"), 0.8, at_most=False
        )
    rss = [
        _get(r, "export", case, "service", "peak_rss_mb_sampled")
        for r in measured
        for case in ("export_user", "export_app")
    ]
    rss = [v for v in rss if v is not None]
    out["export_peak_rss_mb<300 (any N)"] = _check(max(rss) if rss else None, 300)
    erasure = run.get("erasure") or {}
    if erasure:
        out["erase_typical_user_p50_ms<=50"] = _check(_get(erasure, "typical_user", "service", "p50_ms"), 50)
        out["erase_typical_user_vs_floor<=5x"] = _check(_get(erasure, "typical_user", "ratio_vs_floor"), 5)
        out["erase_heavy_user_memories_per_s>=10000"] = _check(
            _get(erasure, "heavy_user", "service_memories_per_s"), 10000, at_most=False
        )
        small_erase = _get(smallest, "erasure", "typical_user", "service", "p50_ms")
        large_erase = _get(erasure, "typical_user", "service", "p50_ms")
        if smallest is not run and small_erase and large_erase:
            out[f"erase_typical_p50_growth_{smallest['n']}->{run['n']}<=1.5x"] = _check(
                round(large_erase / small_erase, 3), 1.5
            )
    monitor = run.get("monitor") or erasure.get("monitor")  # its own section since the count-first pass
    if monitor:
        out["monitor_keys_per_s>=100000"] = _check(_get(monitor, "keys_per_s"), 100000, at_most=False)
        out["monitor_browse_p95_increase<=20%"] = _check(_get(monitor, "browse_p95_increase"), 0.2)
    if smallest is not run:
        small = _get(smallest, "browse", "browse_user_one_app", "service", "p50_ms")
        large = _get(browse, "service", "p50_ms")
        growth = round(large / small, 3) if small and large else None
        out[f"browse_p50_growth_{smallest['n']}->{run['n']}<=2x"] = _check(growth, 2.0)
    return out
