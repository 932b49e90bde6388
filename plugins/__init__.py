"""skinbench's built-in plugins (import name ``bench_plugins``).

Each module is registered through the ``bench`` entry-point group in ``pyproject.toml``, exactly as a
third-party plugin package registers its own, so ``BENCH_LOAD_PLUGINS`` and ``bench plugins`` treat
them alike. The core (``bench``) never imports this package.
"""
