"""Generators: trained once and cached, sampled as grids, and measured for quality.

``cache`` is a generator's lifecycle (build, train, checksummed cache entry, reuse); ``quality`` and
``feature_metrics`` measure generated pairs against real ones (pixel statistics; FID, KID, precision,
recall, density, coverage); ``sample_grid`` draws a PNG of samples. May import: ``bench.errors``,
``bench.storage``, ``bench.data``, ``bench.plugin``, ``bench.scoring``.
"""
