"""Copy a station's store into another (SQLite -> PostgreSQL: a station joins a fleet), safely re-runnable.

Verdicts keep their station (``station`` names those logged before stations were recorded) and arrive in
the source's order; each remembers where it came from (the source's uuid and id), so copying again, or
forwarding from a station's outbox later, adds only what is new. Labels follow, linked to the copied
verdicts. A SKU's gallery versions are copied with their numbers when the destination has none of that SKU;
where it has (the fleet enrolled it already), the fleet's versions win and the SKU is reported as skipped.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from damage_perception.store.database import InspectionStore

BATCH = 500


@dataclass
class CopyReport:
    """What one copy added."""

    verdicts: int = 0
    labels: int = 0
    skus_copied: list[str] = field(default_factory=list)
    skus_skipped: list[str] = field(default_factory=list)   # the destination has its own versions


def copy_store(source: InspectionStore, destination: InspectionStore, station: str = "") -> CopyReport:
    """Copy ``source`` into ``destination`` (see the module docstring)."""
    report = CopyReport()
    done = 0
    while batch := source.inspections_after(done, BATCH):
        for record in batch:
            record.station_id = record.station_id or station
        report.verdicts += destination.forward_inspections(batch, source.uuid)
        done = batch[-1].id
    for label_id, link, item, damaged, damage_type, labeller, created in source.labels():
        report.labels += destination.import_label(source.uuid, label_id, link, item, damaged, damage_type,
                                                  labeller, created)
    for sku in source.enrolled_skus():
        versions = [source.gallery(sku, version) for version, _, _ in source.gallery_versions(sku)]
        copied = destination.import_versions(sku, versions)
        (report.skus_copied if copied else report.skus_skipped).append(sku)
    return report

