"""A plugin that imports fine but raises inside a hook."""

from zishu.hookspecs import hookimpl


@hookimpl
def register_job_types(register):
    raise ValueError("angry plugin refuses to register")
