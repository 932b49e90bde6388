"""Bad input: each case gives a clear error naming the file and the expectation, or a documented normalisation."""

import io
import tarfile
import warnings
import zipfile

import numpy as np
import pytest
from PIL import Image

from bench.data.archive import Limits, safe_extract
from bench.data.images import JPEGMaskWarning, read_image
from bench.data.prepare import prepare
from bench.errors import DataError
from conftest import bench_cli, bench_main
from test_data import dataset, write_pairs
from test_run import TINY, record_of


@pytest.fixture
def tree(tmp_path):
    write_pairs(tmp_path / "images", tmp_path / "masks", 4, size=(24, 32), prefix="IMG")
    return tmp_path


def test_jpeg_masks_are_thresholded_at_127_with_one_warning(tree):
    for i in range(4):
        png = tree / "masks" / f"IMG{i:02d}_segmentation.png"
        mask = np.asarray(Image.open(png))
        Image.fromarray(mask).save(png.with_suffix(".jpg"), quality=70)
        png.unlink()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        prepared = prepare(dataset(f"folder:{tree}").split("all"), (24, 32))
    jpeg = [w for w in caught if issubclass(w.category, JPEGMaskWarning)]
    assert len(jpeg) == 1 and "4 JPEG mask(s)" in str(jpeg[0].message) and "thresholded at 127" in str(jpeg[0].message)
    assert set(np.unique(prepared.masks.numpy())) <= {0, 1}


def test_grey_rgba_and_16_bit_images_are_normalised(tmp_path):
    rgb = (np.arange(24 * 32 * 3) % 251).reshape(24, 32, 3).astype(np.uint8)
    Image.fromarray(rgb[..., 0]).save(tmp_path / "grey.png")
    Image.fromarray(np.dstack([rgb, np.full((24, 32), 255, np.uint8)])).save(tmp_path / "rgba.png")
    Image.fromarray((rgb[..., 0].astype(np.uint16) * 257)).save(tmp_path / "deep.png")
    grey = read_image(tmp_path / "grey.png")
    assert grey.shape == (24, 32, 3) and np.array_equal(grey[..., 1], rgb[..., 0])
    assert np.array_equal(read_image(tmp_path / "rgba.png"), rgb)  # opaque alpha: colours unchanged
    assert np.array_equal(read_image(tmp_path / "deep.png")[..., 0], rgb[..., 0])  # 16-bit / 257


