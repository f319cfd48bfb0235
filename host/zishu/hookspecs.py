"""The hooks plugins implement. Each says when the host calls it and what it returns.

Registration hooks take a ``register`` callback and are called once at start; each plugin's
implementation is called on its own, so one that raises is recorded (``zishu plugins``, the
Plugins panel) and the others still register. Core behaviour (the install job, the built-in
panels) is itself registered by internal plugins marked ``trylast``, so a third party can
override it. Event hooks follow the life of a download or a job; they must return quickly and
anything they raise is logged and ignored.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("zishu")
hookimpl = pluggy.HookimplMarker("zishu")


@hookspec
def register_routes(register) -> None:
    """Add pages or API routes to the app: call ``register(blueprint, nav=None)`` with a Flask
    ``Blueprint``; ``nav=("Label", "/path")`` also puts a link to it in the app's navigation."""


@hookspec
def register_engines(register) -> None:
    """Add inference engines: call ``register(engine)`` with an object that has an ``info``
    (``zishu.engines.EngineInfo``: kind, name, formats, capabilities) and ``load(model, device)``;
    subclass ``zishu.engines.Engine`` for the memory estimate and unloading. The first
    registration of a name wins."""


@hookspec
def register_job_types(register) -> None:
    """Add kinds of long work: call ``register(name, run, title=None, resumable=False, remote=False,
    model=None, arrived=None)``. The host
    calls ``run(ctx, **params)`` in a worker; ``ctx.progress(done, total, message)`` reports progress
    and raises ``JobCancelled`` once the user cancels. ``title(params)`` names a job for people.
    A ``resumable`` job cut off by a crash or a close runs again by itself at the next start.
    ``check=check(params, service)``, when given, runs at submit and returns the parameters to queue
    or raises (UsageError naming the field), so bad input is refused before it is queued.
    A ``remote`` job may run on another machine's ``zishu worker`` (on a Redis queue): it then reports
    through the same ``ctx``, and the files its result lists as ``result["files"]`` (paths relative to
    ZISHU_HOME) are copied back to the app's ZISHU_HOME. ``model=model(params)`` names the catalog model a
    remote job needs: it goes only to a node that has it (MODEL_NOT_AVAILABLE elsewhere, and rerouted);
    ``arrived=arrived(result, service)`` runs on the app once a remote job's files are in place.
    The first registration of a name wins (a plugin's before the core's)."""


@hookspec
def register_package_formats(register) -> None:
    """Add ways to share a character as a file: call ``register(name, suffixes, pack, open=None,
    modes=("standalone",), title="")``. ``pack(parts, mode, out, progress)`` writes the character
    ``parts`` (a plain view: ``parts.character`` its manifest, ``parts.files()`` its own files,
    ``parts.resources`` what it needs, each with ``files()``) to the path ``out`` and returns it;
    ``progress(done, total, message)`` reports bytes. ``open(path, workdir)``, when given, reads
    and verifies a file of one of ``suffixes`` into ``workdir`` and returns an opened package
    (``manifest``, ``root``, ``name``, ``summary()``) for the host to install. The first
    registration of a name wins (a plugin's before the core's ``zpkg`` and ``sillytavern-card``)."""


@hookspec
def on_job_start(job: dict) -> None:
    """A job moved to RUNNING. ``job`` is the job as the API shows it (id, kind, title, params, ...)."""


@hookspec
def on_job_progress(job: dict) -> None:
    """A running job reported progress (at most ten times a second per job)."""


@hookspec
def on_job_end(job: dict) -> None:
    """A job finished: ``job["status"]`` is SUCCESS, FAILED, CANCELLED or INTERRUPTED."""


@hookspec
def on_download_start(url: str, name: str, sha256: str | None, size: int | None, resumed_from: int) -> None:
    """A transfer of file ``name`` begins (``resumed_from`` > 0 when a partial file is reused)."""


@hookspec
def on_download_progress(name: str, done: int, total: int | None) -> None:
    """Bytes of ``name`` on disk so far, at most a few times a second. Must return quickly."""


@hookspec
def on_download_error(url: str, name: str, error: BaseException, will_retry: bool) -> None:
    """A transfer of ``name`` from ``url`` failed; ``will_retry`` tells whether another try follows."""


@hookspec
def on_download_complete(name: str, path: str, sha256: str, size: int) -> None:
    """File ``name`` was verified and moved into place at ``path``."""


@hookspec
def check_image(image, context: dict) -> dict | None:
    """Judge one picture the studio made, before it is shown: ``image`` is a ``PIL.Image.Image``;
    ``context`` holds ``safe_mode`` (bool: the user's setting, forced on for all-ages characters),
    ``prompt``, ``character`` (id or None), ``image_check_model`` (the path of the image classifier
    the user installed or chose, or None) and ``image_check_threshold`` (a float or None). Return
    None to say nothing, or ``{"blocked": bool, "reason": str, "scores": {label: float}}``. Any
    plugin saying blocked blocks the picture (it is kept, blurred, with the reason); one that raises
    is recorded and the others still judge."""
