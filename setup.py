"""ament_python package setup: installs the Python package, launch/config/urdf/worlds files and console scripts."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "damage_perception"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    package_data={PACKAGE: ["models/*.pt", "review/templates/*.html"]},   # the shipped model; the review pages
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.xml")),
        (f"share/{PACKAGE}/config/cameras", glob("config/cameras/*.yaml")),
        (f"share/{PACKAGE}/urdf", glob("urdf/*")),
        (f"share/{PACKAGE}/worlds", glob("worlds/*.sdf")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="damage_perception maintainers",
    maintainer_email="maintainers@example.com",
    description="Multi-view RGB-D damage inspection for robot pick stations (ROS 2).",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            f"damage-perception = {PACKAGE}.cli:main",
            f"damage_perception_node = {PACKAGE}.nodes.perception_node:main",
            f"sim_cell = {PACKAGE}.nodes.sim_cell_node:main",
            f"planner_client = {PACKAGE}.nodes.planner_client:main",
        ],
    },
)
