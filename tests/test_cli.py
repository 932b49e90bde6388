"""The command line surface: list with wildcards, describe, unknown names with close matches."""

from conftest import bench_main as bench_cli  # nothing here trains: in-process is the same entry point


def test_list_kinds_and_patterns():
    assert "unet" in bench_cli("list", "segmenters").stdout
    gens = bench_cli("list", "generators", "dc*").stdout
    assert "dcgan" in gens
    losses = bench_cli("list", "losses", "*an*").stdout.split("\n")
    assert any(l.startswith("tanimoto") for l in losses) and not any(l.startswith("bce") for l in losses)
    assert "two-phase" in bench_cli("list", "schedules").stdout
    assert "isic2017" in bench_cli("list", "datasets").stdout


def test_describe_segmenter_shows_parameters_and_reference():
    out = bench_cli("describe", "unet").stdout
    assert "trainable parameters: 31," in out  # Ronneberger's U-Net at full width, 3 input channels
    assert "Ronneberger" in out
    assert "default loss: bce" in out


def test_describe_generator_and_loss():
    assert "generator" in bench_cli("describe", "dcgan").stdout
    assert "Eq. 1" in bench_cli("describe", "tanimoto").stdout


def test_unknown_names_get_close_matches_and_the_valid_list():
    proc = bench_cli("run", "--seg", "unett", check=False)
    assert proc.returncode == 2
    assert "unknown segmenter 'unett'; did you mean 'unet'?" in proc.stderr
    assert "; valid: cdnn0, cdnn1, cdnn2, cdnn3, cdnn4, cdnn5, cdnn6, smp, unet" in proc.stderr
    proc = bench_cli("run", "--gen", "dcgna", check=False)
    assert "did you mean 'dcgan'" in proc.stderr
    proc = bench_cli("describe", "tanimot", check=False)
    assert proc.returncode == 2 and "'tanimoto'" in proc.stderr


def test_bad_option_values_name_the_option():
    proc = bench_cli("run", "--size", "big", check=False)
    assert proc.returncode == 2 and "--size" in proc.stderr and "HxW" in proc.stderr
    proc = bench_cli("run", "--profile", "fast", check=False)
    assert "--profile" in proc.stderr and "paper" in proc.stderr
    proc = bench_cli("run", "--gen", "none", "--schedule", "two-phase", check=False)
    assert "needs a generator" in proc.stderr
