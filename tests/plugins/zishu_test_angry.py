"""A plugin that imports fine but raises inside a hook."""

from zishu.hookspecs import hookimpl


@hookimpl
def register_job_types(register):
    raise ValueError("angry plugin refuses to register")


@hookimpl
def on_job_start(job):
    raise RuntimeError(f"angry plugin shouts at job {job['id']}")
