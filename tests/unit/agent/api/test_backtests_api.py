"""GET /api/backtests, /api/backtests/<run>, /api/backtests/<run>/report.html and /api/backtests/compare
over a BACKTEST_DIR of real report files: two backtests and an optimisation (hand-written optimize.json)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from agent.backtest.library import compare_rows, load_metrics
from tests.backtest_runs import OPTIMIZE, write_runs
from tests.unit.agent.api.test_app import AUTH
from tests.unit.agent.conftest import prepared_app


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("backtests")
    return root, write_runs(root, days=3)


@pytest.fixture
def api(make_settings: Any, runs_dir: tuple[Path, dict[str, Any]]) -> FlaskClient:
    settings = make_settings(socket_url="http://127.0.0.1:9", backtest_dir=str(runs_dir[0]))
    return prepared_app(settings).test_client()


def test_the_list_is_newest_first_with_headline_figures(
    api: FlaskClient, runs_dir: tuple[Path, dict[str, Any]]
) -> None:
    assert api.get("/api/backtests").status_code == 401
    runs = api.get("/api/backtests", headers=AUTH).get_json()["runs"]
    assert [r["name"] for r in runs] == ["opt-ema", "newer-ema", "older-ema"]
    opt, newer, _ = runs
    report = runs_dir[1]["newer-ema"]
    assert newer["kind"] == "backtest" and newer["trades"] == report["trade_count"] > 0
    assert newer["total_return"] == report["total_return"] and newer["win_rate"] == report["win_rate"]
    assert newer["market_change"] == {"BTC-PERP": report["breakdowns"]["market_change"]["BTC-PERP"]["change"]}
    assert opt["kind"] == "optimize" and opt["best_params"] == {"fast": 12, "slow": 48}
    assert opt["objective"] == "sharpe" and opt["best_value"] == 1.87 and opt["best_report"] is True
    assert opt["overfitting_warning"] == OPTIMIZE["overfitting_warning"]


def test_one_backtest_and_one_optimisation(api: FlaskClient, runs_dir: tuple[Path, dict[str, Any]]) -> None:
    run = api.get("/api/backtests/older-ema", headers=AUTH).get_json()
    assert run["kind"] == "backtest" and run["breakdowns"] == runs_dir[1]["older-ema"]["breakdowns"]
    labels = dict(run["metrics"])
    assert labels["Trades"] == str(runs_dir[1]["older-ema"]["trade_count"])
    opt = api.get("/api/backtests/opt-ema", headers=AUTH).get_json()
    assert (
        opt["kind"] == "optimize"
        and opt["folds"] == OPTIMIZE["folds"]
        and opt["trials"] == OPTIMIZE["trials"]
    )
    assert dict(opt["best_metrics"])["Trades"] == str(runs_dir[1]["opt-ema"]["trade_count"])


def test_report_pages_are_served_sandboxed(api: FlaskClient, runs_dir: tuple[Path, dict[str, Any]]) -> None:
    page = api.get("/api/backtests/newer-ema/report.html", headers=AUTH)
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert page.data == (runs_dir[0] / "newer-ema" / "report.html").read_bytes()
    assert page.headers["Content-Security-Policy"].startswith("sandbox allow-scripts;")
    best = api.get("/api/backtests/opt-ema/report.html", headers=AUTH)  # an optimisation: its best trial's
    assert best.status_code == 200 and b"<h1>Best trial</h1>" in best.data


OUTSIDE = [
    "/api/backtests/..%2F..%2Fetc/report.html",
    "/api/backtests/%2E%2E/report.html",
    "/api/backtests/..",
    "/api/backtests/.hidden",
    "/api/backtests/a%5C..%5Cb/report.html",
    "/api/backtests/compare?first=..&second=newer-ema",
    "/api/backtests/compare?first=/etc&second=newer-ema",
    "/api/backtests/compare?first=opt-ema/best&second=newer-ema",
]


def test_paths_outside_the_folder_are_refused(api: FlaskClient) -> None:
    for path in OUTSIDE:
        answer = api.get(path, headers=AUTH)
        assert answer.status_code in (400, 404), path
        assert b"<html" not in answer.data and b"root:" not in answer.data
        if answer.status_code == 400:
            assert answer.get_json()["details"][0]["field"] == "run"
    assert api.get("/api/backtests/..", headers=AUTH).status_code == 400  # the name itself is refused


def test_a_name_that_looks_fine_but_is_not_a_run_is_404(api: FlaskClient, runs_dir: tuple[Path, Any]) -> None:
    (runs_dir[0] / "empty").mkdir(exist_ok=True)
    for path in ("/api/backtests/empty", "/api/backtests/missing/report.html"):
        answer = api.get(path, headers=AUTH)
        assert answer.status_code == 404 and answer.get_json()["error"] == "unknown run"


def test_two_runs_side_by_side(api: FlaskClient, runs_dir: tuple[Path, dict[str, Any]]) -> None:
    answer = api.get("/api/backtests/compare?first=older-ema&second=opt-ema", headers=AUTH).get_json()
    root = runs_dir[0]
    expected = compare_rows(load_metrics(root / "older-ema"), load_metrics(root / "opt-ema" / "best"))
    assert answer["rows"] == [list(r) for r in expected] and answer["first"] == "older-ema"
    assert answer["rows"][0][0] == "Period" and len(answer["rows"]) == 21


def test_a_broken_run_is_named_and_hides_no_other(api: FlaskClient, runs_dir: tuple[Path, Any]) -> None:
    broken = runs_dir[0] / "broken"
    broken.mkdir(exist_ok=True)
    (broken / "report.json").write_text("{not json")
    bad_opt = runs_dir[0] / "bad-opt"
    bad_opt.mkdir(exist_ok=True)
    (bad_opt / "optimize.json").write_text('{"kind": "optimize", "study": "s"}')
    try:
        body = api.get("/api/backtests", headers=AUTH).get_json()
        assert [r["name"] for r in body["runs"]] == ["opt-ema", "newer-ema", "older-ema"]
        problems = {u["name"]: u["problem"] for u in body["unreadable"]}
        assert set(problems) == {"bad-opt", "broken"} and "cannot be read" in problems["broken"]
        assert "lacks objective, direction, n_trials, best, trials, folds" in problems["bad-opt"]
        assert api.get("/api/backtests/bad-opt", headers=AUTH).status_code == 400
    finally:
        for folder in (broken, bad_opt):
            for file in folder.iterdir():
                file.unlink()
            folder.rmdir()
