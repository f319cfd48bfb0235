"""The storyboard's tables in ``zishu.db``: ``Project``, its ``Shot`` rows in order, and the ``Step``
rows that make Undo possible (the project's shots as JSON, taken before each edit).

A shot's status is the seed's task state: PENDING (nothing made yet, or its text changed since),
RUNNING (its job is making the picture or the narration), SUCCESS (picture and narration are on
disk), FAILED (``error`` says why). Paths of made files are relative to the project's folder,
``ZISHU_HOME/storyboards/<project id>/``.
"""

from __future__ import annotations

import time

import peewee

from zishu.db import BaseModel

ASPECTS = {"16:9": (16, 9), "9:16": (9, 16), "1:1": (1, 1)}
RESOLUTIONS = {"720p": 720, "1080p": 1080}  # the short side, in pixels
SHOT_STATUSES = ("PENDING", "RUNNING", "SUCCESS", "FAILED")


class Project(BaseModel):
    id = peewee.AutoField()
    title = peewee.TextField()
    story = peewee.TextField()
    language = peewee.CharField()  # of the story, and so of the narration: "zh", "en", ...
    style = peewee.CharField(null=True)  # a studio style name
    aspect = peewee.CharField()  # one of ASPECTS
    resolution = peewee.CharField()  # one of RESOLUTIONS
    character = peewee.CharField(null=True)  # catalog id of the character who appears (its look, seed, voice)
    voice = peewee.TextField(null=True)  # JSON {"engine", "voice"}; None: the character's, else espeak-ng
    music = peewee.TextField(null=True)  # path of the background music file
    seed = peewee.IntegerField()  # every shot's picture uses it, so the character stays the same
    export = peewee.TextField(null=True)  # JSON: the last export's path, settings and duration
    created = peewee.FloatField(default=time.time)
    updated = peewee.FloatField(default=time.time)

    class Meta:
        table_name = "storyboard_project"


class Shot(BaseModel):
    id = peewee.AutoField()
    project = peewee.ForeignKeyField(Project, backref="shots", on_delete="CASCADE", column_name="project_id")
    position = peewee.IntegerField()  # 0, 1, 2 ... the order in the video
    prompt = peewee.TextField()  # English, for the image model
    narration = peewee.TextField()  # in the story's language
    duration = peewee.FloatField()  # seconds on screen (the narration's length, once spoken)
    image = peewee.TextField(null=True)
    clip = peewee.TextField(null=True)  # an image-to-video clip, when one was made
    audio = peewee.TextField(null=True)
    subtitle = peewee.TextField(default="")  # the subtitle's text (the narration unless edited)
    motion = peewee.CharField(default="")  # the Ken Burns move (``motion.MOVES``)
    status = peewee.CharField(default="PENDING")
    error = peewee.TextField(null=True)
    job_id = peewee.IntegerField(null=True)
    updated = peewee.FloatField(default=time.time)

    class Meta:
        table_name = "storyboard_shot"


class Step(BaseModel):
    """One undo step: the project's shots as they were before the edit named ``label``."""

    id = peewee.AutoField()
    project = peewee.ForeignKeyField(Project, on_delete="CASCADE", column_name="project_id")
    label = peewee.TextField()
    shots = peewee.TextField()
    created = peewee.FloatField(default=time.time)

    class Meta:
        table_name = "storyboard_step"
