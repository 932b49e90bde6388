"""Results: the record of a run, and what is read off records (tables, comparisons, verdicts, figures).

``records`` builds and locates records; ``reader`` reads them back (the one reader) and normalises older ones;
``grouping`` decides tables, rows and columns; ``stats`` compares leaderboard cells (seed x image
intervals); ``leaderboard``, ``claims`` (with the paper's claims in ``paper``), ``scalability`` and ``plots``
render them; ``export`` gives records and board cells as data. May import: ``bench.errors``, ``bench.storage``,
``bench.data``, ``bench.plugin``, ``bench.config``, ``bench.scoring``, ``bench.gan``.
"""
