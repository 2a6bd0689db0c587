"""Pages `serve` adds beside the API routes: the OpenAPI document and Swagger UI at /docs.

Swagger UI's assets are the copy Powertools ships in its package (the one its own `enable_swagger`
serves), so /docs works with no internet access and never changes under the project's feet: its
version moves only with the pinned aws-lambda-powertools.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from payments_cli.template import PROJECT_ROOT

OPENAPI_PATH = PROJECT_ROOT / "docs" / "openapi.json"
SWAGGER_UI_PACKAGE = "aws_lambda_powertools.event_handler.openapi.swagger_ui"
SWAGGER_UI_ASSETS = {
    "/docs/swagger-ui.css": ("swagger-ui.min.css", "text/css; charset=utf-8"),
    "/docs/swagger-ui-bundle.js": ("swagger-ui-bundle.min.js", "text/javascript; charset=utf-8"),
}

_SWAGGER_UI = """<!doctype html>
<html><head><meta charset="utf-8"><title>Willson payments API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui", docExpansion: "list"});
</script>
</body></html>
"""


def extra_pages(openapi_path: Path = OPENAPI_PATH) -> dict[str, tuple[str, bytes]]:
    pages = {"/docs": ("text/html; charset=utf-8", _SWAGGER_UI.encode("utf-8"))}
    assets = resources.files(SWAGGER_UI_PACKAGE)
    for path, (name, content_type) in SWAGGER_UI_ASSETS.items():
        pages[path] = (content_type, assets.joinpath(name).read_bytes())
    if openapi_path.exists():
        pages["/openapi.json"] = ("application/json", openapi_path.read_bytes())
    return pages
