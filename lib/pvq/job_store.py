"""The test session's store of computed results, so a notebook run twice computes once.

``PVQ_JOB_STORE`` names a directory: the test command sets it to a fresh one per session, so
a notebook run a second time in that session (its student edition in the browser, after nbval
ran the master) takes the results of its heavy steps from the first run instead of computing
them again. A learner never sets it, and then nothing here runs: no key is even computed.

A result is found only for the same function, the same arguments, the same library source and
the same CPU kernels (``torch.backends.cpu.get_cpu_capability()``); a function is known by its
importable name (a ``functools.partial`` by its function and arguments). The key is a SHA-256 of all
of these serialized with ``torch.save``, streamed (a model's weights are hashed, not copied),
which also keeps tensors that share memory shared in a stored result. A result another process
of the session is computing (nbval and the browser run the same notebook at once) is waited
for, not computed a second time: each result's lock file is held (``flock``, released when its
holder exits) from claim to stored result.

``parallel_map`` keeps each job's result here; ``stored`` keeps a pure library function's.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
import tempfile
import types
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

Result = TypeVar("Result")



class _Digest:
    """A write-only file: what ``torch.save`` writes is hashed as it comes."""

    def __init__(self) -> None:
        self.sha = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        return len(data)

    def flush(self) -> None:
        pass


def _module_key(*state: object) -> None:
    """Stands for a module in a key (keys are hashed, never loaded)."""


class _KeyPickler(pickle.Pickler):
    """Serializes what decides a result the same way in every process: a module as its class,
    its printed structure, its weights and its mode (a whole module pickles its configuration
    objects, whose sets come out in an order that differs between processes); a set sorted."""

    def reducer_override(self, obj: object) -> object:
        import torch

        if isinstance(obj, torch.nn.Module):
            return _module_key, (type(obj).__module__, type(obj).__qualname__, repr(obj),
                                 obj.state_dict(), obj.training)
        if isinstance(obj, (set, frozenset)):
            return type(obj), (sorted(obj, key=repr),)
        return NotImplemented


_KEY_PICKLING = types.SimpleNamespace(__name__="pickle", Pickler=_KeyPickler)


@functools.cache
def _source_digest() -> str:
    """A digest of the library's source: a stored result is stale once any module changes."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def path_for(function: Callable, arguments: object) -> Path | None:
    """Where the result of ``function`` on ``arguments`` is kept, or ``None`` without a store
    (or for arguments that cannot be serialized: they are computed every time)."""
    store = os.environ.get("PVQ_JOB_STORE")
    if not store:
        return None
    import torch

    digest = _Digest()
    try:
        torch.save((function, arguments, _source_digest(),
                    torch.backends.cpu.get_cpu_capability()), digest, pickle_module=_KEY_PICKLING)
    except Exception:  # noqa: BLE001 - whatever cannot be serialized (a lambda, a lock) is not kept
        return None
    return Path(store) / f"{digest.sha.hexdigest()}.pt"


def load(path: Path) -> tuple[bool, object]:
    """``(True, result)`` if ``path`` holds a result, else ``(False, None)``."""
    if not path.exists():
        return False, None
    import torch

    return True, torch.load(path, weights_only=False)  # written by this session only


def save(path: Path, result: object) -> None:
    """Keep ``result`` at ``path``, whole or not at all (a result that cannot be serialized is
    not kept)."""
    import torch

    # written whole, then renamed: a reader in another process never sees half a result
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as handle:
        try:
            torch.save(result, handle)
        except Exception:  # noqa: BLE001 - as in path_for
            os.unlink(handle.name)
            return
    os.replace(handle.name, path)


def claim(path: Path, wait: bool) -> int | None:
    """This process's hold on the result at ``path`` (a file descriptor, closed to release it),
    or ``None`` when another process holds it and ``wait`` is false."""
    import fcntl  # POSIX only, as the store: the test command sets it, a learner never does

    path.parent.mkdir(parents=True, exist_ok=True)
    handle = os.open(path.with_suffix(".lock"), os.O_CREAT | os.O_RDWR)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        os.close(handle)
        return None
    return handle


def stored(function: Callable[..., Result]) -> Callable[..., Result]:
    """``function`` (pure: its result depends on its arguments and the library alone), its
    results kept in the session's store when there is one."""

    @functools.wraps(function)
    def kept(*args: object, **kwargs: object) -> Result:
        path = path_for(kept, (args, kwargs))  # known by its module's name for it
        if path is None:
            return function(*args, **kwargs)
        hold = claim(path, wait=True)
        try:
            found, result = load(path)
            if not found:
                result = function(*args, **kwargs)
                save(path, result)
            return result
        finally:
            os.close(hold)

    return kept
