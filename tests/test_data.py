"""Datasets: the synthetic fixture, the ISIC 2017 and folder layouts, pair checks, the prepared cache."""

import numpy as np
import pytest
from PIL import Image

from bench.data.prepare import prepare
from bench.errors import DataError
from bench.scoring.metrics import confusion, image_metrics
from bench.plugin.host import get_host
from bench.train.run import load_dataset


def dataset(text):
    return load_dataset(get_host(), text, "--data")


def test_fixture_is_deterministic_per_seed_and_any_size():
    a = dataset("fixture?n=4&size=40x56&seed=3").split("train")
    b = dataset("fixture?n=4&size=40x56&seed=3").split("train")
    c = dataset("fixture?n=4&size=40x56&seed=4").split("train")
    img_a, mask_a = a.load(2)
    img_b, mask_b = b.load(2)
    assert img_a.shape == (40, 56, 3) and mask_a.shape == (40, 56)
    assert np.array_equal(img_a, img_b) and np.array_equal(mask_a, mask_b)
    assert not np.array_equal(img_a, c.load(2)[0])
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()
    assert set(np.unique(mask_a)) <= {0, 1}


def test_fixture_lesions_vary_so_a_centred_blob_is_a_poor_answer():
    split = dataset("fixture?n=8&n_test=60").split("test")
    scores, areas, centres = [], [], []
    for i in range(len(split)):
        _, mask = split.load(i)
        h, w = mask.shape
        yy, xx = np.mgrid[0:h, 0:w]
        blob = ((yy - h / 2) / (0.3 * h)) ** 2 + ((xx - w / 2) / (0.3 * w)) ** 2 <= 1
        scores.append(image_metrics(confusion(mask > 0, blob))["jaccard"])
        areas.append(mask.mean())
        centres.append(np.argwhere(mask).mean(0) / [h, w])
    assert np.mean(scores) < 0.35
    assert max(areas) > 4 * min(areas)
    assert np.std(np.array(centres), axis=0).min() > 0.08


def write_pairs(images, masks, n, size=(24, 32), mask_suffix="_segmentation", prefix="ISIC_00000"):
    images.mkdir(parents=True, exist_ok=True)
    masks.mkdir(parents=True, exist_ok=True)
    split = dataset(f"fixture?n={n}&size={size[0]}x{size[1]}").split("train")
    for i in range(n):
        img, mask = split.load(i)
        stem = f"{prefix}{i:02d}"
        Image.fromarray(img).save(images / f"{stem}.jpg")
        Image.fromarray(mask * 255).save(masks / f"{stem}{mask_suffix}.png")
    return [f"{prefix}{i:02d}" for i in range(n)]


@pytest.fixture
def isic_tree(tmp_path):
    root = tmp_path / "isic"
    write_pairs(root / "ISIC-2017_Training_Data", root / "ISIC-2017_Training_Part1_GroundTruth", 5)
    write_pairs(root / "ISIC-2017_Validation_Data", root / "ISIC-2017_Validation_Part1_GroundTruth", 3, (30, 40))
    (root / "ISIC-2017_Training_Data" / "ISIC_0000000_superpixels.png").write_bytes(b"ignored")
    (root / "ISIC-2017_Training_Data" / "ISIC-2017_Training_Data_metadata.csv").write_text("ignored")
    return root


def test_isic2017_layout_splits_and_default_test_split(isic_tree):
    ds = dataset(f"isic2017:{isic_tree}")
    assert set(ds.splits) == {"train", "val"}
    assert len(ds.split("train")) == 5
    assert ds.test_split()[0] == "val" and "no test split" in ds.test_split()[1]
    image, mask = ds.split("val").load(0)
    assert image.shape == (30, 40, 3) and mask.shape == (30, 40)


def test_missing_mask_names_the_image(isic_tree):
    (isic_tree / "ISIC-2017_Training_Part1_GroundTruth" / "ISIC_0000003_segmentation.png").unlink()
    with pytest.raises(DataError, match=r"ISIC_0000003\.jpg: no mask found; expected .*ISIC_0000003_segmentation\.png"):
        dataset(f"isic2017:{isic_tree}")


def test_mask_without_image_names_the_mask(isic_tree):
    (isic_tree / "ISIC-2017_Training_Data" / "ISIC_0000001.jpg").unlink()
    with pytest.raises(DataError, match=r"ISIC_0000001_segmentation\.png: mask has no image"):
        dataset(f"isic2017:{isic_tree}")


def test_size_mismatch_names_both_files(isic_tree):
    path = isic_tree / "ISIC-2017_Training_Part1_GroundTruth" / "ISIC_0000002_segmentation.png"
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(path)
    with pytest.raises(DataError, match=r"ISIC_0000002_segmentation\.png: mask is 10x10 but its image ISIC_0000002\.jpg is 24x32"):
        prepare(dataset(f"isic2017:{isic_tree}").split("train"), (16, 16))


def test_non_binary_mask_names_the_file(isic_tree):
    path = isic_tree / "ISIC-2017_Training_Part1_GroundTruth" / "ISIC_0000004_segmentation.png"
    Image.fromarray(np.full((24, 32), 128, np.uint8)).save(path)
    with pytest.raises(DataError, match=r"ISIC_0000004_segmentation\.png: mask is not binary \(values 128\)"):
        prepare(dataset(f"isic2017:{isic_tree}").split("train"), (16, 16))


def test_unreadable_image_names_the_file(isic_tree):
    (isic_tree / "ISIC-2017_Training_Data" / "ISIC_0000000.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    with pytest.raises(DataError, match=r"ISIC_0000000\.jpg: cannot read image"):
        prepare(dataset(f"isic2017:{isic_tree}").split("train"), (16, 16))


def test_missing_root_and_wrong_layout(tmp_path):
    with pytest.raises(DataError, match="dataset root not found"):
        dataset(f"isic2017:{tmp_path / 'nope'}")
    with pytest.raises(DataError, match="no ISIC 2017 folders found; expected some of: ISIC-2017_Training_Data"):
        dataset(f"isic2017:{tmp_path}")
    with pytest.raises(DataError, match="expected images/ and masks/"):
        dataset(f"folder:{tmp_path}")


def test_folder_layout_matches_masks_by_stem(tmp_path):
    write_pairs(tmp_path / "images", tmp_path / "masks", 3, mask_suffix="_lesion", prefix="IMD00")
    ds = dataset(f"folder:{tmp_path}")
    assert ds.split("all").ids() == ["IMD0000", "IMD0001", "IMD0002"]
    assert ds.test_split()[0] == "all"


def test_prepared_split_is_cached_and_reused(isic_tree):
    split = dataset(f"isic2017:{isic_tree}").split("train")
    first = prepare(split, (16, 24))
    second = prepare(split, (16, 24))
    other_size = prepare(split, (8, 12))
    assert not first.from_cache and second.from_cache and not other_size.from_cache
    assert first.images.shape == (5, 3, 16, 24) and first.masks.shape == (5, 1, 16, 24)
    assert np.array_equal(first.images.numpy(), second.images.numpy())
    assert first.original_sizes == [(24, 32)] * 5
    assert set(np.unique(second.masks.numpy())) <= {0, 1}
