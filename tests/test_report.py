"""bench report: one self-contained HTML file (nothing fetched, every internal link resolving, every image a data:
URI that decodes), holding the numbers `bench leaderboard` and `bench claims` print, a forest plot per difference
table, and a failure gallery drawn from saved predictions or from a run's weights; it opens without errors in a
headless Chromium; the committed ISIC report is what its records render."""

from __future__ import annotations

import base64
import html
import io
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import bench_cli, bench_main

ROOT = Path(__file__).resolve().parents[1]
BOARDS = ROOT / "leaderboards"
COMMITTED_REPORT = BOARDS / "isic2017-quick-report.html"
ISIC_RECORDS = "leaderboards/isic2017-quick/records"
TINY = ["--data", "fixture?n=16&n_test=6", "--epochs", "1", "--synthetic-epochs", "1", "--finetune-epochs", "1"]
IMAGE = re.compile(r'<img\b[^>]*\bsrc="([^"]*)"')
DATA_URI = re.compile(r"data:image/(png|jpeg);base64,([A-Za-z0-9+/=]+)")


def report(runs: str | Path, out: Path, *extra: str) -> str:
    bench_main("report", "--runs", str(runs), "--out", str(out), *extra)
    return out.read_text()


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, str]:
    """The committed boards' reports, rendered once (``--reproducible``; the ISIC one from the path its committed
    file names, relative to the checkout)."""
    out = tmp_path_factory.mktemp("reports")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(ROOT)
        return {name: report(f"leaderboards/{name}/records", out / f"{name}.html", "--reproducible")
                for name in ("fixture", "isic2017-quick")}


def decoded_images(text: str) -> list[Image.Image]:
    """Every ``<img>`` of the page: each must be a PNG or JPEG data URI whose bytes are that image."""
    images = []
    for src in IMAGE.findall(text):
        match = DATA_URI.fullmatch(src)
        assert match, f"not an inline PNG/JPEG: {src[:60]}"
        image = Image.open(io.BytesIO(base64.b64decode(match.group(2), validate=True)))
        image.load()
        assert image.format == match.group(1).upper().replace("JPG", "JPEG"), src[:40]
        assert image.width > 0 and image.height > 0
        images.append(image)
    return images


def check_self_contained(text: str) -> None:
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", text), "a reference outside the file"
    assert "<script" not in text and "@import" not in text and "url(" not in text
    assert all(h.startswith(("#", "data:")) for h in re.findall(r'href="([^"]*)"', text))
    ids = re.findall(r'\bid="([^"]+)"', text)
    assert len(ids) == len(set(ids)), "an id used twice"
    missing = [h for h in re.findall(r'href="#([^"]*)"', text) if h not in set(ids)]
    assert not missing, f"links to no id: {missing}"
    decoded_images(text)


@pytest.mark.parametrize("name", ["fixture", "isic2017-quick"])
def test_a_report_of_committed_records_is_self_contained_and_holds_the_board_and_the_claims(rendered, name):
    text = rendered[name]
    check_self_contained(text)
    records = BOARDS / name / "records"
    board = bench_main("leaderboard", "--runs", str(records)).stdout
    cells = re.findall(r"\d\.\d{4} ± \d\.\d{4} \(n=\d+\)|\d\.\d{4} \(n=1\)", board)
    intervals = re.findall(r"\[[+-]\d\.\d{4}, [+-]\d\.\d{4}\]", board)
    assert cells and intervals
    assert all(c in text for c in cells) and all(i in text for i in intervals)
    # a forest plot per difference table, each cell's histogram, and a gallery line per cell (no predictions or
    # weights are committed), listing its worst images
    assert text.count('<svg class="forest"') == board.count("\nDifference from `") > 0
    n_cells = len(re.findall(r"^\| [^|]+ \| [^|]+ \| \d+ \| \d+ \| \d+ \| [\d ]+ \|$", board, re.M))
    assert text.count('<figure class="cell">') == n_cells
    assert len(re.findall(r'<img [^>]*alt="[^"]*histogram', text)) == n_cells
    gallery = text.split('id="gallery"', 1)[1]
    assert gallery.count("No saved predictions") == n_cells and gallery.count("worst images") == n_cells
    verdicts = [line.rstrip(" |").rsplit(" | ", 1)[1] for line in bench_main("claims", "--runs", str(records))
                .stdout.splitlines() if line.startswith("| ") and not line.startswith(("| claim", "| ---"))]
    assert verdicts and all(html.escape(html.unescape(v)) in text for v in verdicts)
    assert "--reproducible" in text and " UTC" not in text


