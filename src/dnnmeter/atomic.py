"""Writing a file atomically: readers see the old file whole or the new one whole, never half.

The bytes go to a temporary file beside the target (same file system, so the rename is
atomic), are flushed to disk, and the temporary file is renamed over the target. The new
file gets the mode a plain ``open(path, "w")`` would give it (0o666 less the umask):
``tempfile.mkstemp`` alone would leave it readable by its owner only.

>>> import tempfile
>>> from pathlib import Path
>>> from dnnmeter.atomic import write_text
>>> target = Path(tempfile.mkdtemp()) / "result.json"
>>> path = write_text(target, '{"top1": 0.95}')
>>> target.read_text()
'{"top1": 0.95}'
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

_UMASK_LOCK = threading.Lock()  # os.umask can only be read by setting it


def default_mode() -> int:
    """The mode ``open(path, "w")`` gives a new file under the current umask."""
    with _UMASK_LOCK:
        umask = os.umask(0o022)
        os.umask(umask)
    return 0o666 & ~umask


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Replace ``path`` with ``data`` atomically; returns the path."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, default_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def write_text(path: str | Path, text: str) -> Path:
    """Replace ``path`` with ``text`` (UTF-8) atomically; returns the path."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, data: Any) -> Path:
    """Replace ``path`` with ``data`` as indented JSON, atomically; returns the path."""
    return write_text(path, json.dumps(data, indent=2))
