"""The synthetic tenant: N memories over N/10 users, 20 agents, runs and 3 apps, in Mem0's hash layout.

Deterministic per (N, seed, chunk): an interrupted load resumes at the first
chunk not yet recorded in the manifest. Bulk memories carry random unit vectors
(numpy, per chunk); the "heavy" users' memories (~1,000 each: the user that is
browsed, searched and exported) carry real MiniLM embeddings from the
service's own embedder, so search quality can be measured on them.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from tqdm import tqdm

DIMS = 384
CHUNK = 1000  # HSETs per pipeline
AGENTS = tuple(f"agent-{i:02d}" for i in range(1, 21))
APPS = (("concierge_app", 0.5), ("support_app", 0.3), ("sales_app", 0.2))
HEAVY_USERS = 3
HEAVY_SIZE = 1000
EPOCH = 1_735_689_600  # 2025-01-01: created_at spread over the two years before it
SPAN = 2 * 365 * 86400
STAFF_USERNAME = "bench-admin"

TOPICS = {
    "food": [
        "prefers {a} food and avoids {b}",
        "is vegetarian and likes {a} dishes, especially with {b}",
        "is allergic to {b} and asks for {a} options at restaurants",
        "drinks {c} coffee every morning and never orders {b}",
        "wants dinner recommendations for {a} cuisine near the office",
    ],
    "travel": [
        "prefers a window seat on flights longer than {n} hours",
        "travels to {d} for work about {n} times a year",
        "likes hotels near {d} city centre with a gym",
        "is planning a holiday to {d} in {m} with family",
        "collects frequent flyer miles with {e} and prefers aisle seats on short trips",
    ],
    "work": [
        "works as a {f} at a company of {n}00 people",
        "has weekly meetings with the {g} team on {w}",
        "is preparing a presentation about {h} for next {w}",
        "prefers async updates over calls and works from {d} on {w}s",
        "manages a budget for {h} and reports to the head of {g}",
    ],
    "health": [
        "runs {n} kilometres on {w} mornings and tracks sleep",
        "is training for a half marathon in {m}",
        "takes medication for {i} and asked for reminders",
        "does yoga twice a week and avoids {b} for health reasons",
        "has a dentist appointment in {m} and dislikes early slots",
    ],
    "family": [
        "has {n} children and a dog called {j}",
        "their partner {j} works as a {f}",
        "celebrates a wedding anniversary in {m}",
        "their mother lives in {d} and they visit every {m}",
        "is organising a birthday party for {j} with a {a} theme",
    ],
    "hobbies": [
        "plays {k} on weekends and follows the {d} league",
        "reads science fiction and just finished a book about {h}",
        "learns to play the {l} and practices on {w} evenings",
        "enjoys hiking near {d} and photographing birds",
        "builds mechanical keyboards and likes {c} switches",
    ],
    "tech": [
        "uses a {e} laptop and prefers dark mode everywhere",
        "had trouble resetting the password of the {e} account",
        "wants notifications by email, never by SMS",
        "asked to export their data as CSV every {m}",
        "prefers answers with code examples in {h}",
    ],
    "finance": [
        "pays the {e} subscription yearly and wants an invoice in {m}",
        "is saving for a house in {d} over the next {n} years",
        "asked about a refund for order {n}{n}{n} placed in {m}",
        "prefers bank transfers over cards for purchases above {n}00 euros",
        "has a shared account with {j} for household expenses",
    ],
}
SLOTS = {
    "a": ["Italian", "Thai", "Japanese", "Mexican", "Indian", "Lebanese", "Greek", "Korean", "vegan", "spicy"],
    "b": ["peanuts", "shellfish", "gluten", "dairy", "mushrooms", "cilantro", "pork", "alcohol", "sugar", "eggs"],
    "c": ["black", "oat milk", "decaf", "iced", "espresso", "tactile", "linear", "clicky", "green", "flat white"],
    "d": ["Berlin", "Lisbon", "Tokyo", "Toronto", "Nairobi", "Madrid", "Oslo", "Seoul", "Lyon", "Austin"],
    "e": ["Lufthansa", "Apple", "Lenovo", "Spotify", "Netflix", "Iberia", "Dell", "Adobe", "KLM", "Google"],
    "f": ["nurse", "data engineer", "teacher", "product manager", "lawyer", "architect", "chef", "designer"],
    "g": ["sales", "platform", "finance", "design", "legal", "marketing", "research", "support"],
    "h": ["Python", "Rust", "quarterly results", "climate policy", "machine learning", "TypeScript", "Go"],
    "i": ["asthma", "migraines", "high blood pressure", "hay fever", "back pain", "insomnia"],
    "j": ["Sam", "Alex", "Maya", "Noor", "Luca", "Ines", "Tariq", "Yuki", "Olga", "Ben"],
    "k": ["tennis", "football", "chess", "padel", "basketball", "volleyball", "golf"],
    "l": ["piano", "guitar", "cello", "drums", "violin", "ukulele"],
    "m": ["January", "March", "May", "July", "September", "November", "spring", "autumn"],
    "n": ["2", "3", "4", "5", "6", "7", "8", "9"],
    "w": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
}
ASIDES = [
    "mentioned this during a support chat",
    "said this is important to them",
    "repeated it twice in the conversation",
    "asked the agent to remember it for future sessions",
    "added that it changed recently",
    "noted that the previous answer was wrong about it",
    "wants the agent to take it into account when suggesting options",
    "confirmed it when asked a follow-up question",
]
TOPIC_NAMES = list(TOPICS)
TEMPLATES = [(topic, template) for topic in TOPIC_NAMES for template in TOPICS[topic]]

QUERIES = [
    "food preferences",
    "what does the user like to eat",
    "dietary restrictions and allergies",
    "favourite coffee order",
    "seat preference on flights",
    "upcoming holiday plans",
    "which hotels does the user like",
    "job title and team",
    "meetings this week",
    "exercise and running habits",
    "medical conditions",
    "family members and pets",
    "birthday and anniversary dates",
    "weekend hobbies and sports",
    "musical instrument",
    "books the user reads",
    "laptop and devices",
    "notification preferences",
    "subscription and invoices",
    "saving money for a house",
    "refund request",
    "preferred payment method",
    "programming language preferences",
    "travel for work",
]


@dataclass
class Dataset:
    n: int
    seed: int = 1

    @property
    def key(self) -> str:
        return f"n={self.n},seed={self.seed}"

    @property
    def slug(self) -> str:
        return f"bench-n{self.n}-s{self.seed}"

    @property
    def users(self) -> int:
        return max(self.n // 10, HEAVY_USERS + 1)

    @property
    def heavy_size(self) -> int:
        return max(10, min(HEAVY_SIZE, self.n // 20))

    @property
    def heavy_stride(self) -> int:
        # Every stride-th memory belongs to a heavy user: ~heavy_size memories each, spread over time and apps.
        return max(1, self.n // (HEAVY_USERS * self.heavy_size))

    def user_id(self, index: int) -> str:
        return f"u{index:07d}"

    def heavy_user_ids(self) -> list[str]:
        return [self.user_id(i) for i in range(HEAVY_USERS)]

    def typical_user_ids(self, count: int = 20) -> list[str]:
        rng = np.random.default_rng([self.seed, 7])
        return [self.user_id(int(i)) for i in rng.integers(HEAVY_USERS, self.users, count)]


@dataclass
class Chunk:
    """Columns of one pipeline's worth of memories."""

    ids: list[str]
    texts: list[str]
    users: list[str]
    agents: list[str]
    runs: list[str | None]
    apps: np.ndarray
    created: np.ndarray
    updated: np.ndarray
    topics: list[str]
    heavy: np.ndarray  # bool mask: real embeddings


