"""Re-verifying an unchanged file: its decided result read back by the content of its inputs.

The run cache (:mod:`causal_mi.engine.cache`) turns every forward pass of a re-verify into
a read, but on the models a verify is usually run on the forward passes are not where the
time goes: loading the model and the analyses over the runs (the DoWhy cross-check and its
refuters, the graph's causal model, Z3) cost several times more. So the CLI also keeps the
whole decided result of a verify (the :class:`~causal_mi.report.context.ReportContext`
every report is rendered from) under the digest of everything it is a function of, and
reads it back without loading the model or running an analysis:

- the hypothesis file's bytes and resolved path, and the bytes of the task file it names;
- every file of the model's directory (weights, config, tokenizer) and its resolved path;
- causal-mi's own code and data (a digest of the installed package's files, not only its
  version number), the versions of the libraries whose arithmetic enters a result, and
  Python's;
- what the command sets: device kind, precision, the ablation check, DoWhy, the views.

Rows per pass and the memory budget are not part of it: they change no number beyond the
engine's documented batch tolerance (the run cache is addressed the same way). A model
named by a hub id, with no local directory to hash, has no address here: its verifies are
never reused whole (their forward passes still are). Reports are rendered again from the
saved result, so a newer renderer never serves an older page.

A saved result is a pickle, and reading a pickle can run code, so each file is signed
(HMAC-SHA256) with a key only this user can read (``$CAUSAL_MI_KEY`` or
``~/.cache/causal-mi/reuse.key``, created on first use with mode 0600). A file whose
signature does not verify (damaged, truncated, written by another user or machine) is
ignored and the file verified again; nothing is unpickled unsigned.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import pickle
import platform
import secrets
import uuid
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from causal_mi import __version__

# Libraries whose arithmetic or decisions enter a verify's numbers.
LIBRARIES = (
    "torch",
    "transformer-lens",
    "transformers",
    "tokenizers",
    "safetensors",
    "numpy",
    "scipy",
    "pandas",
    "scikit-learn",
    "statsmodels",
    "dowhy",
    "pgmpy",
    "networkx",
    "z3-solver",
    "pydantic",
    "pyyaml",
)
_PACKAGE_DIR = Path(__file__).resolve().parent
_ZOO_MODELS = _PACKAGE_DIR / "zoo" / "models"
_SUFFIX = ".result"
_MAGIC = b"causal-mi reuse 1\n"


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@lru_cache(maxsize=256)
def _big_file_sha256(path: str, identity: tuple) -> str:
    return _sha256(path)


_BIG = 1 << 24  # 16 MiB: weight files; a hypothesis, task or config file is hashed each time


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes. A large file (weights) is hashed once per process
    while its inode, size, modification and change times stay the same; a small one every
    time (a threshold edited within the file system's clock tick keeps its size and mtime)."""
    st = path.stat()
    if st.st_size < _BIG:
        return _sha256(str(path))
    identity = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    return _big_file_sha256(str(path), identity)


def tree_digest(root: Path, *, skip: Path | None = None) -> str:
    """The digest of every regular file under ``root`` (names relative to it and contents),
    leaving out caches, hidden files and the ``skip`` directory."""
    h = hashlib.sha256()
    for f in sorted(root.rglob("*")):
        rel = f.relative_to(root)
        if any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
            continue
        if skip is not None and f.is_relative_to(skip):
            continue
        if f.is_file():
            h.update(f"{rel.as_posix()}\0{file_sha256(f)}\0".encode())
    return h.hexdigest()


@lru_cache(maxsize=1)
def fingerprint() -> tuple:
    """causal-mi's code and data (the zoo's models are hashed where a file names one), the
    libraries' versions and Python's: what a result depends on besides its inputs."""
    versions = []
    for name in LIBRARIES:
        try:
            versions.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            versions.append((name, None))
    code = tree_digest(_PACKAGE_DIR, skip=_ZOO_MODELS)
    return (__version__, code, tuple(versions), platform.python_version())


def model_directory(ref: str, base_dir: Path) -> Path | None:
    """The local directory a model reference loads from (``zoo:`` / ``path:`` / a local
    ``hf:``), holding a config.json, or None (a hub id, or a reference that does not
    resolve: then loading it reports the problem). Also what
    :func:`causal_mi.models.loading.local_config` reads."""
    scheme, _, name = ref.partition(":")
    if scheme == "zoo":
        d = _ZOO_MODELS / name
    elif scheme in ("path", "hf"):
        d = Path(name) if Path(name).is_absolute() else base_dir / name
    else:
        return None
    return d.resolve() if (d / "config.json").is_file() else None


