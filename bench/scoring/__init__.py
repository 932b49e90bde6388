"""Scoring: predictions at the model's size, upsampled to each image's own, thresholded and scored.

``evaluate`` predicts and scores a split (and a point of the training curve); ``metrics`` holds the per-image
metrics (Jaccard as the ISIC 2017 scorer computes it); ``postprocess`` the ensemble's dual threshold. May
import: ``bench.data``.
"""
