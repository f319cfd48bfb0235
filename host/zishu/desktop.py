"""The Zishu window: a pywebview window over the local app, and what happens when there can be none.

``main`` is ``zishu app``. It starts the app (``zishu.web.server.start_app``) and opens it in a
pywebview window titled "Zishu" (Qt on Linux, the platform's own web view elsewhere); closing the
window stops the server and the runtime. Where no window is possible (no display, pywebview or its
GUI back end missing or failing) it says why in one sentence and serves for a browser instead.

It also owns:

- ``POST /api/window/open {"path": "/..."}``: shows an app page in the running window; ``zishu
  open`` uses it (with the secret from ``app.json``) so a ``zishu://`` link lands in the window, not
  in a browser. ``GET /api/window`` says which page the window shows. Only a window registers
  them; without one, they are absent (404). SIGTERM closes the window (a clean stop).
- ``--check PNG``, the packagers' smoke test: once the page has loaded, read its title and path
  by script in the page, confirm it is the app (not an error or 403 page), save a screenshot of the
  window, print one JSON line and exit (0 loaded, 1 not).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import signal
import sys
import threading
import time
from typing import Literal
from urllib.parse import urlsplit

from flask import Blueprint, current_app, jsonify, request

from zishu.errors import UsageError

log = logging.getLogger(__name__)

TITLE = "Zishu"
WINDOW_SIZE = (1200, 800)
MIN_SIZE = (800, 560)
CHECK_TIMEOUT = 60.0

window_api = Blueprint("window", __name__, url_prefix="/api/window")


@window_api.get("")
def shown():
    """The path of the page the window shows: ``{"path": "/discover"}``."""
    url = current_app.config["ZISHU_WINDOW"].get_current_url() or ""
    return jsonify(path=urlsplit(url).path or None)


@window_api.post("/open")
def open_in_window():
    """Show an app page in the window: ``{"path": "/resources/owner/name"}`` (a path in this app)."""
    body = request.get_json(silent=True)
    path = body.get("path") if isinstance(body, dict) else None
    if not isinstance(path, str) or not path.startswith("/") or path.startswith("//") or "\\" in path:
        raise UsageError('expected {"path": "/..."}, a path in this app')
    window = current_app.config["ZISHU_WINDOW"]
    window.load_url(current_app.config["ZISHU_WINDOW_BASE"] + path)
    if current_app.config["ZISHU_WINDOW_MINIMIZED"].is_set():
        window.restore()
    return jsonify(opened=path)


def add_window_routes(server, window) -> None:
    """Let ``zishu open`` show pages in ``window``, the pywebview window over ``server``."""
    minimized = threading.Event()
    window.events.minimized += minimized.set
    window.events.restored += minimized.clear
    window.events.maximized += minimized.clear
    server.app.config.update(ZISHU_WINDOW=window, ZISHU_WINDOW_BASE=server.browser_url.rstrip("/"),
                             ZISHU_WINDOW_MINIMIZED=minimized)
    server.app.register_blueprint(window_api)


# -- can there be a window? -------------------------------------------------------------------------


def _x11_reachable() -> bool:
    """Whether the X server named by DISPLAY accepts a connection (Qt aborts the process when not)."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("xcb")
    if not name:
        return True  # cannot tell; let Qt try
    try:
        xcb = ctypes.CDLL(name)
        xcb.xcb_connect.restype = ctypes.c_void_p
        xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
        xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
        xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
    except (OSError, AttributeError):
        return True
    conn = xcb.xcb_connect(None, None)
    try:
        return xcb.xcb_connection_has_error(conn) == 0
    finally:
        xcb.xcb_disconnect(conn)


