"""The one Vietnamese vocabulary of the pages and exports: states, statuses, verdicts, events, times.

The JSON API keeps its codes and ISO times; everything a person reads (the auditor pages,
the public page, CSV and XLSX reports) goes through here, so a word is chosen once.
Code lists of the standard (status, business type, priority) keep their labels in
``exchange.edxml.codes``; this module only uses them.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from exchange.clock import VIETNAM
from exchange.edxml.codes import (
    BUSINESS_LABELS,
    PRIORITY_LABELS,
    STATUS_LABELS,
    BusinessType,
    Priority,
    StatusCode,
)

# Transport states of a delivery (deliveries.state).
TRANSPORT_STATES: dict[str, str] = {
    "queued": "Chờ chuyển",
    "sending": "Đang chuyển",
    "delivered": "Đã đến đơn vị nhận",
    "acked": "Đơn vị nhận đã xác nhận",
    "retry_wait": "Chờ gửi lại",
    "failed": "Chuyển thất bại",
    "expired": "Quá thời hạn chuyển",
    "withdrawn": "Đã thu hồi",
}
# How a recipient gets its copies (agencies.delivery_mode).
DELIVERY_MODES: dict[str, str] = {
    "pull": "Đơn vị tự lấy về",
    "push": "Trục đẩy đến",
    "upstream": "Chuyển tiếp lên trục cấp trên",
}
# Verdicts on a package's XML signature.
SIGNATURE_VERDICTS: dict[str, str] = {
    "valid": "Chữ ký số hợp lệ",
    "invalid": "Chữ ký số không hợp lệ (nội dung hoặc chữ ký bị sai lệch)",
    "untrusted": "Chữ ký số đúng nhưng chứng thư số không được tin cậy",
    "absent": "Không có chữ ký số",
    "not-checked": "Không kiểm tra chữ ký số (theo chính sách của đơn vị)",
}
# Verdicts on a signature inside an attached PDF (exchange.trust.pdf_signatures), and whose it is.
PDF_SIGNATURE_VERDICTS: dict[str, str] = {
    "valid": "Hợp lệ",
    "invalid": "Không hợp lệ",
    "untrusted": "Không tin cậy",
    "unverifiable": "Không kiểm tra được",
}
SIGNER_KINDS: dict[str, str] = {"person": "Cá nhân", "organization": "Cơ quan, tổ chức"}
# Whether a document is overdue, on the pages.
DEADLINE_STATES: dict[str, str] = {
    "overdue": "Quá hạn",
    "open": "Trong hạn",
    "none": "Không có hạn xử lý",
}
# Why a copy was withdrawn (the reasons the axis writes in its audit entries).
_WITHDRAW_REASONS = {
    "revoked before download": "văn bản bị thu hồi trước khi tải về",
    "take-back agreed (15)": "đơn vị nhận đồng ý trả lại (15)",
    "removed by an update (2)": "bị bỏ khỏi danh sách nhận khi cập nhật (2)",
}
# Labels of the event details shown as fields (keys the axis writes into audit entries).
DETAIL_LABELS: dict[str, str] = {
    "attempt": "Lần gửi",
    "error": "Lỗi",
    "reason": "Lý do",
    "next_attempt_at": "Gửi lại lúc",
    "result": "Kết quả",
    "remote_id": "Mã ở trục cấp trên",
    "recipient": "Đơn vị nhận",
    "by": "Đơn vị báo",
    "mode": "Cách nhận",
    "flag": "Ghi chú",
    "note": "Ghi chú",
    "first": "Lần tải đầu",
    "kind": "Loại gói",
    "document_id": "Mã văn bản",
    "sha256": "SHA-256",
    "size_bytes": "Kích thước (byte)",
    "business_type": "Nghiệp vụ",
    "status_code": "Trạng thái",
    "verdict": "Kết quả kiểm tra",
    "signer": "Người ký",
    "organ_id": "Đơn vị của chứng thư",
    "algorithm": "Thuật toán",
    "layout": "Dạng chữ ký",
    "fingerprint": "Dấu vân tay chứng thư",
    "code": "Trạng thái",
    "status_message_id": "Gói trạng thái",
}
# Details that repeat what the sentence or the summary already says, or that only an engineer needs
# (they stay in the JSON trace and the evidence bundle).
_HIDDEN_DETAILS = {
    "label",
    "kind",
    "document_id",
    "business_type",
    "status_code",
    "code",
    "by",
    "sha256",
    "fingerprint",
    "layout",
    "algorithm",
    "status_message_id",
    "first",
    "verdict",
}


def fold(text: str) -> str:
    """Lower case without diacritics: "so noi vu" finds "Sở Nội vụ", and "Ủy ban" sorts before "Văn"."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower().strip()


