"""Files written atomically and durably, for every model and command: the content goes to a
temporary file with a unique name in the target's folder, which is flushed to disk, given the
mode a new file gets under the process's umask, renamed over the target, and the folder is
synced so that the rename survives a crash too. A failure at any point leaves the previous file
as it was and no temporary file behind; two writers of one path each leave a whole file (the
last rename wins), never a mix. No output may be one of the command's inputs.

Every file written by ``save_atomically`` names its kind (a GRU4Rec model, a CoSeRNN model,
prepared CoSeRNN data) and carries a CRC-32 of every value in it (a tensor's bytes, a number's
or a string's text): ``load_checked`` reads it back with one error per kind of fault (not a
file torch can read, empty or truncated, another kind of file, a value that changed on disk)."""

from __future__ import annotations

import contextlib
import os
import tempfile
import zlib
from typing import Iterable, Iterator, Optional

import torch


def _umask_mode() -> int:
    """The mode ``open(path, "w")`` would give a new file: 0o666 less the umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def open_atomically(path, mode: str = "wb") -> Iterator:
    """A file object to write ``path``'s new content into (``mode`` "wb" or "w"); on a clean
    exit it replaces ``path`` atomically and durably, on an exception it is removed."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".part")
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _umask_mode())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    folder_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(folder_fd)
    finally:
        os.close(folder_fd)


# what each kind of file is called in messages
KINDS = {
    "seqrec.gru4rec": "a seqrec GRU4Rec checkpoint",
    "seqrec.cosernn": "a seqrec CoSeRNN checkpoint",
    "seqrec.cosernn.prepared": "a prepared CoSeRNN data file",
}


def _leaves(value, prefix: str = "") -> Iterator[tuple[str, object]]:
    """(path, leaf) of every tensor, number, string or other leaf in nested dicts, lists and
    tuples, paths like ``params/w_hh`` (dict keys in sorted order)."""
    if isinstance(value, dict):
        for key in sorted(value, key=str):
            yield from _leaves(value[key], f"{prefix}{key}/")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _leaves(item, f"{prefix}{i}/")
    else:
        yield prefix.rstrip("/"), value


def _crc(value) -> int:
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous().reshape(-1)
        return zlib.crc32(
            t.view(torch.uint8).numpy().tobytes(), zlib.crc32(str((value.dtype, tuple(value.shape))).encode())
        )
    return zlib.crc32(repr(value).encode())


def checksums(payload: dict) -> dict:
    """``{path: CRC-32}`` of every value of ``payload`` (its ``checksums`` entry excluded)."""
    return {path: _crc(v) for path, v in _leaves({k: v for k, v in payload.items() if k != "checksums"})}


def save_atomically(payload, path, kind: Optional[str] = None) -> None:
    """``torch.save(payload)`` to ``path``, atomically and durably; a dict payload gets its
    ``kind`` (a key of ``KINDS``) and the checksums of its values, which ``load_checked``
    verifies."""
    if isinstance(payload, dict):
        payload = dict(payload)
        if kind is not None:
            payload["kind"] = kind
        payload["checksums"] = checksums(payload)
    with open_atomically(path, "wb") as f:
        torch.save(payload, f)


def legacy_kind(payload: dict) -> Optional[str]:
    """The kind of a file written before kinds were recorded, from its layout (None: unknown)."""
    fmt = str(payload.get("format", ""))
    if fmt.startswith("seqrec.gru4rec/"):
        return "seqrec.gru4rec"
    if fmt.startswith("seqrec-cosernn-prepared/"):
        return "seqrec.cosernn.prepared"
    if {"config", "state"} <= payload.keys():
        return "seqrec.cosernn"
    return None


def load_checked(path, kind: str, map_location="cpu") -> dict:
    """The dict ``save_atomically`` wrote to ``path`` as ``kind``, with its checksums verified;
    ValueError naming the path and the fault otherwise: a folder, an empty or truncated file,
    a file torch cannot read, a payload that is not such a dict, a file of another kind
    (``legacy_kind`` for a file written before kinds were recorded), a value whose checksum
    differs. A file without checksums (written by an earlier version)
    is read unverified. FileNotFoundError for a missing file."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f"{path}: a folder, not {KINDS[kind]}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except (FileNotFoundError, PermissionError):
        raise
    except Exception as err:  # a damaged file fails in torch.load's zip reader or unpickler in many ways
        reason = str(err).strip().split("\n", 1)[0][:200]
        if os.path.getsize(path) == 0:
            why = "an empty file"
        elif "Unsupported global" in str(err):
            why = "it holds Python objects that a safe, weights-only load refuses to run"
        elif "Weights only load failed" in reason:
            why = "truncated, damaged, or not written by torch.save"
        else:
            why = f"truncated, damaged, or not written by torch.save: {type(err).__name__}: {reason}"
        raise ValueError(f"{path}: not {KINDS[kind]} ({why})") from None
    if not isinstance(payload, dict):
        raise ValueError(f"{path}: not {KINDS[kind]} (it holds a {type(payload).__name__})")
    found = payload.get("kind") or legacy_kind(payload)
    if found != kind:
        other = f" (it is {KINDS[found]})" if found in KINDS else ""
        raise ValueError(f"{path}: not {KINDS[kind]}{other}")
    stored = payload.get("checksums")
    if stored is not None:
        actual = checksums(payload)
        changed = sorted(k for k in stored.keys() | actual.keys() if stored.get(k) != actual.get(k))
        if changed:
            listed = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
            raise ValueError(f"{path}: damaged: the checksum of {listed} differs from the one written with it")
    return payload


def same_file(a, b) -> bool:
    """Whether the paths ``a`` and ``b`` name one existing file."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def refuse_overwriting(output: Optional[str], option: str, inputs: Iterable[Optional[str]] = ()) -> None:
    """SystemExit naming ``option`` when ``output`` cannot be written -- a folder, or in a folder
    that does not exist or this user cannot write -- or is the same file as one of ``inputs``:
    checked before any work, not after a whole training run."""
    if not output:
        return
    if os.path.isdir(output):
        raise SystemExit(f"{option} {output}: a folder; give a file name")
    folder = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(folder):
        raise SystemExit(f"{option} {output}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise SystemExit(f"{option} {output}: the folder {folder} is not writable")
    for source in inputs:
        if source is not None and same_file(output, source):
            raise SystemExit(f"{option} {output}: that is an input of this command ({source}); choose another file")