def make_chunk(ds: Dataset, index: int) -> Chunk:
    start = index * CHUNK
    size = min(CHUNK, ds.n - start)
    rng = np.random.default_rng([ds.seed, index])
    positions = np.arange(start, start + size)
    heavy = positions % ds.heavy_stride == 0
    heavy_owner = (positions // ds.heavy_stride) % HEAVY_USERS
    user_index = np.where(heavy, heavy_owner, rng.integers(HEAVY_USERS, ds.users, size))
    app_index = rng.choice(len(APPS), size=size, p=[share for _, share in APPS])
    agent_index = rng.integers(0, len(AGENTS), size)
    run_index = rng.integers(0, 4, size)
    has_run = rng.random(size) < 0.7
    created = EPOCH - rng.integers(0, SPAN, size)
    updated = np.where(rng.random(size) < 0.2, created + rng.integers(0, 30 * 86400, size), created)
    template_index = rng.integers(0, len(TEMPLATES), size)
    # Realistic lengths: most memories are one fact (~60-120 chars), some carry one or two asides.
    asides = np.minimum(rng.poisson(0.6, size), 3)
    slot_picks = rng.integers(0, 1 << 30, (size, 8))
    aside_picks = rng.integers(0, len(ASIDES), (size, 3))
    id_bytes = rng.integers(0, 256, (size, 16), dtype=np.uint8)
    texts, users, runs, topics, ids = [], [], [], [], []
    for row in range(size):
        topic, template = TEMPLATES[template_index[row]]
        picks = slot_picks[row]
        values = {name: choices[picks[k] % len(choices)] for k, (name, choices) in enumerate(_TEMPLATE_SLOTS[template])}
        text = "User " + template.format(**values)
        for k in range(asides[row]):
            text += "; " + ASIDES[aside_picks[row, k]]
        texts.append(text + ".")
        user = ds.user_id(int(user_index[row]))
        users.append(user)
        runs.append(f"run-{user}-{run_index[row]}" if has_run[row] else None)
        topics.append(topic)
        raw = bytearray(id_bytes[row].tobytes())
        raw[6] = (raw[6] & 0x0F) | 0x40  # uuid4 layout, like Mem0's ids
        raw[8] = (raw[8] & 0x3F) | 0x80
        hexed = raw.hex()
        ids.append(f"{hexed[:8]}-{hexed[8:12]}-{hexed[12:16]}-{hexed[16:20]}-{hexed[20:]}")
    return Chunk(
        ids=ids,
        texts=texts,
        users=users,
        agents=[AGENTS[i] for i in agent_index],
        runs=runs,
        apps=app_index,
        created=created,
        updated=updated,
        topics=topics,
        heavy=heavy,
    )


def _slots_of(template: str) -> list[tuple[str, list[str]]]:
    return [(name, SLOTS[name]) for name in SLOTS if "{" + name + "}" in template]


_TEMPLATE_SLOTS = {template: _slots_of(template) for _, template in TEMPLATES}


def random_unit_vectors(rng: np.random.Generator, count: int) -> np.ndarray:
    vectors = rng.standard_normal((count, DIMS), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


# --- manifest -----------------------------------------------------------------


@dataclass
class LoadRecord:
    key: str
    n: int
    seed: int
    tenant: str
    chunks_done: int = 0
    complete: bool = False
    load_seconds: float = 0.0
    memories_per_second: float | None = None
    embed_seconds: float = 0.0
    real_embeddings: int = 0
    collections: dict = field(default_factory=dict)
    history_chunks_done: int = 0  # Mem0 history rows (one per memory) and chat messages written so far
    history_seconds: float = 0.0


class Manifest:
    """What each (N, seed) store holds, so a loaded 1M is reused rather than reloaded."""

    def __init__(self, data_dir: Path):
        self.path = Path(data_dir) / "manifest.json"
        try:
            self.data = json.loads(self.path.read_text())
        except FileNotFoundError:
            self.data = {"datasets": {}}

    def get(self, ds: Dataset) -> LoadRecord | None:
        raw = self.data["datasets"].get(ds.key)
        return LoadRecord(**raw) if raw else None

    def put(self, record: LoadRecord) -> None:
        self.data["datasets"][record.key] = asdict(record)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2, sort_keys=True))
        tmp.replace(self.path)

    def drop(self, ds: Dataset) -> None:
        self.data["datasets"].pop(ds.key, None)
        self.path.write_text(json.dumps(self.data, indent=2, sort_keys=True))


