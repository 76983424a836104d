"""Datasets: the multi-view RGB-D episode type, our on-disk format, and loaders for other people's captures."""
