"""The ``bench`` command line: one module per command group (``main`` holds the group, ``run`` and the
single commands; ``data``, ``gan``, ``sweep`` their groups; ``progress`` the rich progress display). Commands
parse options and print; they may import any package.
"""
