"""The review station's FastAPI application over one station store (see the package docstring).

Pages: ``/queue`` (kept items waiting for a label), ``/item/{id}`` (views, heat maps, scores, reference views,
label buttons), ``/labels`` (+ ``.csv`` / ``.json`` export), ``/sku/{sku}`` (gallery versions, rollback),
``/drift`` (the ``drift`` tool's plot). Writes (``POST``) need the station token, sent as the cookie that
``/login`` sets or as the ``X-Station-Token`` header; labels go through ``InspectionStore.add_label``, the
store function behind ``~/report_label``.
"""
from __future__ import annotations

import csv
import hmac
import io
import re
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

from fastapi import FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from damage_perception.core.damage_types import DAMAGE_TYPES
from damage_perception.core.verdict import Decision
from damage_perception.store import item_media
from damage_perception.store.database import InspectionStore, StoreError
from damage_perception.visualization.drift_plots import plot, weekly_summary

TOKEN_COOKIE, LABELLER_COOKIE, TOKEN_HEADER = "station_token", "labeller", "x-station-token"
JUDGEMENTS = ("damaged", "not_damaged", "cant_tell")
SKU_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
LABELLER_PATTERN = re.compile(r"^[\w .@-]{0,64}$")
IMAGE_TYPES = {"crop": "image/jpeg", "overlay": "image/jpeg", "mask": "image/png", "heatmap": "image/png"}
TEMPLATES = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))
TEMPLATES.env.filters["when"] = lambda t: datetime.fromtimestamp(float(t)).strftime("%Y-%m-%d %H:%M:%S")


def _decision_names() -> list[str]:
    return [d.name for d in Decision]


