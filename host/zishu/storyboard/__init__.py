"""Storyboard to video (issue 16): a story becomes illustrated, narrated shots and an MP4, all local.

- ``records``: the project, shot and undo-step tables (migration v5 in ``zishu.db``).
- ``projects``: ``Storyboards``, the service every interface calls: projects, shots, edits with Undo.
- ``writer``: story → shots by the local LLM, its answer held to a JSON schema (a llama.cpp grammar).
- ``narration``: a shot's narration spoken by a TTS engine into a WAV; the shot lasts as long as it.
- ``motion``: the pan-and-zoom (Ken Burns) move of each shot.
- ``export``: the MP4 through Debian's ffmpeg CLI (crossfades, subtitles, ducked music, progress, cancel).
- ``jobs``: the ``storyboard-shot`` and ``storyboard-export`` job types.
"""
