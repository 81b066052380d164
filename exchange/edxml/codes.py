"""Code lists of QCVN 102:2016 as used in practice, with their Vietnamese labels."""

from __future__ import annotations

import enum


class StatusCode(enum.StrEnum):
    """Processing status reported in a status package (two-digit strings)."""

    ARRIVED = "01"
    REFUSED = "02"
    ACCEPTED = "03"
    ASSIGNED = "04"
    PROCESSING = "05"
    COMPLETED = "06"
    TAKE_BACK = "13"
    CHANGE_AGREED = "15"
    CHANGE_REFUSED = "16"

    @property
    def label(self) -> str:
        return STATUS_LABELS[self]

    @property
    def sent_by_sender(self) -> bool:
        """Only the take-back request travels from the sender to the recipients."""
        return self is StatusCode.TAKE_BACK


STATUS_LABELS = {
    StatusCode.ARRIVED: "Đã đến",
    StatusCode.REFUSED: "Từ chối tiếp nhận",
    StatusCode.ACCEPTED: "Đã tiếp nhận",
    StatusCode.ASSIGNED: "Phân công",
    StatusCode.PROCESSING: "Đang xử lý",
    StatusCode.COMPLETED: "Hoàn thành",
    StatusCode.TAKE_BACK: "Lấy lại",
    StatusCode.CHANGE_AGREED: "Đồng ý cập nhật/lấy lại",
    StatusCode.CHANGE_REFUSED: "Từ chối cập nhật/lấy lại",
}


class BusinessType(enum.IntEnum):
    """BussinessDocType: what an edoc does to the document it names."""

    NEW = 0
    REVOKE = 1
    UPDATE = 2
    REPLACE = 3

    @property
    def label(self) -> str:
        return BUSINESS_LABELS[self]


BUSINESS_LABELS = {
    BusinessType.NEW: "Văn bản mới",
    BusinessType.REVOKE: "Thu hồi",
    BusinessType.UPDATE: "Cập nhật",
    BusinessType.REPLACE: "Thay thế",
}


class Priority(enum.IntEnum):
    """Độ khẩn: urgency of a document (OtherInfo/Priority)."""

    NORMAL = 0
    URGENT = 1
    VERY_URGENT = 2
    FLASH = 3
    FLASH_SCHEDULED = 4

    @property
    def label(self) -> str:
        return PRIORITY_LABELS[self]


PRIORITY_LABELS = {
    Priority.NORMAL: "Thường",
    Priority.URGENT: "Khẩn",
    Priority.VERY_URGENT: "Thượng khẩn",
    Priority.FLASH: "Hỏa tốc",
    Priority.FLASH_SCHEDULED: "Hỏa tốc hẹn giờ",
}

# SteeringType: sources disagree (spec/edxml.md §2.1); 0/1/2 is the better supported reading.
STEERING_LABELS = {
    0: "Không phải văn bản chỉ đạo",
    1: "Văn bản chỉ đạo",
    2: "Báo cáo thực hiện chỉ đạo",
}
