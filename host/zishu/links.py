"""``zishu://`` links: what the catalog site's buttons ask the app to show.

    zishu://install/<owner>/<name>[@version]   the resource's page, with its Install button
    zishu://resource/<owner>/<name>            the resource's page

Ids follow the one rule in ``zishu.ids`` (dotted names such as ``qwen/qwen2.5-0.5b`` too).
``location`` turns a link into the app path to open; anything else is refused with a message.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from zishu.errors import UsageError
from zishu.ids import is_id, is_version, split_request


def location(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme != "zishu":
        raise UsageError(f"{url!r} is not a zishu:// link")
    action, path = parts.netloc, parts.path.strip("/")
    rid, version = split_request(path)
    has_at = "@" in path
    if action not in ("install", "resource") or not is_id(rid) or (has_at and not is_version(version)):
        raise UsageError(f"{url!r}: expected zishu://install/OWNER/NAME or zishu://resource/OWNER/NAME")
    target = f"/resources/{rid}"
    if action == "install":
        target += "?install=" + quote(rid + (f"@{version}" if version else ""), safe="/@")
    return target
