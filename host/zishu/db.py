"""The app database, ``ZISHU_HOME/zishu.db``: SQLite through peewee, its settings and its migrations.

One ``SqliteDatabase`` per process, with WAL (readers never wait for the writer), foreign keys on
and a busy timeout, so the app's threads and a ``zishu worker`` process can share it. Models bind
to the ``database`` proxy; ``open_database`` points the proxy at a file and brings the file up to
date.

Migrations are numbered functions in ``MIGRATIONS`` (the schema is version ``len(MIGRATIONS)``);
the ``schema_version`` table records the ones applied. Before migrating a file that already holds
data, a copy is written beside it with SQLite's backup API (``zishu.db.v<N>.bak``), and each
migration runs in one transaction: an upgrade that fails leaves the database as it was. A file
written by a newer Zishu is refused instead of being touched; one that SQLite cannot read
(truncated, garbage) is ``DatabaseCorrupt``, one line naming the file and its backup.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import peewee
from playhouse.migrate import SqliteMigrator

from zishu.errors import DatabaseCorrupt, DatabaseTooNew

database = peewee.DatabaseProxy()


class BaseModel(peewee.Model):
    class Meta:
        database = database
        legacy_table_names = False


class SchemaVersion(BaseModel):
    version = peewee.IntegerField(primary_key=True)
    applied_at = peewee.FloatField()


class Setting(BaseModel):
    """One user setting; ``value`` is JSON."""

    key = peewee.CharField(primary_key=True)
    value = peewee.TextField()


def _v1(db: peewee.SqliteDatabase, migrator: SqliteMigrator) -> None:
    """Settings and the job table."""
    db.execute_sql("CREATE TABLE setting (key VARCHAR(255) NOT NULL PRIMARY KEY, value TEXT NOT NULL)")
    db.execute_sql(
        """CREATE TABLE job (
            id INTEGER NOT NULL PRIMARY KEY,
            kind VARCHAR(255) NOT NULL,
            title VARCHAR(255) NOT NULL,
            params TEXT NOT NULL,
            status VARCHAR(255) NOT NULL,
            priority INTEGER NOT NULL,
            done REAL,
            total REAL,
            message TEXT NOT NULL,
            result TEXT,
            error TEXT,
            error_code VARCHAR(255),
            cancel_requested INTEGER NOT NULL,
            attempts INTEGER NOT NULL,
            worker VARCHAR(255),
            task_id VARCHAR(255),
            created_at REAL NOT NULL,
            started_at REAL,
            finished_at REAL,
            updated_at REAL NOT NULL)"""
    )
    db.execute_sql("CREATE INDEX job_status ON job (status)")
    db.execute_sql("CREATE INDEX job_updated_at ON job (updated_at)")


def _v2(db: peewee.SqliteDatabase, migrator: SqliteMigrator) -> None:
    """The companion's turns and long-term memories (``zishu.companion.records``)."""
    db.execute_sql(
        """CREATE TABLE companion_turn (
            id INTEGER NOT NULL PRIMARY KEY,
            character VARCHAR(255) NOT NULL,
            role VARCHAR(255) NOT NULL,
            text TEXT NOT NULL,
            created REAL NOT NULL,
            interrupted INTEGER NOT NULL,
            latency TEXT)"""
    )
    db.execute_sql("CREATE INDEX companion_turn_character ON companion_turn (character)")
    db.execute_sql(
        """CREATE TABLE companion_memory (
            id INTEGER NOT NULL PRIMARY KEY,
            character VARCHAR(255) NOT NULL,
            text TEXT NOT NULL,
            pinned INTEGER NOT NULL,
            created REAL NOT NULL,
            last_used REAL,
            turn_id INTEGER REFERENCES companion_turn (id) ON DELETE SET NULL,
            deleted_at REAL)"""
    )
    db.execute_sql("CREATE INDEX companion_memory_character ON companion_memory (character)")
    db.execute_sql("CREATE INDEX companion_memory_turn_id ON companion_memory (turn_id)")