def vn_time(moment: datetime | None) -> str:
    """A moment as Vietnamese people read it: dd/mm/yyyy HH:mm in Vietnam time (UTC+7)."""
    if moment is None:
        return ""
    if moment.tzinfo is None:  # the standard's own timestamps are already Vietnamese local time
        return f"{moment:%d/%m/%Y %H:%M}"
    return f"{moment.astimezone(VIETNAM):%d/%m/%Y %H:%M}"


def vn_date(day: date | None) -> str:
    return "" if day is None else f"{day:%d/%m/%Y}"


def parse_vn_date(raw: str) -> date:
    """A date typed as dd/mm/yyyy (or yyyy-mm-dd, as a date picker sends it); ValueError if neither."""
    text = raw.strip()
    for layout in ("%d/%m/%Y", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, layout).date()
        except ValueError:
            continue
    raise ValueError(f"{raw!r} is not a date (dd/mm/yyyy)")


def duration(hours: float | None) -> str:
    """A span of hours as "3 giờ 20 phút" or "2 ngày 4 giờ"."""
    if hours is None:
        return ""
    minutes = round(hours * 60)
    days, rest = divmod(minutes, 24 * 60)
    whole_hours, mins = divmod(rest, 60)
    if days:
        return f"{days} ngày {whole_hours} giờ"
    if whole_hours:
        return f"{whole_hours} giờ {mins} phút"
    return f"{mins} phút"


def transport_state(state: str) -> str:
    return TRANSPORT_STATES.get(state, state)


def delivery_mode(mode: str) -> str:
    return DELIVERY_MODES.get(mode, mode)


def status_label(code: str | None) -> str:
    """A business status with its code: "03 Đã tiếp nhận"."""
    if not code:
        return ""
    try:
        return f"{code} {STATUS_LABELS[StatusCode(code)]}"
    except ValueError:
        return code


def business_label(kind: int) -> str:
    try:
        return BUSINESS_LABELS[BusinessType(kind)]
    except ValueError:
        return str(kind)


def priority_label(urgency: int) -> str:
    """The stored urgency (0..3; Priority 3 and 4 are both kept as 3) in words."""
    try:
        return PRIORITY_LABELS[Priority(urgency)]
    except ValueError:
        return str(urgency)


def verdict_label(verdict: str | None) -> str:
    return SIGNATURE_VERDICTS.get(verdict or "", verdict or "")


def pdf_verdict_label(verdict: str | None) -> str:
    return PDF_SIGNATURE_VERDICTS.get(verdict or "", verdict or "")


def signer_kind_label(kind: str | None) -> str:
    return SIGNER_KINDS.get(kind or "", "")


def withdraw_reason(reason: str | None) -> str:
    return _WITHDRAW_REASONS.get(reason or "", reason or "")


