"""The local sentence-transformers model run by ONNX Runtime instead of torch (MEMADMIN_EMBEDDER_RUNTIME=onnx).

Measured on a 2-core machine with the bundled all-MiniLM-L6-v2 on one thread: 1.7-3.5x faster for one text
than torch, up to 1.8x per text in batches of 8 (busier machines gain less); a process without torch holds
about half the RSS and is ready in ~4 s rather than 13-31 s (bench/README.md "Embedder runtimes"). The
vectors are sentence-transformers' own (within 1e-5, tests/memadmin/memory/test_onnx_embedder.py), so the
collections' indexes stay valid.

The ONNX file is made from the installed weights, never downloaded: at the first start after the weights,
torch or onnx change, a child process (memadmin/memory/onnx_export.py) exports it into
``<DATA_DIR>/models/``, under a name that carries a checksum of all three. Two processes starting at once
take a file lock; the file appears whole (temp file + rename) or not at all.

What sentence-transformers does around the transformer is read from the model's own files and done here:
modules.json (Transformer, Pooling, optionally Normalize), sentence_bert_config.json (max_seq_length,
do_lower_case), 1_Pooling/config.json (mean pooling only) and tokenizer.json (the `tokenizers` library,
which sentence-transformers' fast tokenizer wraps). A model of another shape is refused with the reason:
the caller then runs it with torch.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
import threading
from importlib import metadata
from pathlib import Path

EXPORT_MODULE = "memadmin.memory.onnx_export"
EXPORT_TIMEOUT_SECONDS = 900
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
_CONFIG_FILES = ("config.json", "modules.json", "sentence_bert_config.json", "tokenizer.json")


class Unsupported(Exception):
    """The model is not one this runtime can reproduce exactly; the message says why."""


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise Unsupported(f"{path} cannot be read: {exc}") from None


class ModelLayout:
    """What sentence-transformers would do with a model directory, read from its files."""

    def __init__(self, model_dir: str | os.PathLike):
        self.dir = Path(model_dir)
        if not self.dir.is_dir():
            raise Unsupported(f"{model_dir} is not a local model directory")
        modules = _read_json(self.dir / "modules.json")
        types = [m.get("type", "").rpartition(".")[2] for m in modules]
        if types not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
            raise Unsupported(f"modules {types}: only Transformer, Pooling and an optional Normalize are run")
        if modules[0].get("path", ""):
            raise Unsupported("the Transformer module is not at the model's root")
        self.normalize = types[-1] == "Normalize"
        pooling = _read_json(self.dir / modules[1]["path"] / "config.json")
        modes = sorted(key for key, value in pooling.items() if key.startswith("pooling_mode_") and value)
        if modes != ["pooling_mode_mean_tokens"]:
            raise Unsupported(f"pooling {modes}: only mean pooling is run")
        if pooling.get("include_prompt") is False:
            raise Unsupported("pooling that leaves out the prompt is not run")
        st_config = _read_json(self.dir / "sentence_bert_config.json")
        self.max_length = int(st_config.get("max_seq_length") or 0)
        self.lower_case = bool(st_config.get("do_lower_case"))
        if self.max_length <= 0:
            raise Unsupported("sentence_bert_config.json sets no max_seq_length")
        config = _read_json(self.dir / "config.json")
        if config.get("model_type") != "bert":
            raise Unsupported(f"model type {config.get('model_type')!r}: only BERT-style encoders are exported")
        # sentence-transformers caps the length at the model's position embeddings too.
        self.max_length = min(self.max_length, int(config.get("max_position_embeddings") or self.max_length))
        self.dims = int(pooling.get("word_embedding_dimension") or config["hidden_size"])
        self.weights = next((self.dir / name for name in _WEIGHT_FILES if (self.dir / name).is_file()), None)
        if self.weights is None or not (self.dir / "tokenizer.json").is_file():
            raise Unsupported("the model directory has no weights file or no tokenizer.json")

    def checksum(self) -> str:
        """Of the weights and configs, and of the versions that shape the export: a change of any is a new file."""
        from memadmin.memory.onnx_export import EXPORT_VERSION, OPSET

        digest = hashlib.sha256()
        for path in [self.weights, *(self.dir / name for name in _CONFIG_FILES)]:
            digest.update(path.name.encode() + b"\0")
            with open(path, "rb") as file:
                for block in iter(lambda: file.read(1 << 20), b""):
                    digest.update(block)
        for package in ("torch", "onnx", "transformers"):
            digest.update(f"{package}={_version(package)}\0".encode())
        digest.update(f"export={EXPORT_VERSION} opset={OPSET}".encode())
        return digest.hexdigest()[:20]


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "none"


def _model_name(layout: ModelLayout) -> str:
    name = layout.dir.name if layout.dir.name != "model" else layout.dir.parent.name
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:80]


def onnx_file(layout: ModelLayout, cache_dir: str | os.PathLike) -> Path:
    """The model's ONNX file in ``cache_dir``, exported first if there is none for these weights and versions."""
    import fcntl

    cache = Path(cache_dir)
    cache.mkdir(mode=0o700, parents=True, exist_ok=True)
    prefix = _model_name(layout)
    target = cache / f"{prefix}-{layout.checksum()}.onnx"
    if target.is_file():
        return target
    with open(cache / f"{prefix}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second process starting now waits here, then finds the file
        try:
            if target.is_file():
                return target
            for stale in cache.glob(f".{prefix}-*.tmp"):  # left by a process killed mid-export (we hold the lock)
                with contextlib.suppress(OSError):
                    stale.unlink()
            temp = cache / f".{target.name}.{os.getpid()}.tmp"
            try:
                _export(layout.dir, temp)
                os.replace(temp, target)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    temp.unlink()
            for old in cache.glob(f"{prefix}-*.onnx"):  # made from other weights or versions: never read again
                if old != target:
                    with contextlib.suppress(OSError):
                        old.unlink()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return target


def _export(model_dir: Path, out: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error", "PYTHONWARNINGS": "ignore"}
    # The child finds this project where this process found it (a worktree, an install).
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-m", EXPORT_MODULE, str(model_dir), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=EXPORT_TIMEOUT_SECONDS,
    )
    if done.returncode != 0 or not out.is_file():
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f"Exporting {model_dir} to ONNX failed (exit {done.returncode}): " + " | ".join(tail))


