"""``zishu://`` links: what the catalog site's buttons ask the app to show.

    zishu://install/<owner>/<name>[@version]   the resource's page, with its Install button
    zishu://resource/<owner>/<name>            the resource's page

``location`` turns a link into the app path to open; anything else is refused with a message.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

from zishu.errors import UsageError

_ID = re.compile(r"^([a-z0-9][a-z0-9-]{0,63})/([a-z0-9][a-z0-9-]{0,63})(?:@([0-9A-Za-z.+-]{1,64}))?$")


def location(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme != "zishu":
        raise UsageError(f"{url!r} is not a zishu:// link")
    action, path = parts.netloc, parts.path.strip("/")
    match = _ID.match(path.lower())
    if action not in ("install", "resource") or not match:
        raise UsageError(f"{url!r}: expected zishu://install/OWNER/NAME or zishu://resource/OWNER/NAME")
    owner, name, version = match.groups()
    target = f"/resources/{owner}/{name}"
    if action == "install":
        target += "?install=" + quote(f"{owner}/{name}" + (f"@{version}" if version else ""), safe="/@")
    return target