class Agencies:
    """Agency names by OrganId, for writing "Sở Nội vụ (000.00.01.H26)" and event sentences."""

    def __init__(self, names: Mapping[str, str]) -> None:
        self._names = dict(names)

    def name(self, organ_id: str | None) -> str:
        """The agency's name, or its OrganId when the registry does not know it."""
        if not organ_id:
            return ""
        return self._names.get(organ_id, organ_id)

    def label(self, organ_id: str | None) -> str:
        if not organ_id:
            return ""
        name = self._names.get(organ_id)
        return organ_id if name is None or name == organ_id else f"{name} ({organ_id})"

    def __contains__(self, organ_id: object) -> bool:
        return organ_id in self._names

    def items(self) -> list[tuple[str, str]]:
        return sorted(self._names.items(), key=lambda item: (fold(item[1]), item[0]))


@dataclass(frozen=True)
class EventContext:
    """What a sentence needs beyond the entry: the document's sender and who each delivery is for."""

    agencies: Agencies
    sender: str
    recipients: Mapping[str, str]  # delivery id -> recipient OrganId
    senders: Mapping[str, str]  # message id -> sender OrganId (the document and its status packages)


def event_sentence(
    action: str,
    details: Mapping[str, Any],
    delivery_id: str | None,
    ctx: EventContext,
    message_id: str | None = None,
) -> str:
    """One audit entry as a sentence: "Sở Nội vụ gửi văn bản", "Sở Tài chính báo 03 Đã tiếp nhận"."""
    recipient = ctx.agencies.name(details.get("recipient") or ctx.recipients.get(delivery_id or "", ""))
    write = _SENTENCES.get(action)
    if write is None:
        return action
    if action == "message.accepted" and details.get("kind") == "status":
        reporter = ctx.agencies.name(ctx.senders.get(message_id or "", "")) or "Đơn vị nhận"
        return f"{reporter} gửi gói trạng thái {status_label(details.get('status_code'))}"
    return write(details, recipient, ctx)


def _accepted(details: Mapping[str, Any], _: str, ctx: EventContext) -> str:
    kind = details.get("business_type", 0)
    verb = {1: "gửi yêu cầu thu hồi", 2: "gửi bản cập nhật", 3: "gửi văn bản thay thế"}.get(
        kind, "gửi văn bản"
    )
    return f"{ctx.agencies.name(ctx.sender)} {verb}"


def _retry(details: Mapping[str, Any], recipient: str, _: EventContext) -> str:
    return f"Chuyển đến {recipient} không thành công (lần {details.get('attempt', '?')}), sẽ gửi lại"


_SENTENCES: dict[str, Callable[[Mapping[str, Any], str, EventContext], str]] = {
    "message.accepted": _accepted,
    "signature.checked": lambda d, _r, _c: f"Kiểm tra chữ ký số: {verdict_label(d.get('verdict'))}",
    "delivery.created": lambda _d, r, _c: f"Tạo bản chuyển đến {r}",
    "delivery.pushed": lambda _d, r, _c: f"Trục đã chuyển văn bản đến {r}",
    "delivery.forwarded": lambda _d, r, _c: f"Trục đã chuyển tiếp lên trục cấp trên cho {r}",
    "delivery.retry_scheduled": _retry,
    "delivery.failed": lambda d, r, _c: f"Ngừng chuyển đến {r}: thất bại sau {d.get('attempt', '?')} lần",
    "delivery.expired": lambda _d, r, _c: f"Ngừng chuyển đến {r}: quá thời hạn chuyển",
    "delivery.downloaded": lambda _d, r, _c: f"{r} đã tải về",
    "delivery.ack_done": lambda _d, r, _c: f"{r} xác nhận đã nhận",
    "delivery.ack_fail": lambda _d, r, _c: f"{r} báo chưa nhận được, văn bản trở lại hộp thư",
    "delivery.processing": lambda _d, r, _c: f"{r} báo đang xử lý",
    "delivery.withdrawn": lambda d, r, _c: f"Thu hồi bản gửi {r}: {withdraw_reason(d.get('reason'))}",
    "delivery.requeued": lambda _d, r, _c: f"Đưa bản gửi {r} trở lại hàng chờ chuyển",
    "status.recorded": lambda d, _r, c: f"{c.agencies.name(d.get('by'))} báo {status_label(d.get('code'))}",
    "retention.body_removed": lambda _d, _r, _c: "Xóa nội dung gói theo thời hạn lưu trữ (hồ sơ còn nguyên)",
}


