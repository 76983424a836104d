"""The store's schema as numbered migrations; `PRAGMA user_version` records how many have run.

Portable SQL on purpose (INTEGER/REAL/TEXT/BLOB, explicit foreign keys, no SQLite-only column types) so the
same tables can live in PostgreSQL for a fleet of stations.
"""

MIGRATIONS: tuple[str, ...] = (
    # 1: SKUs, gallery versions with their reference views, the inspection log, human labels.
    """
    CREATE TABLE skus (
        sku TEXT PRIMARY KEY,
        description TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL
    );
    CREATE TABLE gallery_versions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        sku TEXT NOT NULL REFERENCES skus(sku),
        version INTEGER NOT NULL,
        note TEXT NOT NULL DEFAULT '',
        num_views INTEGER NOT NULL,
        active INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        UNIQUE (sku, version)
    );
    CREATE TABLE reference_views (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        gallery_id INTEGER NOT NULL REFERENCES gallery_versions(id),
        wrist_angle REAL,
        feature_dim INTEGER NOT NULL,
        features BLOB NOT NULL,
        source TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX reference_views_gallery ON reference_views (gallery_id);
    CREATE TABLE inspections (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        item_id TEXT NOT NULL,
        sku TEXT NOT NULL,
        decision INTEGER NOT NULL,
        fused_score REAL,
        threshold REAL,
        model_version TEXT NOT NULL DEFAULT '',
        gallery_version TEXT NOT NULL DEFAULT '',
        reason TEXT NOT NULL DEFAULT '',
        view_scores TEXT NOT NULL DEFAULT '[]',
        created_at REAL NOT NULL
    );
    CREATE INDEX inspections_sku_time ON inspections (sku, created_at);
    CREATE TABLE labels (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        inspection_id INTEGER REFERENCES inspections(id),
        item_id TEXT NOT NULL,
        damaged INTEGER NOT NULL,
        damage_type TEXT NOT NULL DEFAULT '',
        labeller TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL
    );
    CREATE INDEX labels_item ON labels (item_id);
    """,
    # 2: what a PatchCore gallery needs beside its views' patch features (rows of feature_dim floats):
    # the gallery's own leave-one-out anomaly score and the SKU's reference shape (float32 x, y, z triples).
    """
    ALTER TABLE gallery_versions ADD COLUMN nominal_score REAL;
    ALTER TABLE gallery_versions ADD COLUMN shape_points BLOB;
    """,
    # 3: what a person needs to judge an item at the review station (store/item_media.py): per kept
    # inspection its fused per-type scores and why it was kept; per view its colour crop and heat-map overlay
    # (JPEG), item mask and raw heat map (8-bit PNG) and scores (JSON), bounded by a retention setting; the
    # enrolment crop of each reference view; and the items a person could not judge ("can't tell": no label,
    # out of the queue).
    """
    CREATE TABLE kept_items (
        inspection_id INTEGER PRIMARY KEY REFERENCES inspections(id),
        kept_because TEXT NOT NULL,
        type_scores TEXT NOT NULL DEFAULT '{}',
        num_bytes INTEGER NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX kept_items_time ON kept_items (created_at);
    CREATE TABLE kept_views (
        inspection_id INTEGER NOT NULL REFERENCES kept_items(inspection_id),
        view_index INTEGER NOT NULL,
        wrist_angle REAL,
        found INTEGER NOT NULL,
        reason TEXT NOT NULL DEFAULT '',
        scores TEXT NOT NULL DEFAULT '{}',
        crop BLOB,
        mask BLOB,
        heatmap BLOB,
        overlay BLOB,
        PRIMARY KEY (inspection_id, view_index)
    );
    CREATE TABLE reference_media (
        gallery_id INTEGER NOT NULL REFERENCES gallery_versions(id),
        view_index INTEGER NOT NULL,
        wrist_angle REAL,
        crop BLOB NOT NULL,
        PRIMARY KEY (gallery_id, view_index)
    );
    CREATE TABLE review_skips (
        inspection_id INTEGER PRIMARY KEY REFERENCES inspections(id),
        labeller TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL
    );
    """,
)