def _v3(db: peewee.SqliteDatabase, migrator: SqliteMigrator) -> None:
    """Chats: a character's conversations (``companion_chat``), each turn in one of them, with the
    alternatives a regenerated reply keeps (``swipes``, the chosen one ``swipe``) and a deletion mark
    (``deleted_at``, restorable). The turns already kept become one chat per character."""
    db.execute_sql(
        """CREATE TABLE companion_chat (
            id INTEGER NOT NULL PRIMARY KEY,
            character VARCHAR(255) NOT NULL,
            title TEXT NOT NULL,
            created REAL NOT NULL,
            updated REAL NOT NULL,
            metadata TEXT)"""
    )
    db.execute_sql("CREATE INDEX companion_chat_character ON companion_chat (character)")
    db.execute_sql("ALTER TABLE companion_turn ADD COLUMN chat_id INTEGER "
                   "REFERENCES companion_chat (id) ON DELETE CASCADE")
    db.execute_sql("ALTER TABLE companion_turn ADD COLUMN swipes TEXT")
    db.execute_sql("ALTER TABLE companion_turn ADD COLUMN swipe INTEGER NOT NULL DEFAULT 0")
    db.execute_sql("ALTER TABLE companion_turn ADD COLUMN deleted_at REAL")
    db.execute_sql("CREATE INDEX companion_turn_chat_id ON companion_turn (chat_id)")
    db.execute_sql(
        """INSERT INTO companion_chat (character, title, created, updated)
           SELECT character, 'Earlier conversation', MIN(created), MAX(created) FROM companion_turn
           GROUP BY character"""
    )
    db.execute_sql(
        """UPDATE companion_turn SET chat_id = (SELECT id FROM companion_chat
           WHERE companion_chat.character = companion_turn.character)"""
    )


def _v4(db: peewee.SqliteDatabase, migrator: SqliteMigrator) -> None:
    """The studio's gallery (``zishu.studio.gallery``): one row per picture, its file under
    ``ZISHU_HOME/studio/``, its settings, the result-cache key, favourite, trash and the safety
    check's verdict; and the job table's ``extra`` (JSON a job shows while it runs: the live preview)."""
    db.execute_sql(
        """CREATE TABLE studio_image (
            id INTEGER NOT NULL PRIMARY KEY,
            created REAL NOT NULL,
            file TEXT NOT NULL,
            job_id INTEGER,
            prompt TEXT NOT NULL,
            negative_prompt TEXT NOT NULL,
            character VARCHAR(255),
            style VARCHAR(255),
            model TEXT NOT NULL,
            model_hash VARCHAR(255) NOT NULL,
            seed INTEGER NOT NULL,
            width INTEGER NOT NULL,
            height INTEGER NOT NULL,
            steps INTEGER NOT NULL,
            guidance REAL NOT NULL,
            scheduler VARCHAR(255),
            request TEXT NOT NULL,
            parameters TEXT NOT NULL,
            cache_key VARCHAR(255),
            batch_index INTEGER NOT NULL,
            favourite INTEGER NOT NULL DEFAULT 0,
            deleted_at REAL,
            blocked INTEGER NOT NULL DEFAULT 0,
            blocked_reason TEXT)"""
    )
    db.execute_sql("CREATE INDEX studio_image_cache_key ON studio_image (cache_key)")
    db.execute_sql("CREATE INDEX studio_image_character ON studio_image (character)")
    db.execute_sql("CREATE INDEX studio_image_created ON studio_image (created)")
    db.execute_sql("ALTER TABLE job ADD COLUMN extra TEXT")



def _v5(db: peewee.SqliteDatabase, migrator: SqliteMigrator) -> None:
    """Storyboards (``zishu.storyboard.records``): a project (story, look, voice, music), its shots in
    order (prompt, narration, duration, the files made for it, status), and the undo steps of its
    shot list (``storyboard_step``: the shots as JSON before each edit)."""
    db.execute_sql(
        """CREATE TABLE storyboard_project (
            id INTEGER NOT NULL PRIMARY KEY,
            title TEXT NOT NULL,
            story TEXT NOT NULL,
            language VARCHAR(255) NOT NULL,
            style VARCHAR(255),
            aspect VARCHAR(255) NOT NULL,
            resolution VARCHAR(255) NOT NULL,
            character VARCHAR(255),
            voice TEXT,
            music TEXT,
            seed INTEGER NOT NULL,
            export TEXT,
            created REAL NOT NULL,
            updated REAL NOT NULL)"""
    )
    db.execute_sql(
        """CREATE TABLE storyboard_shot (
            id INTEGER NOT NULL PRIMARY KEY,
            project_id INTEGER NOT NULL REFERENCES storyboard_project (id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            prompt TEXT NOT NULL,
            narration TEXT NOT NULL,
            duration REAL NOT NULL,
            image TEXT,
            clip TEXT,
            audio TEXT,
            subtitle TEXT NOT NULL,
            motion VARCHAR(255) NOT NULL,
            status VARCHAR(255) NOT NULL,
            error TEXT,
            job_id INTEGER,
            updated REAL NOT NULL)"""
    )
    db.execute_sql("CREATE INDEX storyboard_shot_project_id ON storyboard_shot (project_id, position)")
    db.execute_sql(
        """CREATE TABLE storyboard_step (
            id INTEGER NOT NULL PRIMARY KEY,
            project_id INTEGER NOT NULL REFERENCES storyboard_project (id) ON DELETE CASCADE,
            label TEXT NOT NULL,
            shots TEXT NOT NULL,
            created REAL NOT NULL)"""
    )
    db.execute_sql("CREATE INDEX storyboard_step_project_id ON storyboard_step (project_id)")


