"""Like with like: every table, histogram, curve and verdict counts one record per run, whole fold sets only,
records whose scores agree with themselves, and a baseline of the same settings (or says it has none)."""

import shutil

from conftest import bench_main
from test_stats import base_scores, record, write


def board(tmp_path, records, command="leaderboard"):
    proc = bench_main(command, "--runs", str(write(tmp_path / "runs", records)))
    return proc.stdout, proc.stderr


def test_a_copied_run_counts_once_everywhere(tmp_path):
    records = [record(None, seed, base_scores(seed).tolist()) for seed in range(2)]
    folder = write(tmp_path / "runs", records)
    shutil.copytree(folder / "r0", folder / "r9-copy")  # a runs folder copied into another
    proc = bench_main("leaderboard", "--runs", str(folder))
    assert "(n=2)" in proc.stdout and "(n=3)" not in proc.stdout
    assert "r9-copy/results.json: skipped, the same run" in proc.stderr and "seed 0" in proc.stderr


def test_an_incomplete_cross_validation_is_named_not_counted(tmp_path):
    scores = base_scores(0).tolist()
    folds = [record(None, 0, scores, fold=(k, 3)) for k in (1, 2)]  # fold 3 of 3 never ran
    whole = [record(None, 1, scores, fold=(k, 3)) for k in (1, 2, 3)]
    out, err = board(tmp_path, folds + whole)
    assert "(n=1)" in out and "incomplete cross-validation" in err and "seed 0" in err and "--fold K/N" in err


def test_a_record_whose_summary_disagrees_with_its_per_image_scores_is_refused(tmp_path):
    good, edited = (record(None, seed, base_scores(seed).tolist()) for seed in range(2))
    edited["summary"]["jaccard"] += 0.05  # scalability reads the summary, tables the per-image scores
    out, err = board(tmp_path, [good, edited])
    assert "(n=1)" in out and "summary and per-image scores disagree (summary.jaccard" in err
    miscounted = record(None, 2, base_scores(2).tolist())
    miscounted["summary"]["n_images"] = 7
    _, err = board(tmp_path / "n", [good, miscounted])
    assert "n_images 7, 60 per-image rows" in err
    below = record(None, 2, base_scores(2).tolist())
    below["summary"]["below_0.6"] = 0  # the Fig. 7 table reads these counts
    _, err = board(tmp_path / "below", [good, below])
    assert "summary.below_0.6 0" in err
    binned = record(None, 2, base_scores(2).tolist())
    binned["histogram"]["counts"] = [0] * 9 + [60]
    _, err = board(tmp_path / "hist", [good, binned])
    assert "histogram and per-image scores disagree" in err
    lacking = record(None, 2, base_scores(2).tolist())
    proc = bench_main("leaderboard", "--runs", str(write(tmp_path / "metric" / "runs", [good, lacking])),
                      "--metric", "sensitivity")
    assert "its per-image scores have no sensitivity" in proc.stderr  # never a KeyError


def stray_baseline(tmp_path):
    """U-Net rows: DCGAN at the row's settings, real only only at two other epoch counts (a stray run)."""
    records = []
    for seed in range(3):
        base = base_scores(seed)
        gan = record("dcgan", seed, (base + 0.02).tolist())
        gan["run"].update(synthetic_epochs=4, finetune_epochs=10, schedule_uses=["synthetic_epochs",
                                                                                 "finetune_epochs"])
        records.append(gan)
        for epochs in (12, 1):
            if epochs == 1 and seed:
                continue
            real = record(None, seed, base.tolist())
            real["run"].update(epochs=epochs, schedule_uses=["epochs"])
            records.append(real)
    return records


def test_a_baseline_of_other_settings_is_never_the_comparison_and_the_ambiguity_is_named(tmp_path):
    records = stray_baseline(tmp_path)
    out, _ = board(tmp_path / "board", records)
    assert "| unet (epochs 12) | real only |" in out and "| unet (epochs 1) | real only |" in out
    line = next(x for x in out.splitlines() if x.startswith("| unet | dcgan | – (ambiguous"))
    assert "`unet (epochs 1)`" in line and "`unet (epochs 12)`" in line and "--baseline" in line
    claims, _ = board(tmp_path / "claims", records, "claims")
    verdict = next(x for x in claims.splitlines() if x.startswith("| dcgan two-phase beats real only for unet |"))
    assert "not run (ambiguous: unet real only ran with different settings" in verdict
    assert "unet (epochs 1) · real only" in verdict and "unet (epochs 12) · real only" in verdict