# --- Django rows -----------------------------------------------------------------


def ensure_tenant(ds: Dataset):
    """Tenant, its 3 apps (indexes created before any write), agents, end users, a staff admin and an API key."""
    from django.contrib.auth import get_user_model

    from memadmin.memory import index
    from tenants.models import Agent, App, EndUser, Membership, Role, Tenant

    tenant, _ = Tenant.objects.get_or_create(slug=ds.slug, defaults={"name": f"Bench {ds.n:,} (seed {ds.seed})"})
    apps = []
    for i, (app_id, _) in enumerate(APPS):
        defaults = {"name": app_id, "is_default": i == 0}
        app, _ = App.objects.get_or_create(tenant=tenant, app_id=app_id, defaults=defaults)
        index.ensure(app.app_ref().place)
        apps.append(app)
        if not app.agents.exists():
            Agent.objects.bulk_create([Agent(app=app, agent_id=agent) for agent in AGENTS])
    if EndUser.objects.filter(tenant=tenant).count() < ds.users:
        existing = set(EndUser.objects.filter(tenant=tenant).values_list("user_id", flat=True))
        missing = (ds.user_id(i) for i in range(ds.users) if ds.user_id(i) not in existing)
        batch = []
        for user_id in missing:
            batch.append(EndUser(tenant=tenant, user_id=user_id))
            if len(batch) == 5000:
                EndUser.objects.bulk_create(batch)
                batch = []
        EndUser.objects.bulk_create(batch)
    staff, created = get_user_model().objects.get_or_create(username=STAFF_USERNAME)
    if created:
        staff.set_unusable_password()
        staff.save()
    Membership.objects.get_or_create(user=staff, tenant=tenant, defaults={"role": Role.ADMIN})
    return tenant, apps


