"""Data: dataset specs, validated image/mask pairs, prepared (cached) splits, channel sets and augmentation.

``spec`` parses ``--data NAME:ARG?k=v`` and sizes; ``source``, ``layout``, ``images`` and ``duplicates`` find and
validate pairs; ``prepare`` decodes and resizes a split once (cached, checksummed); ``channels`` expands RGB
into the paper's channel sets and ``augment`` transforms batches on the device; ``download`` and ``archive``
fetch and check official archives. May import: ``bench.errors``, ``bench.storage``.
"""
