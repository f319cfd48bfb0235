"""The app database: WAL and foreign keys, migrations that never lose data, a schema the models match."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import peewee
import pytest

from zishu import db
from zishu.db import (
    MIGRATIONS,
    DatabaseCorrupt,
    DatabaseTooNew,
    get_setting,
    open_database,
    schema_version,
    set_setting,
)
from zishu.jobs import Job, records
from zishu.studio.gallery import StudioImage


def test_a_new_database_is_current_uses_wal_and_foreign_keys(tmp_path):
    database = open_database(tmp_path / "zishu.db")
    assert schema_version(database) == len(MIGRATIONS)
    assert database.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert database.execute_sql("PRAGMA foreign_keys").fetchone()[0] == 1
    assert database.execute_sql("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.parametrize("model", [db.Setting, Job, StudioImage])
def test_the_migrated_schema_matches_the_models(tmp_path, model):
    database = open_database(tmp_path / "zishu.db")
    columns = {c.name: c for c in database.get_columns(model._meta.table_name)}
    fields = model._meta.sorted_fields
    assert set(columns) == {f.column_name for f in fields}
    for f in fields:
        assert columns[f.column_name].null == f.null, f.name


def test_settings_round_trip_as_json(tmp_path):
    open_database(tmp_path / "zishu.db")
    assert get_setting("catalog_url", "default") == "default"
    set_setting("plugins.disabled", ["a", "b"])
    set_setting("plugins.disabled", ["b"])
    assert get_setting("plugins.disabled") == ["b"]


def _add_note_column(database, migrator):
    from playhouse.migrate import migrate

    migrate(migrator.add_column("job", "note", peewee.TextField(default="")))


def test_the_gallery_upgrade_keeps_its_pictures_and_adds_their_parent(tmp_path):
    path = tmp_path / "zishu.db"
    old = open_database(path, migrations=MIGRATIONS[:5])  # before v6: no parent_id
    old.execute_sql(
        "INSERT INTO studio_image (created, file, prompt, negative_prompt, model, model_hash, seed, width, height,"
        " steps, guidance, request, parameters, batch_index) VALUES (1.0, 'd/a.png', 'a fox', '', 'm', 'h', 7,"
        " 64, 64, 4, 5.0, '{}', 'a fox', 0)")
    old.close()
    upgraded = open_database(path)
    assert schema_version(upgraded) == len(MIGRATIONS)
    kept = StudioImage.get()
    assert (kept.prompt, kept.seed, kept.parent_id) == ("a fox", 7, None)
    child = StudioImage.create(**{**kept.__data__, "id": None, "parent_id": kept.id})
    assert StudioImage.get_by_id(child.id).as_dict()["parent"] == kept.id
    upgraded.close()


def test_an_upgrade_keeps_the_data_and_a_backup(tmp_path):
    path = tmp_path / "zishu.db"
    open_database(path)
    job = records.create("install", "Install a/b", {"request": "a/b"})
    set_setting("catalog_url", "https://example.org/catalog/")
    db.database.obj.close()

    upgraded = open_database(path, migrations=[*MIGRATIONS, _add_note_column])
    assert schema_version(upgraded) == len(MIGRATIONS) + 1
    row = upgraded.execute_sql("SELECT title, note FROM job WHERE id = ?", (job.id,)).fetchone()
    assert row == ("Install a/b", "")
    assert get_setting("catalog_url") == "https://example.org/catalog/"
    backup = tmp_path / f"zishu.db.v{len(MIGRATIONS)}.bak"
    with sqlite3.connect(backup) as old:
        assert old.execute("SELECT title FROM job").fetchall() == [("Install a/b",)]


def test_a_failing_migration_changes_nothing(tmp_path):
    path = tmp_path / "zishu.db"
    open_database(path)
    records.create("install", "Install a/b", {"request": "a/b"})
    db.database.obj.close()

    def half_done(database, migrator):
        database.execute_sql("ALTER TABLE job ADD COLUMN half TEXT")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        open_database(path, migrations=[*MIGRATIONS, half_done])
    db.database.obj.close()
    again = open_database(path)
    assert schema_version(again) == len(MIGRATIONS)
    assert "half" not in {c.name for c in again.get_columns("job")}
    assert Job.select().count() == 1


def test_a_database_from_a_newer_zishu_is_refused_untouched(tmp_path):
    path = tmp_path / "zishu.db"
    open_database(path, migrations=[*MIGRATIONS, _add_note_column])
    db.database.obj.close()
    before = path.read_bytes()
    with pytest.raises(DatabaseTooNew, match="written by a newer Zishu"):
        open_database(path)
    db.database.obj.close()
    assert path.read_bytes() == before


def _zishu(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ZISHU_HOME": str(home)}
    env.pop("ZISHU_QUEUE", None)
    return subprocess.run([sys.executable, "-m", "zishu.cli", *args], env=env, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_database_is_one_line_naming_the_file_and_the_way_out(tmp_path, damage):
    home = tmp_path / "home"
    path = home / "zishu.db"
    if damage == "garbage":
        home.mkdir()
        path.write_bytes(b"this is not SQLite at all\n" * 400)
    else:
        open_database(path, migrations=MIGRATIONS[:1])  # an older schema: the upgrade leaves a backup
        db.database.obj.close()
        open_database(path)
        for n in range(300):
            set_setting(f"key-{n}", "x" * 200)  # enough pages that cutting the file loses some
        db.database.obj.close()
        with open(path, "r+b") as f:
            f.truncate(path.stat().st_size // 3)
    done = _zishu(home, "plugins", "--json")
    assert done.returncode == DatabaseCorrupt.exit_status, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert str(path) in lines[0] and "DATABASE_CORRUPT" not in lines[0] and "move it aside" in lines[0]
    if damage == "truncated":
        assert f"cp {path}.v1.bak {path}" in lines[0]  # the backup beside it
