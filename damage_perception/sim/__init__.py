"""Simulated pick cell (ROS-free): cartons in a parallel gripper, ray-cast RGB-D views with ground truth.

Modules: ``scene`` (frames, clutter, lights), ``geometry`` (meshes), ``artwork`` (per-SKU textures),
``damage`` (crush / hole / tear), ``items`` (catalogue, item models), ``sensor`` (RGB-D noise model),
``renderer`` (``CellRenderer`` -> ``RenderedView``), ``preview`` (contact sheet for eyeballing).
"""
