"""Configuration: what a run is, from the profile table to the frozen ``RunConfig`` and its identity.

``profiles`` is the one table of protocol settings; ``options`` casts settings from the command line, grids and
``--set``; ``run`` resolves a ``RunOptions`` into a ``RunConfig`` and computes identities; ``file`` reads
``--config`` files and writes each run's ``config.toml``. May import: ``bench.errors``, ``bench.storage``,
``bench.data``, ``bench.plugin``.
"""
