"""One export in a fresh process, so that its peak RSS is the export's own (run by bench.measure).

Prints one JSON line: memories, seconds, memories_per_s, RSS after setup and peak (ru_maxrss).
"""

from __future__ import annotations

import argparse
import json
import os
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--user")
    parser.add_argument("--app")
    parser.add_argument("--mode", choices=("service", "raw_cursor"), default="service")
    args = parser.parse_args()

    from bench.env import configure, raw_client

    configure(args.data_dir, os.environ["VALKEY_URL"], migrate=False)
    import psutil

    from bench.load import Dataset, staff_membership
    from memadmin.memory.filters import filter_from_fields
    from tenants.scoping import scope_for_membership

    ds = Dataset(args.n, args.seed)
    scope = scope_for_membership(staff_membership(ds))
    filters = filter_from_fields(user_id=args.user, app_id=args.app)
    rss_before = psutil.Process().memory_info().rss
    count = 0
    started = time.perf_counter()
    if args.mode == "service":
        from memadmin.memory.selectors import memory_export

        # Serialised like a download would be, then thrown away: the cost of producing the stream.
        with open(os.devnull, "w") as sink:
            for item in memory_export(scope=scope, filters=filters):
                sink.write(json.dumps(item))
                sink.write("\n")
                count += 1
    else:
        count = raw_cursor(raw_client(), scope, filters)
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "mode": args.mode,
                "memories": count,
                "seconds": round(seconds, 3),
                "memories_per_s": round(count / seconds, 1) if seconds else None,
                "rss_after_setup_mb": round(rss_before / 2**20, 1),
                "peak_rss_mb": peak_rss_mb(),
            }
        )
    )


def peak_rss_mb() -> float | None:
    # VmHWM restarts at exec; ru_maxrss would still carry the parent's peak from before the fork.
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


def raw_cursor(client, scope, filters, batch: int = 500) -> int:
    """The engine's floor: the same FT.AGGREGATE cursor reads, without building records or JSON."""
    from bench.measure import engine_tail
    from memadmin.memory.filters import render
    from memadmin.memory.index import RETURN_FIELDS
    from memadmin.memory.selectors import plan

    load = ["LOAD", str(len(RETURN_FIELDS) + 1), "@__key", *(f"@{f}" for f in RETURN_FIELDS)]
    count = 0
    for app, tree in plan(scope, filters):
        reply = client.execute_command(
            "FT.AGGREGATE", app.collection, render(tree), *load, "WITHCURSOR", "COUNT", str(batch), *engine_tail()
        )
        while True:
            rows, cursor = reply
            count += len(rows) - 1
            if not int(cursor):
                break
            reply = client.execute_command("FT.CURSOR", "READ", app.collection, cursor, "COUNT", str(batch))
    return count


if __name__ == "__main__":
    main()
