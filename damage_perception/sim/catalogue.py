"""The simulated cell's catalogue: what an item is (kind, SKU, size, printed artwork, damage), drawn seeded.

Kinds (``ItemSpec.kind``, fixed by the SKU's prefix): ``carton`` (SKU-*), ``book`` (BK-*: thin slab, printed cover,
page-block edges), ``mailer`` (ML-*: flat wrinkled pillow), ``bottle`` (BT-*: bottles and jars, held upside
down, label band, cap), ``bag`` (BG-*: coffee / powder pouch, round pillow), ``blister`` (BL-*: backing card with
2-4 clear domes each holding a part). ``ItemSpec.size`` is the base box (bounding box). Same SKU, same geometry
and artwork. The item's model is built from its spec by ``sim.items.build_item``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from damage_perception.core.damage_types import DAMAGE_LABELS
from damage_perception.sim.artwork import PRINTED_DAMAGE_ARTS, sku_rng

ALL_KINDS = ("carton", "book", "mailer", "bottle", "bag", "blister")
KIND_PREFIX = {"SKU": "carton", "BK": "book", "ML": "mailer", "BT": "bottle", "BG": "bag", "BL": "blister"}
KIND_DAMAGES = {
    "carton": ("crush", "hole", "tear", "deconstruction", "spill"),
    "book": ("crush", "tear", "spill"),
    "mailer": ("hole", "spill"),
    "bottle": ("crush", "spill"),
    "bag": ("crush", "hole", "spill"),
    "blister": ("crush", "tear", "spill", "missing_part"),
}
SKU_POOL = tuple(f"SKU-{code}" for code in (1041, 1187, 2203, 2650, 3012, 3379, 4128, 4471, 5206, 5893,
                                            6310, 7754))
KIND_POOLS = {
    "carton": SKU_POOL,
    "book": ("BK-1203", "BK-2210", "BK-3307", "BK-4519", "BK-5602", "BK-6618"),
    "mailer": ("ML-1101", "ML-2290", "ML-3345", "ML-4412", "ML-5531", "ML-6650"),
    "bottle": ("BT-1150", "BT-2261", "BT-3372", "BT-4483", "BT-5594", "BT-6605", "BT-7716", "BT-8827"),
    "bag": ("BG-1120", "BG-2231", "BG-3342", "BG-4453", "BG-5564", "BG-6675"),
    "blister": ("BL-1130", "BL-2241", "BL-3352", "BL-4463", "BL-5574", "BL-6685"),
}
PRINTED_ART_RATE = 0.25  # share of SKUs (of any kind) with damage-like printed artwork
VERSION_CHANGE_RATE = 0.3  # share of a catalogue's SKUs that change packaging partway through
BLISTER_CARD = 0.0015  # card thickness


def sku_kind(sku: str) -> str:
    """Kind of a SKU from its prefix (unknown prefixes are cartons)."""
    return KIND_PREFIX.get(sku.split("-")[0], "carton")


def sku_printed_art(sku: str) -> str:
    """The damage-like printed artwork a SKU carries ('' for none); deterministic."""
    rng = sku_rng(sku, "printed-art")
    return str(rng.choice(PRINTED_DAMAGE_ARTS)) if rng.random() < PRINTED_ART_RATE else ""




@dataclass(frozen=True)
class ItemSpec:
    """One catalogue entry: which SKU, its size (base box: x, y = gripping axis, z = approach; metres), its damage,
    kind (from the SKU), packaging version and damage-like printed artwork (texture only, not damage)."""

    item_id: str
    sku: str
    size: tuple[float, float, float]
    damage: str = "pristine"   # pristine | one of DAMAGE_TYPES allowed for the kind (KIND_DAMAGES)
    severity: float = 0.0      # 0 (pristine) .. 1 (obvious)
    seed: int = 0
    kind: str = "carton"
    packaging_version: int = 0
    printed_damage_art: str = ""  # "" or one of artwork.PRINTED_DAMAGE_ARTS

    def __post_init__(self) -> None:
        if self.kind not in ALL_KINDS:
            raise ValueError(f"unknown item kind '{self.kind}'")
        if self.damage != "pristine" and self.damage not in KIND_DAMAGES[self.kind]:
            raise ValueError(f"unknown damage '{self.damage}' for a {self.kind}")
        if not 0.0 <= self.severity <= 1.0:
            raise ValueError(f"severity must be in [0, 1], got {self.severity}")
        if self.printed_damage_art and self.printed_damage_art not in PRINTED_DAMAGE_ARTS:
            raise ValueError(f"unknown printed damage art '{self.printed_damage_art}'")

    @property
    def damage_label(self) -> int:
        """Index of the damage in DAMAGE_LABELS (0 for pristine)."""
        return 0 if self.damage == "pristine" else DAMAGE_LABELS.index(self.damage)


def _mm(*values: float) -> tuple[float, ...]:
    return tuple(round(float(v), 3) for v in values)


def sku_size(sku: str) -> tuple[float, float, float]:
    """Base-box size of a SKU (deterministic, rounded to mm). Cartons: x, z in 6..25 cm, y (gripped) in 6..15 cm."""
    rng = sku_rng(sku, "size")
    kind = sku_kind(sku)
    if kind == "carton":
        return _mm(rng.uniform(0.06, 0.25), rng.uniform(0.06, 0.15), rng.uniform(0.06, 0.25))
    if kind == "book":
        return _mm(rng.uniform(0.12, 0.20), rng.uniform(0.012, 0.045), rng.uniform(0.17, 0.24))
    if kind == "mailer":
        return _mm(rng.uniform(0.15, 0.25), rng.uniform(0.02, 0.045), rng.uniform(0.18, 0.25))
    if kind == "bag":
        return _mm(rng.uniform(0.10, 0.16), rng.uniform(0.05, 0.09), rng.uniform(0.15, 0.23))
    if kind == "bottle":
        jar = rng.random() < 0.35
        radius = rng.uniform(0.04, 0.06) if jar else rng.uniform(0.028, 0.045)
        height = rng.uniform(0.08, 0.13) if jar else rng.uniform(0.14, 0.24)
        return _mm(2 * radius, 2 * radius, height)
    dome = rng.uniform(0.012, 0.02)  # blister: card width, card + domes on both sides of the grip plane, height
    return _mm(rng.uniform(0.09, 0.14), BLISTER_CARD + 2 * dome, rng.uniform(0.15, 0.22))


def sku_spec(sku: str, damage: str = "pristine", severity: float = 0.0, seed: int = 0, item_id: str = "",
             packaging_version: int = 0, printed_damage_art: str | None = None) -> ItemSpec:
    """An ItemSpec of ``sku`` with its kind, size and (unless given) printed artwork."""
    art = sku_printed_art(sku) if printed_damage_art is None else printed_damage_art
    return ItemSpec(item_id or f"{sku}-{damage}-{seed}", sku, sku_size(sku), damage,
                    0.0 if damage == "pristine" else severity, seed, sku_kind(sku), packaging_version, art)


def make_catalogue(n_items: int, damage_rate: float, seed: int, sku_pool: tuple[str, ...] | None = None,
                   kinds: tuple[str, ...] = ALL_KINDS) -> list[ItemSpec]:
    """A seeded list of items of mixed kinds: a kind uniformly, a SKU of it; SKUs repeat; damage types uniform
    among those of the kind, severity uniform in 0.3..1. ``sku_pool`` overrides the kinds' pools. Some SKUs
    (VERSION_CHANGE_RATE) switch to packaging version 1 at a seeded point in the catalogue."""
    rng = np.random.default_rng(seed)
    pools = [sku_pool] if sku_pool is not None else [KIND_POOLS[k] for k in kinds]
    drawn = []
    for _index in range(n_items):
        pool = pools[int(rng.integers(len(pools)))]
        sku = str(pool[int(rng.integers(len(pool)))])
        kind = sku_kind(sku)
        damaged = bool(rng.random() < damage_rate)
        allowed = KIND_DAMAGES[kind]
        damage = str(allowed[int(rng.integers(len(allowed)))]) if damaged else "pristine"
        severity = round(float(rng.uniform(0.3, 1.0)), 3) if damaged else 0.0
        drawn.append((sku, damage, severity, int(rng.integers(2**31 - 1))))
    versions = np.random.default_rng([seed, 1])
    change_at = {}
    for sku in sorted({d[0] for d in drawn}):
        change = versions.random() < VERSION_CHANGE_RATE
        at = int(versions.integers(max(1, n_items // 3), max(2, 2 * n_items // 3 + 1)))
        change_at[sku] = at if change else n_items
    return [sku_spec(sku, damage, severity, item_seed, f"item-{seed}-{index:03d}",
                     packaging_version=int(index >= change_at[sku]))
            for index, (sku, damage, severity, item_seed) in enumerate(drawn)]