def event_fields(details: Mapping[str, Any], agencies: Agencies) -> list[tuple[str, str]]:
    """An entry's details as labelled fields in Vietnamese, not JSON."""
    fields = []
    for key, value in details.items():
        if key in _HIDDEN_DETAILS or value is None or value == "":
            continue
        fields.append((DETAIL_LABELS.get(key, key), _field_value(key, value, agencies)))
    return fields


def _field_value(key: str, value: Any, agencies: Agencies) -> str:
    if key in ("recipient", "by", "organ_id"):
        return agencies.label(str(value))
    if key == "next_attempt_at":
        try:
            return vn_time(datetime.fromisoformat(str(value)))
        except ValueError:
            return str(value)
    if key in ("code", "status_code"):
        return status_label(str(value))
    if key == "business_type":
        return business_label(int(value))
    if key == "verdict":
        return verdict_label(str(value))
    if key == "mode":
        return delivery_mode(str(value))
    if key == "reason":
        return withdraw_reason(str(value))
    if isinstance(value, bool):
        return "có" if value else "không"
    return str(value)


# Column headers of the agency report, in the order of its exports.
REPORT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("organ_id", "Mã định danh"),
    ("name", "Đơn vị"),
    ("sent", "Văn bản gửi"),
    ("received", "Văn bản nhận"),
    ("processed_on_time", "Xử lý đúng hạn"),
    ("late", "Xử lý trễ hạn"),
    ("overdue", "Quá hạn chưa xử lý"),
    ("rejected", "Từ chối"),
    ("pending", "Đang xử lý, còn hạn"),
    ("failed_deliveries", "Chuyển thất bại"),
    ("median_hours_to_complete", "Trung vị thời gian hoàn thành (giờ)"),
    ("p90_hours_to_complete", "P90 thời gian hoàn thành (giờ)"),
)
# Columns of the public progress feed (aggregate counts only).
PUBLIC_COLUMNS: tuple[tuple[str, str], ...] = (
    ("organ_id", "Mã định danh"),
    ("name", "Đơn vị"),
    ("month", "Tháng"),
    ("sent", "Văn bản gửi"),
    ("received", "Văn bản nhận"),
    ("processed_on_time", "Xử lý đúng hạn"),
    ("overdue", "Quá hạn"),
)


def _vn_time_filter(value: datetime | str | None) -> str:
    if isinstance(value, str):
        return vn_time(datetime.fromisoformat(value)) if value else ""
    return vn_time(value)


def _vn_date_filter(value: date | str | None) -> str:
    if isinstance(value, str):
        return vn_date(date.fromisoformat(value)) if value else ""
    return vn_date(value)


def number(value: float | None) -> str:
    """Counts and hours with Vietnamese separators: 1.234 and 12,5."""
    if value is None:
        return ""
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}".replace(",", ".")
    return f"{value:,.1f}".replace(",", " ").replace(".", ",").replace(" ", ".")


# Jinja filters of the pages: {{ d.state | transport_state }}, {{ m.received_at | vn_time }}...
FILTERS: dict[str, Callable[..., str]] = {
    "vn_time": _vn_time_filter,
    "vn_date": _vn_date_filter,
    "transport_state": transport_state,
    "delivery_mode": delivery_mode,
    "status_label": status_label,
    "business_label": business_label,
    "priority_label": priority_label,
    "verdict_label": verdict_label,
    "pdf_verdict_label": pdf_verdict_label,
    "signer_kind_label": signer_kind_label,
    "duration": duration,
    "number": number,
}
