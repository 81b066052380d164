"""Demo traffic: realistic documents sent through the real API, and the recipients' answers.

Each demo agency's DMS is imitated over HTTP with its own key: it signs packages with its
development certificate, posts them, reads its inbox, downloads, acknowledges and reports
statuses back (01 arrived ... 06 completed, or 02 refused), some on time, some late, a
few never (overdue). One document is revoked before anybody reads it, one is replaced,
and one commune's push endpoint is down, so its copies are retried and given up.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from exchange.clock import VIETNAM, now
from exchange.demo import AGENCIES, DOWN_AGENCY
from exchange.edxml.builder import build_edoc, build_status
from exchange.edxml.codes import BusinessType, Priority, StatusCode
from exchange.edxml.model import (
    Attachment,
    Bussiness,
    Code,
    DocumentType,
    Edoc,
    Organization,
    OtherInfo,
    PromulgationInfo,
    Reference,
    ReplacementInfo,
    ResponseFor,
    SignerInfo,
    StaffInfo,
    Status,
    TraceHeader,
)
from exchange.errors import ExchangeError
from exchange.settings import Settings
from exchange.trust import devca
from exchange.trust.signing import Signer, sign_package

SUBJECTS = (
    "V/v triển khai kế hoạch cải cách hành chính năm 2027",
    "V/v báo cáo tình hình thực hiện dự toán ngân sách quý IV",
    "V/v góp ý dự thảo quy chế phối hợp quản lý trật tự xây dựng",
    "V/v tổ chức hội nghị tổng kết công tác chuyển đổi số",
    "V/v rà soát, cập nhật danh mục thủ tục hành chính",
    "V/v tăng cường phòng, chống thiên tai mùa mưa bão",
    "V/v đề nghị cung cấp số liệu biên chế công chức, viên chức",
    "V/v kiểm tra công tác văn thư, lưu trữ năm 2026",
    "V/v phân bổ kinh phí sửa chữa trụ sở làm việc",
    "V/v hướng dẫn sử dụng chữ ký số trong văn bản điện tử",
    "V/v cấp phép xây dựng công trình trường học",
    "V/v chuẩn bị nội dung phiên họp thường kỳ tháng 12",
)
KINDS = (
    ("Công văn", 1, "CV"),
    ("Quyết định", 2, "QĐ"),
    ("Tờ trình", 3, "TTr"),
    ("Báo cáo", 4, "BC"),
    ("Kế hoạch", 5, "KH"),
    ("Thông báo", 6, "TB"),
)
ABBREVIATIONS = {
    "000.00.00.G22": "VPCP",
    "000.00.00.H26": "UBND",
    "000.00.01.H26": "SNV",
    "000.00.02.H26": "STC",
    "000.00.03.H26": "SXD",
    "000.00.12.H26": "UBQ",
    "000.00.13.H26": "UBH",
    "000.05.12.H26": "UBP",
    "000.06.12.H26": "UBP",
    "000.05.13.H26": "UBX",
}
# A few documents carry only the signer's signature, not the agency's seal: not official.
UNSEALED_SHARE = 0.15


class DemoPdfs:
    """The demo's attached documents: a PDF signed by the sender's leader and sealed by the agency
    (the development document CA), made once per sender; some carry the person's signature only."""

    def __init__(self, pki: Mapping[str, Path]) -> None:
        self._pki = pki
        self._made: dict[tuple[str, bool], bytes] = {}

    def __call__(self, sender: str, sealed: bool) -> bytes:
        if (sender, sealed) not in self._made:
            self._made[sender, sealed] = self._sign(sender, sealed)
        return self._made[sender, sealed]

    def _sign(self, sender: str, sealed: bool) -> bytes:
        def issued(label: str) -> devca.Issued:
            key_label = label.replace(":", "_key:") if ":" in label else f"{label}_key"
            return devca.load_issued(self._pki[label], self._pki[key_label])

        ca = issued("document_ca")
        person = issued(f"document_person:{sender}")
        pdf = devca.make_pdf(f"Văn bản điện tử của {sender}")
        if not sealed:
            return devca.sign_pdf(pdf, person, field_name="NguoiKy", chain=(ca,))
        return devca.sign_official_pdf(pdf, person, issued(f"document_organization:{sender}"), ca)


class DemoFailed(ExchangeError):
    code = "demo_failed"


@dataclass
class Sent:
    sender: str
    edoc: Edoc
    recipients: tuple[str, ...]
    overdue: bool


@dataclass
class Summary:
    """What the traffic did, for the command's output."""

    documents: int = 0
    statuses: int = 0
    downloads: int = 0
    by_type: dict[str, int] = field(default_factory=dict)


@asynccontextmanager
async def demo_server(settings: Settings, database_url: str) -> AsyncIterator[str]:
    """The axis itself, in this process on a free local port, for the time of the traffic."""
    from exchange.app import create_app  # the CLI's other commands need no web application

    server = settings.server.model_copy(update={"host": "127.0.0.1", "port": 0})
    runner = web.AppRunner(create_app(settings.model_copy(update={"server": server}), database_url))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


