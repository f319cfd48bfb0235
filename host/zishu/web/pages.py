"""The app's pages: Discover, Library, Jobs, Plugins, Settings (server-rendered, small JS)."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template

pages = Blueprint("pages", __name__)


@pages.get("/")
def home():
    return redirect("/discover")


@pages.get("/discover")
def discover():
    return render_template("discover.html", active="/discover")
