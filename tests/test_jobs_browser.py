"""The Jobs panel in headless Chromium while an install waits out a network outage: the badge and
the message say so, live, and Cancel ends the wait."""

from __future__ import annotations

import socket

import pytest

from conftest import AppProcess, watched_page

pytestmark = pytest.mark.browser

WAIT = 30_000  # ms


def test_the_jobs_panel_shows_an_install_waiting_for_the_network_and_cancel_ends_it(app_env, browser):
    from playwright.sync_api import expect

    env, server, _ = app_env

    def offline(handler) -> bool:  # every connection dies before an answer
        handler.close_connection = True
        handler.connection.shutdown(socket.SHUT_RDWR)
        return True

    server.faults["/files/big.bin"] = offline
    with AppProcess(env) as app, watched_page(browser, app.login_url) as ui:
        app.api("POST", "/api/installs", json={"request": "zishu/big-model"})
        ui.get_by_test_id("nav-jobs").click()
        job = ui.get_by_test_id("job").first
        expect(job.get_by_test_id("job-status")).to_have_text("Waiting for network", timeout=WAIT)
        expect(job.get_by_test_id("job-message")).to_contain_text("waiting for the network")
        expect(job.get_by_test_id("job-message")).to_contain_text("big.bin")
        job.get_by_test_id("job-cancel").click()
        expect(job.get_by_test_id("job-status")).to_have_text("Cancelled", timeout=WAIT)
        expect(job.get_by_test_id("job-retry")).to_be_visible()
