"""Persistent state of a station: SKUs, reference-gallery versions, the inspection log and human labels."""
