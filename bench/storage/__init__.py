"""Storage: atomic writes, checksums of cached entries, cache locations and file locks.

The bottom layer every other package writes through: nothing here knows what a run, a record or a component
is. ``atomic`` (write-then-rename), ``integrity`` (digests, verified cache entries), ``paths`` (the cache
root), ``locks`` (one process per run folder or cache entry). May import: ``bench.errors``.
"""
