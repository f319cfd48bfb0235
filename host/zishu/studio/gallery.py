"""The gallery: every picture the studio made, as a file under ``ZISHU_HOME/studio/`` and a row of
the ``studio_image`` table (migration v4 in ``zishu.db``; v6 adds ``parent_id``).

Files are PNGs named by day and a random id (``studio/2026-12-04/3f2a….png``), each carrying
AUTOMATIC1111's ``parameters`` text chunk (``metadata``), written atomically. The table holds the
settings (searchable by prompt or character), the request that made the picture with its own seed
(``reuse`` hands it back to draw again), the result-cache key, favourite, the trash (``trash`` and
``restore``: delete with Undo; ``empty_trash`` removes the files) and the safety verdict
(``blocked``, ``blocked_reason``: a blocked picture stays listed, with its reason). A picture made
from another (upscaled, its background removed) names it in ``parent_id``.
"""

from __future__ import annotations

import io
import json
import time
import uuid
from pathlib import Path
from typing import Any

import peewee

from zishu.db import BaseModel
from zishu.errors import NotFound
from zishu.files import adjacent_tmp_file

FOLDER = "studio"
MAX_PAGE = 500


class StudioImage(BaseModel):
    id = peewee.AutoField()
    created = peewee.FloatField()
    file = peewee.TextField()  # relative to ZISHU_HOME/studio, "/"-separated
    job_id = peewee.IntegerField(null=True)
    prompt = peewee.TextField()
    negative_prompt = peewee.TextField()
    character = peewee.CharField(null=True)
    style = peewee.CharField(null=True)
    model = peewee.TextField()
    model_hash = peewee.CharField()
    seed = peewee.IntegerField()
    width = peewee.IntegerField()
    height = peewee.IntegerField()
    steps = peewee.IntegerField()
    guidance = peewee.FloatField()
    scheduler = peewee.CharField(null=True)
    request = peewee.TextField()  # JSON: the studio ImageRequest with this picture's seed and batch 1
    parameters = peewee.TextField()  # the A1111 text in the file
    cache_key = peewee.CharField(null=True, index=True)
    batch_index = peewee.IntegerField()
    favourite = peewee.BooleanField(default=False)
    deleted_at = peewee.FloatField(null=True)
    blocked = peewee.BooleanField(default=False)
    blocked_reason = peewee.TextField(null=True)
    parent_id = peewee.IntegerField(null=True)  # the picture this one was made from (upscaled, cut out)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "created": self.created, "url": f"/api/studio/files/{self.file}", "file": self.file,
                "job_id": self.job_id, "prompt": self.prompt, "negative_prompt": self.negative_prompt,
                "character": self.character, "style": self.style, "model": self.model,
                "model_hash": self.model_hash, "seed": self.seed, "width": self.width, "height": self.height,
                "steps": self.steps, "guidance": self.guidance, "scheduler": self.scheduler,
                "parameters": self.parameters, "favourite": self.favourite, "deleted": self.deleted_at is not None,
                "blocked": self.blocked, "blocked_reason": self.blocked_reason, "parent": self.parent_id}


