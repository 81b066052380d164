"""Reading agency lists from CSV or JSON files, keeping each entry's line number.

CSV: a header row naming the columns (``organ_id,name,parent,system,mode,endpoint,
signature_policy,active,allow_sha1,max_attempts,max_age_s,pending,foreign_document_ids,
attachment_signature_policy``; only
``organ_id`` and ``name`` are required). JSON: an array of objects with the same keys, or
``{"agencies": [...]}``.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from exchange.errors import ErrorDetail, InvalidInput
from exchange.registry import AGENCY_FIELDS, AgencyInput

_REQUIRED_COLUMNS = ("organ_id", "name")


def read_agency_file(path: Path) -> list[AgencyInput]:
    """Parse ``path`` by its extension (``.csv`` or ``.json``), or by its first character."""
    try:
        text = path.read_text("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path} is not UTF-8 text: {exc}") from None
    if path.suffix.lower() == ".json" or (path.suffix.lower() != ".csv" and text.lstrip()[:1] in "[{"):
        return parse_json(text)
    return parse_csv(text)


def parse_csv(text: str) -> list[AgencyInput]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [column.strip().lower() for column in next(reader)]
    except StopIteration:
        raise InvalidInput("the CSV file is empty") from None
    problems = [
        ErrorDetail(f"unknown column {column!r}; known: {', '.join(AGENCY_FIELDS)}", line=1)
        for column in header
        if column not in AGENCY_FIELDS
    ]
    problems += [
        ErrorDetail(f"required column {column!r} is missing", line=1)
        for column in _REQUIRED_COLUMNS
        if column not in header
    ]
    if problems:
        raise InvalidInput("the CSV header is wrong", problems)

    inputs = []
    try:
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                problems.append(
                    ErrorDetail(f"{len(row)} cells where the header has {len(header)}", line=line)
                )
                continue
            inputs.append(AgencyInput(dict(zip(header, row, strict=True)), line))
    except csv.Error as exc:
        problems.append(ErrorDetail(f"not valid CSV: {exc}", line=reader.line_num))
    if problems:
        raise InvalidInput(f"nothing registered: {len(problems)} malformed CSV rows", problems)
    return inputs


def parse_json(text: str) -> list[AgencyInput]:
    """Decode a JSON array item by item, so that each problem can name its line."""
    decoder = json.JSONDecoder()
    try:
        document, _ = decoder.raw_decode(text, _skip_space(text, 0))
    except json.JSONDecodeError as exc:
        raise InvalidInput("not valid JSON", [ErrorDetail(exc.msg, line=exc.lineno)]) from None
    items: Any = document.get("agencies") if isinstance(document, dict) else document
    if not isinstance(items, list):
        raise InvalidInput('the JSON must be an array of agencies, or {"agencies": [...]}')

    # Decode again from the array's start to learn where each item begins.
    start = text.index("[", text.index('"agencies"') if isinstance(document, dict) else 0)
    position = _skip_space(text, start + 1)
    inputs, problems = [], []
    for item in items:
        line = text.count("\n", 0, position) + 1
        _, end = decoder.raw_decode(text, position)
        position = _skip_space(text, _skip_space(text, end) + 1)  # past the comma
        if not isinstance(item, dict):
            problems.append(ErrorDetail("each agency must be a JSON object", line=line))
            continue
        inputs.append(AgencyInput(item, line))
    if problems:
        raise InvalidInput("nothing registered: malformed JSON entries", problems)
    return inputs


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position].isspace():
        position += 1
    return position