def why_no_window() -> str | None:
    """None where a window can open; otherwise one sentence: the reason and what to do."""
    if platform.system() == "Linux":
        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            return ("No display is available (neither DISPLAY nor WAYLAND_DISPLAY is set), so Zishu cannot "
                    "open its window; run it in a desktop session to get one.")
        if not os.environ.get("WAYLAND_DISPLAY") and not _x11_reachable():
            return (f"The X display {os.environ['DISPLAY']!r} does not accept connections, so Zishu cannot "
                    "open its window; check DISPLAY (and xauth) or run it in a desktop session.")
    try:
        import webview  # noqa: F401
    except ImportError as e:
        return f"pywebview cannot be imported ({e}); install the window with: pip install 'zishu[desktop]'."
    if platform.system() == "Linux":
        try:
            import qtpy  # noqa: F401
            from qtpy import QtWebEngineWidgets  # noqa: F401
        except Exception as e:  # noqa: BLE001 - qtpy raises its own errors besides ImportError; any means no window
            return (f"Qt WebEngine cannot be loaded ({e}); install the window with: pip install "
                    "'zishu[desktop]' (and the Qt system libraries: scripts/ensure-system-packages.sh).")
    return None


def _chromium_flags_for_root() -> None:
    """Chromium's sandbox refuses to run as root; say --no-sandbox, keeping any flags already set."""
    if platform.system() == "Linux" and hasattr(os, "geteuid") and os.geteuid() == 0:
        flags = os.environ.get("QTWEBENGINE_CHROMIUM_FLAGS", "").split()
        if "--no-sandbox" not in flags:
            os.environ["QTWEBENGINE_CHROMIUM_FLAGS"] = " ".join([*flags, "--no-sandbox"])


def _register_url_scheme() -> None:
    if os.environ.get("ZISHU_NO_URL_SCHEME") == "1":
        return
    from zishu import urlscheme

    try:
        log.info("zishu:// links: %s", urlscheme.register())
    except Exception:
        log.warning("could not register the zishu:// URL scheme", exc_info=True)


def _say(sentence: str) -> None:
    print(sentence, file=sys.stderr, flush=True)


def _serve_for_browser(server, path: str) -> None:
    from zishu.web.server import serve_until_stopped

    if path != "/":
        _say(f"The link's page: {server.url_with_secret(path)}")
    serve_until_stopped(server)


# -- the window -----------------------------------------------------------------------------------


def main(port: int = 0, check_path: str | None = None, path: str = "/") -> None:
    """``zishu app``: the window over the app; or, where there can be no window, serve for a browser."""
    from zishu.web.server import start_app

    reason = why_no_window()
    if reason and check_path:
        _say(f"zishu app --check: {reason}")
        raise SystemExit(1)
    if reason:
        _say(f"{reason} Serving for a browser instead.")
        _serve_for_browser(start_app(port=port), path)
        return

    _chromium_flags_for_root()
    import webview

    server = start_app(port=port)
    window = webview.create_window(TITLE, server.url_with_secret(path), width=WINDOW_SIZE[0],
                                   height=WINDOW_SIZE[1], min_size=MIN_SIZE)
    assert window is not None  # None only when an events.initialized handler cancels it; none is set

    add_window_routes(server, window)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=window.destroy, daemon=True).start())
    gui: Literal["qt"] | None = "qt" if platform.system() == "Linux" else None
    outcome: dict = {}
    try:
        if check_path:
            webview.start(_check, (window, check_path, outcome), gui=gui)
        else:
            _register_url_scheme()
            webview.start(gui=gui)
    except Exception as e:  # noqa: BLE001 - the GUI back end failed to start (it may raise anything): serve instead
        if check_path:
            server.stop()
            server.runtime.close()
            _say(f"zishu app --check: the window failed to start ({type(e).__name__}: {e}).")
            raise SystemExit(1) from None
        _say(f"The window failed to start ({type(e).__name__}: {e}); install 'zishu[desktop]' or check the "
             "display. Serving for a browser instead.")
        _serve_for_browser(server, path)
        return
    server.stop()
    server.runtime.close()
    if check_path and not outcome.get("loaded"):
        raise SystemExit(1)


_PAGE_STATE = """JSON.stringify({
  ready: document.readyState,
  title: document.title,
  path: location.pathname,
  nav: !!document.querySelector('nav'),
  busy: !!document.querySelector('[aria-busy="true"]'),
  status: (performance.getEntriesByType('navigation')[0] || {}).responseStatus || null
})"""


