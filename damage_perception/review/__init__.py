"""The web review station: a person judges kept REVIEW/DIVERT items and the labels flow back to the store.

``app.create_app`` serves server-rendered HTML (FastAPI + jinja2, no build step) over a station store;
``damage-perception review`` (``command.py``) runs it under uvicorn. Reads are open; every write needs the
station token. Nothing a request names reaches the file system: images come from the store, plots are drawn
in memory, templates are fixed files of this package.
"""