def staff_membership(ds: Dataset):
    from tenants.models import Membership

    return Membership.objects.select_related("tenant", "user").get(tenant__slug=ds.slug, user__username=STAFF_USERNAME)


def api_key(ds: Dataset) -> str:
    """A fresh key per run: keys are hashed at rest, so an old one cannot be read back."""
    from tenants.models import Tenant, TenantAPIKey

    tenant = Tenant.objects.get(slug=ds.slug)
    _, key = TenantAPIKey.objects.create_key(name=f"bench-{int(time.time())}", tenant=tenant)
    return key


# --- loading ---------------------------------------------------------------------


def _embed_batch(collection: str, texts: list[str]) -> np.ndarray:
    """MiniLM through the service's own embedder (the one store.embed uses, on its runtime), 64 texts a pass."""
    from memadmin.memory import index, store

    model = index.mem0(store.Place(store.DEFAULT, collection)).embedding_model  # the bench loads the default store
    vectors = [v for i in range(0, len(texts), 64) for v in model.embed_batch(texts[i : i + 64], "add")]
    return np.asarray(vectors, dtype=np.float32)


def _hset_args(key: str, chunk: Chunk, row: int, vector: np.ndarray) -> list:
    text = chunk.texts[row]
    args = [
        "HSET",
        key,
        "memory_id",
        chunk.ids[row],
        "hash",
        hashlib.md5(text.encode()).hexdigest(),
        "memory",
        text,
        "created_at",
        int(chunk.created[row]),
        "updated_at",
        int(chunk.updated[row]),
        "user_id",
        chunk.users[row],
        "agent_id",
        chunk.agents[row],
        # Mem0 2.2 keeps a lemmatised copy of the text in metadata for BM25: the same weight per hash.
        "metadata",
        json.dumps({"category": chunk.topics[row], "source": "bench", "text_lemmatized": text.lower()}),
        "embedding",
        vector.tobytes(),
    ]
    if chunk.runs[row] is not None:
        args += ["run_id", chunk.runs[row]]
    return args


def store_counts(client, collections: list[str]) -> dict[str, int]:
    counts = {}
    for collection in collections:
        info = client.execute_command("FT.INFO", collection)
        fields = dict(zip(info[::2], info[1::2]))
        counts[collection] = int(fields[b"num_docs"])
    return counts


