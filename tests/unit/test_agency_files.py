from pathlib import Path

import pytest

from exchange.agency_files import parse_csv, parse_json, read_agency_file
from exchange.errors import InvalidInput


def test_csv_rows_keep_their_line_numbers() -> None:
    text = 'organ_id,name,parent\n000.00.00.H26,City,\n\n000.00.01.H26,"Sở, Nội vụ",000.00.00.H26\n'
    inputs = parse_csv(text)
    assert [(i.line, i.values["organ_id"]) for i in inputs] == [(2, "000.00.00.H26"), (4, "000.00.01.H26")]
    assert inputs[1].values["name"] == "Sở, Nội vụ"


def test_csv_header_and_row_shape_problems_name_the_line() -> None:
    with pytest.raises(InvalidInput) as missing:
        parse_csv("organ_id,title\n000.00.00.H26,City\n")
    reasons = [(d.line, d.reason) for d in missing.value.details]
    assert (
        1,
        "unknown column 'title'; known: organ_id, name, parent, system, mode, endpoint, "
        "signature_policy, active, allow_sha1, max_attempts, max_age_s, pending, foreign_document_ids, "
        "attachment_signature_policy",
    ) in reasons
    assert (1, "required column 'name' is missing") in reasons

    with pytest.raises(InvalidInput) as ragged:
        parse_csv("organ_id,name\n000.00.00.H26,City\n000.00.01.H26,Dept,extra\n")
    assert [(d.line, d.reason) for d in ragged.value.details] == [(3, "3 cells where the header has 2")]


def test_json_entries_keep_their_line_numbers() -> None:
    text = (
        '[\n  {"organ_id": "000.00.00.H26", "name": "City"},\n\n'
        '  {"organ_id": "000.00.01.H26",\n   "name": "D"}\n]'
    )
    assert [i.line for i in parse_json(text)] == [2, 4]
    wrapped = '{"agencies": [\n{"organ_id": "000.00.00.H26", "name": "City"}]}'
    assert [i.line for i in parse_json(wrapped)] == [2]


def test_json_problems_name_the_line() -> None:
    with pytest.raises(InvalidInput) as broken:
        parse_json('[\n{"organ_id": "000.00.00.H26",\n "name": }\n]')
    assert broken.value.details[0].line == 3

    with pytest.raises(InvalidInput) as not_object:
        parse_json('[\n{"organ_id": "000.00.00.H26", "name": "x"},\n"oops"\n]')
    assert [(d.line, d.reason) for d in not_object.value.details] == [
        (3, "each agency must be a JSON object")
    ]

    with pytest.raises(InvalidInput, match="array"):
        parse_json('{"organ_id": "000.00.00.H26"}')


def test_format_is_chosen_by_extension_or_content(tmp_path: Path) -> None:
    as_json = tmp_path / "registry.txt"
    as_json.write_text('[{"organ_id": "000.00.00.H26", "name": "City"}]')
    assert read_agency_file(as_json)[0].values["name"] == "City"
    as_csv = tmp_path / "registry.csv"
    as_csv.write_text("\ufefforgan_id,name\n000.00.00.H26,City\n", encoding="utf-8")
    assert read_agency_file(as_csv)[0].values["organ_id"] == "000.00.00.H26"
