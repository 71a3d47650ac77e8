"""The process's embedder coalesces concurrent embed calls into batches (memadmin/memory/embedding.py),
against the real bundled model: same vectors as one at a time, each caller gets its own, failures reach
every caller of the batch, and a lone call is never held back."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading

import numpy as np
import pytest

from memadmin.memory import embedders
from memadmin.memory.embedding import CoalescingEmbedder, EmbedderService, EmbedderUnavailable, RemoteEmbedder

TEXTS = [
    f"{subject} (note {i})"
    for i, subject in enumerate(
        [
            "Alice likes green tea",
            "Bob is allergic to peanuts",
            "Carol runs marathons",
            "Dan prefers window seats",
            "Erin speaks Portuguese at home",
            "Frank's daughter starts school in May",
            "Gina never flies on Fridays",
            "Hugo plays the cello on Sundays",
        ]
        * 3
    )
]


class Gate:
    """A wrapped embedder whose first pass waits until the test lets it go: the other callers queue
    behind it meanwhile, deterministically, so the second pass must carry all of them."""

    def __init__(self, inner, fail_on: str | None = None):
        self.inner, self.fail_on = inner, fail_on
        self.entered, self.release = threading.Event(), threading.Event()
        self.batch_sizes: list[int] = []

    def embed(self, text, memory_action=None):
        return self.inner.embed(text, memory_action)

    def embed_batch(self, texts, memory_action="add"):
        self.batch_sizes.append(len(texts))
        if len(self.batch_sizes) == 1:
            self.entered.set()
            assert self.release.wait(30)
        if self.fail_on is not None and self.fail_on in texts:
            raise RuntimeError("the model failed on this batch")
        return self.inner.embed_batch(texts, memory_action)


def run_threads(embedder, texts, call_embed=None):
    results, errors = {}, {}
    call_embed = call_embed or embedder.embed

    def call(i):
        try:
            results[i] = call_embed(texts[i], "search")
        except Exception as exc:
            errors[i] = exc

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(texts))]
    return threads, results, errors


@pytest.fixture(scope="module")
def model():
    embedder = embedders.embedder()
    assert isinstance(embedder, CoalescingEmbedder)  # the local model is coalesced by default
    return embedder.inner


def start_behind_a_held_pass(coalescing, gate, texts, call=None):
    """One caller enters the model and is held there; the rest queue; then the model is let go."""
    threads, results, errors = run_threads(coalescing, texts, call)
    threads[0].start()
    assert gate.entered.wait(30)
    for thread in threads[1:]:
        thread.start()
    deadline = threading.Event()
    while len(coalescing._queue) < len(texts) - 1 and not deadline.wait(0.01):  # noqa: SLF001 (the queue is the point)
        pass
    gate.release.set()
    for thread in threads:
        thread.join(60)
    return results, errors


def test_callers_that_overlap_share_one_pass_and_each_gets_its_own_vector(model):
    gate = Gate(model)
    coalescing = CoalescingEmbedder(gate, max_batch=16)
    texts = TEXTS[:9]
    results, errors = start_behind_a_held_pass(coalescing, gate, texts)
    assert not errors
    assert gate.batch_sizes == [1, 8]  # the first alone, the eight that queued behind it together
    assert (coalescing.batches, coalescing.texts) == (2, 9)
    for i, text in enumerate(texts):
        alone = np.array(model.embed(text, "search"))
        assert len(results[i]) == len(alone) == 384
        assert np.allclose(results[i], alone, atol=1e-5), text  # padding does not leak into the vector
    assert len({tuple(np.round(v, 4)) for v in results.values()}) == len(texts)


def test_a_queue_longer_than_the_batch_limit_is_served_in_turns(model):
    gate = Gate(model)
    coalescing = CoalescingEmbedder(gate, max_batch=4)
    texts = TEXTS[:11]
    results, errors = start_behind_a_held_pass(coalescing, gate, texts)
    assert not errors and len(results) == 11
    assert gate.batch_sizes == [1, 4, 4, 2]
    assert not coalescing._busy and not coalescing._queue  # noqa: SLF001 (idle again: the next call leads)


def test_a_failing_pass_fails_every_caller_in_it_and_the_next_call_works(model):
    gate = Gate(model, fail_on=TEXTS[3])
    coalescing = CoalescingEmbedder(gate, max_batch=16)
    results, errors = start_behind_a_held_pass(coalescing, gate, TEXTS[:6])
    assert set(results) == {0} and set(errors) == {1, 2, 3, 4, 5}
    assert all("the model failed" in str(exc) for exc in errors.values())
    assert np.allclose(coalescing.embed(TEXTS[7], "search"), model.embed(TEXTS[7], "search"), atol=1e-5)


def test_a_lone_call_runs_at_once_as_a_batch_of_one(model):
    coalescing = CoalescingEmbedder(model, max_batch=16)
    vector = coalescing.embed("Alice likes green tea", "search")
    assert (coalescing.batches, coalescing.texts) == (1, 1)
    assert np.allclose(vector, model.embed("Alice likes green tea", "search"), atol=1e-5)


def test_batch_of_one_and_non_text_inputs_go_straight_to_the_model(model):
    off = CoalescingEmbedder(model, max_batch=1)
    off.embed("Alice likes green tea", "search")
    assert off.batches == 0  # MEMADMIN_EMBEDDER_BATCH=1: each text alone, as Mem0 does
    assert off.config is model.config  # everything else is the wrapped embedder's


# --- the embedder process shared by serve's web workers ------------------------------------------------


@pytest.fixture
def service(model):
    """An EmbedderService on a real socket in this process (serve runs it as manage.py embedder)."""
    directory = tempfile.mkdtemp(prefix="me-")  # AF_UNIX paths stop at 107 bytes: pytest's tmp_path can be longer
    gate = Gate(model)
    gate.release.set()  # open unless a test closes it
    running = EmbedderService(CoalescingEmbedder(gate, max_batch=16), os.path.join(directory, "e.sock"), b"k" * 32)
    running.gate = gate
    running.start()
    thread = threading.Thread(target=running.serve_forever, daemon=True)
    thread.start()
    yield running
    running.stop()
    thread.join(10)
    shutil.rmtree(directory, ignore_errors=True)


def remote_for(service, model, key=b"k" * 32):
    built = []

    def local():
        built.append(True)
        return CoalescingEmbedder(model)

    remote = RemoteEmbedder(service.address, key, local)
    remote.built_local = built
    return remote


def test_workers_get_the_processs_vectors_and_their_texts_share_its_passes(service, model):
    remote = remote_for(service, model)
    assert remote.wait_ready(10)
    vector = remote.embed(TEXTS[0], "search")
    assert np.allclose(vector, model.embed(TEXTS[0], "search"), atol=1e-5)
    batch = remote.embed_batch(TEXTS[:5], "add")  # an import's many texts: one message, one pass
    assert len(batch) == 5 and np.allclose(batch[4], model.embed(TEXTS[4], "add"), atol=1e-5)
    many = remote.embed_batch(TEXTS * 2, "add")  # more than a message carries: several, in order
    assert len(many) == 48 and np.allclose(many[47], model.embed(TEXTS[23], "add"), atol=1e-5)
    assert not remote.built_local  # nothing was loaded in the worker

    # Eight worker threads, each on its own connection, while the model is held: one pass carries the seven.
    service.gate.release.clear()
    service.gate.entered.clear()
    service.gate.batch_sizes.clear()
    results, errors = start_behind_a_held_pass(service.embedder, service.gate, TEXTS[:8], call=remote.embed)
    assert not errors and len(results) == 8
    assert service.gate.batch_sizes == [1, 7]
    for i in (0, 7):
        assert np.allclose(results[i], model.embed(TEXTS[i], "search"), atol=1e-5)


def test_a_worker_that_cannot_reach_the_process_embeds_itself_and_asks_again_later(service, model, monkeypatch, caplog):
    import logging

    from memadmin.memory import embedding

    wrong = remote_for(service, model, key=b"x" * 32)  # not this start's key: refused at connect
    wrong._logger = logging.getLogger("memadmin.store")  # noqa: SLF001
    assert not wrong.wait_ready(0.5)
    assert np.allclose(wrong.embed(TEXTS[1], "search"), model.embed(TEXTS[1], "search"), atol=1e-5)
    assert wrong.built_local and "cannot be reached" in caplog.text

    remote = remote_for(service, model)
    assert remote.wait_ready(10)
    service.stop()  # the process went away: its connections with it
    monkeypatch.setattr(embedding, "RETRY_SECONDS", 0.0)
    assert np.allclose(remote.embed(TEXTS[2], "search"), model.embed(TEXTS[2], "search"), atol=1e-5)
    assert remote.built_local
    # serve's master starts it again on the same socket: past the retry window the worker uses it again.
    gate = Gate(model)
    gate.release.set()
    again = EmbedderService(CoalescingEmbedder(gate), service.address, b"k" * 32)
    again.start()
    threading.Thread(target=again.serve_forever, daemon=True).start()
    try:
        assert np.allclose(remote.embed(TEXTS[3], "search"), model.embed(TEXTS[3], "search"), atol=1e-5)
        assert gate.batch_sizes == [1]
    finally:
        again.stop()


def test_the_process_answers_nonsense_with_an_error_and_keeps_serving(service, model):
    for message in (b"not json", b'{"texts": []}', b'{"texts": [1, 2]}', b'{"other": 1}', b"\xff\xfe"):
        assert service.answer(message)[:1] == b"E"
    failing = EmbedderService(CoalescingEmbedder(Gate(model, fail_on=TEXTS[0])), "unused", b"k")
    failing.embedder.inner.release.set()
    reply = failing.answer(json.dumps({"texts": [TEXTS[0]]}).encode())
    assert reply.startswith(b"ERuntimeError: the model failed")
    # ...which the worker raises for that request (a 503 from the view), rather than embedding it again.
    remote = remote_for(service, model)
    service.embedder.inner.fail_on = TEXTS[3]
    with pytest.raises(EmbedderUnavailable, match="the model failed") as failed:
        remote.embed(TEXTS[3], "search")
    assert failed.value.status == 503  # a StoreUnavailable: the views answer 503 saying so, never a 500
    assert remote.embed(TEXTS[4], "search") and not remote.built_local


def test_the_embedder_command_needs_the_socket_and_key_serve_makes(monkeypatch):
    from django.core.management import CommandError, call_command

    monkeypatch.delenv(embedders.EMBEDDER_SOCKET_ENV, raising=False)
    monkeypatch.delenv(embedders.EMBEDDER_KEY_ENV, raising=False)
    with pytest.raises(CommandError, match="serve sets both"):
        call_command("embedder")
    monkeypatch.setenv(embedders.EMBEDDER_KEY_ENV, "not hex")
    with pytest.raises(CommandError, match="must be hex"):
        call_command("embedder", socket="/tmp/unused.sock")
