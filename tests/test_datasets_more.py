"""isic2018:ROOT, ham10000:ROOT and ph2:ROOT on small synthetic trees in each official layout, bench data check on
them through the CLI (a subprocess for ph2), and bench data download of ISIC 2018 and HAM10000 from a local HTTP
server (test_download.py's, with Range support and a cut-off first GET) serving archives built here."""

import hashlib
import io
import json
import random
import zipfile

import numpy as np
import pytest
from PIL import Image

from bench.errors import ConfigError, DataError
from bench.plugin.host import get_host
from bench.train.run import load_dataset
from conftest import bench_cli, bench_main
from test_download import Server

H, W = 12, 16


def dataset(text):
    return load_dataset(get_host(), text, "--data")


def image_bytes(seed: int, fmt: str = "JPEG") -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (H, W, 3), dtype=np.uint8)).save(out, fmt)
    return out.getvalue()


def lesion(seed: int) -> np.ndarray:
    """A 0/255 rectangle whose place depends on ``seed``, so each mask is checkable."""
    m = np.zeros((H, W), np.uint8)
    top, left = seed % 4, seed % 5
    m[top:top + 6, left:left + 8] = 255
    return m


def mask_bytes(seed: int, mode: str = "L", fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.fromarray(lesion(seed)).convert(mode).save(out, fmt)
    return out.getvalue()


# ---------------------------------------------------------------------------------------------------- ISIC 2018

ISIC2018 = {"train": ("ISIC2018_Task1-2_Training_Input", "ISIC2018_Task1_Training_GroundTruth", range(0, 4)),
            "val": ("ISIC2018_Task1-2_Validation_Input", "ISIC2018_Task1_Validation_GroundTruth", range(100, 102)),
            "test": ("ISIC2018_Task1-2_Test_Input", "ISIC2018_Task1_Test_GroundTruth", range(200, 203))}


def isic2018_tree(root, splits=("train", "val", "test")):
    for split in splits:
        images, masks, numbers = ISIC2018[split]
        for folder in (images, masks):
            (root / folder).mkdir(parents=True)
            (root / folder / "LICENSE.txt").write_text("CC-BY-NC")  # as in the official zips
            (root / folder / "ATTRIBUTION.txt").write_text("ISIC")
        for n in numbers:
            (root / images / f"ISIC_{n:07d}.jpg").write_bytes(image_bytes(n))
            (root / masks / f"ISIC_{n:07d}_segmentation.png").write_bytes(mask_bytes(n))
    return root


def test_isic2018_official_layout_has_its_splits_and_ignores_the_licence_files(tmp_path):
    ds = dataset(f"isic2018:{isic2018_tree(tmp_path / 'isic')}")
    assert list(ds.splits) == ["train", "val", "test"] and ds.test_split()[0] == "test"
    assert ds.split("train").ids() == [f"ISIC_{n:07d}" for n in range(4)]
    assert ds.split("val").ids() == ["ISIC_0000100", "ISIC_0000101"] and len(ds.split("test")) == 3
    image, mask = ds.split("test").load(2)
    assert image.shape == (H, W, 3) and np.array_equal(mask, lesion(202) // 255)

    only_train = dataset(f"isic2018:{isic2018_tree(tmp_path / 'train-only', ('train',))}")
    assert list(only_train.splits) == ["train"]


def test_isic2018_errors_name_the_file_and_the_expected_folders(tmp_path):
    root = isic2018_tree(tmp_path / "isic")
    (root / "ISIC2018_Task1_Validation_GroundTruth" / "ISIC_0000101_segmentation.png").unlink()
    with pytest.raises(DataError, match=r"ISIC_0000101\.jpg: no mask found; expected .*ISIC_0000101_segmentation\.png"):
        dataset(f"isic2018:{root}")
    with pytest.raises(DataError, match="no ISIC 2018 Task 1 folders found; expected some of: "
                                        "ISIC2018_Task1-2_Training_Input"):
        dataset(f"isic2018:{tmp_path}")
    with pytest.raises(ConfigError, match="isic2018.*test_fraction"):  # it takes no options
        dataset(f"isic2018:{root}?test_fraction=0.5")


# ---------------------------------------------------------------------------------------------------- HAM10000

HAM_COLUMNS = "lesion_id,image_id,dx,dx_type,age,sex,localization,dataset"


def lesion_id_of(k: int) -> str:
    return f"HAM_{1000 + 37 * k:07d}"


def ham_images(n_lesions: int = 36) -> dict[str, str]:
    """image id -> lesion id: 1 to 3 images a lesion (as HAM10000 has several images of many lesions)."""
    out, n = {}, 24306
    for k in range(n_lesions):
        for _ in range(1 + k % 3):
            out[f"ISIC_{n:07d}"] = lesion_id_of(k)
            n += 1
    return out


def metadata_text(rows: dict[str, str], sep: str = ",", order=None, quote: bool = False) -> str:
    q = '"' if quote else ""
    lines = [sep.join(f"{q}{c}{q}" for c in HAM_COLUMNS.split(","))]
    for image_id in order or sorted(rows):
        lines.append(sep.join(f"{q}{v}{q}" for v in (rows[image_id], image_id, "nv", "histo", "45.0", "male",
                                                     "back", "vidir_modern")))
    return "\n".join(lines) + "\n"


def ham_tree(root, rows: dict[str, str], layout: str = "parts", order=None):
    """The layout the Dataverse archives extract to (two image parts), or one images/ folder."""
    ids = order or sorted(rows)
    masks = root / "HAM10000_segmentations_lesion_tschandl"
    masks.mkdir(parents=True)
    for i, image_id in enumerate(ids):
        folder = root / ("images" if layout == "images" else f"HAM10000_images_part_{1 + i % 2}")
        folder.mkdir(exist_ok=True)
        seed = int(image_id[5:])
        (folder / f"{image_id}.jpg").write_bytes(image_bytes(seed))
        (masks / f"{image_id}_segmentation.png").write_bytes(mask_bytes(seed))
    (root / "HAM10000_metadata.csv").write_text(metadata_text(rows, order=order))
    return root


@pytest.fixture
def ham(tmp_path):
    rows = ham_images()
    return ham_tree(tmp_path / "ham", rows), rows


def position(lesion_id: str) -> float:
    """The documented rule, written out independently of the plugin."""
    digest = hashlib.sha256(("skinbench/ham10000/lesion-split/v1:" + lesion_id).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def test_ham10000_splits_by_lesion_as_documented(ham):
    root, rows = ham
    ds = dataset(f"ham10000:{root}")
    assert list(ds.splits) == ["train", "val", "test"]
    where = {image_id: name for name, split in ds.splits.items() for image_id in split.ids()}
    assert sorted(where) == sorted(rows)  # every image in exactly one split
    by_lesion: dict[str, set[str]] = {}
    for image_id, lesion_id in rows.items():
        by_lesion.setdefault(lesion_id, set()).add(where[image_id])
    assert all(len(splits) == 1 for splits in by_lesion.values())  # no lesion straddles two splits
    assert sum(list(rows.values()).count(k) > 1 for k in by_lesion) >= 20  # many lesions have several images
    for lesion_id, (split,) in by_lesion.items():
        p = position(lesion_id)
        assert split == ("test" if p < 0.2 else "val" if p < 0.3 else "train"), lesion_id
    from bench_plugins.datasets_ham10000 import split_of

    assert abs(position("HAM_0000118") - 0.18945) < 1e-5  # pinned: the rule may not drift across versions
    assert split_of("HAM_0000118", 0.2, 0.1) == "test" and split_of("HAM_0000118", 0.15, 0.1) == "val"
    image, mask = ds.split("test").load(0)
    first = ds.split("test").ids()[0]
    assert image.shape == (H, W, 3) and np.array_equal(mask, lesion(int(first[5:])) // 255)


def test_ham10000_split_does_not_depend_on_file_or_row_order(ham, tmp_path):
    root, rows = ham
    reference = {name: split.ids() for name, split in dataset(f"ham10000:{root}").splits.items()}
    shuffled = sorted(rows)
    random.Random(3).shuffle(shuffled)  # other rows order, and images dealt to the other part folders
    other = ham_tree(tmp_path / "other", rows, order=shuffled)
    assert {n: s.ids() for n, s in dataset(f"ham10000:{other}").splits.items()} == reference
    single = ham_tree(tmp_path / "single", rows, layout="images")
    (single / "HAM10000_metadata.csv").unlink()  # Dataverse's tab-separated, quoted export instead
    (single / "HAM10000_metadata.tab").write_text(metadata_text(rows, sep="\t", order=shuffled, quote=True))
    assert {n: s.ids() for n, s in dataset(f"ham10000:{single}").splits.items()} == reference


def test_ham10000_options_are_fractions_of_lesions_checked_with_one_line_errors(ham):
    root, rows = ham
    from bench_plugins.datasets_ham10000 import ham10000

    typed = ham10000(str(root), test_fraction=0.3, val_fraction=0.0)  # already typed, as a config file gives them
    text = ham10000(str(root), test_fraction="0.3", val_fraction="0")  # as text, as a spec gives them
    assert list(typed.splits) == ["train", "test"]  # val_fraction=0: no val split
    assert {n: s.ids() for n, s in typed.splits.items()} == {n: s.ids() for n, s in text.splits.items()}
    assert typed.spec == f"ham10000:{root}?test_fraction=0.3&val_fraction=0.0"
    default = dataset(f"ham10000:{root}")
    assert default.spec == f"ham10000:{root}"
    larger_val = dataset(f"ham10000:{root}?val_fraction=0.3")
    assert larger_val.split("test").ids() == default.split("test").ids()  # test lesions hang on test_fraction only
    assert set(default.split("val").ids()) < set(larger_val.split("val").ids())
    for bad, said in (("test_fraction=1.5", "test_fraction=1.5: expected a fraction of the lesions in [0, 1)"),
                      ("val_fraction=-0.1", "val_fraction=-0.1: expected a fraction of the lesions in [0, 1)"),
                      ("test_fraction=0.6&val_fraction=0.5", "test_fraction + val_fraction = 1.1 leaves no lesion"),
                      ("test_fraction=0", "test_fraction=0 leaves no test split")):
        with pytest.raises(ConfigError) as info:
            dataset(f"ham10000:{root}?{bad}")
        assert said in str(info.value) and "\n" not in str(info.value)
    for bad in ("test_fraction=abc", "folds=3"):
        with pytest.raises(ConfigError) as info:
            dataset(f"ham10000:{root}?{bad}")
        assert bad.split("=")[0] in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="test_fraction=abc: expected a fraction"):
        ham10000(str(root), test_fraction="abc")
    with pytest.raises(ConfigError, match="unknown option 'folds'; known: test_fraction, val_fraction"):
        ham10000(str(root), folds="3")


def test_ham10000_refuses_images_without_rows_rows_without_images_and_missing_masks(ham):
    root, rows = ham
    metadata = root / "HAM10000_metadata.csv"
    image_id = sorted(rows)[5]
    image = next(root.glob(f"HAM10000_images_part_*/{image_id}.jpg"))
    metadata.write_text(metadata_text({k: v for k, v in rows.items() if k != image_id}))
    with pytest.raises(DataError, match=rf"{image_id}\.jpg: no row for {image_id} in .*HAM10000_metadata\.csv"):
        dataset(f"ham10000:{root}")
    metadata.write_text(metadata_text({**rows, "ISIC_0099999": "HAM_0000001"}))
    with pytest.raises(DataError, match=r"HAM10000_metadata\.csv, line \d+: image ISIC_0099999 not found; expected "
                                        r".*HAM10000_images_part_1/ISIC_0099999\.jpg"):
        dataset(f"ham10000:{root}")
    metadata.write_text(metadata_text(rows))
    mask = root / "HAM10000_segmentations_lesion_tschandl" / f"{image_id}_segmentation.png"
    mask.unlink()
    with pytest.raises(DataError, match=rf"{image_id}\.jpg: no mask found; expected .*{image_id}_segmentation\.png"):
        dataset(f"ham10000:{root}")
    mask.write_bytes(mask_bytes(1))
    image.unlink()
    with pytest.raises(DataError, match=rf"line \d+: image {image_id} not found"):
        dataset(f"ham10000:{root}")
    metadata.unlink()
    with pytest.raises(DataError, match=r"HAM10000_metadata\.csv: not found; HAM10000's split is made by lesion"):
        dataset(f"ham10000:{root}")
    metadata.write_text("image,dx\nISIC_0024306,nv\n")
    with pytest.raises(DataError, match=r"HAM10000_metadata\.csv: no 'lesion_id' column \(it has: image, dx\)"):
        dataset(f"ham10000:{root}")


def test_bench_data_check_shows_the_ham10000_splits(ham):
    root, rows = ham
    proc = bench_main("data", "check", f"ham10000:{root}")
    ds = dataset(f"ham10000:{root}")
    for name in ("train", "val", "test"):
        assert f"  {name}: {len(ds.split(name))} pairs, 0 bad" in proc.stdout
    assert sum(len(s) for s in ds.splits.values()) == len(rows)


# ---------------------------------------------------------------------------------------------------- PH2


def ph2_tree(root, n: int = 4, mask_mode: str = "L"):
    cases = root / "PH2 Dataset images"
    for k in range(2, 2 + n):
        case = cases / f"IMD{k:03d}"
        (case / f"IMD{k:03d}_Dermoscopic_Image").mkdir(parents=True)
        (case / f"IMD{k:03d}_lesion").mkdir()
        (case / f"IMD{k:03d}_roi").mkdir()  # PH2's colour-class regions: not read
        (case / f"IMD{k:03d}_Dermoscopic_Image" / f"IMD{k:03d}.bmp").write_bytes(image_bytes(k, "BMP"))
        (case / f"IMD{k:03d}_lesion" / f"IMD{k:03d}_lesion.bmp").write_bytes(mask_bytes(k, mask_mode, "BMP"))
    (root / "PH2_dataset.txt").write_text("| Name | Histological Diagnosis |\n")
    return root


@pytest.mark.parametrize("mode", ["1", "L"])
def test_ph2_layout_one_test_split_and_bmp_masks_load_as_zero_one(tmp_path, mode):
    root = ph2_tree(tmp_path / "PH2Dataset", mask_mode=mode)
    mask_file = root / "PH2 Dataset images/IMD003/IMD003_lesion/IMD003_lesion.bmp"
    assert Image.open(mask_file).mode == mode
    for given in (root, root / "PH2 Dataset images", tmp_path):  # the extracted folder, the cases' folder, above it
        ds = dataset(f"ph2:{given}")
        assert list(ds.splits) == ["test"] and ds.test_split()[0] == "test"
        assert ds.split("test").ids() == ["IMD002", "IMD003", "IMD004", "IMD005"]
    image, mask = ds.split("test").load(1)
    assert image.shape == (H, W, 3) and mask.dtype == np.uint8
    assert np.array_equal(mask, lesion(3) // 255)


def test_a_palette_bmp_mask_is_read_by_its_grey_levels_not_its_indices(tmp_path):
    root = ph2_tree(tmp_path / "PH2Dataset")
    path = root / "PH2 Dataset images/IMD002/IMD002_lesion/IMD002_lesion.bmp"
    palette = Image.fromarray((lesion(2) == 0).astype(np.uint8), "P")  # index 0 = lesion, drawn white
    palette.putpalette([255, 255, 255, 0, 0, 0])
    palette.save(path, "BMP")
    assert Image.open(path).mode == "P"
    _, mask = dataset(f"ph2:{root}").split("test").load(0)
    assert np.array_equal(mask, lesion(2) // 255)


def test_ph2_names_a_missing_image_or_mask_and_a_wrong_root(tmp_path):
    root = ph2_tree(tmp_path / "PH2Dataset")
    mask = root / "PH2 Dataset images/IMD004/IMD004_lesion/IMD004_lesion.bmp"
    mask.unlink()
    with pytest.raises(DataError, match=r"IMD004_lesion\.bmp: not found; expected the lesion mask of case IMD004"):
        dataset(f"ph2:{root}")
    (root / "PH2 Dataset images/IMD002/IMD002_Dermoscopic_Image/IMD002.bmp").unlink()
    with pytest.raises(DataError, match=r"IMD002\.bmp: not found; expected the dermoscopic image of case IMD002"):
        dataset(f"ph2:{root}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no PH2 case folders"):
        dataset(f"ph2:{tmp_path / 'empty'}")
    lower = ph2_tree(tmp_path / "lower")
    (lower / "PH2 Dataset images/IMD003").rename(lower / "PH2 Dataset images/imd003")
    with pytest.raises(DataError, match="imd003: a PH2 case folder is named IMDnnn"):  # never dropped silently
        dataset(f"ph2:{lower}")


def test_bench_data_check_on_ph2_through_the_cli_exits_0_then_1_on_a_bad_mask(tmp_path):
    root = ph2_tree(tmp_path / "PH2Dataset", mask_mode="1")
    good = bench_cli("data", "check", f"ph2:{root}")
    assert "  test: 4 pairs, 0 bad" in good.stdout
    bad_mask = root / "PH2 Dataset images/IMD005/IMD005_lesion/IMD005_lesion.bmp"
    Image.fromarray(np.full((H, W), 128, np.uint8)).save(bad_mask, "BMP")
    bad = bench_cli("data", "check", f"ph2:{root}", check=False)
    assert bad.returncode == 1, bad.stderr
    assert "test: 4 pairs, 1 bad" in bad.stdout and "IMD005_lesion.bmp: mask is not binary (values 128)" in bad.stdout


# ---------------------------------------------------------------------------------------------------- downloads


def zipped(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, body in members.items():
            zf.writestr(name, body)
    return buf.getvalue()


def ham_archives(rows: dict[str, str]) -> dict[str, bytes]:
    """Stand-ins shaped like the Dataverse files: bare images in the two image zips, a mask folder (with macOS's
    __MACOSX shadow entries) in the mask zip, and the metadata CSV as a plain file."""
    ids = sorted(rows)
    return {
        "HAM10000_images_part_1.zip": zipped({f"{i}.jpg": image_bytes(int(i[5:])) for i in ids[::2]}),
        "HAM10000_images_part_2.zip": zipped({f"{i}.jpg": image_bytes(int(i[5:])) for i in ids[1::2]}),
        "HAM10000_segmentations_lesion_tschandl.zip": zipped({
            **{f"HAM10000_segmentations_lesion_tschandl/{i}_segmentation.png": mask_bytes(int(i[5:])) for i in ids},
            f"__MACOSX/HAM10000_segmentations_lesion_tschandl/._{ids[0]}_segmentation.png": b"\x00\x05\x16\x07"}),
        "HAM10000_metadata.csv": metadata_text(rows).encode(),
    }


def checksum_file(path, files: dict[str, bytes], algorithm: str = "md5"):
    path.write_text(json.dumps({name: hashlib.new(algorithm, body).hexdigest() for name, body in files.items()}))
    return str(path)


def test_download_ham10000_from_a_mirror_then_check_it(tmp_path):
    rows = ham_images(12)
    server = Server(ham_archives(rows), cut={"HAM10000_images_part_2.zip"})
    try:
        root = tmp_path / "ham"
        args = ["data", "download", "ham10000", "--root", str(root), "--base-url", server.url,
                "--checksums", checksum_file(tmp_path / "md5.json", server.files)]
        first = bench_main(*args, check=False)  # the first GET of part 2 stops half-way
        assert first.returncode == 2 and "run the same command again to resume" in first.stderr
        proc = bench_main(*args)
        assert "done: use --data ham10000:" in proc.stdout and "HAM10000_metadata.csv: MD5 verified" in proc.stdout
        assert any(r[0] == "HAM10000_images_part_2.zip" and r[1] for r in server.requests)  # resumed with a Range
        part_1 = sorted(p.stem for p in (root / "HAM10000_images_part_1").glob("*.jpg"))
        assert part_1 == sorted(rows)[::2]  # the zips hold bare images: extracted into a folder each
        assert (root / "HAM10000_metadata.csv").read_text() == metadata_text(rows)
        ds = dataset(f"ham10000:{root}")
        assert sorted(i for s in ds.splits.values() for i in s.ids()) == sorted(rows)
        again = bench_main(*args)
        assert again.stdout.count("already downloaded and extracted") == 4

        official = bench_main("data", "download", "ham10000", "--root", str(tmp_path / "o"), "--base-url",
                              server.url, check=False)  # the stand-ins are not the files Dataverse publishes
        assert official.returncode == 2
        assert "MD5" in official.stderr and "differs from the expected 4639bfa73ab251610530a97c898e6e46" in official.stderr
    finally:
        server.httpd.shutdown()


def test_download_isic2018_checks_sha256_and_ph2_says_how_to_obtain_it(tmp_path):
    files = {}
    for split in ("val",):
        images, masks, numbers = ISIC2018[split]
        files[f"{images}.zip"] = zipped({**{f"{images}/ISIC_{n:07d}.jpg": image_bytes(n) for n in numbers},
                                         f"{images}/LICENSE.txt": b"CC-BY-NC"})
        files[f"{masks}.zip"] = zipped({f"{masks}/ISIC_{n:07d}_segmentation.png": mask_bytes(n) for n in numbers})
    server = Server(files, cut=set())
    try:
        root = tmp_path / "isic"
        proc = bench_main("data", "download", "isic2018", "--root", str(root), "--splits", "val", "--base-url",
                          server.url, "--checksums", checksum_file(tmp_path / "sha.json", files, "sha256"))
        assert "ISIC2018_Task1-2_Validation_Input.zip: SHA-256 verified" in proc.stdout
        assert dataset(f"isic2018:{root}").split("val").ids() == ["ISIC_0000100", "ISIC_0000101"]
        official = bench_main("data", "download", "isic2018", "--root", str(tmp_path / "o"), "--splits", "val",
                              "--base-url", server.url, check=False)
        assert official.returncode == 2 and "SHA-256 " in official.stderr
        assert "differs from the expected 0ea920fcfe512d12a6e620b50b50233c059f67b10146e1479c82be58ff15a797" in official.stderr
        assert (tmp_path / "o" / "archives" / "ISIC2018_Task1-2_Validation_Input.zip.sha256-mismatch").is_file()
        wrong = bench_main("data", "download", "isic2018", "--root", str(root), "--splits", "holdout", check=False)
        assert wrong.returncode == 2 and "--splits 'holdout': expected a comma-separated subset of train,val,test" \
            in wrong.stderr
    finally:
        server.httpd.shutdown()
    ph2 = bench_main("data", "download", "ph2", "--root", str(tmp_path / "ph2"), check=False)
    assert ph2.returncode == 2 and "PH2Dataset.rar" in ph2.stderr and "https://www.fc.up.pt/addi/ph2%20database.html" \
        in ph2.stderr and "--data ph2:ROOT" in ph2.stderr
    assert not (tmp_path / "ph2").exists()
