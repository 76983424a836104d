"""ROS-free algorithms and the inspection: camera geometry, transforms and the TF tree, segmentation, damage
scoring and fusion, the damage model, galleries, view policies, the verdict, and ``inspection.Inspector``
that puts them together for one item (``station``: its settings)."""
