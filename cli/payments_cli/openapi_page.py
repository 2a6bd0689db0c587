"""Pages `serve` adds beside the API routes: the OpenAPI document and Swagger UI at /docs."""
from __future__ import annotations

from pathlib import Path

from payments_cli.template import PROJECT_ROOT

OPENAPI_PATH = PROJECT_ROOT / "docs" / "openapi.json"

_SWAGGER_UI = """<!doctype html>
<html><head><meta charset="utf-8"><title>Willson payments API</title>
<link rel="stylesheet" href="https://unpkg.com/swagger-ui-dist@5/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="https://unpkg.com/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui"});</script>
</body></html>
"""


def extra_pages(openapi_path: Path = OPENAPI_PATH) -> dict[str, tuple[str, bytes]]:
    pages = {"/docs": ("text/html; charset=utf-8", _SWAGGER_UI.encode("utf-8"))}
    if openapi_path.exists():
        pages["/openapi.json"] = ("application/json", openapi_path.read_bytes())
    return pages