def _page_state(window) -> dict:
    """The page's title, path, navigation and HTTP status, read by script in the window.

    The app's CSP forbids eval, which pywebview's ``evaluate_js`` wraps scripts in; ``run_js`` runs
    the script as is (and returns its value on Qt), so it comes first.
    """
    found = window.run_js(_PAGE_STATE)
    if not isinstance(found, str):
        found = window.evaluate_js(_PAGE_STATE)
    return json.loads(found) if isinstance(found, str) else (found or {})


def _check(window, png: str, outcome: dict) -> None:
    """On pywebview's worker thread: wait for the app page, screenshot it, report, close the window."""
    state: dict = {}
    try:
        deadline = time.monotonic() + CHECK_TIMEOUT
        while time.monotonic() < deadline:
            if window.events.loaded.wait(1):
                state = _page_state(window)
                if _is_app_page(state):
                    break
            time.sleep(0.2)
        else:
            _say(f"zishu app --check: the app did not load in the window within {CHECK_TIMEOUT:.0f} s "
                 f"(last seen: {json.dumps(state, ensure_ascii=False)}).")
            return
        outcome.update(loaded=True, title=state["title"], path=state["path"], screenshot=None)
        size = _screenshot(window, png)
        if size:
            outcome.update(screenshot=os.path.abspath(png), size=list(size))
        else:
            _say("zishu app --check: screenshots are supported with the Qt back end only; the page loaded.")
        print(json.dumps(outcome, ensure_ascii=False), flush=True)
    except Exception as e:  # noqa: BLE001 - on pywebview's thread: anything is reported, the window still closes
        outcome["loaded"] = False
        _say(f"zishu app --check failed: {type(e).__name__}: {e}")
    finally:
        window.destroy()


def _is_app_page(state: dict) -> bool:
    """The app's own page: complete, titled for the app, with its navigation, answered 200, and
    done filling itself in (no element marked aria-busy, e.g. Discover's first search)."""
    return (state.get("ready") == "complete" and TITLE in str(state.get("title", ""))
            and bool(state.get("nav")) and not state.get("busy") and state.get("status") in (None, 200))


def _screenshot(window, png: str) -> tuple[int, int] | None:
    """Save the window as PNG (grabbed on the Qt GUI thread); its size, or None off the Qt back end."""
    from webview.platforms import qt as backend

    if window.gui is not backend:
        return None
    from qtpy.QtCore import QMetaObject, QObject, Qt, Slot
    from qtpy.QtWidgets import QApplication

    class Grabber(QObject):
        result: tuple[int, int] | None = None
        error: str | None = None

        @Slot()
        def grab(self) -> None:
            try:
                native = window.native
                pixmap = native.grab()
                if pixmap.isNull() or _flat(pixmap.toImage()):  # web content not in the widget tree
                    pixmap = native.screen().grabWindow(0, *_frame(native))
                if not pixmap.save(png, "PNG"):
                    raise OSError(f"could not write {png}")
                self.result = (pixmap.width(), pixmap.height())
            except Exception as e:  # noqa: BLE001 - nothing may escape a Qt slot: handed to the caller, who raises it
                self.error = f"{type(e).__name__}: {e}"

    grabber = Grabber()
    app = QApplication.instance()
    assert app is not None  # the Qt back end is running: the window is on it
    grabber.moveToThread(app.thread())  # its slot then runs on the GUI thread
    QMetaObject.invokeMethod(grabber, "grab", Qt.ConnectionType.BlockingQueuedConnection)
    if grabber.error:
        raise RuntimeError(f"screenshot failed: {grabber.error}")
    return grabber.result


def _frame(native) -> tuple[int, int, int, int]:
    top_left = native.mapToGlobal(native.rect().topLeft())
    return top_left.x(), top_left.y(), native.width(), native.height()


def _flat(image) -> bool:
    """Whether a QImage is one colour throughout (sampled on a grid)."""
    first = image.pixel(0, 0)
    return all(image.pixel(x, y) == first
               for x in range(0, image.width(), max(1, image.width() // 40))
               for y in range(0, image.height(), max(1, image.height() // 40)))