class Gallery:
    """The pictures of one ZISHU_HOME (the database must be open: ``zishu.db.open_database``)."""

    def __init__(self, home: Path) -> None:
        self.folder = Path(home) / FOLDER

    def add(self, image, *, parameters: str, fields: dict[str, Any]) -> StudioImage:
        """Write ``image`` (PIL) as a PNG with its ``parameters`` chunk and record it with ``fields``
        (the columns of ``StudioImage``)."""
        from PIL.PngImagePlugin import PngInfo

        relative = f"{time.strftime('%Y-%m-%d')}/{uuid.uuid4().hex}.png"
        info = PngInfo()
        info.add_text("parameters", parameters)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", pnginfo=info)
        with adjacent_tmp_file(self.folder / relative) as f:
            f.write(buffer.getvalue())
        return StudioImage.create(created=time.time(), file=relative, parameters=parameters, **fields)

    def get(self, image_id: int) -> StudioImage:
        found = StudioImage.get_or_none(StudioImage.id == image_id)
        if found is None:
            raise NotFound(f"no picture {image_id} in the gallery")
        return found

    def path(self, row: StudioImage) -> Path:
        return self.folder / row.file

    def search(self, text: str = "", *, character: str | None = None, favourite: bool | None = None,
               trash: bool = False, offset: int = 0, limit: int = 60) -> tuple[list[StudioImage], int]:
        """Newest first: pictures whose prompt or character holds ``text`` (any case), of
        ``character``, favourites only, or those in the trash; and how many match in all."""
        query = StudioImage.select().where(StudioImage.deleted_at.is_null(not trash))
        if text.strip():
            like = f"%{text.strip()}%"
            query = query.where(StudioImage.prompt ** like | StudioImage.character ** like)
        if character:
            query = query.where(StudioImage.character == character)
        if favourite is not None:
            query = query.where(StudioImage.favourite == favourite)
        total = query.count()
        rows = list(query.order_by(StudioImage.id.desc()).offset(offset).limit(min(limit, MAX_PAGE)))
        return rows, total

    def favourite(self, image_id: int, on: bool = True) -> StudioImage:
        row = self.get(image_id)
        StudioImage.update(favourite=on).where(StudioImage.id == image_id).execute()
        row.favourite = on
        return row

    def trash(self, image_id: int) -> StudioImage:
        """Put a picture in the trash (its file stays until ``empty_trash``); ``restore`` undoes it."""
        row = self.get(image_id)
        if row.deleted_at is None:
            row.deleted_at = time.time()
            StudioImage.update(deleted_at=row.deleted_at).where(StudioImage.id == image_id).execute()
        return row

    def restore(self, image_id: int) -> StudioImage:
        row = self.get(image_id)
        StudioImage.update(deleted_at=None).where(StudioImage.id == image_id).execute()
        row.deleted_at = None
        return row

    def empty_trash(self, older_than: float = 0.0) -> int:
        """Delete the pictures trashed more than ``older_than`` seconds ago, files and rows."""
        cutoff = time.time() - older_than
        gone = list(StudioImage.select().where(StudioImage.deleted_at.is_null(False)
                                               & (StudioImage.deleted_at <= cutoff)))
        for row in gone:
            self.path(row).unlink(missing_ok=True)
            row.delete_instance()
        return len(gone)

    def reuse(self, image_id: int) -> dict[str, Any]:
        """The request that made this picture (its own seed, batch 1): "reuse these settings"."""
        return json.loads(self.get(image_id).request)

    def label(self, rows: list[StudioImage], **labels: str | None) -> list[StudioImage]:
        """``rows`` with their ``character`` and ``style`` set to ``labels`` (what a picture drawn for
        another node was asked as, the node having been sent the fields they expand to)."""
        if not labels or not rows:
            return rows
        StudioImage.update(**labels).where(StudioImage.id.in_([row.id for row in rows])).execute()
        return [self.get(row.id) for row in rows]

    def mark_blocked(self, image_id: int, reason: str) -> StudioImage:
        """Record the safety check's verdict: the picture stays in the gallery, shown blurred with ``reason``."""
        StudioImage.update(blocked=True, blocked_reason=reason).where(StudioImage.id == image_id).execute()
        return self.get(image_id)

    def cached(self, cache_key: str) -> list[StudioImage]:
        """The kept pictures made for ``cache_key`` (not in the trash, files still there), in batch order."""
        rows = list(StudioImage.select().where((StudioImage.cache_key == cache_key)
                                               & StudioImage.deleted_at.is_null())
                    .order_by(StudioImage.batch_index, StudioImage.id.desc()))
        first: dict[int, StudioImage] = {}
        for row in rows:
            if row.batch_index not in first and self.path(row).is_file():
                first[row.batch_index] = row
        return [first[n] for n in sorted(first)]
