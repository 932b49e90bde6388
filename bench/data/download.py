"""``bench data download isic2017``: fetch the official ISIC 2017 Part 1 archives, resumably, and extract them.

Each archive is streamed to ``ROOT/archives/<name>.part``; an interrupted download continues from the
bytes already there (an HTTP ``Range`` request) and the file is renamed to ``<name>`` only when its size
equals what the server announced. Archives are then extracted safely (:mod:`bench.data.archive`) into
``ROOT``, which ``isic2017:ROOT`` then reads.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Protocol

from bench.data.archive import Limits, safe_extract
from bench.errors import ConfigError, DataError

#: The ISIC challenge's public bucket (https://challenge.isic-archive.com/data/#2017).
ISIC2017_BASE_URL = "https://isic-challenge-data.s3.amazonaws.com/2017/"
ISIC2017_ARCHIVES = {
    "train": ["ISIC-2017_Training_Data.zip", "ISIC-2017_Training_Part1_GroundTruth.zip"],
    "val": ["ISIC-2017_Validation_Data.zip", "ISIC-2017_Validation_Part1_GroundTruth.zip"],
    "test": ["ISIC-2017_Test_v2_Data.zip", "ISIC-2017_Test_v2_Part1_GroundTruth.zip"],
}
#: MD5 of each official archive, as three independent public ISIC 2017 loaders publish them alike.
ISIC2017_MD5 = {
    "ISIC-2017_Training_Data.zip": "a14a7e622c67a358797ae59abb8a0b0c",
    "ISIC-2017_Training_Part1_GroundTruth.zip": "77fdbeb6fbec4139937224416b250f4c",
    "ISIC-2017_Validation_Data.zip": "8d6419d942112f709894c0d82f6c9038",
    "ISIC-2017_Validation_Part1_GroundTruth.zip": "64d3e68fa2deeb8a5e89aa8dec2efd44",
    "ISIC-2017_Test_v2_Data.zip": "5f6a0b5e1f2972bd1f5ea02680489f09",
    "ISIC-2017_Test_v2_Part1_GroundTruth.zip": "b1742de6bd257faca3b2b21a4aa3b781",
}
CHUNK = 1 << 20
MARKER = ".bench-extracted.json"


class Progress(Protocol):
    """Told the size of each file and every chunk received (the CLI draws a rich progress bar)."""

    def start(self, name: str, total: int | None, done: int) -> None: ...
    def advance(self, n: int) -> None: ...
    def finish(self) -> None: ...


class NoProgress:
    def start(self, name: str, total: int | None, done: int) -> None:
        pass

    def advance(self, n: int) -> None:
        pass

    def finish(self) -> None:
        pass


def parse_splits(text: str) -> list[str]:
    splits = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in splits if s not in ISIC2017_ARCHIVES]
    if unknown or not splits:
        raise ConfigError(f"--splits {text!r}: expected a comma-separated subset of {','.join(ISIC2017_ARCHIVES)}")
    return splits


def _total_from(response) -> int | None:
    """The whole file's size: from ``Content-Range: bytes a-b/TOTAL`` or ``Content-Length``."""
    content_range = response.headers.get("Content-Range")
    if content_range:
        match = re.search(r"/(\d+)\s*$", content_range)
        if match:
            return int(match.group(1))
    length = response.headers.get("Content-Length")
    return int(length) if length and length.isdigit() else None


