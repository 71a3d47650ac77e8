"""Settings come from the environment, strictly: a bad value stops the process with ImproperlyConfigured."""

import os
import runpy
import stat
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from memadmin import env

SETTINGS = Path(__file__).resolve().parents[2] / "memadmin" / "settings.py"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for name in (
        "DEBUG",
        "SECRET_KEY",
        "ALLOWED_HOSTS",
        "DATABASE_URL",
        "VALKEY_URL",
        "MEMADMIN_VALKEY_PORT",
        "MEMADMIN_VALKEY_TIMEOUT",
        "MEMADMIN_LLM_PROVIDER",
        "MEMADMIN_INDEX_ALGORITHM",
        "MEMADMIN_EMBEDDER_DIMS",
        "MEMADMIN_ERASURE_PURGE_SECONDS",
        "MEMADMIN_EMBEDDER_RUNTIME",
        "X_TEST",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MEMADMIN_DATA_DIR", str(tmp_path / "data"))


@pytest.mark.parametrize("raw", ["1", "true", "TRUE", " yes ", "on"])
def test_env_bool_true(monkeypatch, raw):
    monkeypatch.setenv("X_TEST", raw)
    assert env.env_bool("X_TEST", False) is True


@pytest.mark.parametrize("raw", ["0", "false", "No", "off", ""])
def test_env_bool_false(monkeypatch, raw):
    monkeypatch.setenv("X_TEST", raw)
    assert env.env_bool("X_TEST", True) is False


@pytest.mark.parametrize("raw", ["maybe", "2", "tru", "yes please", "-1"])
def test_env_bool_rejects_anything_else(monkeypatch, raw):
    monkeypatch.setenv("X_TEST", raw)
    with pytest.raises(ImproperlyConfigured, match="X_TEST"):
        env.env_bool("X_TEST", False)


def test_env_bool_default_when_unset():
    assert env.env_bool("X_TEST", True) is True
    assert env.env_bool("X_TEST", False) is False


def test_env_int(monkeypatch):
    assert env.env_int("X_TEST", 7) == 7
    monkeypatch.setenv("X_TEST", " 42 ")
    assert env.env_int("X_TEST", 7, minimum=0, maximum=100) == 42
    monkeypatch.setenv("X_TEST", "")
    assert env.env_int("X_TEST", 7) == 7


@pytest.mark.parametrize(
    "raw,kwargs", [("abc", {}), ("3.5", {}), ("1e3", {}), ("-1", {"minimum": 0}), ("70000", {"maximum": 65535})]
)
def test_env_int_rejects_bad_values(monkeypatch, raw, kwargs):
    monkeypatch.setenv("X_TEST", raw)
    with pytest.raises(ImproperlyConfigured, match="X_TEST"):
        env.env_int("X_TEST", 1, **kwargs)


def test_env_choice(monkeypatch):
    assert env.env_choice("X_TEST", "hnsw", ("hnsw", "flat")) == "hnsw"
    monkeypatch.setenv("X_TEST", " FLAT ")
    assert env.env_choice("X_TEST", "hnsw", ("hnsw", "flat")) == "flat"
    monkeypatch.setenv("X_TEST", "ivf")
    with pytest.raises(ImproperlyConfigured, match="X_TEST.*hnsw, flat"):
        env.env_choice("X_TEST", "hnsw", ("hnsw", "flat"))


def test_env_list_and_str(monkeypatch):
    assert env.env_list("X_TEST", ["a"]) == ["a"]
    monkeypatch.setenv("X_TEST", " a.example, b.example,, ")
    assert env.env_list("X_TEST", []) == ["a.example", "b.example"]
    monkeypatch.setenv("X_TEST", "  value ")
    assert env.env_str("X_TEST") == "value"
    monkeypatch.delenv("X_TEST")
    assert env.env_str("X_TEST", "default") == "default"


def test_data_dir_is_created(monkeypatch, tmp_path):
    monkeypatch.setenv("MEMADMIN_DATA_DIR", str(tmp_path / "a" / "b"))
    path = env.data_dir()
    assert path == (tmp_path / "a" / "b").resolve() and path.is_dir()


def test_data_dir_defaults_to_var(monkeypatch, tmp_path):
    monkeypatch.delenv("MEMADMIN_DATA_DIR")
    monkeypatch.chdir(tmp_path)
    assert env.data_dir() == (tmp_path / "var").resolve()


def test_data_dir_that_cannot_be_created(monkeypatch, tmp_path):
    (tmp_path / "file").write_text("not a directory")
    monkeypatch.setenv("MEMADMIN_DATA_DIR", str(tmp_path / "file" / "data"))
    with pytest.raises(ImproperlyConfigured, match="MEMADMIN_DATA_DIR"):
        env.data_dir()


def test_secret_key_generated_once_and_reused(tmp_path):
    key = env.secret_key(tmp_path)
    assert len(key) >= 50
    path = tmp_path / "secret_key"
    assert path.read_text().strip() == key
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert env.secret_key(tmp_path) == key
    assert env.secret_key(tmp_path) == key
    other = tmp_path / "other"
    other.mkdir()
    assert env.secret_key(other) != key


def test_secret_key_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SECRET_KEY", "x" * 40)
    assert env.secret_key(tmp_path) == "x" * 40
    assert not (tmp_path / "secret_key").exists()
    monkeypatch.setenv("SECRET_KEY", "too-short")
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY"):
        env.secret_key(tmp_path)


# --- the settings module as a whole (executed afresh, not the already-configured one) ---------


def load_settings():
    return runpy.run_path(str(SETTINGS))


def test_settings_defaults(tmp_path):
    loaded = load_settings()
    assert loaded["DEBUG"] is False
    assert loaded["VALKEY_URL"] is None  # embedded
    assert loaded["DATA_DIR"] == (tmp_path / "data").resolve()
    assert loaded["DATABASES"]["default"]["NAME"] == str((tmp_path / "data" / "db.sqlite3").resolve())
    assert loaded["MEMADMIN_EMBEDDER_DIMS"] == 384
    assert loaded["MEMADMIN_INDEX_ALGORITHM"] == "hnsw"
    assert loaded["MEMADMIN_ERASURE_PURGE_SECONDS"] == 900 and loaded["MEMADMIN_RECEIPT_SIGNING_KEY"] is None
    assert loaded["MEMADMIN_REQUEST_LOG_DAYS"] == 30
    first_key = loaded["SECRET_KEY"]
    assert load_settings()["SECRET_KEY"] == first_key  # generated once into the data dir, then reused
    assert (tmp_path / "data" / "secret_key").read_text().strip() == first_key


def test_settings_read_the_environment(monkeypatch):
    monkeypatch.setenv("DEBUG", "true")
    monkeypatch.setenv("ALLOWED_HOSTS", "memadmin.example.com,admin.example.com")
    monkeypatch.setenv("VALKEY_URL", "valkey://valkey.internal:6379/0")
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@db.internal:5432/memadmin")
    monkeypatch.setenv("MEMADMIN_INDEX_ALGORITHM", "flat")
    monkeypatch.setenv("MEMADMIN_ERASURE_PURGE_SECONDS", "10")
    monkeypatch.setenv("MEMADMIN_REQUEST_LOG_DAYS", "7")
    loaded = load_settings()
    assert loaded["MEMADMIN_ERASURE_PURGE_SECONDS"] == 10 and loaded["MEMADMIN_REQUEST_LOG_DAYS"] == 7
    assert loaded["DEBUG"] is True
    assert loaded["ALLOWED_HOSTS"] == ["memadmin.example.com", "admin.example.com"]
    assert loaded["VALKEY_URL"] == "valkey://valkey.internal:6379/0"
    assert loaded["DATABASES"]["default"]["ENGINE"] == "django.db.backends.postgresql"
    assert loaded["DATABASES"]["default"]["HOST"] == "db.internal"
    assert loaded["MEMADMIN_INDEX_ALGORITHM"] == "flat"


@pytest.mark.parametrize(
    "name,value",
    [
        ("DEBUG", "maybe"),
        ("MEMADMIN_VALKEY_PORT", "abc"),
        ("MEMADMIN_VALKEY_PORT", "70000"),
        ("MEMADMIN_VALKEY_TIMEOUT", "0"),
        ("MEMADMIN_EMBEDDER_DIMS", "many"),
        ("MEMADMIN_LLM_PROVIDER", "skynet"),
        ("MEMADMIN_INDEX_ALGORITHM", "ivf"),
        ("VALKEY_URL", "http://valkey:6379"),
        ("DATABASE_URL", "nosuchdb://x"),
        ("SECRET_KEY", "short"),
        ("MEMADMIN_ERASURE_PURGE_SECONDS", "9"),
        ("MEMADMIN_ERASURE_PURGE_SECONDS", "15m"),
        ("MEMADMIN_RECEIPT_SIGNING_KEY", "c2hvcnQ="),
        ("MEMADMIN_RECEIPT_SIGNING_KEY", "not base64!"),
        ("MEMADMIN_REQUEST_LOG_DAYS", "0"),
        ("MEMADMIN_REQUEST_LOG_DAYS", "366"),
        ("MEMADMIN_REQUEST_LOG_DAYS", "a month"),
    ],
)
def test_settings_refuse_bad_values(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ImproperlyConfigured, match=name):
        load_settings()


def test_env_networks(monkeypatch):
    """MEMADMIN_WEBHOOK_ALLOW_NETWORKS: CIDRs, a bare address is its own network; anything else stops the process."""
    monkeypatch.setenv("X_TEST", "10.0.0.0/8, 127.0.0.1,::1/128")
    assert [str(n) for n in env.env_networks("X_TEST")] == ["10.0.0.0/8", "127.0.0.1/32", "::1/128"]
    monkeypatch.setenv("X_TEST", "10.0.0.0/8,intranet")
    with pytest.raises(ImproperlyConfigured, match="X_TEST"):
        env.env_networks("X_TEST")
    monkeypatch.delenv("X_TEST")
    assert env.env_networks("X_TEST") == ()


def test_embedder_runtime_is_onnx_by_default_torch_on_request_and_nothing_else(monkeypatch):
    assert load_settings()["MEMADMIN_EMBEDDER_RUNTIME"] == "onnx"
    monkeypatch.setenv("MEMADMIN_EMBEDDER_RUNTIME", " Torch ")
    assert load_settings()["MEMADMIN_EMBEDDER_RUNTIME"] == "torch"
    monkeypatch.setenv("MEMADMIN_EMBEDDER_RUNTIME", "tensorrt")
    with pytest.raises(ImproperlyConfigured, match="MEMADMIN_EMBEDDER_RUNTIME must be one of onnx, torch"):
        load_settings()
