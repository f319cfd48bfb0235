"""Write docs/api.md, the list of every endpoint, from the app's routes (``zishu.web.api_doc``).

    python scripts/api_docs.py            rewrite docs/api.md
    python scripts/api_docs.py --check    exit 1 when docs/api.md is not what the routes say
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "api.md"


def generated() -> str:
    from zishu.runtime import Runtime
    from zishu.web.api_doc import build_document, markdown
    from zishu.web.app import create_app

    with tempfile.TemporaryDirectory() as home:
        runtime = Runtime(Path(home))
        try:
            return markdown(build_document(create_app(runtime))) + "\n"
        finally:
            runtime.close()


def main() -> int:
    text = generated()
    if "--check" in sys.argv[1:]:
        same = DOC.exists() and DOC.read_text(encoding="utf-8") == text
        print("docs/api.md is up to date" if same else "docs/api.md differs from the routes: run "
              "python scripts/api_docs.py", file=sys.stderr)
        return 0 if same else 1
    DOC.write_text(text, encoding="utf-8")
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
