"""The store's former module name: ``InspectionStore`` and its records now live in ``store.database``, which
opens a SQLite file (as before) or a PostgreSQL URL. Kept so existing imports keep working."""
from damage_perception.store.database import (
                                              GalleryVersion,
                                              InspectionRecord,
                                              InspectionStore,
                                              StoredView,
                                              StoreError,
                                              StoreUnavailable,
)

__all__ = [
                                              "GalleryVersion",
                                              "InspectionRecord",
                                              "InspectionStore",
                                              "StoreError",
                                              "StoreUnavailable",
                                              "StoredView",
]
