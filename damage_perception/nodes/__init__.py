"""The ROS nodes: the perception node (``perception_node``), the simulated cell (``sim_cell_node``), the
planner client that drives inspections, and a camera stress publisher."""
