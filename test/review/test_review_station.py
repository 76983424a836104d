"""The review station in real Chromium over a store filled by the real code (test/review/sim_store.py):
queue, item page, a label by click and by key, the queue shrinking, the labels in the store, calibrate
counting them, rollback, and writes refused without the token. Writes out/review.png (an item page)."""
from __future__ import annotations

import shutil
import socket
import threading
from pathlib import Path

import pytest
import uvicorn

from damage_perception import cli
from damage_perception.core.damage_types import DAMAGE_TYPES
from damage_perception.core.station import SHIPPED_MODEL, load_station_model
from damage_perception.core.verdict import Decision
from damage_perception.data.study import gallery_episode
from damage_perception.review.app import create_app
from damage_perception.store import item_media
from damage_perception.store.database import InspectionStore
from damage_perception.tools.enrol import enrol_episodes
from test.review.sim_store import fill_store

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = Path("/usr/bin/chromium")
SKU, TOKEN = "SKU-D0001", "station-secret-51"
# under the ignored out/: a run must not rewrite the tracked docs/review.png (copy it there by hand to refresh it)
SCREENSHOT = Path(__file__).resolve().parents[2] / "out" / "review.png"
ITEMS = [("item-crush", "crush", 0.9), ("item-pristine", "pristine", 0.0), ("item-tear", "tear", 0.8)]


def free_port(first: int = 58000, last: int = 58099) -> int:
    """A free loopback port in this helper's range."""
    for port in range(first, last + 1):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError(f"no free port in {first}-{last}")


@pytest.fixture(scope="module")
def filled_store(tmp_path_factory) -> tuple[Path, list[int]]:
    """Enrolled twice (version 2 active) and three rendered items inspected, their views kept; (path, decisions)."""
    path = tmp_path_factory.mktemp("review") / "station.db"
    decisions = fill_store(path, SKU, ITEMS)
    store = InspectionStore(path)
    enrol_episodes(store, load_station_model(SHIPPED_MODEL), [gallery_episode(SKU, seed=1)], progress=False)
    store.close()
    return path, decisions