def create_app(store: InspectionStore, token: str) -> FastAPI:
    """The application over ``store``; ``token`` ('' = none: every write is refused)."""
    app = FastAPI(title="damage_perception review station", docs_url=None, redoc_url=None, openapi_url=None)

    def page(request: Request, name: str, **context) -> HTMLResponse:
        context.setdefault("authorised", _authorised(request))
        context.setdefault("labeller", request.cookies.get(LABELLER_COOKIE, ""))
        return TEMPLATES.TemplateResponse(request, name, context)

    def _authorised(request: Request) -> bool:
        given = request.headers.get(TOKEN_HEADER) or request.cookies.get(TOKEN_COOKIE) or ""
        return bool(token) and hmac.compare_digest(given.encode(), token.encode())

    def require_token(request: Request) -> None:
        if not token:
            raise HTTPException(403, "this review station has no station token configured: it is read-only")
        if not _authorised(request):
            raise HTTPException(403, "a station token is required to write (log in at /login)")

    def kept_or_404(inspection_id: int) -> item_media.KeptItem:
        kept = item_media.kept_item(store, inspection_id)
        if kept is None:
            raise HTTPException(404, f"no kept item with inspection id {inspection_id}")
        return kept

    def sku_or_404(sku: str) -> list[tuple[int, bool, int]]:
        versions = store.gallery_versions(sku) if SKU_PATTERN.match(sku) else []
        if not versions:
            raise HTTPException(404, f"unknown SKU {sku!r}: no gallery enrolled")
        return versions

    @app.get("/")
    def index() -> RedirectResponse:
        return RedirectResponse("/queue", status_code=303)

    @app.get("/queue", response_class=HTMLResponse)
    def queue(request: Request, station: str = "", sku: str = "", decision: str = "") -> HTMLResponse:
        if decision and decision not in _decision_names():
            raise HTTPException(400, f"unknown decision {decision!r}: one of {', '.join(_decision_names())}")
        if len(station) > 64 or len(sku) > 64:
            raise HTTPException(400, "station and SKU filters are at most 64 characters")
        items = item_media.review_queue(store, sku=sku, decision=Decision[decision] if decision else None,
                                        station=station)
        return page(request, "queue.html", items=items, facets=item_media.queue_facets(store),
                    stations_recorded=item_media.has_station_column(store), decisions=_decision_names(),
                    chosen={"station": station, "sku": sku, "decision": decision},
                    kept=item_media.kept_bytes(store))

    @app.get("/item/{inspection_id}", response_class=HTMLResponse)
    def item(request: Request, inspection_id: int) -> HTMLResponse:
        kept = kept_or_404(inspection_id)
        parsed = item_media.parse_gallery_version(kept.record.gallery_version)
        references = item_media.reference_media(store, *parsed) if parsed else []
        compared = [item_media.nearest_reference(references, view.wrist_angle) for view in kept.views]
        return page(request, "item.html", item=kept, gallery=parsed, compared=compared, damage_types=DAMAGE_TYPES)

    @app.get("/media/view/{inspection_id}/{view_index}/{kind}")
    def view_image(inspection_id: int, view_index: int, kind: str) -> Response:
        if kind not in IMAGE_TYPES:
            raise HTTPException(404, f"unknown image kind {kind!r}")
        blob = item_media.view_image(store, inspection_id, view_index, kind)
        if blob is None:
            raise HTTPException(404, f"no {kind} kept for view {view_index} of inspection {inspection_id}")
        return Response(blob, media_type=IMAGE_TYPES[kind], headers={"Cache-Control": "max-age=3600"})

    @app.get("/media/reference/{sku}/{version}/{view_index}")
    def reference_image(sku: str, version: int, view_index: int) -> Response:
        blob = item_media.reference_image(store, sku, version, view_index) if SKU_PATTERN.match(sku) else None
        if blob is None:
            raise HTTPException(404, f"no reference crop {view_index} of {sku!r} version {version}")
        return Response(blob, media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})

    @app.post("/item/{inspection_id}/label")
    def label(request: Request, inspection_id: int, judgement: str = Form(...), damage_type: str = Form(""),
              labeller: str = Form("")) -> RedirectResponse:
        require_token(request)
        kept = kept_or_404(inspection_id)
        if judgement not in JUDGEMENTS:
            raise HTTPException(400, f"unknown judgement {judgement!r}: one of {', '.join(JUDGEMENTS)}")
        if judgement == "damaged" and damage_type not in DAMAGE_TYPES:
            raise HTTPException(400, f"'damaged' needs a damage type: one of {', '.join(DAMAGE_TYPES)}")
        labeller = labeller or request.cookies.get(LABELLER_COOKIE, "")
        if not LABELLER_PATTERN.match(labeller):
            raise HTTPException(400, "labeller: at most 64 letters, digits, spaces or . @ -")
        if item_media.latest_inspection_id(store, kept.record.item_id) != inspection_id:
            raise HTTPException(409, f"item '{kept.record.item_id}' was inspected again since: label its latest "
                                     "inspection")
        if judgement == "cant_tell":
            item_media.skip(store, inspection_id, labeller)
        else:   # the store function behind ~/report_label, so calibrate --store sees it
            store.add_label(kept.record.item_id, judgement == "damaged",
                            damage_type if judgement == "damaged" else "", labeller)
        following = item_media.review_queue(store, limit=1)
        return RedirectResponse(f"/item/{following[0].record.id}" if following else "/queue", status_code=303)

    @app.get("/labels", response_class=HTMLResponse)
    def labels(request: Request) -> HTMLResponse:
        return page(request, "labels.html", rows=item_media.label_rows(store))

    @app.get("/labels.json")
    def labels_json() -> JSONResponse:
        return JSONResponse([asdict(row) for row in item_media.label_rows(store)])

    @app.get("/labels.csv")
    def labels_csv() -> Response:
        rows = item_media.label_rows(store)
        out = io.StringIO()
        names = list(item_media.LabelRow.__dataclass_fields__)
        writer = csv.writer(out)
        writer.writerow(names)
        writer.writerows([[getattr(row, name) for name in names] for row in rows])
        return Response(out.getvalue(), media_type="text/csv",
                        headers={"Content-Disposition": "attachment; filename=labels.csv"})

    @app.get("/skus", response_class=HTMLResponse)
    def skus(request: Request) -> HTMLResponse:
        return page(request, "skus.html", skus=store.skus_with_gallery())

    @app.get("/sku/{sku}", response_class=HTMLResponse)
    def sku_page(request: Request, sku: str) -> HTMLResponse:
        versions = sku_or_404(sku)
        galleries = [(version, active, count, item_media.reference_media(store, sku, version))
                     for version, active, count in versions]
        return page(request, "sku.html", sku=sku, galleries=galleries)

    @app.post("/sku/{sku}/rollback")
    def rollback(request: Request, sku: str, version: int = Form(...)) -> RedirectResponse:
        require_token(request)
        versions = sku_or_404(sku)
        if version not in {v for v, _, _ in versions}:
            raise HTTPException(404, f"SKU {sku!r} has no gallery version {version}")
        try:
            store.activate(sku, version)
        except StoreError as error:
            raise HTTPException(400, str(error)) from error
        return RedirectResponse(f"/sku/{sku}", status_code=303)

    @app.get("/drift", response_class=HTMLResponse)
    def drift(request: Request) -> HTMLResponse:
        return page(request, "drift.html", summaries=weekly_summary(store.score_log()))

    @app.get("/drift.png")
    def drift_png() -> Response:
        summaries = weekly_summary(store.score_log())
        if not summaries:
            raise HTTPException(404, "no logged inspections to plot")
        figure = io.BytesIO()
        plot(summaries, figure)
        return Response(figure.getvalue(), media_type="image/png")

    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request) -> HTMLResponse:
        return page(request, "login.html", error="")

    @app.post("/login")
    def login(request: Request, token_given: str = Form(..., alias="token"),
              labeller: str = Form("")) -> Response:
        if not token or not hmac.compare_digest(token_given.encode(), token.encode()):
            response = page(request, "login.html", error="wrong station token")
            response.status_code = 403
            return response
        if not LABELLER_PATTERN.match(labeller):
            raise HTTPException(400, "labeller: at most 64 letters, digits, spaces or . @ -")
        response = RedirectResponse("/queue", status_code=303)
        # SameSite=Strict: another site's page cannot make this browser write with the token
        response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
        response.set_cookie(LABELLER_COOKIE, labeller, httponly=True, samesite="strict")
        return response

    @app.exception_handler(StoreError)
    def store_error(_request: Request, error: StoreError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=400)

    app.state.store = store
    return app


def load_token(token_file: Path | None, env_value: str | None) -> str:
    """The station token: the first line of ``token_file``, else the environment variable's value, else ''."""
    if token_file is not None:
        text = token_file.read_text().strip()
        if not text:
            raise ValueError(f"token file {token_file} is empty")
        return text.splitlines()[0].strip()
    return (env_value or "").strip()
