"""Offline sub-commands of ``damage-perception`` (one module each, with ``add_arguments`` and ``run``;
listed in ``damage_perception/cli.py``): datasets, studies, training, calibration, evaluation, enrolment,
tuning, bag replay. No ROS graph: what talks to a running cell lives in ``damage_perception.cell``."""
