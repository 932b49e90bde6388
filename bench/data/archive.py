"""Safe extraction of zip and tar archives (used by the data download command).

Every member is checked before anything is written: absolute paths, ``..`` components, symbolic and
hard links, and device or other special files are refused with an error naming the archive and the
member (the zip-slip and tar-slip attacks). Extraction goes to a temporary folder beside the target and
is renamed into place, so a refused or failed archive leaves nothing behind.
"""

from __future__ import annotations

import shutil
import stat
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from bench.errors import DataError


def _check_name(archive: Path, name: str) -> PurePosixPath:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or (path.parts and ":" in path.parts[0]) or name.startswith(("/", "\\")):
        raise DataError(f"{archive}: refused member {name!r}: absolute path")
    if ".." in path.parts:
        raise DataError(f"{archive}: refused member {name!r}: '..' would write outside the target folder")
    return path


def safe_extract(archive: Path, target: Path) -> list[Path]:
    """Extract ``archive`` (zip or tar, any compression) into ``target``; return the files written."""
    archive, target = Path(archive), Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    written: list[Path] = []
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    rel = _check_name(archive, info.filename)
                    mode = info.external_attr >> 16
                    if stat.S_ISLNK(mode):
                        raise DataError(f"{archive}: refused member {info.filename!r}: symbolic link")
                for info in zf.infolist():
                    rel = _check_name(archive, info.filename)
                    dest = tmp / rel
                    if info.is_dir():
                        dest.mkdir(parents=True, exist_ok=True)
                        continue
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src, open(dest, "wb") as out:
                        shutil.copyfileobj(src, out)
                    written.append(target / rel)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:
                members = tf.getmembers()
                for m in members:
                    _check_name(archive, m.name)
                    if m.issym() or m.islnk():
                        raise DataError(f"{archive}: refused member {m.name!r}: link to {m.linkname!r}")
                    if not (m.isfile() or m.isdir()):
                        raise DataError(f"{archive}: refused member {m.name!r}: not a regular file or folder")
                for m in members:
                    dest = tmp / _check_name(archive, m.name)
                    if m.isdir():
                        dest.mkdir(parents=True, exist_ok=True)
                        continue
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    member = tf.extractfile(m)
                    if member is None:
                        raise DataError(f"{archive}: refused member {m.name!r}: not a regular file")
                    with member, open(dest, "wb") as out:
                        shutil.copyfileobj(member, out)
                    written.append(target / _check_name(archive, m.name))
        else:
            raise DataError(f"{archive}: not a zip or tar archive")
        target.mkdir(parents=True, exist_ok=True)
        for item in tmp.iterdir():
            dest = target / item.name
            if dest.exists():
                if dest.is_dir() and item.is_dir():
                    shutil.copytree(item, dest, dirs_exist_ok=True)
                    continue
                dest.unlink()
            shutil.move(str(item), dest)
        return written
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
