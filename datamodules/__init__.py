"""Datamodules: the embedded synthetic task sequences (and, later, folder datasets)."""
