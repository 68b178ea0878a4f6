"""The `tutor` command line, in process (Typer's runner) and once as the real console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from core.settings import get_settings
from tests.ingest.test_indexer import write_book

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, embedded_pg_url: str, embeddings, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:  # type: ignore[no-untyped-def]
    values = {
        "TUTOR_HOME": str(tmp_path / ".tutor"),
        "DATABASE_URL": embedded_pg_url,
        "MODELS_DIR": str(embeddings.onnx_path.parent),
        # The session's Postgres is shared: with pgvector (the default) the book's tables are the
        # collection's, so each test names its own.
        "QDRANT_COLLECTION": f"book_{uuid.uuid4().hex[:10]}",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield values
    get_settings.cache_clear()


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_ingest_search_and_eval_json(env: dict[str, str], tmp_path: Path) -> None:
    docs = write_book(tmp_path)
    code, out, _ = invoke("ingest", str(docs), "--json")
    assert code == 0, out
    summary = json.loads(out)
    assert {"added", "updated", "skipped", "deleted", "chunks", "seconds"} <= summary.keys()
    assert (summary["added"], summary["chunks"]) == (3, 9)

    code, out, _ = invoke("ingest", str(docs), "--json")
    assert (code, json.loads(out)["skipped"], json.loads(out)["embedded"]) == (0, 3, 0)

    code, out, _ = invoke("search", "servo motors", "-k", "2", "--mode", "sparse", "--json")
    assert code == 0
    passages = json.loads(out)
    assert len(passages) == 2 and passages[0]["title"] == "Beta"
    assert set(passages[0]) == {"doc_path", "title", "heading", "url", "score", "text"}
    assert passages[0]["url"].startswith("http://localhost:3000/docs/basics/beta")

    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"question": "lidar scanners", "doc_path": "gamma"}) + "\n")
    code, out, _ = invoke("eval", "--questions", str(questions), "--json")
    assert code == 0
    modes = {m["mode"]: m for m in json.loads(out)["modes"]}
    assert set(modes) == {"dense", "sparse", "hybrid"} and modes["sparse"]["recall_at_10"] == 1.0


def test_eval_on_a_beir_folder(env: dict[str, str], tmp_path: Path) -> None:
    beir = tmp_path / "tiny"
    (beir / "qrels").mkdir(parents=True)
    corpus = [("d1", "Gears", "Gear trains change torque."), ("d2", "Lidar", "Lidar measures range.")]
    (beir / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": i, "title": t, "text": x}) + "\n" for i, t, x in corpus)
    )
    (beir / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "laser range sensing"}) + "\n")
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td2\t1\n")
    code, out, _ = invoke("eval", "--beir", str(beir), "--json")
    assert code == 0, out
    result = json.loads(out)
    assert result["ingest"]["chunks"] == 2
    assert all(m["queries"] == 1 for m in result["modes"])
    code, out, _ = invoke("eval", "--beir", str(beir), "--json")  # reused, not re-embedded
    assert json.loads(out)["ingest"]["embedded"] == 0


def test_eval_selections_reports_declines_per_split(env: dict[str, str], tmp_path: Path) -> None:
    selection = "Lidar measures range by timing laser pulses. It is used for mapping."
    rows = [
        {"id": f"s{i}", "doc_path": "x.md", "selection": selection, "split": split,
         "answered": "How does lidar measure range?", "unanswered": "How much does a gearbox weigh?"}
        for i, split in enumerate(("tune", "test"))
    ]  # fmt: skip
    path = tmp_path / "selections.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    code, out, _ = invoke("eval", "--selections", str(path), "--json")
    assert code == 0, out
    result = json.loads(out)
    assert [r["split"] for r in result["reports"]] == ["tune", "test", "all"]
    assert result["reports"][2] == {
        "split": "all", "questions": 4, "declined": 2, "precision": 1.0, "recall": 1.0, "f1": 1.0
    }  # fmt: skip
    path.write_text('{"id": "s1", "selection": "no questions"}\n')
    code, _, err = invoke("eval", "--selections", str(path))
    assert code == 2 and "selections.jsonl:1" in err and "Traceback" not in err


def test_bad_paths_are_clear_errors(env: dict[str, str], tmp_path: Path) -> None:
    code, _, err = invoke("ingest", str(tmp_path / "nope"))
    assert code == 2 and "nope" in err and "Traceback" not in err
    (tmp_path / "empty").mkdir()
    code, _, err = invoke("ingest", str(tmp_path / "empty"))
    assert code == 2 and "empty" in err


def test_nothing_indexable_exits_non_zero(env: dict[str, str], tmp_path: Path) -> None:
    docs = tmp_path / "bad"
    docs.mkdir()
    (docs / "a.md").write_bytes(b"\x89PNG\x00\x00binary")
    code, _, err = invoke("ingest", str(docs))
    assert code == 1 and "a.md" in err


def test_search_before_ingest_says_what_to_do(env: dict[str, str]) -> None:
    code, _, err = invoke("search", "anything")
    assert code == 2 and "tutor ingest" in err


def test_console_script_end_to_end(env: dict[str, str], tmp_path: Path) -> None:
    docs = write_book(tmp_path)
    tutor = Path(sys.executable).parent / "tutor"
    done = subprocess.run(
        [str(tutor), "ingest", str(docs)], capture_output=True, text=True, env=os.environ | env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "3 pages" in done.stdout and "9 chunks" in done.stdout