def input_key(hyp: Any, options: dict[str, Any]) -> str | None:
    """The address of a verify of the loaded hypothesis ``hyp`` under ``options`` (device
    kind, precision, what the command adds), or None when an input has no local content to
    hash (a hub model, a missing task file: then nothing is reused)."""
    model_dir = model_directory(hyp.spec.model, hyp.base_dir)
    if model_dir is None:
        return None
    parts: list[Any] = [
        fingerprint(),
        sorted(options.items()),
        str(Path(hyp.path).resolve()),
        file_sha256(Path(hyp.path)),
        str(model_dir),
        tree_digest(model_dir),
    ]
    if hyp.spec.task.file is not None:
        task_file = Path(hyp.spec.task.file)
        task_file = task_file if task_file.is_absolute() else hyp.base_dir / task_file
        if not task_file.is_file():
            return None
        parts += [str(task_file.resolve()), file_sha256(task_file)]
    text = json.dumps(parts, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _secret() -> bytes:
    """This user's signing key, created on first use (mode 0600)."""
    env = os.environ.get("CAUSAL_MI_KEY")
    if env:
        return env.encode()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "causal-mi"
    path = base / "reuse.key"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    base.mkdir(parents=True, exist_ok=True)
    tmp = base / f".reuse.key.{uuid.uuid4().hex}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(secrets.token_hex(32).encode())
    try:
        os.link(tmp, path)  # the first writer wins; a concurrent one reads the winner's key
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_bytes()


class ResultStore:
    """Decided results saved under ``directory`` (``<cache>/results``), one signed file each,
    written under a temporary name and renamed into place (a torn write is never read)."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}{_SUFFIX}"

    def get(self, key: str | None) -> Any:
        """The result saved under ``key``, or None (absent, unsigned, damaged or unreadable)."""
        if key is None:
            return None
        try:
            data = self._path(key).read_bytes()
        except OSError:
            return None
        head = len(_MAGIC)
        if not data.startswith(_MAGIC) or len(data) < head + 32:
            return None
        mac, body = data[head : head + 32], data[head + 32 :]
        try:
            want = hmac.new(_secret(), key.encode() + body, hashlib.sha256).digest()
        except OSError:
            return None
        if not hmac.compare_digest(mac, want):
            return None
        try:
            return pickle.loads(body)  # noqa: S301  (signed by this user's key above)
        except Exception:  # a class renamed since: verify again
            return None

    def put(self, key: str | None, result: Any) -> bool:
        """Save ``result`` under ``key``; False (nothing saved) where it cannot be."""
        if key is None:
            return False
        try:
            body = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
            mac = hmac.new(_secret(), key.encode() + body, hashlib.sha256).digest()
            self.directory.mkdir(parents=True, exist_ok=True)
            tmp = self.directory / f".{key}.{uuid.uuid4().hex}.tmp"
            tmp.write_bytes(_MAGIC + mac + body)
            os.replace(tmp, self._path(key))
        except (OSError, pickle.PicklingError, TypeError, AttributeError):
            return False
        return True


class Entry:
    """One file of a command: its saved result where its inputs are unchanged (``result``),
    else what measuring it needs (``prep``, set by the caller), and where to save it;
    ``hypothesis``: the file as loaded to address it (so it is not parsed twice)."""

    def __init__(
        self,
        path: Path,
        store: ResultStore | None,
        key: str | None,
        result: Any,
        hypothesis: Any = None,
    ):
        self.path = Path(path)
        self.store, self.key, self.result = store, key, result
        self.hypothesis = hypothesis
        self.prep: Any = None

    def save(self, result: Any) -> None:
        if self.store is not None:
            self.store.put(self.key, result)


def find(path: Path, cache: Path | None, options: dict[str, Any]) -> Entry:
    """The saved result of ``path`` under ``options`` in ``cache`` (None: reuse nothing);
    raises :class:`~causal_mi.errors.InputError` on a file that does not load."""
    if cache is None:
        return Entry(path, None, None, None)
    from causal_mi.spec.loader import load_hypothesis

    hyp = load_hypothesis(path)
    key = input_key(hyp, options)
    store = ResultStore(Path(cache) / "results")
    return Entry(path, store, key, store.get(key), hyp)