def test_claims_say_ambiguous_when_a_row_or_a_strategy_ran_at_two_settings(tmp_path):
    """Rows that differ in width (every row labelled) and a GAN at two GAN settings: never silently no claims."""
    records = []
    for seed in range(2):
        base = base_scores(seed)
        records.append(record("dcgan", seed, (base + 0.02).tolist()))
        real = record(None, seed, base.tolist())
        real["run"]["width"] = 0.5
        records.append(real)
        gan = record("dcgan", seed, (base + 0.02).tolist())
        gan["run"]["width"] = 0.25
        records.append(gan)
    claims, _ = board(tmp_path / "width", records, "claims")
    verdict = next(x for x in claims.splitlines() if x.startswith("| dcgan two-phase beats real only for unet |"))
    assert "not run (ambiguous" in verdict and "width" in verdict
    records = []
    for seed in range(2):
        base = base_scores(seed)
        records.append(record(None, seed, base.tolist()))
        for epochs in (1, 2):
            gan = record("dcgan", seed, (base + 0.02).tolist())
            gan["run"]["gan_epochs"] = epochs
            records.append(gan)
    claims, _ = board(tmp_path / "gan", records, "claims")
    verdict = next(x for x in claims.splitlines() if x.startswith("| dcgan two-phase beats real only for unet |"))
    assert "ambiguous: unet dcgan ran with different settings" in verdict and "gan_epochs 1" in verdict


def test_a_non_finite_score_is_refused_not_read_as_an_unresolved_comparison(tmp_path):
    good, broken = (record(None, seed, base_scores(seed).tolist()) for seed in range(2))
    broken["per_image"][3]["jaccard"] = float("nan")
    out, err = board(tmp_path, [good, broken])
    assert "(n=1)" in out and "non-finite score (per_image img3: jaccard is nan)" in err


def test_columns_of_one_row_that_differ_in_their_schedule_are_labelled(tmp_path):
    """Two GAN columns of a row compared with the same baseline at other synthetic epochs: each column says which."""
    records = []
    for seed in range(2):
        base = base_scores(seed)
        records.append(record(None, seed, base.tolist()))
        for gen, synthetic in (("dcgan", 4), ("lapgan", 8)):
            rec = record(gen, seed, (base + 0.01).tolist())
            rec["run"].update(synthetic_epochs=synthetic, schedule_uses=["synthetic_epochs"])
            records.append(rec)
    out, _ = board(tmp_path, records)
    assert "| segmenter | real only | dcgan (synthetic_epochs 4) | lapgan (synthetic_epochs 8) |" in out


def test_runs_from_two_environments_are_two_cells_unless_pooled_and_their_difference_says_so(tmp_path):
    """A seed rerun on a GPU in bf16 moves scores about as much as a new seed: never pooled without being asked."""
    records = []
    for seed in range(3):
        base = base_scores(seed)
        cpu = record(None, seed, base.tolist())
        cpu["env"] = {"device": "cpu", "torch": "2.14.1+cu130"}
        gpu = record(None, seed, (base + 0.004).tolist())
        gpu["env"] = {"device": "cuda:0", "torch": "2.11.0+cu130"}
        gpu["run"]["step"] = {"amp": "bf16"}  # a schema-1 record: runtime facts in run
        gan = record("dcgan", seed, (base + 0.02).tolist())
        gan["env"], gan["run"]["step"] = gpu["env"], gpu["run"]["step"]
        records += [cpu, gpu, gan]
    out, _ = board(tmp_path / "split", records)
    assert "Runs from 2 environments (cpu fp32, torch 2.14; cuda bf16, torch 2.11)" in out
    # the table's usual environment (cuda: 6 of 9 runs) keeps the plain label; the other one is named
    assert "| segmenter | real only | real only (environment cpu fp32, torch 2.14) | dcgan |" in out
    line = next(x for x in out.splitlines() if x.startswith("| unet | dcgan |"))
    assert "+0.0160" in line and "3 paired" in line  # against the real only of its own environment (+0.02 - 0.004)
    pooled = bench_main("leaderboard", "--runs", str(tmp_path / "split" / "runs"), "--pool-environments").stdout
    assert "Environments pooled (`--pool-environments`)" in pooled and "| segmenter | real only | dcgan |" in pooled
    line = next(x for x in pooled.splitlines() if x.startswith("| unet | dcgan |"))
    assert "3 paired" in line  # pooled: a seed's two runs average into one unit
    single = [r for r in records if r["env"]["device"] == "cpu" or r["run"]["gen"]]
    out, _ = board(tmp_path / "cross", single)
    line = next(x for x in out.splitlines() if x.startswith("| unet | dcgan (ran on cuda bf16, torch 2.11; `real only` on cpu"))
    assert "3 paired" in line
