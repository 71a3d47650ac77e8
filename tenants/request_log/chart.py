"""Bar geometry for the request log's chart (templates/partials/requests_chart.html): requests and errors per
day side by side on one scale, drawn like the app page's activity chart (server-side SVG, no script)."""

from __future__ import annotations

from tenants.activity import BOTTOM, HEIGHT, TOP, WIDTH
from tenants.request_log.selectors import Day


def requests_chart(days: list[Day]) -> dict:
    slot = WIDTH / max(1, len(days))
    bar_width = slot * 0.36
    peak = max((d.requests for d in days), default=0)
    scale = max(1, peak)
    plot = HEIGHT - TOP - BOTTOM

    def bar(n: int, x: float) -> dict:
        h = round(plot * n / scale, 1) if n else 0
        return {"x": round(x, 1), "y": round(TOP + plot - h, 1), "h": h, "w": round(bar_width, 1)}

    bars = []
    for i, d in enumerate(days):
        x = i * slot + (slot - 2 * bar_width) / 2
        bars.append({"day": d, "requests": bar(d.requests, x), "errors": bar(d.errors, x + bar_width)})
    every = max(1, round(len(days) / 5))  # about five labels, the last one on the last day
    ticks = []
    for i, d in enumerate(days):
        if (len(days) - 1 - i) % every == 0:
            x = i * slot + slot / 2
            anchor = "end" if x > WIDTH - 40 else "start" if x < 40 else "middle"  # never cut at the edges
            ticks.append(
                {
                    "x": {"end": WIDTH, "start": 0}.get(anchor, round(x, 1)),
                    "anchor": anchor,
                    "label": f"{d.day:%b} {d.day.day}",
                }
            )
    return {
        "bars": bars,
        "ticks": ticks,
        "peak": peak,
        "width": WIDTH,
        "height": HEIGHT,
        "baseline": HEIGHT - BOTTOM,
        "label_y": HEIGHT - 5,
        "requests": sum(d.requests for d in days),
        "errors": sum(d.errors for d in days),
        "days": len(days),
        "first": days[0].day if days else None,
        "last": days[-1].day if days else None,
        "rows": [d for d in reversed(days) if d.requests],
    }