class Dms:
    """One agency's document-management system, as the axis sees it: a key and a certificate."""

    def __init__(self, session: aiohttp.ClientSession, base: str, key: str, signer: Signer) -> None:
        self.session, self.base, self.signer = session, base, signer
        self.headers = {"Authorization": f"Bearer {key}"}

    async def send(self, data: bytes) -> dict[str, Any]:
        signed = sign_package(data, self.signer)
        async with self.session.post(f"{self.base}/v1/packages", data=signed, headers=self.headers) as answer:
            body = await answer.json()
            if answer.status >= 300:
                raise DemoFailed(f"the axis refused a demo package ({answer.status}): {body}")
            return dict(body)

    async def get(self, path: str) -> tuple[int, bytes]:
        async with self.session.get(f"{self.base}{path}", headers=self.headers) as answer:
            return answer.status, await answer.read()

    async def post_json(self, path: str, body: dict[str, Any]) -> int:
        async with self.session.post(f"{self.base}{path}", json=body, headers=self.headers) as answer:
            await answer.read()
            return answer.status


async def send_traffic(
    base: str, keys: Mapping[str, str], pki: Mapping[str, Path], count: int, seed: int | None = None
) -> Summary:
    rng = random.Random(seed)  # noqa: S311 (made-up traffic, not secrets)
    systems = {organ_id: system for organ_id, _, _, system in AGENCIES}
    names = {organ_id: name for organ_id, name, *_ in AGENCIES}
    summary = Summary()
    async with aiohttp.ClientSession() as session:
        dms = {
            organ_id: Dms(
                session,
                base,
                keys[system],
                Signer.from_files(pki[f"agency:{organ_id}"], pki[f"agency_key:{organ_id}"]),
            )
            for organ_id, system in systems.items()
        }
        run = now().astimezone(VIETNAM)
        pdfs = DemoPdfs(pki)
        sent = []
        for n in range(count):
            document = _document(rng, n, run, names, pdfs)
            await dms[document.sender].send(build_edoc(document.edoc))
            sent.append(document)
            _count(summary, "Văn bản mới")
        summary.documents = len(sent)
        await _revoke_and_replace(rng, dms, sent, summary, run)
        results = await asyncio.gather(
            *(
                _recipient_works(rng, organ_id, dms[organ_id], sent)
                for organ_id in dms
                if organ_id != DOWN_AGENCY
            )
        )
        for downloads, statuses in results:
            summary.downloads += downloads
            summary.statuses += statuses
    return summary


def _count(summary: Summary, kind: str) -> None:
    summary.by_type[kind] = summary.by_type.get(kind, 0) + 1


def _document(rng: random.Random, n: int, run: datetime, names: Mapping[str, str], pdfs: DemoPdfs) -> Sent:
    organ_ids = list(names)
    sender = rng.choice(organ_ids)
    recipients = tuple(
        rng.sample([o for o in organ_ids if o != sender], rng.choices([1, 2, 3], [5, 3, 2])[0])
    )
    kind, kind_code, short = rng.choice(KINDS)
    number = f"{n + 1}{run:%H%M%S}"
    notation = f"{short}-{ABBREVIATIONS.get(sender, 'VP')}"
    today = run.date()
    overdue = rng.random() < 0.12
    due: date | None
    if overdue:
        due = today - timedelta(days=rng.randint(1, 6))
    else:
        due = None if rng.random() < 0.1 else today + timedelta(days=rng.randint(2, 20))
    priority = rng.choices(list(Priority), [60, 20, 10, 7, 3])[0]
    edoc = Edoc(
        sender=Organization(sender, organ_name=names[sender], organization_in_charge=names[sender]),
        recipients=tuple(Organization(r, organ_name=names[r]) for r in recipients),
        document_id=f"{sender},{run:%Y/%m/%d},{number}/{notation}",
        code=Code(number, notation),
        promulgation_info=PromulgationInfo(today, "Thành phố"),
        document_type=DocumentType(kind, kind_code, 0),
        subject=rng.choice(SUBJECTS),
        trace_headers=(TraceHeader(run.replace(tzinfo=None, microsecond=0), sender),),
        signer_info=SignerInfo("Thủ trưởng cơ quan", "Giám đốc", "Nguyễn Văn An"),
        due_date=due,
        other_info=OtherInfo(priority=priority, page_amount=rng.randint(1, 12)),
        bussiness=Bussiness(BusinessType.NEW, reason="Văn bản điện tử mới"),
        references=(Reference("cid:1", "application/pdf", attachment_name="van-ban.pdf"),),
        attachments=(
            Attachment(
                "cid:1",
                base64.b64encode(pdfs(sender, sealed=rng.random() >= UNSEALED_SHARE)).decode(),
                "van-ban.pdf",
                content_type="application/pdf",
            ),
        ),
    )
    return Sent(sender, edoc, recipients, overdue)


