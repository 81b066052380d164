"""The Vietnamese vocabulary of the pages, and the charts' scales and empty state."""

from datetime import UTC, date, datetime

import pytest

from exchange.charts import bar_chart, nice_ticks
from exchange.errors import InvalidInput
from exchange.reporting import named_period, period, sort_figures
from exchange.store.deliveries import STATES
from exchange.store.reports import AgencyFigures
from exchange.vocabulary import (
    TRANSPORT_STATES,
    Agencies,
    EventContext,
    event_fields,
    event_sentence,
    number,
    parse_vn_date,
    status_label,
    vn_time,
)

NAMES = Agencies({"000.00.01.H26": "Sở Nội vụ", "000.00.00.G22": "Văn phòng Chính phủ"})
CTX = EventContext(NAMES, "000.00.01.H26", {"d1": "000.00.00.G22"}, {"s1": "000.00.00.G22"})


def test_times_are_vietnamese_and_minute_precise() -> None:
    assert vn_time(datetime(2026, 11, 30, 17, 5, 59, 123456, tzinfo=UTC)) == "01/12/2026 00:05"
    assert parse_vn_date("1/12/2026") == date(2026, 12, 1)
    assert parse_vn_date("2026-12-01") == date(2026, 12, 1)
    with pytest.raises(ValueError, match="dd/mm/yyyy"):
        parse_vn_date("31/02/2026")


def test_every_state_and_status_has_words() -> None:
    assert set(TRANSPORT_STATES) == set(STATES)
    assert status_label("03") == "03 Đã tiếp nhận"
    assert status_label("06") == "06 Hoàn thành"
    assert NAMES.label("000.00.01.H26") == "Sở Nội vụ (000.00.01.H26)"
    assert NAMES.label("999.99.99.Z99") == "999.99.99.Z99"
    assert number(1234) == "1.234"
    assert number(12.5) == "12,5"


@pytest.mark.parametrize(
    ("action", "details", "delivery_id", "message_id", "sentence"),
    [
        ("message.accepted", {"kind": "edoc", "business_type": 0}, None, None, "Sở Nội vụ gửi văn bản"),
        (
            "message.accepted",
            {"kind": "edoc", "business_type": 1},
            None,
            None,
            "Sở Nội vụ gửi yêu cầu thu hồi",
        ),
        ("delivery.downloaded", {"recipient": "000.00.00.G22"}, "d1", None, "Văn phòng Chính phủ đã tải về"),
        (
            "status.recorded",
            {"code": "03", "by": "000.00.00.G22"},
            "d1",
            None,
            "Văn phòng Chính phủ báo 03 Đã tiếp nhận",
        ),
        (
            "message.accepted",
            {"kind": "status", "status_code": "01"},
            None,
            "s1",
            "Văn phòng Chính phủ gửi gói trạng thái 01 Đã đến",
        ),
        ("delivery.requeued", {}, "d1", None, "Đưa bản gửi Văn phòng Chính phủ trở lại hàng chờ chuyển"),
        (
            "delivery.withdrawn",
            {"reason": "revoked before download"},
            "d1",
            None,
            "Thu hồi bản gửi Văn phòng Chính phủ: văn bản bị thu hồi trước khi tải về",
        ),
    ],
)
def test_events_read_as_sentences(
    action: str, details: dict[str, object], delivery_id: str | None, message_id: str | None, sentence: str
) -> None:
    assert event_sentence(action, details, delivery_id, CTX, message_id) == sentence


def test_details_are_labelled_fields() -> None:
    fields = event_fields(
        {
            "attempt": 2,
            "error": "HTTP 503",
            "next_attempt_at": "2026-11-30T01:00:00+00:00",
            "recipient": "000.00.00.G22",
        },
        NAMES,
    )
    assert fields == [
        ("Lần gửi", "2"),
        ("Lỗi", "HTTP 503"),
        ("Gửi lại lúc", "30/11/2026 08:00"),
        ("Đơn vị nhận", "Văn phòng Chính phủ (000.00.00.G22)"),
    ]


def test_charts_have_a_round_scale_and_say_when_empty() -> None:
    assert nice_ticks(37) == [0, 10, 20, 30, 40]
    assert nice_ticks(0.9) == [0, 0.25, 0.5, 0.75, 1.0]
    chart = str(bar_chart("Văn bản", ["01/11", "02/11"], [("văn bản", [3, 37])]))
    assert 'viewBox="0 0 420 240"' in chart
    assert ">40</text>" in chart  # the top of the y axis
    assert ">01/11</text>" in chart
    empty = str(bar_chart("Văn bản", [], [("văn bản", [])]))
    assert "Chưa có dữ liệu" in empty
    assert "<rect x=" not in empty.replace("<rect x='1'", "")
    assert "&lt;b&gt;" in str(bar_chart("<b>", ["<b>"], [("<b>", [1])]))


def test_periods_and_sorting() -> None:
    assert named_period("2026-02").last == date(2026, 2, 28)
    quarter = named_period("2026-Q4")
    assert (quarter.first, quarter.last) == (date(2026, 10, 1), date(2026, 12, 31))
    assert quarter.start.isoformat() == "2026-10-01T00:00:00+07:00"
    with pytest.raises(InvalidInput):
        named_period("2026-13")
    with pytest.raises(InvalidInput):
        period(date(2026, 2, 1), date(2026, 1, 1))
    rows = [
        AgencyFigures("a", "A", 1, 5, 0, 0, 0, 0, 0, 0, None, None),
        AgencyFigures("b", "B", 3, 2, 0, 0, 0, 0, 0, 0, 2.0, 3.0),
    ]
    assert [r.organ_id for r in sort_figures(rows, "sent", descending=True)] == ["b", "a"]
    assert [r.organ_id for r in sort_figures(rows, "median_hours_to_complete", descending=True)] == ["b", "a"]
    assert [r.organ_id for r in sort_figures(rows, "median_hours_to_complete", descending=False)] == [
        "b",
        "a",
    ]
    with pytest.raises(InvalidInput):
        sort_figures(rows, "subject", descending=False)
