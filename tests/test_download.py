"""bench data download: a local HTTP server on 127.0.0.1 serves small ISIC-shaped archives; a download is
interrupted, resumed with a Range request, size-checked, extracted, and read by isic2017:ROOT."""

import hashlib
import json
import io
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image

from conftest import bench_cli


def isic_zip(folder: str, ids: list[str], masks: bool) -> bytes:
    buf = io.BytesIO()
    rng = np.random.default_rng(len(folder))
    with zipfile.ZipFile(buf, "w") as zf:
        for image_id in ids:
            out = io.BytesIO()
            if masks:
                m = np.zeros((24, 32), np.uint8)
                m[6:18, 8:24] = 255
                Image.fromarray(m).save(out, "PNG")
                zf.writestr(f"{folder}/{image_id}_segmentation.png", out.getvalue())
            else:
                Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(out, "JPEG")
                zf.writestr(f"{folder}/{image_id}.jpg", out.getvalue())
                zf.writestr(f"{folder}/{image_id}_superpixels.png", b"not read")  # as in the official zips
    return buf.getvalue()


class Server:
    """Serves ``files`` with Range support; the first GET of a name in ``cut`` stops after half its bytes."""

    def __init__(self, files: dict[str, bytes], cut: set[str]):
        self.files, self.cut, self.requests = files, set(cut), []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                name = self.path.rsplit("/", 1)[-1]
                server.requests.append((name, self.headers.get("Range")))
                if name not in server.files:
                    self.send_error(404)
                    return
                body, start = server.files[name], 0
                if self.headers.get("Range"):
                    start = int(self.headers["Range"].split("=")[1].split("-")[0])
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                if name in server.cut:
                    server.cut.discard(name)
                    self.wfile.write(body[start : start + (len(body) - start) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body[start:])

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/2017/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def server():
    train_ids = [f"ISIC_{i:07d}" for i in range(6)]
    val_ids = [f"ISIC_{i:07d}" for i in range(100, 103)]
    files = {
        "ISIC-2017_Training_Data.zip": isic_zip("ISIC-2017_Training_Data", train_ids, False),
        "ISIC-2017_Training_Part1_GroundTruth.zip": isic_zip("ISIC-2017_Training_Part1_GroundTruth", train_ids, True),
        "ISIC-2017_Validation_Data.zip": isic_zip("ISIC-2017_Validation_Data", val_ids, False),
        "ISIC-2017_Validation_Part1_GroundTruth.zip": isic_zip("ISIC-2017_Validation_Part1_GroundTruth", val_ids, True),
    }
    s = Server(files, cut={"ISIC-2017_Training_Data.zip"})
    yield s
    s.httpd.shutdown()


def checksums(server, tmp_path, **wrong):
    """A ``--checksums`` file for the stand-in archives (they are not the official ones)."""
    table = {name: hashlib.md5(body).hexdigest() for name, body in server.files.items()}
    path = tmp_path / "md5.json"
    path.write_text(json.dumps({**table, **wrong}))
    return str(path)


def test_download_is_interrupted_resumed_checked_and_extracted(server, tmp_path):
    root = tmp_path / "isic"
    args = ["data", "download", "isic2017", "--root", str(root), "--splits", "train,val", "--base-url", server.url,
            "--checksums", checksums(server, tmp_path)]
    first = bench_cli(*args, check=False)
    assert first.returncode == 2 and "run the same command again to resume" in first.stderr
    part = root / "archives" / "ISIC-2017_Training_Data.zip.part"
    total = len(server.files["ISIC-2017_Training_Data.zip"])
    assert part.is_file() and 0 < part.stat().st_size < total
    assert not (root / "ISIC-2017_Training_Data").exists()  # nothing extracted from a partial archive
    held = part.stat().st_size

    second = bench_cli(*args)
    assert ("ISIC-2017_Training_Data.zip", f"bytes={held}-") in server.requests  # resumed, not restarted
    assert (root / "archives" / "ISIC-2017_Training_Data.zip").stat().st_size == total
    assert "done: use --data isic2017:" in second.stdout and "MD5 verified" in second.stdout
    check = bench_cli("data", "check", f"isic2017:{root}")
    assert "train: 6 pairs, 0 bad" in check.stdout and "val: 3 pairs, 0 bad" in check.stdout

    before = len(server.requests)
    third = bench_cli(*args)
    assert "already downloaded and extracted" in third.stdout and len(server.requests) == before


def test_a_missing_archive_and_an_unknown_split_are_errors_naming_them(server, tmp_path):
    proc = bench_cli("data", "download", "isic2017", "--root", str(tmp_path), "--splits", "test",
                     "--base-url", server.url, check=False)
    assert proc.returncode == 2 and "ISIC-2017_Test_v2_Data.zip: HTTP 404" in proc.stderr
    proc = bench_cli("data", "download", "isic2017", "--root", str(tmp_path), "--splits", "train,holdout",
                     check=False)
    assert proc.returncode == 2 and "--splits" in proc.stderr and "train,val,test" in proc.stderr


def test_an_archive_with_the_wrong_md5_is_kept_aside_and_not_extracted(server, tmp_path):
    root = tmp_path / "isic"
    server.cut.clear()
    bad = "0" * 32
    proc = bench_cli("data", "download", "isic2017", "--root", str(root), "--splits", "val", "--base-url",
                     server.url, "--checksums", checksums(server, tmp_path, **{"ISIC-2017_Validation_Data.zip": bad}),
                     check=False)
    assert proc.returncode == 2
    assert "ISIC-2017_Validation_Data.zip: MD5 " in proc.stderr and f"differs from the expected {bad}" in proc.stderr
    assert (root / "archives" / "ISIC-2017_Validation_Data.zip.md5-mismatch").is_file()
    assert not (root / "ISIC-2017_Validation_Data").exists()
    official = bench_cli("data", "download", "isic2017", "--root", str(tmp_path / "o"), "--splits", "val",
                         "--base-url", server.url, check=False)  # the stand-ins are not the official archives
    assert official.returncode == 2 and "differs from the expected 8d6419d942112f709894c0d82f6c9038" in official.stderr