def test_the_committed_report_is_what_its_records_render(rendered):
    """Compared as the records render it, the image bytes aside: a PNG's pixels depend on the matplotlib and
    FreeType that drew it (the markup, every number, the forest plots' SVG and the number of images must match)."""
    def masked(text: str) -> str:
        return DATA_URI.sub(lambda m: f"data:image/{m.group(1)};base64,...", text)

    assert COMMITTED_REPORT.is_file(), f"{COMMITTED_REPORT} is missing"
    assert masked(COMMITTED_REPORT.read_text()) == masked(rendered["isic2017-quick"]), (
        f"{COMMITTED_REPORT.name} is out of date: run `bench report --runs {ISIC_RECORDS} --out "
        f"leaderboards/{COMMITTED_REPORT.name} --reproducible --overwrite`")
    assert COMMITTED_REPORT.stat().st_size < 5_000_000


def test_report_refuses_to_replace_a_file_without_overwrite(tmp_path):
    out = tmp_path / "report.html"
    out.write_text("mine")
    proc = bench_main("report", "--runs", str(BOARDS / "fixture" / "records"), "--out", str(out), check=False)
    assert proc.returncode == 2 and "--overwrite" in proc.stderr and out.read_text() == "mine"
    proc = bench_main("report", "--runs", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r.html"), check=False)
    assert proc.returncode == 2 and "folder not found" in proc.stderr


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory) -> Path:
    """Two tiny fixture runs: real only with ``--save-predictions``, and the matched-steps control without."""
    runs = tmp_path_factory.mktemp("tiny") / "runs"
    env = {"BENCH_CACHE_DIR": str(tmp_path_factory.getbasetemp() / "bench-cache")}
    bench_cli("run", "--seg", "unet", "--gen", "none", "--save-predictions", "--out", str(runs), *TINY, env=env)
    bench_cli("run", "--seg", "unet", "--schedule", "real-only-matched", "--out", str(runs), *TINY, env=env)
    return runs


def gallery_cells(text: str) -> dict[str, str]:
    """The gallery's cells by strategy label."""
    gallery = text.split('id="gallery"', 1)[1]
    out = {}
    for cell in gallery.split('<div class="gcell">')[1:]:
        label = re.search(r"<(?:h5|strong)>(.*?)</(?:h5|strong)>", cell).group(1)
        out[html.unescape(label)] = cell
    return out


def worst_ids(folder: Path, n: int) -> list[str]:
    import json

    rows = json.loads((folder / "results.json").read_text())["per_image"]
    return [r["id"] for r in sorted(rows, key=lambda r: (r["jaccard"], r["id"]))[:n]]


def overlay_colours(shot: str) -> tuple[int, int]:
    """Pixels of a gallery thumbnail that are the truth's green and the prediction's outline red."""
    (image,) = decoded_images(shot)
    rgb = np.asarray(image.convert("RGB")).astype(int)
    assert image.format == "JPEG" and image.width == 256
    green = (rgb[..., 1] > 170) & (rgb[..., 0] < 90) & (rgb[..., 2] < 90)
    red = (rgb[..., 0] > 200) & (rgb[..., 1] < 90) & (rgb[..., 2] < 90)
    return int(green.sum()), int(red.sum())


