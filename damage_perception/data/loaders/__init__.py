"""Loaders for other people's captures, each an ``EpisodeDataset`` of ``Episode``s.

- ``MVTecADDataset``: the MVTec AD folder layout (2D images, ground-truth masks).
- ``MVTec3DDataset``: the MVTec 3D-AD folder layout (RGB, ``xyz`` TIFF, ground-truth masks).
- ``RosbagDataset``: rosbag2 recordings (MCAP or sqlite3) of color, depth, camera_info and TF.

Our own format is read by ``damage_perception.data.synth_format.SynthDataset``.
"""
from damage_perception.data.loaders.mvtec import MVTec3DDataset, MVTecADDataset
from damage_perception.data.loaders.rosbag import RosbagDataset

__all__ = ["MVTecADDataset", "MVTec3DDataset", "RosbagDataset"]
