"""The web UI: server-rendered pages (Jinja2 + htmx), mounted on the API app by
:func:`segmint.web.app.mount_web`."""
