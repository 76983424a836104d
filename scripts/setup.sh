#!/usr/bin/env bash
# Idempotent setup for a fresh Debian 12 machine: system packages, the venv (torch CPU first), the ROS 2
# Kilted wheels, our interface packages built with cmake into the venv prefix, and this package (editable).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${VENV:-$ROOT/.venv}
PY=${PYTHON:-python3}
STAMP=$VENV/.setup-stamp
log() { printf '[setup] %s\n' "$*"; }
pip_install() {  # quiet unless it fails
  mkdir -p build
  "$VENV/bin/pip" install -q --disable-pip-version-check "$@" >>build/pip.log 2>&1 \
    || { grep -v "^WARNING: Location" build/pip.log | tail -n 30; log "pip install $* failed"; exit 1; }
}

# The inputs whose change makes setup run again.
inputs_hash() {
  cat scripts/setup.sh setup.py package.xml requirements*.txt \
    $(find interfaces -type f | sort) 2>/dev/null | sha256sum | cut -d' ' -f1
}

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(inputs_hash)" ]; then
  exit 0
fi

# 1. Debian packages: open3d needs libusb at import time; cmake/g++ build the interfaces; PostgreSQL 15 is a
#    fleet's shared store (tests start throw-away servers of it; the embedded SQLite default needs none);
#    chromium runs the review station's browser tests (playwright drives /usr/bin/chromium, downloads no browser).
missing=""
for pkg in libusb-1.0-0 cmake g++ make postgresql-15 chromium; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
  log "installing Debian packages:$missing"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $missing >/dev/null
fi

# 2. The venv. torch first and pinned: anything else asking for torch would pull a multi-GB CUDA build.
[ -x "$VENV/bin/python" ] || { log "creating $VENV"; "$PY" -m venv "$VENV"; }
log "installing Python packages (torch CPU, open3d, ROS 2 Kilted wheels)"
pip_install torch==2.13.0
pip_install -r requirements.txt

# 3. The wheels' cmake exports name two directories of their build machine: point them at ours.
py_include=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
np_include=$("$VENV/bin/python" -c 'import numpy; print(numpy.get_include())')
link_if_needed() {  # link_if_needed TARGET LINK
  local target=$1 link=$2
  [ "$(readlink -f "$link" 2>/dev/null)" = "$(readlink -f "$target")" ] && return 0
  if [ -e "$link" ] && [ ! -L "$link" ]; then log "$link exists and is not a link; leaving it"; return 0; fi
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO mkdir -p "$(dirname "$link")"
  $SUDO ln -sfn "$target" "$link"
}
link_if_needed "$py_include" /opt/python/cp311-cp311/include/python3.11
link_if_needed "$np_include" /opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include

# 4. Interface packages, installed into the venv prefix so Python finds them on its own path.
build_interfaces() {  # build_interfaces PACKAGE_DIR
  local pkg=$1 name
  name=$(basename "$pkg")
  log "building interfaces: $name"
  CMAKE_PREFIX_PATH=$VENV AMENT_PREFIX_PATH=$VENV PATH=$VENV/bin:$PATH \
    cmake -S "$pkg" -B "build/$name" -DCMAKE_INSTALL_PREFIX="$VENV" -DBUILD_TESTING=OFF \
      -DPython3_EXECUTABLE="$VENV/bin/python" -DCMAKE_BUILD_TYPE=Release >"build/$name.log" 2>&1 \
    && PATH=$VENV/bin:$PATH make -C "build/$name" -j"$(nproc)" install >>"build/$name.log" 2>&1 \
    || { tail -n 40 "build/$name.log"; log "interface build failed: see build/$name.log"; exit 1; }
}
mkdir -p build
# tf2_msgs comes with a full ROS install; the PyPI wheels lack it, so build the stand-in only then.
if ! "$VENV/bin/python" -c 'import tf2_msgs.msg' 2>/dev/null || [ -f "$VENV/share/tf2_msgs/.damage_perception_standin" ]; then
  build_interfaces interfaces/tf2_msgs
  touch "$VENV/share/tf2_msgs/.damage_perception_standin"
fi
build_interfaces interfaces/damage_perception_interfaces

# 5. This package, editable, with its console scripts.
pip_install --no-deps -e .
"$VENV/bin/python" -c 'import rclpy, open3d, torch, damage_perception_interfaces.action, tf2_msgs.msg' \
  || { log "import check failed"; exit 1; }
inputs_hash >"$STAMP"
log "ready: $VENV"
