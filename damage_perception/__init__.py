"""damage_perception: multi-view RGB-D damage inspection of items held by a robot gripper.

Rooms, lowest first; a room imports only from rooms below it (``.importlinter`` checks it):

- ``core``: the algorithms and the inspection itself (``core.inspection.Inspector``), no ROS; numpy, open3d
  and torch in, dataclasses out. ``core.station`` holds the station's settings (the node's parameters).
- ``sim`` (the simulated cell's renderer and items) and ``store`` (galleries, inspection log): on core.
- ``data``: datasets, studies and bag replay: on sim, store and core.
- ``visualization`` (drawings, the HTML item report) and ``baselines`` (anomalib's PatchCore, for
  comparison only, never on the product path): on data and below.
- ``tools`` (offline sub-commands of ``damage-perception``) and ``review``: on everything above.
- ``ros``: ROS glue (camera input, message conversion, tf2 / message_filters stand-ins, services) on the
  ROS-free rooms; ``nodes``: the ROS nodes on ros; ``cell``: live-cell clients (demo, record, report) on
  nodes. ``cli``: the ``damage-perception`` command, dispatching to tools and cell by name.
"""

__version__ = "0.1.0"
