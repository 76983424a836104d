"""The model file a tool works with: ``--model`` or the shipped one, loaded or refused with the reason."""
from __future__ import annotations

import sys
from pathlib import Path

from damage_perception.core.damage_model import DamageModel, ModelLoadError
from damage_perception.core.station import SHIPPED_MODEL_FILE


def open_model(path: Path | None, tool: str) -> DamageModel | None:
    """The model at ``path`` (None: the shipped model), or None after saying on stderr why it does not load."""
    try:
        return DamageModel.load(path or SHIPPED_MODEL_FILE)
    except ModelLoadError as error:
        print(f"{tool}: {error}", file=sys.stderr)
        return None
