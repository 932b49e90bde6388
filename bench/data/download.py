"""``bench data download NAME``: fetch a dataset's official archives, resumably, verify and extract them.

Each archive is streamed to ``ROOT/archives/<name>.part``; an interrupted download continues from the
bytes already there (an HTTP ``Range`` request) and the file is renamed to ``<name>`` only when its size
equals what the server announced. Its checksum (MD5 or SHA-256, whichever was published) is then checked
and the archive extracted safely (:mod:`bench.data.archive`) into ``ROOT``, which ``NAME:ROOT`` then reads.
:data:`SOURCES` lists what can be downloaded; :data:`MANUAL` says how to obtain the datasets that cannot.
"""

from __future__ import annotations

import filecmp
import hashlib
import http.client
import json
import re
import shutil
import tarfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable, Mapping, Protocol

from bench.data.archive import Limits, safe_extract
from bench.errors import ConfigError, DataError


@dataclass(frozen=True)
class Archive:
    """One downloadable file: its name (in ``ROOT/archives/`` and on a mirror), the folder it yields under ``ROOT``
    (or, for a plain file, the file itself), and its path under the official base URL when that is not its name."""

    name: str
    folder: str
    path: str = ""
    extract: bool = True

    def url(self, base: str, official: bool) -> str:
        """Where to fetch it: the official path under the official base, or ``BASE/NAME`` on a mirror."""
        return base + (self.path or self.name if official else self.name)


@dataclass(frozen=True)
class Source:
    """A dataset's official archives by split, where they are, and their published checksums."""

    title: str
    base_url: str
    splits: Mapping[str, tuple[Archive, ...]]
    checksums: Mapping[str, str] = field(default_factory=dict)


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

#: ISIC 2018 Task 1, the same public bucket (https://challenge.isic-archive.com/data/#2018).
ISIC2018_BASE_URL = "https://isic-challenge-data.s3.amazonaws.com/2018/"
ISIC2018_ARCHIVES = {
    "train": ["ISIC2018_Task1-2_Training_Input.zip", "ISIC2018_Task1_Training_GroundTruth.zip"],
    "val": ["ISIC2018_Task1-2_Validation_Input.zip", "ISIC2018_Task1_Validation_GroundTruth.zip"],
    "test": ["ISIC2018_Task1-2_Test_Input.zip", "ISIC2018_Task1_Test_GroundTruth.zip"],
}
#: SHA-256 of each official archive (no MD5 is published for all six): as torch-em publishes them
#: (torch_em/data/datasets/medical/isic.py, CHECKSUM), and other public ISIC 2018 loaders alike (the training
#: and test archives in one, the validation archives, with their sizes, in another).
ISIC2018_SHA256 = {
    "ISIC2018_Task1-2_Training_Input.zip": "80f98572347a2d7a376227fa9eb2e4f7459d317cb619865b8b9910c81446675f",
    "ISIC2018_Task1_Training_GroundTruth.zip": "99f8b2bb3c4d6af483362010715f7e7d5d122d9f6c02cac0e0d15bef77c7604c",
    "ISIC2018_Task1-2_Validation_Input.zip": "0ea920fcfe512d12a6e620b50b50233c059f67b10146e1479c82be58ff15a797",
    "ISIC2018_Task1_Validation_GroundTruth.zip": "f6911e9c0a64e6d687dd3ca466ca927dd5e82145cb2163b7a1e5b37d7a716285",
    "ISIC2018_Task1-2_Test_Input.zip": "e59ae1f69f4ed16f09db2cb1d76c2a828487b63d28f6ab85997f5616869b127d",
    "ISIC2018_Task1_Test_GroundTruth.zip": "2e8f6edce454a5bdee52485e39f92bd6eddf357e81f39018d05512175238ef82",
}

#: HAM10000 on Harvard Dataverse (doi:10.7910/DVN/DBW86T, version 4), file by file through its access API.
HAM10000_BASE_URL = "https://dataverse.harvard.edu/api/access/datafile/"
#: Each file's Dataverse id and the MD5 Dataverse publishes for it, as several public HAM10000 loaders quote them
#: alike. Dataverse "ingests" the metadata CSV into a table: ``?format=original`` asks for the CSV as uploaded,
#: the bytes the MD5 is about. The image zips hold bare files, extracted into one folder each.
HAM10000_FILES = (
    Archive("HAM10000_images_part_1.zip", "HAM10000_images_part_1", "3172585"),
    Archive("HAM10000_images_part_2.zip", "HAM10000_images_part_2", "3172584"),
    Archive("HAM10000_segmentations_lesion_tschandl.zip", "HAM10000_segmentations_lesion_tschandl", "3838943"),
    Archive("HAM10000_metadata.csv", "HAM10000_metadata.csv", "4338392?format=original", extract=False),
)
HAM10000_MD5 = {
    "HAM10000_images_part_1.zip": "4639bfa73ab251610530a97c898e6e46",
    "HAM10000_images_part_2.zip": "da43d6cc50f6613013be07e8986b384b",
    "HAM10000_segmentations_lesion_tschandl.zip": "6e8d252e09cfdb0189199f15985a5b84",
    "HAM10000_metadata.csv": "8f85fb1aa29d80a2797247e434deb79d",
}


