"""Plugins: the host that loads them, the catalog of the components they register, and the contracts.

``host`` loads entry points and calls the hooks of ``hookspecs``; ``catalog`` holds the registered
components (``get``, ``names``); ``components`` defines what a component is (metadata types, the
``Generator`` and ``Phase`` contracts, the progress ``Reporter``); ``options`` checks and types ``NAME?key=value``
options against what a component declares; ``build`` calls factories with checks; ``contract`` holds the checks
``bench.testing`` offers plugin authors (``check_segmenter``, ...); ``pretrained`` finds and hashes the file
``--encoder-weights`` loads; ``describe``/``listing`` show them; ``index`` reads the published plugin index (``registry/``). May import:
``bench.errors``, ``bench.storage``, ``bench.data``.
"""
