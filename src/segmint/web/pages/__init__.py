"""Page routers of the web UI (one module per top-level page)."""