async def _revoke_and_replace(
    rng: random.Random, dms: Mapping[str, Dms], sent: list[Sent], summary: Summary, run: datetime
) -> None:
    """The sender takes one document back before anybody read it, and replaces another."""
    if len(sent) < 4:
        return
    revoked, replaced = sent[-1], sent[-2]
    await dms[revoked.sender].send(
        build_edoc(
            replace(
                revoked.edoc,
                document_id=revoked.edoc.document_id + "/TH",
                subject="Thu hồi: " + revoked.edoc.subject,
                bussiness=Bussiness(
                    BusinessType.REVOKE, document_id=revoked.edoc.document_id, reason="Ban hành nhầm"
                ),
            )
        )
    )
    sent.remove(revoked)
    _count(summary, "Thu hồi")
    successor = replace(
        replaced.edoc,
        document_id=replaced.edoc.document_id + "/TT",
        subject="Thay thế: " + replaced.edoc.subject,
        bussiness=Bussiness(
            BusinessType.REPLACE,
            reason="Sửa sai sót về số liệu",
            replacements=(ReplacementInfo(replaced.edoc.document_id, replaced.recipients),),
        ),
    )
    await dms[replaced.sender].send(build_edoc(successor))
    sent.append(Sent(replaced.sender, successor, replaced.recipients, False))
    _count(summary, "Thay thế")


# How a recipient's handling of a copy ends: the statuses it reports, in order.
_ENDINGS = {
    "completed": ("01", "03", "04", "05", "06"),
    "working": ("01", "03", "04"),
    "accepted": ("01", "03"),
    "refused": ("01", "02"),
    "arrived": ("01",),
    "out_of_order": ("01", "03", "06", "05"),
}


async def _recipient_works(rng: random.Random, organ_id: str, dms: Dms, sent: list[Sent]) -> tuple[int, int]:
    """Read the inbox, take every package, confirm it, and report statuses on the documents."""
    documents = {s.edoc.document_id: s for s in sent}
    downloads = statuses = 0
    status, body = await dms.get("/v1/inbox?limit=500")
    if status != 200:
        raise DemoFailed(f"{organ_id} could not read its inbox ({status})")
    for item in json.loads(body)["items"]:
        got, _ = await dms.get(f"/v1/deliveries/{item['delivery_id']}/package")
        if got != 200:
            continue  # withdrawn meanwhile
        downloads += 1
        await dms.post_json(f"/v1/deliveries/{item['delivery_id']}/ack", {"result": "done"})
        document = documents.get(item["document_id"]) if item["kind"] == "edoc" else None
        if document is None:
            continue
        for code in _ENDINGS[_ending(rng, document)]:
            await dms.send(build_status(_status(organ_id, document, StatusCode(code))))
            statuses += 1
    return downloads, statuses


def _ending(rng: random.Random, document: Sent) -> str:
    if document.overdue:  # a past deadline: mostly still open, some done late
        return rng.choices(["arrived", "working", "completed"], [3, 4, 3])[0]
    return rng.choices(
        ["completed", "working", "accepted", "refused", "arrived", "out_of_order"], [50, 15, 10, 8, 12, 2]
    )[0]


def _status(reporter: str, document: Sent, code: StatusCode) -> Status:
    edoc = document.edoc
    return Status(
        sender=Organization(reporter),
        response_for=ResponseFor(
            edoc.sender.organ_id,
            f"{edoc.code.code_number}/{edoc.code.code_notation}",
            edoc.document_id,
            edoc.promulgation_info.promulgation_date,
        ),
        status_code=code,
        timestamp=now().astimezone(VIETNAM).replace(tzinfo=None, microsecond=0),
        staff_info=StaffInfo(department="Văn phòng", staff="Trần Thị Bình"),
        description=code.label,
    )


def write_sample_package(directory: Path, pki: Mapping[str, Path]) -> Path:
    """A new document from Sở Nội vụ to Sở Tài chính and the Government Office, signed, ready for
    ``exchange send FILE --as so-noi-vu`` (a fresh DocumentId each time it is written)."""
    sender, recipients = "000.00.01.H26", ("000.00.02.H26", "000.00.00.G22")
    names = {organ_id: name for organ_id, name, *_ in AGENCIES}
    run = now().astimezone(VIETNAM)
    pdfs = DemoPdfs(pki)
    document = _document(random.Random(0), 0, run, names, pdfs)  # noqa: S311 (made-up content)
    edoc = replace(
        document.edoc,
        attachments=(
            Attachment(
                "cid:1",
                base64.b64encode(pdfs(sender, sealed=True)).decode(),
                "van-ban.pdf",
                content_type="application/pdf",
            ),
        ),
        sender=Organization(sender, organ_name=names[sender], organization_in_charge=names[sender]),
        recipients=tuple(Organization(r, organ_name=names[r]) for r in recipients),
        document_id=f"{sender},{run:%Y/%m/%d},{run:%H%M%S}/SNV-VP",
        code=Code(f"{run:%H%M%S}", "SNV-VP"),
        trace_headers=(TraceHeader(run.replace(tzinfo=None, microsecond=0), sender),),
        due_date=run.date() + timedelta(days=10),
    )
    signer = Signer.from_files(pki[f"agency:{sender}"], pki[f"agency_key:{sender}"])
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "so-noi-vu-new-document.edxml"
    path.write_bytes(sign_package(build_edoc(edoc), signer))
    return path
