"""The model file a tool works with: ``--model`` or the shipped one, loaded or refused with the reason."""
from __future__ import annotations

import sys
from pathlib import Path

from damage_perception.core.damage_model import DamageModel, ModelLoadError, use_inference_threads
from damage_perception.core.station import SHIPPED_MODEL_FILE


def open_model(path: Path | None, tool: str) -> DamageModel | None:
    """The model at ``path`` (None: the shipped model), or None after saying on stderr why it does not load.
    Tools open a model to run it: torch is set to its inference threads (``use_inference_threads``)."""
    try:
        model = DamageModel.load(path or SHIPPED_MODEL_FILE)
    except ModelLoadError as error:
        print(f"{tool}: {error}", file=sys.stderr)
        return None
    use_inference_threads()
    return model
