"""bench-elastic: elastically deformed real pairs as a skinbench generator."""

__version__ = "0.1.0"