def fetch(url: str, dest: Path, progress: Progress | None = None, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest``, resuming ``dest.part`` if a previous attempt left one; check the size."""
    progress = progress or NoProgress()
    if dest.exists():
        return dest
    part = dest.with_name(dest.name + ".part")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"{dest.parent}: cannot create this folder ({exc.strerror or exc}); pass a writable "
                        "--root") from None
    offset = part.stat().st_size if part.exists() else 0
    try:
        request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    except ValueError as exc:  # not a URL at all (--base-url without a scheme)
        raise DataError(f"{url}: not a URL ({exc}); expected --base-url of the form https://HOST/PATH") from None
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # nothing after the bytes we hold: the part may be complete
            total = _total_from(exc)
            if total == offset:
                part.rename(dest)
                return dest
            raise DataError(f"{url}: the server refused to resume at byte {offset} (HTTP 416); "
                            f"delete {part} and run the command again") from None
        raise DataError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise DataError(f"{url}: cannot connect ({getattr(exc, 'reason', exc)}); check the network or --base-url; "
                        f"{'the partial download ' + str(part) + ' is kept' if offset else 'nothing was written'}") from None
    with response:
        if offset and response.status != 206:  # the server ignored Range: start over
            offset = 0
        total = _total_from(response)
        progress.start(dest.name, total, offset)
        received = offset
        try:
            with open(part, "ab" if offset else "wb") as out:
                while True:
                    chunk = response.read(CHUNK)
                    if not chunk:
                        break
                    out.write(chunk)
                    received += len(chunk)
                    progress.advance(len(chunk))
        except (OSError, http.client.HTTPException) as exc:
            raise DataError(f"{url}: download interrupted at {received} of {total or '?'} bytes ({exc}); "
                            "run the same command again to resume it") from None
        finally:
            progress.finish()
    size = part.stat().st_size
    if total is not None and size != total:
        raise DataError(f"{url}: received {size} of {total} bytes; run the same command again to resume it")
    part.rename(dest)
    return dest


def md5_of(path: Path) -> str:
    """The MD5 of a file, read in chunks (what the archives' published checksums use)."""
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def read_checksums(path: Path) -> dict[str, str]:
    """``--checksums FILE``: a JSON object of archive name -> MD5, for a mirror that repackages the archives."""
    try:
        table = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--checksums {path}: cannot read it ({exc}); expected a JSON object of "
                          "archive name -> MD5") from None
    if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
        raise ConfigError(f"--checksums {path}: expected a JSON object of archive name -> MD5")
    return table


def verify(archive: Path, checksums: dict[str, str]) -> None:
    """Refuse an archive whose MD5 differs from the expected one: keep it aside, extract nothing, say what to do."""
    expected = checksums.get(archive.name)
    if expected is None:
        raise DataError(f"{archive}: no checksum is known for it; pass --checksums FILE with its MD5")
    got = md5_of(archive)
    if got != expected.lower():
        aside = archive.with_name(archive.name + ".md5-mismatch")
        archive.replace(aside)
        raise DataError(f"{archive.name}: MD5 {got} differs from the expected {expected}: the download is damaged "
                        f"or not the official archive. It was kept aside as {aside} and nothing was extracted; run "
                        "the same command to download it afresh (or, for a mirror that repackages the archives, "
                        "pass --checksums FILE)")


def check_root(root: Path) -> None:
    """Refuse a ``--root`` that is, or lies under, something other than a folder before anything is fetched."""
    for folder in (root, *root.parents):
        if folder.exists() or folder.is_symlink():
            if folder.is_dir():
                return
            what = "is" if folder == root else f"lies under {folder}, which is"
            raise ConfigError(f"--root {root}: {what} a file (or a broken link), not a folder; pass a folder to "
                              "download into (it is created if missing)")


def download_isic2017(root: Path, splits: list[str], base_url: str = ISIC2017_BASE_URL,
                      progress: Progress | None = None, keep_archives: bool = True,
                      log: Callable[[str], None] = print, checksums: dict[str, str] | None = None,
                      limits: Limits = Limits()) -> list[Path]:
    """Fetch, verify (MD5) and extract the archives of ``splits`` into ``root``; return the extracted folders."""
    checksums = ISIC2017_MD5 if checksums is None else checksums
    root = Path(root).expanduser()
    check_root(root)
    archives = root / "archives"
    marker_path = root / MARKER
    try:
        extracted = set(json.loads(marker_path.read_text())) if marker_path.exists() else set()
    except ValueError:
        extracted = set()
    base = base_url if base_url.endswith("/") else base_url + "/"
    folders = []
    for split in splits:
        for name in ISIC2017_ARCHIVES[split]:
            folder = root / name.removesuffix(".zip")
            folders.append(folder)
            if name in extracted and folder.is_dir():
                log(f"{name}: already downloaded and extracted")
                continue
            archive = fetch(base + name, archives / name, progress)
            verify(archive, checksums)
            log(f"{name}: MD5 verified; extracting into {root}")
            safe_extract(archive, root, limits)
            if not folder.is_dir():
                raise DataError(f"{archive}: extracted, but it holds no {folder.name}/ folder; "
                                "is --base-url serving the official ISIC 2017 archives?")
            extracted.add(name)
            marker_path.write_text(json.dumps(sorted(extracted), indent=2))
            if not keep_archives:
                archive.unlink()
    return folders
