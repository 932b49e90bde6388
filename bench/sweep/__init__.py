"""Sweeps: grids of runs on this machine or SLURM, their projected time, and the measurements behind it.

``runner`` reads grids and resolves each run once (its folder, identity and cell file); ``executors`` submits
them (local subprocesses K per GPU, or SLURM jobs); ``estimate`` counts what each run will do and prices
it from ``bench perf`` rows; ``perf`` measures those rows as a run does the work. May import every package
below it, ``bench.train`` included.
"""
