"""Pictures of what the pipeline saw, without ROS: drawing on images (``drawing``), the per-item HTML report
(``item_report``) and its PNG rendering (``report_screenshot``). Used by the node's debug topics and tools."""
