"""The simulated pick cell (ROS-free): packaged items of six kinds held in a parallel gripper, ray-cast RGB-D
views with ground truth (item and damage masks, poses).

``scene`` (camera, light, clutter), ``geometry`` (meshes), ``shapes`` (the item kinds' bodies), ``artwork``
(per-SKU textures), ``damage`` (crush, hole, tear, ... on a mesh), ``catalogue`` (SKUs, kinds, damage draws:
what an item is), ``items`` (building an item's model from its spec), ``variation`` (per-station draws),
``sensor`` (RGB-D noise model), ``renderer`` (``CellRenderer`` -> ``RenderedView``), ``preview`` (contact
sheets for eyeballing).
"""
