"""Publishing a user's own character back to the community catalog (``zishu publish``).

- ``token`` — the user's GitHub token: ZISHU_GITHUB_TOKEN / GITHUB_TOKEN, the OS keyring, or
  ``gh auth token``; Zishu never writes it anywhere;
- ``github`` — the few GitHub REST endpoints used, one small client that sends them or, for
  ``--dry-run``, records and prints them instead;
- ``manifest`` — the catalog manifest of a local character and its files, built with the same code
  as ``zishu catalog new`` (``zishu_catalog.scaffold``);
- ``publish`` — the steps in order: release, uploads, fork, branch, commit, pull request.
"""
