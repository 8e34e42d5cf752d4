"""Uploaded files on disk, content-addressed: DEALGRAPH_DATA_DIR/ab/cd/<sha256>.

The same bytes are stored once, whatever the number of documents that hold them. A file is
first copied into DATA_DIR/tmp (same file system) while it is hashed and measured, then
renamed into place, so a reader never sees half a file and a refused upload leaves nothing
behind. Files are never deleted: documents go to a recycle bin and may share their bytes.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

CHUNK = 1024 * 1024
DEFAULT_MAX_BYTES = 25 * 1024 * 1024


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


@dataclass
class Spool:
    """An upload copied into a temporary file beside the store, hashed and measured.

    `too_large` when it went past the limit (then nothing was kept: `path` is None, and
    `size` is how much had been read when it stopped)."""

    path: Path | None
    sha256: str
    size: int
    too_large: bool = False


class _TooLarge(Exception):
    pass


class FileStore:
    def __init__(self, root: str | Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes

    def path_for(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256[2:4] / sha256

    async def spool(self, source: Readable) -> Spool:
        """Copy `source` (a binary file object, read from where it stands) to a temp file."""
        return await asyncio.to_thread(self._spool, source)

    async def keep(self, spool: Spool) -> bool:
        """Move a spooled upload into place; False when those bytes were already stored."""
        return await asyncio.to_thread(self._keep, spool)

    async def discard(self, spool: Spool) -> None:
        await asyncio.to_thread(self._discard, spool)

    async def locate(self, sha256: str, size: int) -> Path | None:
        """The stored file, or None when it is missing (or not the size recorded for it)."""
        return await asyncio.to_thread(self._locate, sha256, size)

    @asynccontextmanager
    async def spooled(self, source: Readable) -> AsyncIterator[Spool]:
        """A spooled upload whose temp file is removed on exit unless it was kept."""
        spool = await self.spool(source)
        try:
            yield spool
        finally:
            await self.discard(spool)

    # --- blocking parts, run in a worker thread ------------------------------------------

    def _spool(self, source: Readable) -> Spool:
        tmp_dir = self.root / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=tmp_dir, prefix="upload-")
        digest = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := source.read(CHUNK):
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise _TooLarge
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
        except _TooLarge:
            os.unlink(name)
            return Spool(None, "", size, too_large=True)
        except BaseException:
            os.unlink(name)
            raise
        return Spool(Path(name), digest.hexdigest(), size)

    def _keep(self, spool: Spool) -> bool:
        assert spool.path is not None and not spool.too_large, "nothing to keep"
        target = self.path_for(spool.sha256)
        if target.is_file() and target.stat().st_size == spool.size:
            self._discard(spool)
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        # Atomic; a concurrent upload of the same bytes renames identical content.
        os.replace(spool.path, target)
        spool.path = None
        return True

    def _discard(self, spool: Spool) -> None:
        if spool.path is not None:
            with suppress(FileNotFoundError):
                spool.path.unlink()
            spool.path = None

    def _locate(self, sha256: str, size: int) -> Path | None:
        path = self.path_for(sha256)
        try:
            stat = path.stat()
        except OSError:
            return None
        return path if stat.st_size == size else None
