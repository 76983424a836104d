"""The damage vocabulary, once: every damage type the package knows, in one order.

``DAMAGE_TYPES`` orders the verdict's type scores and the classifier's damage classes; ``DAMAGE_LABELS``
gives the values of damage label maps (a view's ``damage_mask``): 0 is undamaged surface or background,
``DAMAGE_LABELS.index(type)`` a damaged pixel of that type.
"""
from __future__ import annotations

DAMAGE_TYPES = ("crush", "tear", "hole", "deconstruction", "spill", "missing_part")
DAMAGE_LABELS = ("none", *DAMAGE_TYPES)