def _v6(db: peewee.SqliteDatabase, migrator: SqliteMigrator) -> None:
    """A gallery picture made from another (upscaled, its background removed) names it: ``parent_id``."""
    db.execute_sql("ALTER TABLE studio_image ADD COLUMN parent_id INTEGER")


MIGRATIONS: list[Callable[[peewee.SqliteDatabase, SqliteMigrator], None]] = [_v1, _v2, _v3, _v4, _v5, _v6]


def open_database(path: Path, migrations: list | None = None) -> peewee.SqliteDatabase:
    """Open (creating if needed) the database at ``path``, migrate it, and bind the models to it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    db = peewee.SqliteDatabase(
        str(path),
        timeout=30,
        pragmas={"journal_mode": "wal", "foreign_keys": 1, "synchronous": "normal", "busy_timeout": 30_000},
    )
    database.initialize(db)
    try:
        db.connect(reuse_if_open=True)
        migrate(db, path, MIGRATIONS if migrations is None else migrations)
    except (peewee.DatabaseError, sqlite3.DatabaseError) as e:  # "file is not a database", "malformed"
        db.close()
        raise DatabaseCorrupt(_way_out(path, e)) from None
    return db


def _way_out(path: Path, error: Exception) -> str:
    """One line: what is wrong with the database at ``path`` and how to get going again."""
    backups = sorted(path.parent.glob(f"{path.name}.v*.bak"), key=lambda p: p.stat().st_mtime)
    aside = f"mv {path} {path}.damaged"
    if backups:
        return (f"{path} cannot be read ({error}): restore the backup beside it "
                f"({aside} && cp {backups[-1]} {path}), or move it aside to start afresh ({aside})")
    return (f"{path} cannot be read ({error}): move it aside to start afresh ({aside}); "
            "settings and job history then start empty")


def schema_version(db: peewee.SqliteDatabase) -> int:
    if not db.table_exists("schema_version"):
        return 0
    return SchemaVersion.select(peewee.fn.MAX(SchemaVersion.version)).scalar() or 0


def migrate(db: peewee.SqliteDatabase, path: Path, migrations: list) -> int:
    """Apply the migrations ``path`` lacks, each in its own transaction; return the new version."""
    db.create_tables([SchemaVersion], safe=True)
    current = _check_version(db, path, migrations)
    if current == len(migrations):
        return current
    if current > 0:
        _backup(db, path.with_name(f"{path.name}.v{current}.bak"))
    with db.atomic("EXCLUSIVE"):  # two processes starting at once: one migrates, the other waits
        current = _check_version(db, path, migrations)  # again: the other may have migrated meanwhile
        migrator = SqliteMigrator(db)
        for number in range(current + 1, len(migrations) + 1):
            with db.atomic():
                migrations[number - 1](db, migrator)
                SchemaVersion.create(version=number, applied_at=time.time())
    return len(migrations)


def _check_version(db: peewee.SqliteDatabase, path: Path, migrations: list) -> int:
    current = schema_version(db)
    if current > len(migrations):
        raise DatabaseTooNew(
            f"{path} has schema version {current}, this Zishu knows {len(migrations)}: "
            "it was written by a newer Zishu; upgrade Zishu instead (nothing was changed)"
        )
    return current


def _backup(db: peewee.SqliteDatabase, dest: Path) -> None:
    """A consistent copy of the live database (SQLite's online backup), taken before a migration."""
    target = sqlite3.connect(str(dest))
    try:
        db.connection().backup(target)
    finally:
        target.close()


def get_setting(key: str, default: Any = None) -> Any:
    row = Setting.get_or_none(Setting.key == key)
    return default if row is None else json.loads(row.value)


def set_setting(key: str, value: Any) -> None:
    Setting.insert(key=key, value=json.dumps(value)).on_conflict_replace().execute()
