"""The local web app the window shows: Flask app factory, security, panels, API, server."""
