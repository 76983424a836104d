"""Live-cell clients: sub-commands that start or talk to running ROS nodes (``demo``, ``record``,
``report``) and the process helpers that start the package's nodes (``processes``)."""