def load(ds: Dataset, manifest: Manifest, raw, *, progress: bool = True) -> LoadRecord:
    """Load (or resume loading) one dataset; returns its manifest record with the load rate."""
    from memadmin.memory import store

    tenant, apps = ensure_tenant(ds)
    collections = [app.collection_name for app in apps]
    record = manifest.get(ds) or LoadRecord(key=ds.key, n=ds.n, seed=ds.seed, tenant=ds.slug)
    if record.complete:
        present = store_counts(raw, collections)
        if sum(present.values()) == ds.n:
            return fill_history(ds, record, manifest, collections, progress=progress)
        # The server lost (part of) it: start again from scratch for this dataset.
        drop(ds, raw, collections)
        tenant, apps = ensure_tenant(ds)
        record = LoadRecord(key=ds.key, n=ds.n, seed=ds.seed, tenant=ds.slug)
    chunks = (ds.n + CHUNK - 1) // CHUNK
    bar = tqdm(
        total=ds.n,
        initial=record.chunks_done * CHUNK,
        desc=f"load N={ds.n:,}",
        unit="mem",
        disable=not progress,
        smoothing=0.05,
    )
    started = time.perf_counter()
    loaded_now = 0
    for index in range(record.chunks_done, chunks):
        chunk = make_chunk(ds, index)
        vectors = random_unit_vectors(np.random.default_rng([ds.seed, index, 1]), len(chunk.ids))
        heavy_rows = np.flatnonzero(chunk.heavy)
        if len(heavy_rows):
            t0 = time.perf_counter()
            vectors[heavy_rows] = _embed_batch(collections[0], [chunk.texts[r] for r in heavy_rows])
            record.embed_seconds += time.perf_counter() - t0
            record.real_embeddings += len(heavy_rows)
        pipe = raw.pipeline(transaction=False)
        for row in range(len(chunk.ids)):
            key = f"{store.key_prefix(collections[chunk.apps[row]])}{chunk.ids[row]}"
            pipe.execute_command(*_hset_args(key, chunk, row, vectors[row]))
        pipe.execute()
        loaded_now += len(chunk.ids)
        record.chunks_done = index + 1
        record.load_seconds += time.perf_counter() - started
        started = time.perf_counter()
        if index % 20 == 0 or index == chunks - 1:
            manifest.put(record)
        bar.update(len(chunk.ids))
    bar.close()
    counts = store_counts(raw, collections)
    record.collections = counts
    record.complete = sum(counts.values()) == ds.n
    record.memories_per_second = round(ds.n / record.load_seconds, 1) if record.load_seconds else None
    manifest.put(record)
    if not record.complete:
        raise RuntimeError(f"Loaded {sum(counts.values())} memories for {ds.key}, expected {ds.n}: {counts}")
    return fill_history(ds, record, manifest, collections, progress=progress)


