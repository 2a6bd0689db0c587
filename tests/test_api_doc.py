"""docs/api.md says what docs/openapi.json (generated from the code) says; the docs never link outside the repo."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT

API_DOC = ROOT / "docs" / "api.md"
OPENAPI = ROOT / "docs" / "openapi.json"
SECTIONS = {
    "/api/v1/asker/payment/progress": ("### Payment progress errors", "code"),
    "/v1.0/db/swap": ("### Swap errors", "return"),
}
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)[^)]*\)")


def documented(section: str) -> dict[str, tuple[int, str]]:
    """code → (HTTP status, message cell) from the table under `section` in docs/api.md."""
    text = API_DOC.read_text(encoding="utf-8")
    start = text.index(section + "\n")
    end = text.find("\n#", start + len(section))
    rows: dict[str, tuple[int, str]] = {}
    for line in text[start : end if end != -1 else None].splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and re.fullmatch(r"\d{3}", cells[1]):
            code = cells[0].strip("`")
            assert code not in rows, f"{code} documented twice in {section}"
            rows[code] = (int(cells[1]), cells[2])
    return rows


def specified(path: str, field: str) -> dict[str, tuple[int, str | None]]:
    """code → (HTTP status, fixed message or None) of every error response of `path` in openapi.json."""
    document = json.loads(OPENAPI.read_text(encoding="utf-8"))
    found: dict[str, tuple[int, str | None]] = {}
    for status, response in document["paths"][path]["post"]["responses"].items():
        if status.startswith("2"):
            continue
        schema: dict[str, Any] = response["content"]["application/json"]["schema"]
        for option in schema["anyOf"]:
            code = str(option["properties"][field]["const"])
            message = option["properties"]["message"].get("const")
            assert code not in found, f"{code} under two statuses of {path}"
            found[code] = (int(status), message)
    return found


@pytest.mark.parametrize("path", sorted(SECTIONS))
def test_api_doc_lists_every_error_code_with_its_status_and_message(path: str) -> None:
    section, field = SECTIONS[path]
    in_doc = documented(section)
    in_spec = specified(path, field)
    assert {code: status for code, (status, _) in in_doc.items()} == {
        code: status for code, (status, _) in in_spec.items()
    }
    for code, (_, message) in in_spec.items():
        if message is not None:
            assert in_doc[code][1] == f"`{message}`", f"{code}: docs/api.md says {in_doc[code][1]}, not `{message}`"


def test_api_doc_tables_are_read() -> None:
    # the parser above finds both tables (so the comparison cannot pass on two empty sides)
    from payments.errors import DASHBOARD_CATALOGUE, WILLSON_CATALOGUE

    assert len(documented("### Payment progress errors")) == len({entry.code for entry in WILLSON_CATALOGUE.values()})
    assert len(documented("### Swap errors")) == len({entry.code for entry in DASHBOARD_CATALOGUE.values()})


@pytest.mark.parametrize(
    "document", [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))], ids=lambda path: path.name
)
def test_docs_link_only_inside_the_repository(document: Path) -> None:
    for target in LINK.findall(document.read_text(encoding="utf-8")):
        assert "://" not in target and not target.startswith(("//", "mailto:")), f"{document.name} links {target}"
        if target.startswith("#"):
            continue
        resolved = (document.parent / target.split("#")[0]).resolve()
        assert resolved.is_relative_to(ROOT.resolve()), f"{document.name} links outside the repository: {target}"
        assert resolved.exists(), f"{document.name} links a missing file: {target}"
