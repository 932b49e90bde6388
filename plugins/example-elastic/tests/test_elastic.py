"""bench-elastic's own tests, written with the fixtures of ``bench.testing``: like the plugin, they import from
skinbench only ``bench.api`` and ``bench.testing``, the modules that stay where they are across releases."""

import torch

from bench.api import hookimpl
from bench.testing import check_generator
from bench_elastic.plugin import ElasticGenerator


def test_registered_through_the_entry_point_and_keeps_the_generator_contract(bench_host):
    component = bench_host.registry.get("generators", "elastic")
    assert component.distribution == "bench-elastic"
    # Built as a run builds it; fit on real pairs, sample(n, rng=) shape, range and device, draws only from rng
    # (the same pairs for rng seeded alike, others otherwise); raises bench.testing.ContractError naming what broke.
    check_generator("elastic")


def test_samples_are_deformed_real_pairs_with_binary_masks(bench_dataset, bench_real_pairs):
    real = bench_real_pairs("train", (48, 64))  # as the harness hands them to fit(): (N, 4, H, W) in [-1, 1]
    assert real.shape == (len(bench_dataset.split("train")), 4, 48, 64)
    gen = ElasticGenerator((48, 64), alpha=0.05)
    gen.fit(real, epochs=1, batch_size=4, rng=torch.Generator())
    out = gen.sample(8, rng=torch.Generator().manual_seed(0))
    assert out.shape == (8, 4, 48, 64)
    assert set(out[:, 3].unique().tolist()) <= {-1.0, 1.0}
    assert not any(torch.equal(o, r) for o in out for r in real)  # every sample is deformed
    still = ElasticGenerator((48, 64), alpha=0.0)
    still.fit(real, epochs=1, batch_size=4, rng=torch.Generator())
    same = still.sample(4, rng=torch.Generator().manual_seed(0))
    assert all(any(torch.allclose(s, r, atol=2e-3) for r in real) for s in same)  # alpha 0: identity (float16 data)


def test_a_two_phase_run_with_elastic(bench_run):
    record = bench_run(gen="elastic", seg="unet")
    assert record["status"] == "finished"
    assert record["generators"][0]["name"] == "elastic" and record["generators"][0]["cache"] == "off"
    assert 0.0 <= record["summary"]["jaccard"] <= 1.0


def test_registering_a_variant_for_one_test(bench_register, bench_host):
    class Variant:
        @staticmethod
        @hookimpl
        def bench_register_generators(register):
            register("elastic-strong", lambda size, **kw: ElasticGenerator(size, alpha=0.2))

    bench_register(Variant(), name="elastic-variant")
    assert "elastic-strong" in bench_host.registry.names("generators")


def test_a_run_with_elastic_pairs_captures_on_a_gpu(bench_capture_check):
    """The captured training step reading elastic's pairs from the synthetic bank (and mixed with real ones)
    does nothing a CUDA graph cannot capture; checked on the CPU."""
    for source in ("synthetic", "mixed"):
        assert bench_capture_check("cdnn1", gens=("elastic",), source=source)["graphed"]