def test_the_gallery_draws_the_worst_images_from_saved_predictions_or_from_weights(tiny_runs, tmp_path):
    folders = {p.parent.parent.name.split("__")[2]: p.parent for p in tiny_runs.rglob("results.json")}
    saved, weights = folders["real-only"], folders["real-only-matched"]
    assert (saved / "predictions").is_dir() and not (weights / "predictions").exists()

    text = report(tiny_runs, tmp_path / "a.html", "--gallery", "4")
    check_self_contained(text)
    cells = gallery_cells(text)
    assert set(cells) == {"real only", "real only (matched steps)"}
    for label, folder, how in (("real only", saved, "saved prediction"),
                               ("real only (matched steps)", weights, "recomputed from its weights")):
        shots = re.findall(r'<figure class="shot">.*?</figure>', cells[label], re.S)
        assert len(shots) == 4
        assert [re.search(r"<code>(.*?)</code>", s).group(1) for s in shots] == worst_ids(folder, 4)
        for shot in shots:
            assert how in shot and "the mask shown" not in shot  # the mask drawn scores what the record says
            green, red = overlay_colours(shot)
            assert green > 20 and red > 20, (green, red)

    # without its predictions, the first run's masks are recomputed from its weights; without weights, listed
    # (and the second run's weights replaced by a file that is not the one its record pins: refused, named)
    shutil.move(saved / "predictions", tmp_path / "predictions")
    (saved / "checkpoints" / "final.pt").rename(tmp_path / "final.pt")
    (weights / "checkpoints" / "final.pt").rename(tmp_path / "other.pt")
    (weights / "checkpoints" / "final.pt").write_bytes(b"not the weights")
    try:
        cells = gallery_cells(report(tiny_runs, tmp_path / "b.html", "--gallery", "4"))
    finally:  # the runs are shared with the browser test
        shutil.move(tmp_path / "predictions", saved / "predictions")
        (tmp_path / "final.pt").rename(saved / "checkpoints" / "final.pt")
        (tmp_path / "other.pt").replace(weights / "checkpoints" / "final.pt")
    listed = cells["real only"]
    assert "No saved predictions" in listed and "<figure" not in listed
    assert all(f"<code>{i}</code>" in listed for i in worst_ids(saved, 4))
    refused = cells["real only (matched steps)"]
    assert "<figure" not in refused and "Not drawn" in refused and "not the weights" in refused

    text = report(tiny_runs, tmp_path / "c.html", "--gallery", "4", "--overwrite")
    shots = re.findall(r'<figure class="shot">.*?</figure>', gallery_cells(text)["real only"], re.S)
    assert len(shots) == 4 and all("saved prediction" in s for s in shots)


@pytest.fixture(scope="module")
def chrome():
    """A headless Chromium driven by Selenium; skipped where none is installed, unless ``BENCH_REQUIRE_BROWSER`` is
    set (CI installs Debian's chromium and chromium-driver, and selenium with the dev extra, and sets it)."""
    missing = pytest.fail if os.environ.get("BENCH_REQUIRE_BROWSER") else pytest.skip
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing("selenium is not installed (pip install selenium, or the dev extra)")
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver_path = shutil.which("chromedriver")
    if browser is None or driver_path is None:
        missing("no headless browser: apt-get install chromium chromium-driver (Debian)")
    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1400,1000"):
        options.add_argument(argument)
    options.binary_location = browser
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    yield driver
    driver.quit()


def test_the_report_opens_in_headless_chromium_without_errors(chrome, rendered, tiny_runs, tmp_path):
    """No console error, every image decoded and shown, every internal link's target present, nothing fetched."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver = chrome
    pages = [tmp_path / "isic.html", tmp_path / "gallery.html"]
    pages[0].write_text(rendered["isic2017-quick"])
    report(tiny_runs, pages[1], "--gallery", "3")
    for page in pages:
        driver.get(page.as_uri())  # chromedriver can return while a 1.5 MB page of data: URIs is still decoding
        WebDriverWait(driver, 60).until(lambda d: d.execute_script("return document.readyState") == "complete")
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, f"{page.name}: console errors {errors}"
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.alt])")
        assert images and all(done and width > 0 for done, width, _ in images), \
            f"{page.name}: images not shown: {[alt for done, width, alt in images if not (done and width)]}"
        broken = driver.execute_script(
            "return Array.from(document.querySelectorAll('a[href^=\"#\"]')).map(a => a.getAttribute('href')"
            ".slice(1)).filter(id => !document.getElementById(decodeURIComponent(id)))")
        assert not broken, f"{page.name}: links to no element: {broken}"
        fetched = driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name).filter(n => !n.startsWith('data:'))")
        assert not fetched, f"{page.name}: fetched {fetched}"
        assert driver.execute_script("return document.querySelectorAll('svg.forest').length") >= 1
    assert driver.execute_script("return document.querySelectorAll('figure.shot img').length") == 6


def test_text_from_records_is_escaped(tmp_path):
    import json

    runs = tmp_path / "runs"
    shutil.copytree(BOARDS / "fixture" / "records", runs)
    path = sorted(runs.rglob("results.json"))[0]
    record = json.loads(path.read_text())
    record["run"]["seg"] = 'unet<script>alert("seg")</script>'
    worst = min(record["per_image"], key=lambda r: r["jaccard"])  # listed in the gallery
    worst["id"] = '<img src=x onerror="alert(1)">'
    path.write_text(json.dumps(record))
    text = report(runs, tmp_path / "r.html")
    check_self_contained(text)
    assert text.count('<figure class="cell">') == 5  # the record is counted: a row of its own
    assert "<script" not in text and "<img src=x" not in text
    assert "unet&lt;script&gt;alert(&quot;seg&quot;)&lt;/script&gt;" in text
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in text
