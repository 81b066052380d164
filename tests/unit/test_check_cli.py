"""``exchange check``: the offline report, its JSON, and its exit status."""

import json

import pytest

from exchange.cli import run
from tests.edxml_factories import MALFORMED_SAMPLES, VALID_SAMPLES, sample_path


def test_all_valid_samples_exit_0_with_a_report(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["check", *map(str, VALID_SAMPLES)]) == 0
    out = capsys.readouterr().out
    assert out.count(": valid ") == len(VALID_SAMPLES)
    assert "business type 0 Văn bản mới" in out
    assert "1896_QD-TTg_m_294779.doc (application/msword, 388347 bytes, unzipped)" in out
    assert "status        06 Hoàn thành" in out
    assert "signature     present (not verified offline), edxml-namespace layout, line 84" in out


def test_any_invalid_file_makes_the_exit_status_1(capsys: pytest.CaptureFixture[str]) -> None:
    files = [str(sample_path("status.edxml")), *map(str, MALFORMED_SAMPLES)]
    assert run(["check", *files, "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is False
    by_name = {entry["file"].rsplit("/", 1)[-1]: entry for entry in report["files"]}
    assert by_name["status.edxml"]["valid"] is True
    assert by_name["status.edxml"]["status_code"] == "01 Đã đến"
    stray = by_name["edoc_stray_bytes_before_prolog.edxml"]
    assert (stray["valid"], stray["error_code"]) == (False, "not_well_formed")
    assert stray["problems"] == [{"line": 1, "reason": "4 stray bytes b'1212' before the XML declaration"}]
    unbound = by_name["edoc_unbound_prefix.edxml"]
    assert unbound["problems"][0]["line"] == 116


def test_check_needs_files(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["check"]) == 2
    assert run(["check", "/nonexistent.edxml"]) == 2