def as_loaded(ds: Dataset, manifest: Manifest, raw, *, progress: bool = True) -> dict:
    """An interrupted load as it stands (``--as-loaded``), for the sections whose victims are written fresh
    (erasure, purge): the memories the store actually holds, never N, and their history rows filled in, so
    the store is what a complete load of that many memories would be. The chunks are written in order, so
    the store holds the first ``in_store / CHUNK`` of them; a later run resumes the load."""
    tenant, apps = ensure_tenant(ds)
    collections = [app.collection_name for app in apps]
    record = manifest.get(ds) or LoadRecord(key=ds.key, n=ds.n, seed=ds.seed, tenant=ds.slug)
    counts = store_counts(raw, collections)
    in_store = sum(counts.values())
    fill_history(ds, record, manifest, collections, progress=progress, chunks=in_store // CHUNK)
    return {
        "complete": record.complete,
        "dataset_n": ds.n,
        "memories_in_store": in_store,
        "per_collection": counts,
        "history_rows": min(record.history_chunks_done * CHUNK, in_store),
        "load_seconds_so_far": round(record.load_seconds, 1),
    }


MESSAGE_EVERY = 5  # one stored chat message per this many memories, in the memory's (user, agent, run) session
_HISTORY_TABLE = (
    "CREATE TABLE IF NOT EXISTS history (id TEXT PRIMARY KEY, memory_id TEXT, old_memory TEXT, "
    "new_memory TEXT, event TEXT, created_at DATETIME, updated_at DATETIME, is_deleted INTEGER, "
    "actor_id TEXT, role TEXT)"
)
_MESSAGES_TABLE = (
    "CREATE TABLE IF NOT EXISTS messages (id TEXT PRIMARY KEY, session_scope TEXT, role TEXT, "
    "content TEXT, name TEXT, created_at DATETIME)"
)


def fill_history(
    ds: Dataset,
    record: LoadRecord,
    manifest: Manifest,
    collections: list[str],
    *,
    progress: bool = True,
    chunks: int | None = None,
) -> LoadRecord:
    """What Mem0 keeps beside every memory, at the same scale: one ADD row in the app's history DB per
    memory and a chat message per MESSAGE_EVERY memories, in Mem0's own tables (an erasure deletes both, so
    their size is part of its cost). Resumable per chunk; row ids derive from the memory ids, so a chunk
    written twice is written once. ``chunks``: only the first ones (the memories an interrupted load wrote)."""
    import sqlite3

    from memadmin.memory import store
    from memadmin.memory.history import session_scope

    chunks = min(chunks, (ds.n + CHUNK - 1) // CHUNK) if chunks is not None else (ds.n + CHUNK - 1) // CHUNK
    if record.history_chunks_done >= chunks:
        return record
    connections = []
    for collection in collections:
        path = store.history_db_path(collection)
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(path)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(_HISTORY_TABLE)
        connection.execute(_MESSAGES_TABLE)
        connections.append(connection)
    bar = tqdm(
        total=ds.n,
        initial=record.history_chunks_done * CHUNK,
        desc=f"history N={ds.n:,}",
        unit="row",
        disable=not progress,
        smoothing=0.05,
    )
    started = time.perf_counter()
    for index in range(record.history_chunks_done, chunks):
        chunk = make_chunk(ds, index)
        rows = [[] for _ in collections]
        messages = [[] for _ in collections]
        for row, memory_id in enumerate(chunk.ids):
            app = int(chunk.apps[row])
            at = datetime.fromtimestamp(int(chunk.created[row]), UTC).isoformat()
            rows[app].append((f"h-{memory_id}", memory_id, None, chunk.texts[row], "ADD", at, None, 0, None, None))
            if row % MESSAGE_EVERY == 0:
                scope = session_scope(chunk.users[row], chunk.agents[row], chunk.runs[row])
                messages[app].append((f"m-{memory_id}", scope, "user", chunk.texts[row], None, at))
        for connection, app_rows, app_messages in zip(connections, rows, messages):
            with connection:
                connection.executemany("INSERT OR IGNORE INTO history VALUES (?,?,?,?,?,?,?,?,?,?)", app_rows)
                connection.executemany("INSERT OR IGNORE INTO messages VALUES (?,?,?,?,?,?)", app_messages)
        record.history_chunks_done = index + 1
        record.history_seconds += time.perf_counter() - started
        started = time.perf_counter()
        if index % 20 == 0 or index == chunks - 1:
            manifest.put(record)
        bar.update(len(chunk.ids))
    bar.close()
    for connection in connections:
        connection.close()
    manifest.put(record)
    return record


def drop(ds: Dataset, raw, collections: list[str] | None = None) -> None:
    """Remove one dataset from the store and the bench DB (used by --reload)."""
    from memadmin.memory import index, store
    from tenants.models import Tenant

    tenant = Tenant.objects.filter(slug=ds.slug).first()
    if collections is None:
        collections = [app.collection_name for app in tenant.apps.all()] if tenant else []
    for collection in collections:
        try:
            raw.execute_command("FT.DROPINDEX", collection, "DD")
        except Exception:  # noqa: BLE001 - no index: nothing to drop
            pass
        index.forget(store.Place(store.DEFAULT, collection))  # raw is the default store
    if tenant:
        tenant.delete()