def _zips(archives: Mapping[str, list[str]]) -> dict[str, tuple[Archive, ...]]:
    """An ISIC table (split -> zip names) as archives, each yielding the folder named after it."""
    return {split: tuple(Archive(name, name.removesuffix(".zip")) for name in names)
            for split, names in archives.items()}


#: Every dataset ``bench data download`` fetches.
SOURCES: dict[str, Source] = {
    "isic2017": Source("ISIC 2017 Part 1", ISIC2017_BASE_URL, _zips(ISIC2017_ARCHIVES), ISIC2017_MD5),
    "isic2018": Source("ISIC 2018 Task 1", ISIC2018_BASE_URL, _zips(ISIC2018_ARCHIVES), ISIC2018_SHA256),
    "ham10000": Source("HAM10000", HAM10000_BASE_URL, {"all": HAM10000_FILES}, HAM10000_MD5),
}
#: Datasets it knows but cannot fetch, and how to obtain them.
MANUAL: dict[str, str] = {
    "ph2": ("no download is offered: PH2 is distributed only as PH2Dataset.rar, a RAR archive bench cannot "
            "extract safely. Get it from the official page, https://www.fc.up.pt/addi/ph2%20database.html, "
            "extract it yourself (unrar x PH2Dataset.rar, or 7z x PH2Dataset.rar) and use --data ph2:ROOT, "
            "ROOT being the folder that holds 'PH2 Dataset images/'"),
}
CHUNK = 1 << 20
MARKER = ".bench-extracted.json"
USER_AGENT = "skinbench (bench data download)"


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


def source_of(dataset: str) -> Source:
    """The download table of ``dataset``; a dataset fetched by hand says how to obtain it."""
    if dataset in MANUAL:
        raise ConfigError(f"bench data download {dataset}: {MANUAL[dataset]}")
    if dataset not in SOURCES:
        raise ConfigError(f"bench data download {dataset}: unknown dataset; expected one of "
                          f"{', '.join(sorted(SOURCES))} (or, by hand, {', '.join(sorted(MANUAL))})")
    return SOURCES[dataset]


def parse_splits(text: str | None, dataset: str = "isic2017") -> list[str]:
    """``--splits a,b``: a subset of the splits ``dataset``'s archives come in (all of them when not given)."""
    table = source_of(dataset).splits
    if text is None:
        return list(table)
    splits = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in splits if s not in table]
    if unknown or not splits:
        raise ConfigError(f"--splits {text!r}: expected a comma-separated subset of {','.join(table)} "
                          f"(the archives of {dataset})")
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
    headers = {"User-Agent": USER_AGENT}  # some hosts (Harvard Dataverse) refuse urllib's default one
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        request = urllib.request.Request(url, headers=headers)
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


def _hash_of(path: Path, algorithm: str) -> str:
    """The ``algorithm`` digest of a file, read in chunks."""
    h = hashlib.new(algorithm, usedforsecurity=False)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def md5_of(path: Path) -> str:
    """The MD5 of a file, read in chunks (what most archives' published checksums use)."""
    return _hash_of(path, "md5")


def algorithm_of(digest: str) -> str | None:
    """``md5`` or ``sha256`` for a hex digest of 32 or 64 characters; ``None`` for anything else."""
    if re.fullmatch(r"[0-9a-fA-F]{32}", digest):
        return "md5"
    if re.fullmatch(r"[0-9a-fA-F]{64}", digest):
        return "sha256"
    return None


def read_checksums(path: Path) -> dict[str, str]:
    """``--checksums FILE``: a JSON object of archive name -> MD5 or SHA-256 (hex), for a mirror that repackages
    the archives or a dataset whose checksums are not built in."""
    expected = "expected a JSON object of archive name -> MD5 or SHA-256 (hex)"
    try:
        table = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--checksums {path}: cannot read it ({exc}); {expected}") from None
    if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
        raise ConfigError(f"--checksums {path}: {expected}")
    for name, digest in table.items():
        if algorithm_of(digest) is None:
            raise ConfigError(f"--checksums {path}: {name!r}: {digest!r} is neither an MD5 (32 hex digits) nor a "
                              f"SHA-256 (64); {expected}")
    return table


def verify(archive: Path, checksums: Mapping[str, str]) -> str:
    """Refuse an archive whose MD5 or SHA-256 differs from the expected one: keep it aside, extract nothing, say
    what to do. Returns the algorithm checked (``MD5`` or ``SHA-256``)."""
    expected = checksums.get(archive.name)
    if expected is None:
        raise DataError(f"{archive}: no checksum is known for it; pass --checksums FILE with its MD5 or SHA-256")
    algorithm = algorithm_of(expected)
    if algorithm is None:
        raise DataError(f"{archive.name}: the expected checksum {expected!r} is neither an MD5 nor a SHA-256")
    label = {"md5": "MD5", "sha256": "SHA-256"}[algorithm]
    got = _hash_of(archive, algorithm)
    if got != expected.lower():
        aside = archive.with_name(f"{archive.name}.{algorithm}-mismatch")
        archive.replace(aside)
        raise DataError(f"{archive.name}: {label} {got} differs from the expected {expected}: the download is "
                        f"damaged or not the official file. It was kept aside as {aside} and nothing was extracted; "
                        "run the same command to download it afresh (or, for a mirror that repackages the archives, "
                        "pass --checksums FILE)")
    return label