@pytest.fixture
def station(filled_store, tmp_path):
    """A fresh copy of the filled store served on a loopback port; yields (base URL, store path)."""
    path = tmp_path / "station.db"
    shutil.copy(filled_store[0], path)
    store = InspectionStore(path)
    server = uvicorn.Server(uvicorn.Config(create_app(store, TOKEN), host="127.0.0.1", port=free_port(),
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    started = threading.Event()
    while thread.is_alive() and not server.started:   # uvicorn sets .started once it listens
        started.wait(0.02)
    assert server.started, "the review server did not start"
    yield f"http://127.0.0.1:{server.config.port}", path
    server.should_exit = True
    thread.join()
    store.close()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.is_file():
        pytest.skip("Debian's chromium is not installed (scripts/setup.sh)")
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield launched
        launched.close()


def queue_ids(page, base: str) -> list[int]:
    page.goto(f"{base}/queue")
    return [int(row.get_attribute("data-inspection")) for row in page.locator("tr.queue-item").all()]


def labels_of(path: Path) -> list[item_media.LabelRow]:
    store = InspectionStore(path)
    try:
        return item_media.label_rows(store)
    finally:
        store.close()


def log_in(page, base: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#token", TOKEN)
    page.fill("#labeller-name", "qa one")
    with page.expect_navigation():
        page.click("#login")


def test_label_by_click_and_by_key_leaves_the_queue_and_calibrate_counts_it(station, browser, capsys):
    base, path = station
    assert cli.main(["calibrate", "--store", str(path), "--dry-run"]) == 2   # nothing labelled good yet
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    log_in(page, base)
    queue = queue_ids(page, base)
    assert len(queue) == len(ITEMS) and queue == sorted(queue, reverse=True)   # newest first

    page.click(f"tr.queue-item[data-inspection='{queue[0]}'] a")
    page.wait_for_url(f"{base}/item/{queue[0]}")
    assert page.locator(".view").count() >= 1
    crops = page.locator(".view img")
    assert crops.count() >= 3 and all(img.evaluate("i => i.naturalWidth > 0") for img in crops.all())
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    with page.expect_navigation():
        page.click("#btn-not-damaged")
    assert queue[0] not in queue_ids(page, base)

    page.goto(f"{base}/item/{queue[1]}")
    with page.expect_navigation():
        page.keyboard.press("2")   # damaged, the second damage type
    assert queue_ids(page, base) == [queue[2]]

    labels = {row.inspection_id: row for row in labels_of(path)}
    assert labels[queue[0]].judgement == "not damaged" and labels[queue[0]].labeller == "qa one"
    assert labels[queue[1]].judgement == "damaged" and labels[queue[1]].damage_type == DAMAGE_TYPES[1]
    capsys.readouterr()
    cli.main(["calibrate", "--store", str(path), "--dry-run"])
    assert "calibrate: 1 good items" in capsys.readouterr().out   # the "not damaged" label

    page.goto(f"{base}/labels")
    assert page.locator("tr.label-row").count() == 2
    export = page.request.get(f"{base}/labels.csv").text()
    assert export.count("\n") == 3 and "not damaged" in export


def test_cant_tell_and_rollback_from_the_browser(station, browser):
    base, path = station
    page = browser.new_page()
    log_in(page, base)
    first = queue_ids(page, base)[0]
    page.goto(f"{base}/item/{first}")
    with page.expect_navigation():
        page.keyboard.press("c")
    assert first not in queue_ids(page, base)
    assert [(r.inspection_id, r.judgement) for r in labels_of(path)] == [(first, "can't tell")]
    page.goto(f"{base}/sku/{SKU}")
    assert "Version 2 (active)" in page.inner_text("#version-2")
    with page.expect_navigation():
        page.click("#rollback-1")
    assert "Version 1 (active)" in page.inner_text("#version-1")
    store = InspectionStore(path)
    try:
        assert store.active_gallery_versions()[SKU] == 1
    finally:
        store.close()


def test_queue_filters_by_decision_and_sku(station, browser, filled_store):
    base, _ = station
    page = browser.new_page()
    page.goto(f"{base}/queue")
    for name in ("DIVERT", "PASS"):
        page.select_option("select[name=decision]", name)
        with page.expect_navigation():
            page.click("#filters button")
        shown = [cell.inner_text() for cell in page.locator("tr.queue-item td:nth-child(5)").all()]
        assert shown == [name] * filled_store[1].count(Decision[name].value), name
    page.goto(f"{base}/queue?sku=OTHER-SKU")
    assert page.locator("tr.queue-item").count() == 0 and page.locator("#empty").count() == 1
    assert page.request.get(f"{base}/queue?decision=MAYBE").status == 400


def test_writes_without_the_token_are_refused_and_bad_input_writes_nothing(station, browser):
    base, path = station
    page = browser.new_page()
    target = queue_ids(page, base)[0]
    page.goto(f"{base}/item/{target}")
    assert page.locator("#label-form").count() == 0   # no buttons without the token
    form = {"judgement": "not_damaged"}
    assert page.request.post(f"{base}/item/{target}/label", form=form).status == 403
    assert page.request.post(f"{base}/item/{target}/label", form=form,
                             headers={"X-Station-Token": "guess"}).status == 403
    assert page.request.post(f"{base}/sku/{SKU}/rollback", form={"version": "1"}).status == 403
    wrong = page.request.post(f"{base}/login", form={"token": "guess"})
    assert wrong.status == 403
    with_token = {"X-Station-Token": TOKEN}
    assert page.request.post(f"{base}/item/99999/label", form=form, headers=with_token).status == 404
    assert page.request.post(f"{base}/item/{target}/label", form={"judgement": "maybe"},
                             headers=with_token).status == 400
    assert page.request.post(f"{base}/item/{target}/label", form={"judgement": "damaged", "damage_type": "x"},
                             headers=with_token).status == 400
    assert page.request.post(f"{base}/sku/NO-SUCH-SKU/rollback", form={"version": "1"},
                             headers=with_token).status == 404
    assert page.request.post(f"{base}/sku/{SKU}/rollback", form={"version": "9"}, headers=with_token).status == 404
    for probe in ("/media/view/1/0/..%2F..%2F..%2Fetc%2Fpasswd", "/media/reference/..%2Fetc/1/0",
                  "/templates/base.html", "/item/abc"):
        assert page.request.get(base + probe).status in (404, 422), probe
    assert labels_of(path) == [] and len(queue_ids(page, base)) == len(ITEMS)
    store = InspectionStore(path)
    try:
        assert store.active_gallery_versions()[SKU] == 2
    finally:
        store.close()
