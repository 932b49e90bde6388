"""Training: one run of the protocol, and the engine that trains a segmenter through a schedule's phases.

``run`` is a run's steps (configure, open data, prepare, obtain generators, train, score, record); ``engine``
the ``Trainer`` (batches gathered on the device, the step, epochs, history); ``bank`` the synthetic pairs kept
on the device; ``graph_step`` the step captured as a CUDA graph, and ``capture_check`` what a graph could not
capture, checked on any device; ``checkpoints``, ``distributed`` (torchrun) and ``tracking`` (``--log``
loggers) serve a run. May import every package below it: ``bench.errors``, ``bench.storage``,
``bench.data``, ``bench.plugin``, ``bench.config``, ``bench.scoring``, ``bench.gan``, ``bench.results``.
"""
