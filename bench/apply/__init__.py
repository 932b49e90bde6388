"""Applying finished runs: ensembles of runs, prediction on new images, export to TorchScript and ONNX, a reference
run judging generated data (``reference``).

May import every package below it, ``bench.train`` included (a run's model and checkpoints).
"""