def test_corrupt_and_truncated_files_name_the_file(tree):
    (tree / "images" / "IMG00.jpg").write_bytes(b"\xff\xd8\xff\xe0 garbage")
    data = (tree / "masks" / "IMG01_segmentation.png").read_bytes()
    (tree / "masks" / "IMG01_segmentation.png").write_bytes(data[: len(data) // 2])
    split = dataset(f"folder:{tree}").split("all")
    with pytest.raises(DataError, match=r"IMG00\.jpg: cannot read image"):
        split.load(0)
    with pytest.raises(DataError, match=r"IMG01_segmentation\.png: cannot read mask"):
        split.load(1)


def test_empty_split_and_wrong_layout(tmp_path):
    (tmp_path / "ISIC-2017_Training_Data").mkdir()
    (tmp_path / "ISIC-2017_Training_Part1_GroundTruth").mkdir()
    with pytest.raises(DataError, match="split 'train' in .*ISIC-2017_Training_Data holds no image/mask pairs"):
        dataset(f"isic2017:{tmp_path}")
    (tmp_path / "ISIC-2017_Training_Part1_GroundTruth").rmdir()
    with pytest.raises(DataError, match="ISIC-2017_Training_Part1_GroundTruth: folder not found"):
        dataset(f"isic2017:{tmp_path}")


def test_decompression_bomb_is_refused(tree, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(DataError, match=r"IMG00\.jpg: refused, the image is larger than Pillow's decompression-bomb limit"):
        dataset(f"folder:{tree}").split("all").load(0)


def test_non_ascii_file_names_work_end_to_end(tmp_path):
    write_pairs(tmp_path / "d" / "images", tmp_path / "d" / "masks", 3, size=(48, 40), prefix="läsion_ü")
    record, _ = record_of(bench_cli("run", "--seg", "unet", "--out", str(tmp_path / "r"), *TINY,
                                    "--test", f"folder:{tmp_path / 'd'}"))
    assert [r["id"] for r in record["per_image"]] == ["läsion_ü00", "läsion_ü01", "läsion_ü02"]


@pytest.mark.parametrize("args,expected", [
    (["--channels", "rgb+x"], "--channels: unknown channel set 'rgb+x'"),
    (["--device", "tpu"], "--device: 'tpu' is not a device"),
    (["--data", "fixture?n=abc"], "--data fixture?n=abc: option n='abc' is not an int; expected a whole number"),
    (["--data", "fixture?colour=1"], "--data fixture?colour=1: dataset 'fixture' has no option 'colour'; it declares: "
                                     "n (int), n_test (int), seed (int), size (str)"),
    (["--schedule", "three-phase"], "unknown schedule 'three-phase'"),
    (["--epochs", "-1"], "--epochs: must be 0 or more"),
    (["--threshold", "1.5"], "--threshold: must lie strictly between 0 and 1"),
])
def test_unknown_option_values_name_the_option(args, expected, tmp_path):
    proc = bench_main("run", "--seg", "unet", "--out", str(tmp_path), *args, check=False)
    assert proc.returncode == 2 and expected in proc.stderr
    assert not list(tmp_path.rglob("results.json"))


def zip_with(name, data=b"x", link=False):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo(name)
        if link:
            info.external_attr = (0o120777 << 16)
        zf.writestr(info, data)
    return buf.getvalue()


def _link(name, kind):
    member = tarfile.TarInfo(name)
    member.type, member.linkname = kind, "/etc/passwd"
    return member


def tar_with(member: tarfile.TarInfo, data=b""):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        tf.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return buf.getvalue()


@pytest.mark.parametrize("kind,payload,reason", [
    ("zip", zip_with("../evil.txt"), "'..' would write outside"),
    ("zip", zip_with("/etc/evil.txt"), "absolute path"),
    ("zip", zip_with("ok/../../evil.txt"), "'..' would write outside"),
    ("zip", zip_with("link", b"/etc/passwd", link=True), "symbolic link"),
    ("tar", tar_with(tarfile.TarInfo("../evil.txt")), "'..' would write outside"),
    ("tar", tar_with(tarfile.TarInfo("/abs.txt")), "absolute path"),
    ("tar", tar_with(_link("sym", tarfile.SYMTYPE)), "link to"),
    ("tar", tar_with(_link("hard", tarfile.LNKTYPE)), "link to"),
])
def test_archive_extraction_refuses_escapes_and_links(tmp_path, kind, payload, reason):
    archive = tmp_path / f"a.{kind}"
    archive.write_bytes(payload)
    with pytest.raises(DataError, match=reason):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / "evil.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == [archive.name]  # nothing half-written


def test_archive_extraction_writes_regular_members(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ISIC-2017_Training_Data/ISIC_0000000.jpg", b"jpeg bytes")
    (tmp_path / "a.zip").write_bytes(buf.getvalue())
    written = safe_extract(tmp_path / "a.zip", tmp_path / "out")
    assert written == [tmp_path / "out" / "ISIC-2017_Training_Data" / "ISIC_0000000.jpg"]
    assert written[0].read_bytes() == b"jpeg bytes"


def _zip(tmp_path, members, name="a.zip", compression=zipfile.ZIP_STORED):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as zf:
        for member, data in members:
            zf.writestr(member, data)
    (tmp_path / name).write_bytes(buf.getvalue())
    return tmp_path / name


@pytest.mark.parametrize("members,limits,reason", [
    ([("bomb.bin", b"\0" * (30 << 20))], Limits(), "expands [0-9]+-fold, more than the limit of 200"),
    ([("a.txt", b"x"), ("b.txt", b"y")], Limits(max_members=1), "2 members, more than the limit of 1"),
    ([("a.txt", b"x" * 100)], Limits(max_bytes=10), "expands to 100 bytes, more than the limit of 10"),
    ([("d/" + "n" * 300, b"x")], Limits(), "name longer than the file system allows"),
    ([("x", b"file"), ("x/y", b"inside")], Limits(), "'x': it is a file and also a folder"),
    ([("same.txt", b"1"), ("same.txt", b"2")], Limits(), "'same.txt': it appears twice"),
])
def test_archive_extraction_refuses_bombs_long_names_conflicts_and_duplicates(tmp_path, members, limits, reason):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name it is asked to write
        archive = _zip(tmp_path, members, compression=zipfile.ZIP_DEFLATED)
    with pytest.raises(DataError, match=reason):
        safe_extract(archive, tmp_path / "out", limits)
    assert sorted(p.name for p in tmp_path.iterdir()) == [archive.name]  # nothing written


def test_archive_extraction_never_replaces_a_users_file(tmp_path):
    out = tmp_path / "out"
    (out / "ISIC-2017_Training_Data").mkdir(parents=True)
    mine = out / "ISIC-2017_Training_Data" / "ISIC_0000000.jpg"
    mine.write_bytes(b"my own bytes")
    (out / "notes").write_text("a file where the archive has a folder")
    archive = _zip(tmp_path, [("ISIC-2017_Training_Data/ISIC_0000000.jpg", b"archive bytes")])
    with pytest.raises(DataError, match="exists with other content; nothing was overwritten"):
        safe_extract(archive, out)
    assert mine.read_bytes() == b"my own bytes"
    folder = _zip(tmp_path, [("notes/inside.txt", b"x")], name="b.zip")
    with pytest.raises(DataError, match="is a file here, not a folder"):
        safe_extract(folder, out)
    assert (out / "notes").read_text().startswith("a file")
    mine.write_bytes(b"archive bytes")  # the same content: extracting again is harmless
    assert safe_extract(archive, out) == [mine]
