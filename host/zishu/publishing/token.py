"""Where the user's GitHub token comes from, in this order: the ZISHU_GITHUB_TOKEN or GITHUB_TOKEN
environment variable, the OS keyring (service ``zishu``, user ``github``, through ``keyring``),
then the GitHub CLI's ``gh auth token``. Zishu only reads it; it is never written to a file."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping

from zishu.errors import UsageError

ENV_VARS = ("ZISHU_GITHUB_TOKEN", "GITHUB_TOKEN")
KEYRING_SERVICE, KEYRING_USER = "zishu", "github"

HOW_TO_GIVE_ONE = (
    "no GitHub token found; give one in any of three ways: "
    "(1) log in with the GitHub CLI: gh auth login; "
    "(2) set the ZISHU_GITHUB_TOKEN (or GITHUB_TOKEN) environment variable; "
    f"(3) store it in the OS keyring: keyring set {KEYRING_SERVICE} {KEYRING_USER}. "
    "The token needs the 'repo' scope (or, fine-grained: contents and pull requests, read and write)"
)


def github_token(environ: Mapping[str, str] | None = None) -> str:
    """The user's token; UsageError saying the three ways to give one when there is none."""
    found = find_github_token(environ)
    if found is None:
        raise UsageError(HOW_TO_GIVE_ONE)
    return found[0]


def find_github_token(environ: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """(token, where it came from), or None."""
    environ = os.environ if environ is None else environ
    for name in ENV_VARS:
        if environ.get(name, "").strip():
            return environ[name].strip(), f"the {name} environment variable"
    from_keyring = _keyring_token()
    if from_keyring:
        return from_keyring, "the OS keyring"
    from_gh = _gh_token(environ)
    if from_gh:
        return from_gh, "gh auth token"
    return None


def _keyring_token() -> str | None:
    try:
        import keyring
        from keyring.errors import KeyringError

        return (keyring.get_password(KEYRING_SERVICE, KEYRING_USER) or "").strip() or None
    except (ImportError, KeyringError, RuntimeError, OSError):
        return None  # no keyring on this machine: try the next place


def _gh_token(environ: Mapping[str, str]) -> str | None:
    gh = shutil.which("gh", path=environ.get("PATH"))
    if gh is None:
        return None
    try:
        done = subprocess.run([gh, "auth", "token"], capture_output=True, text=True, timeout=20,
                              env=dict(environ), check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None
