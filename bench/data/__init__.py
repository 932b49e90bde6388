"""Data: dataset specs, validated image/mask pairs, prepared (cached) splits and channel sets."""
