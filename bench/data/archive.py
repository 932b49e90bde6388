"""Safe extraction of zip and tar archives (used by the data download command).

Every member is checked before anything is written: absolute paths, ``..`` components, symbolic and
hard links, device or other special files (the zip-slip and tar-slip attacks), duplicate members, names
too long for a file system, a member that is both a file and a folder, more members or more bytes than
the limits allow (decompression bombs), and any member that would overwrite a different existing file.
Each refusal names the archive and the member. Extraction goes to a temporary folder beside the target and
is moved into place only when all of it succeeded, so a refused or failed archive leaves nothing behind,
and a user's own files are never deleted or overwritten.
"""

from __future__ import annotations

import filecmp
import shutil
import stat
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath
from typing import IO, Callable

from bench.errors import DataError

MAX_BYTES = 64 * 2**30
"""Default limit on the total uncompressed size (the ISIC 2017 archives hold about 13 GB)."""
MAX_MEMBERS = 200_000
"""Default limit on the number of members (ISIC 2017's largest archive has about 4000)."""
MAX_RATIO = 200
"""Default limit on uncompressed size / archive size (images barely compress; bombs compress 1000-fold)."""
NAME_MAX, PATH_MAX = 255, 1024


@dataclass(frozen=True)
class Limits:
    """How much an archive may expand to: total bytes, members, and expansion ratio."""

    max_bytes: int = MAX_BYTES
    max_members: int = MAX_MEMBERS
    max_ratio: float = MAX_RATIO


@dataclass(frozen=True)
class Member:
    path: PurePosixPath
    is_dir: bool
    size: int
    open: Callable[[], IO[bytes]] | None


def _check_name(archive: Path, name: str) -> PurePosixPath:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or (path.parts and ":" in path.parts[0]) or name.startswith(("/", "\\")):
        raise DataError(f"{archive}: refused member {name!r}: absolute path")
    if ".." in path.parts:
        raise DataError(f"{archive}: refused member {name!r}: '..' would write outside the target folder")
    if any(len(part.encode()) > NAME_MAX for part in path.parts) or len(name.encode()) > PATH_MAX:
        raise DataError(f"{archive}: refused member {name[:60]!r}...: name longer than the file system allows "
                        f"({NAME_MAX} bytes a name, {PATH_MAX} a path)")
    return path


def _members(archive: Path, zf: zipfile.ZipFile | None, tf: tarfile.TarFile | None) -> list[Member]:
    out = []
    if zf is not None:
        for info in zf.infolist():
            path = _check_name(archive, info.filename)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise DataError(f"{archive}: refused member {info.filename!r}: symbolic link")
            out.append(Member(path, info.is_dir(), info.file_size, None if info.is_dir() else partial(zf.open, info)))
    elif tf is not None:
        for m in tf.getmembers():
            path = _check_name(archive, m.name)
            if m.issym() or m.islnk():
                raise DataError(f"{archive}: refused member {m.name!r}: link to {m.linkname!r}")
            if not (m.isfile() or m.isdir()):
                raise DataError(f"{archive}: refused member {m.name!r}: not a regular file or folder")
            out.append(Member(path, m.isdir(), m.size, None if m.isdir() else partial(_tar_open, archive, tf, m)))
    return out


def _tar_open(archive: Path, tf: tarfile.TarFile, m: tarfile.TarInfo) -> IO[bytes]:
    member = tf.extractfile(m)
    if member is None:
        raise DataError(f"{archive}: refused member {m.name!r}: not a regular file")
    return member


def _plan(archive: Path, members: list[Member], target: Path, limits: Limits) -> None:
    """Refuse the whole archive, before anything is written, for any member that cannot be extracted safely."""
    if len(members) > limits.max_members:
        raise DataError(f"{archive}: {len(members)} members, more than the limit of {limits.max_members}; "
                        "raise it with --max-members if the archive is trusted")
    total = sum(m.size for m in members if not m.is_dir)
    if total > limits.max_bytes:
        raise DataError(f"{archive}: expands to {total} bytes, more than the limit of {limits.max_bytes}; "
                        "raise it with --max-extract-gb if the archive is trusted")
    if total > limits.max_ratio * max(archive.stat().st_size, 1):
        raise DataError(f"{archive}: expands {total / max(archive.stat().st_size, 1):.0f}-fold, more than the "
                        f"limit of {limits.max_ratio:g} (a decompression bomb?); nothing was extracted")
    files: dict[PurePosixPath, Member] = {}
    dirs: set[PurePosixPath] = set()
    for m in members:
        if m.path in files or (not m.is_dir and m.path in dirs):
            raise DataError(f"{archive}: refused member {str(m.path)!r}: it appears twice in the archive")
        (dirs.add(m.path) if m.is_dir else files.__setitem__(m.path, m))
        dirs.update(m.path.parents)
    for path in files:
        if path in dirs:
            raise DataError(f"{archive}: refused member {str(path)!r}: it is a file and also a folder of other members")
        dest = target / path
        if dest.is_dir():
            raise DataError(f"{archive}: refused member {str(path)!r}: {dest} is a folder here")
    for path in dirs:
        dest = target / path
        if str(path) != "." and dest.exists() and not dest.is_dir():
            raise DataError(f"{archive}: refused member {str(path)!r}: {dest} is a file here, not a folder; "
                            "move it away or extract elsewhere")


def _copy(archive: Path, member: Member, dest: Path) -> None:
    """Copy one member, refusing one that holds more bytes than its header says (a lying bomb)."""
    assert member.open is not None
    written = 0
    with member.open() as src, open(dest, "wb") as out:
        for chunk in iter(lambda: src.read(1 << 20), b""):
            written += len(chunk)
            if written > member.size:
                raise DataError(f"{archive}: refused member {str(member.path)!r}: it holds more bytes than its "
                                f"header says ({member.size})")
            out.write(chunk)


def safe_extract(archive: Path, target: Path, limits: Limits = Limits()) -> list[Path]:
    """Extract ``archive`` (zip or tar, any compression) into ``target``; return the files written.

    A member whose file already exists with the same content is left as it is (extracting again is harmless);
    one that would replace a different file is refused before anything is written.
    """
    archive, target = Path(archive), Path(target)
    if zipfile.is_zipfile(archive):
        zf, tf = zipfile.ZipFile(archive), None
    elif tarfile.is_tarfile(archive):
        zf, tf = None, tarfile.open(archive)
    else:
        raise DataError(f"{archive}: not a zip or tar archive")
    try:
        members = _members(archive, zf, tf)
        _plan(archive, members, target, limits)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            for m in members:
                dest = tmp / m.path
                if m.is_dir:
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                _copy(archive, m, dest)
            files = [m.path for m in members if not m.is_dir]
            for path in files:
                dest = target / path
                if dest.exists() and not filecmp.cmp(tmp / path, dest, shallow=False):
                    raise DataError(f"{archive}: refused member {str(path)!r}: {dest} exists with other content; "
                                    "nothing was overwritten: move it away or extract elsewhere")
            for m in members:
                if m.is_dir:
                    (target / m.path).mkdir(parents=True, exist_ok=True)
            for path in files:
                dest = target / path
                if not dest.exists():
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.move(str(tmp / path), dest)
            return [target / path for path in files]
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        (zf or tf).close()  # type: ignore[union-attr]