class OnnxConfig:
    """The part of Mem0's embedder config that Mem0 and memadmin read from an embedder."""

    def __init__(self, model: str, embedding_dims: int):
        self.model, self.embedding_dims = model, embedding_dims


class OnnxEmbedder:
    """Mem0's embedder interface (``embed``, ``embed_batch``, ``config``) over ONNX Runtime and ``tokenizers``."""

    def __init__(self, model_dir: str | os.PathLike, cache_dir: str | os.PathLike, *, threads: int = 1):
        import onnxruntime
        from tokenizers import Tokenizer

        self.layout = layout = ModelLayout(model_dir)
        self.path = onnx_file(layout, cache_dir)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self.session.get_inputs()}
        tokenizer = Tokenizer.from_file(str(layout.dir / "tokenizer.json"))
        # tokenizer.json of this model says 128 tokens and pads every text to 128: sentence-transformers
        # overrides both (max_seq_length, pad to the batch's longest), and so does this.
        tokenizer.enable_truncation(max_length=layout.max_length, strategy="longest_first")
        padding = tokenizer.padding or {}
        tokenizer.enable_padding(
            pad_id=padding.get("pad_id", 0),
            pad_token=padding.get("pad_token", "[PAD]"),
            pad_type_id=padding.get("pad_type_id", 0),
        )
        self.tokenizer = tokenizer
        self._lock = threading.Lock()  # one run at a time: the thread budget is the session's
        self.config = OnnxConfig(str(layout.dir), layout.dims)

    def embed(self, text, memory_action=None):
        if not isinstance(text, str):  # a list, as sentence-transformers' encode takes one: a vector each
            return self.embed_batch(text, memory_action)
        return self.embed_batch([text], memory_action)[0]

    def embed_batch(self, texts, memory_action="add"):
        import numpy as np

        texts = list(texts)
        if not texts:
            return []
        if not all(isinstance(t, str) for t in texts):
            raise TypeError("The embedder takes strings.")
        if self.layout.lower_case:
            texts = [t.lower() for t in texts]
        encodings = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.array([e.type_ids for e in encodings], dtype=np.int64)
        with self._lock:
            (hidden,) = self.session.run(["last_hidden_state"], feeds)
        # sentence-transformers' Pooling (mean over the real tokens) and Normalize (F.normalize, eps 1e-12).
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        if self.layout.normalize:
            pooled = pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return pooled.astype(np.float32).tolist()