def check_root(root: Path) -> None:
    """Refuse a ``--root`` that is, or lies under, something other than a folder before anything is fetched."""
    for folder in (root, *root.parents):
        if folder.exists() or folder.is_symlink():
            if folder.is_dir():
                return
            what = "is" if folder == root else f"lies under {folder}, which is"
            raise ConfigError(f"--root {root}: {what} a file (or a broken link), not a folder; pass a folder to "
                              "download into (it is created if missing)")


def _member_names(archive: Path) -> list[str]:
    """The member names of a zip or tar archive (none for anything else: extraction then says what it is)."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            return zf.namelist()
    if tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            return tf.getnames()
    return []


def _target_for(archive: Path, root: Path, folder: str) -> Path:
    """Where to extract ``archive`` so that it yields ``root/folder``: ``root`` when all its members already lie
    in ``folder/`` (the ISIC zips), else ``root/folder`` (HAM10000's zips hold bare images). macOS's ``__MACOSX/``
    shadow entries are not counted."""
    names = [PurePosixPath(n.replace("\\", "/")) for n in _member_names(archive)]
    names = [n for n in names if n.parts and n.parts[0] != "__MACOSX"]
    if names and all(n.parts[0] == folder for n in names):
        return root
    return root / folder


def _place_file(path: Path, dest: Path) -> None:
    """Copy a downloaded plain file (a CSV) to ``dest``, never over a different file of the user's."""
    if dest.exists() and not (dest.is_file() and filecmp.cmp(path, dest, shallow=False)):
        raise DataError(f"{path}: {dest} exists with other content; nothing was overwritten: move it away or "
                        "download elsewhere")
    if not dest.exists():
        tmp = dest.with_name(f".{dest.name}.part")
        shutil.copyfile(path, tmp)
        tmp.replace(dest)


def download(dataset: str, root: Path, splits: list[str] | None = None, base_url: str | None = None,
             progress: Progress | None = None, keep_archives: bool = True, log: Callable[[str], None] = print,
             checksums: Mapping[str, str] | None = None, limits: Limits = Limits()) -> list[Path]:
    """Fetch, verify (MD5 or SHA-256) and extract ``dataset``'s archives of ``splits`` (default all) into ``root``;
    return the folders (and files) they yield. ``base_url`` is a mirror serving them as ``BASE/NAME``."""
    source = source_of(dataset)
    checksums = source.checksums if checksums is None else checksums
    root = Path(root).expanduser()
    check_root(root)
    archives = root / "archives"
    marker_path = root / MARKER
    try:
        extracted = set(json.loads(marker_path.read_text())) if marker_path.exists() else set()
    except ValueError:
        extracted = set()
    official = base_url is None
    base = source.base_url if base_url is None else base_url
    base = base if base.endswith("/") else base + "/"
    out = []
    for split in splits if splits is not None else list(source.splits):
        for item in source.splits[split]:
            place = root / item.folder
            out.append(place)
            if item.name in extracted and (place.is_dir() if item.extract else place.is_file()):
                log(f"{item.name}: already downloaded and extracted")
                continue
            archive = fetch(item.url(base, official), archives / item.name, progress)
            label = verify(archive, checksums)
            if item.extract:
                log(f"{item.name}: {label} verified; extracting into {root}")
                safe_extract(archive, _target_for(archive, root, item.folder), limits)
                if not place.is_dir():
                    raise DataError(f"{archive}: extracted, but it holds no {place.name}/ folder; "
                                    f"is --base-url serving the official {source.title} archives?")
            else:
                log(f"{item.name}: {label} verified; copying it to {place}")
                _place_file(archive, place)
            extracted.add(item.name)
            marker_path.write_text(json.dumps(sorted(extracted), indent=2))
            if not keep_archives:
                archive.unlink()
    return out


def download_isic2017(root: Path, splits: list[str], base_url: str = ISIC2017_BASE_URL,
                      progress: Progress | None = None, keep_archives: bool = True,
                      log: Callable[[str], None] = print, checksums: dict[str, str] | None = None,
                      limits: Limits = Limits()) -> list[Path]:
    """:func:`download` of ``isic2017`` (kept for callers of the ISIC-2017-only version): the archives of ``splits``
    from ``base_url``, verified against the official MD5s or ``checksums``, extracted into ``root``."""
    return download("isic2017", root, splits, None if base_url == ISIC2017_BASE_URL else base_url, progress,
                    keep_archives, log, checksums, limits)
