"""Each error class carries its code, exit status and HTTP status; the CLI, the API, ``zishu --help``,
the tree in errors.py's docstring and the README's table all follow the classes."""

from __future__ import annotations

import io
import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from zishu import errors
from zishu.errors import ZishuError, every_error, exit_status_help

ROOT = Path(__file__).resolve().parents[1]
CLASSES = every_error()


def make(cls: type[ZishuError]) -> ZishuError:
    if cls is errors.ManifestError:
        return cls([errors.Problem("a.yaml", "id", "broken")])
    if cls is errors.UnknownResource:
        return cls("nobody/nothing")
    return cls(f"a {cls.__name__} for the test")


def test_every_class_carries_a_code_an_exit_status_and_an_http_status():
    assert len(CLASSES) >= 17 and len({cls.code for cls in CLASSES}) == len(CLASSES)
    for cls in CLASSES:
        assert re.fullmatch(r"[A-Z_]+", cls.code), cls
        assert isinstance(cls.exit_status, int) and 1 <= cls.exit_status <= 125, cls
        assert isinstance(cls.http_status, int) and 400 <= cls.http_status <= 599, cls
        assert cls.summary and cls.__doc__, cls
    assert not hasattr(errors, "EXIT_STATUS")  # no table beside the classes
    from zishu.web import app

    assert not hasattr(app, "STATUS")


def test_the_statuses_once_wrong_are_deliberate_now():
    assert errors.EngineError.http_status == 503  # was 500: an engine missing or failing is not our bug
    assert errors.CardError.http_status == errors.ManifestError.http_status == 422  # were 500
    assert errors.CatalogBuildError.http_status == 500 and errors.ZishuError.http_status == 500
    assert errors.NotFound.exit_status != errors.ZishuError.exit_status  # was 1, "unexpected error"
    assert errors.DatabaseTooNew.__module__ == "zishu.errors"
    from zishu.db import DatabaseTooNew

    assert DatabaseTooNew is errors.DatabaseTooNew


def test_the_docstring_tree_matches_the_classes():
    for cls in CLASSES:
        line = re.search(rf"\b{cls.__name__}\s+code (\S+)\s+exit (\d+)\s+HTTP (\d+)", errors.__doc__ or "")
        assert line, f"{cls.__name__} is missing from the tree in errors.py's docstring"
        assert line.groups() == (cls.code, str(cls.exit_status), str(cls.http_status)), cls


def test_zishu_help_lists_every_exit_status_from_the_classes():
    from zishu.cli import cli

    shown = CliRunner().invoke(cli, ["--help"], prog_name="zishu")
    assert shown.exit_code == 0
    help_text = " ".join(shown.output.split())
    for cls in CLASSES:
        assert f"{cls.exit_status} {cls.code} {cls.summary}" in help_text, cls
    assert exit_status_help().count("\n") == len(CLASSES) + 3  # "\b", the title, success, one per class


def readme_table() -> str:
    rows = ["| code | exit status | HTTP status | meaning |", "|---|---|---|---|"]
    rows += [f"| `{cls.code}` | {cls.exit_status} | {cls.http_status} | {cls.summary} |" for cls in CLASSES]
    return "\n".join(rows)


def test_the_readme_table_is_the_classes():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme_table() in readme, "the README's error table is out of date; it should read:\n" + readme_table()


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.code)
def test_the_cli_exits_with_the_class_exit_status(cls):
    from zishu.cli import LazyGroup

    @click.group(cls=LazyGroup)
    def group() -> None:
        pass

    @group.command("fail")
    def fail() -> None:
        raise make(cls)

    done = CliRunner().invoke(group, ["fail"])
    assert done.exit_code == cls.exit_status
    assert done.output.startswith("error: ")


@pytest.fixture
def client(runtime):
    """The app in this process, plus a route that raises any class of the tree by its code."""
    from flask import Blueprint

    from zishu.web.app import create_app

    app = create_app(runtime, "s3cret")
    raising = Blueprint("raising", __name__)

    @raising.get("/api/test-raise/<code>")
    def raise_code(code: str):
        raise make(next(cls for cls in CLASSES if cls.code == code))

    app.register_blueprint(raising)
    client = app.test_client()
    client.environ_base.update(HTTP_X_ZISHU_TOKEN="s3cret")
    return client


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.code)
def test_the_api_answers_with_the_class_http_status_and_code(client, cls):
    answer = client.get(f"/api/test-raise/{cls.code}")
    assert answer.status_code == cls.http_status
    assert answer.json["error"]["code"] == cls.code


def test_an_engine_failure_opening_a_companion_session_is_503(client, runtime, tmp_path):
    from zishu.companion.characters import create_character

    rid = create_character(runtime, {"name": "Mio", "persona": "You are {{char}}, a cat."})
    weights = tmp_path / "weights.ckpt"  # a format no language-model engine loads
    weights.write_bytes(b"\0" * 64)
    answer = client.post("/api/companion/sessions", json={"character": rid, "models": {"llm": str(weights)}})
    assert answer.status_code == 503, answer.json
    assert answer.json["error"]["code"] == "ENGINE_FAILED" and "no llm engine loads" in answer.json["error"]["message"]


def test_a_bad_card_upload_is_card_invalid(client):
    answer = client.post("/api/characters/import", data={"file": (io.BytesIO(b"hello"), "notes.txt")},
                         content_type="multipart/form-data")
    assert answer.status_code == 422
    assert answer.json["error"]["code"] == "CARD_INVALID"
    assert answer.json["error"]["message"].startswith("notes.txt: not a character card")
