"""The printable documents: the rectification order and the incident record
carry every field the regulations name, in the reader's language, with the
Chinese font embedded so the text prints and can be read back; the sign-up
poster names its unit and the three steps; `frontline poster` fails in one line."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import START, demo_database
from pypdf import PdfReader

from bot import cli, documents
from bot.app import App
from bot.store import hazards, incidents
from bot.store.incidents import NewIncident

NOW = "2026-11-27T01:00:00+00:00"
ZONE = "Asia/Shanghai"  # the deployment's default, for units that set none


def pdf_text(path: Path) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(path).pages)


def seed_order(conn: sqlite3.Connection, org: dict[str, int]) -> str:
    """Hazard YH-2026-0001 with its four fixes, and order ZG-2026-001 on it."""
    unit = conn.execute("SELECT unit_id FROM staff WHERE id = ?", (org["陈磊"],)).fetchone()[0]
    hazard_id = hazards.create(
        conn,
        unit_id=unit,
        reported_by=org["张伟"],
        source="report",
        description="配电箱门锁损坏",
        photo=None,
        severity="general",
        deadline_at="2026-11-28T15:59:59+00:00",
        now=NOW,
        place="3号楼配电房",
    )
    conn.execute(
        "UPDATE hazards SET status = 'in_progress', responsible_id = ?, measure = '更换门锁',"
        " funding = '1200.50' WHERE id = ?",
        (org["陈磊"], hazard_id),
    )
    return hazards.issue_order(
        conn,
        hazard_id=hazard_id,
        issued_by=org["刘强"],
        deadline_at="2026-11-30T10:00:00+00:00",
        requirement="三日内更换门锁并加挂警示牌",
        now=NOW,
        year=2026,
    )


def seed_incident(conn: sqlite3.Connection, org: dict[str, int]) -> sqlite3.Row:
    unit = conn.execute("SELECT unit_id FROM staff WHERE id = ?", (org["张伟"],)).fetchone()[0]
    incident_id = incidents.create(
        conn,
        NewIncident(
            unit_id=unit,
            reported_by=org["张伟"],
            occurred_at=NOW,
            place="3号楼B座楼梯间",
            kind="injury",
            description="巡逻时在楼梯间滑倒，扭伤脚踝",
            hurt_count=1,
            hurt_names="陈磊",
            first_actions="已送医，现场已拉警戒线",
            photos=[],
            report_due_at="2026-12-12T15:59:00+00:00",
        ),
        year=2026,
        now=NOW,
    )
    incidents.record_investigation(
        conn,
        incident_id,
        status="concluded",
        responsible="一班班长",
        findings="楼梯防滑条脱落",
        actor_id=org["刘强"],
        now=NOW,
    )
    hazard_id = hazards.create(
        conn,
        unit_id=unit,
        reported_by=org["刘强"],
        source=f"incident:{incident_id}",
        description="更换楼梯防滑条",
        photo=None,
        severity="general",
        deadline_at="2026-11-28T15:59:59+00:00",
        now=NOW,
    )
    incidents.add_action(
        conn,
        incident_id,
        description="更换楼梯防滑条",
        hazard_id=hazard_id,
        actor_id=org["刘强"],
        now=NOW,
    )
    row = incidents.get(conn, incident_id)
    assert row is not None
    return row


async def test_the_order_carries_the_regulation_fields_in_chinese(
    app: App, org: dict[str, int], tmp_path: Path
) -> None:
    path = await app.db.transaction(
        lambda conn: documents.order_pdf(
            conn, seed_order(conn, org), "zh-CN", default_timezone=ZONE, now=START
        )
    )
    assert path.endswith("/ZG-2026-001.pdf")
    stored = tmp_path / "media" / path
    text = pdf_text(stored)
    for label in (
        "隐患整改通知书",
        "隐患编号",
        "单位",
        "地点",
        "隐患描述",
        "整改责任人",
        "整改措施",
        "整改期限",
        "整改资金",
        "整改要求",
        "签发时间",
        "签发人（签字）",
        "整改责任人（签字）",
        "单位负责人（签字）",
    ):
        assert label in text, label
    for value in (
        "ZG-2026-001",
        "YH-2026-0001",
        "保安部",
        "3号楼配电房",
        "配电箱门锁损坏",
        "陈磊",
        "更换门锁",
        "2026-11-30 18:00",  # the order's deadline, local time
        "1200.50 元",
        "三日内更换门锁并加挂警示牌",
        "刘强",
    ):
        assert value in text, value
    content = stored.read_bytes()
    assert b"/FontFile2" in content and b"WenQuanYiMicroHei" in content  # embedded, prints anywhere
    assert stored.stat().st_mode & 0o077 == 0  # personal data: the service's user only


async def test_the_order_in_english_and_the_same_order_is_stored_once(
    app: App, org: dict[str, int], tmp_path: Path
) -> None:
    number = await app.db.transaction(lambda conn: seed_order(conn, org))
    english = await app.db.read(
        lambda conn: documents.order_pdf(conn, number, "en", default_timezone=ZONE, now=START)
    )
    later = START + timedelta(days=2)
    again = await app.db.read(
        lambda conn: documents.order_pdf(conn, number, "en", default_timezone=ZONE, now=later)
    )
    assert english == again  # kept once, with the date it was first made
    metadata = PdfReader(tmp_path / "media" / again).metadata
    assert metadata is not None and metadata.creation_date == START
    text = pdf_text(tmp_path / "media" / english)
    assert "Hazard rectification order" in text and "Responsible person" in text
    assert "1200.50 CNY" in text and "配电箱门锁损坏" in text


async def test_the_incident_record_carries_investigation_actions_and_report(
    app: App, org: dict[str, int], tmp_path: Path
) -> None:
    path = await app.db.transaction(
        lambda conn: documents.incident_pdf(
            conn, seed_incident(conn, org), "zh-CN", default_timezone=ZONE, now=START
        )
    )
    text = pdf_text(tmp_path / "media" / path)
    for expected in (
        "事故登记表",
        "SG-2026-001",
        "发生时间",
        "2026-11-27 09:00",
        "3号楼B座楼梯间",
        "事故类别",
        "受伤人数",
        "1（陈磊）",
        "现场处置",
        "已送医，现场已拉警戒线",
        "调查状态",
        "楼梯防滑条脱落",
        "责任人员",
        "一班班长",
        "YH-2026-0001：更换楼梯防滑条",
        "15 日报告",
        "未报送，期限 2026-12-12 23:59",
        "填报人（签字）",
        "单位负责人（签字）",
    ):
        assert expected in text, expected


async def test_the_incident_record_is_in_the_deployments_default_zone(
    app: App, org: dict[str, int], tmp_path: Path
) -> None:
    path = await app.db.transaction(
        lambda conn: documents.incident_pdf(
            conn, seed_incident(conn, org), "zh-CN", default_timezone="Asia/Urumqi", now=START
        )
    )
    text = pdf_text(tmp_path / "media" / path)
    assert "2026-11-27 07:00" in text  # 09:00 in Shanghai
    assert "未报送，期限 2026-12-12 21:59" in text


async def test_user_text_is_printed_as_written_not_read_as_markup(
    app: App, org: dict[str, int], tmp_path: Path
) -> None:
    def seed(conn: sqlite3.Connection) -> str:
        number = seed_order(conn, org)
        conn.execute("UPDATE rectification_orders SET requirement = '<b>加锁</b> & 贴标识'")
        return documents.order_pdf(conn, number, "zh-CN", default_timezone=ZONE, now=START)

    path = await app.db.transaction(seed)
    assert "<b>加锁</b> & 贴标识" in pdf_text(tmp_path / "media" / path)


def test_the_poster_names_the_unit_and_the_three_steps(tmp_path: Path) -> None:
    out = tmp_path / "poster.pdf"
    out.write_bytes(documents.poster("物业服务中心/保安部", "https://t.me/frontline_bot"))
    text = pdf_text(out)
    assert "物业服务中心/保安部" in text and "https://t.me/frontline_bot" in text
    for step in ("扫描", "分享手机号", "/check", "Scan the QR code", "Share phone number"):
        assert step in text, step


@pytest.fixture
def no_telegram(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FRONTLINE_TELEGRAM_TOKEN", "FRONTLINE_TELEGRAM_USERNAME"):
        monkeypatch.delenv(name, raising=False)


def test_frontline_poster_writes_the_pdf(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_telegram: None
) -> None:
    db = demo_database(tmp_path / "d.db")
    out = tmp_path / "poster.pdf"
    status = cli.main(
        ["poster", "--unit", "物业服务中心/保安部", "--link", "https://t.me/fl_bot",
         "-o", str(out), "--db", str(db)]
    )  # fmt: skip
    assert status == 0 and str(out) in capsys.readouterr().out
    assert "保安部" in pdf_text(out)


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (["--unit", "没有这个单位", "--link", "https://t.me/fl_bot"], "没有这个单位"),
        (["--unit", "物业服务中心/保安部"], "--link"),
    ],
)
def test_frontline_poster_refuses_in_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    no_telegram: None,
    extra: list[str],
    said: str,
) -> None:
    db = demo_database(tmp_path / "d.db")
    out = tmp_path / "poster.pdf"
    assert cli.main(["poster", *extra, "-o", str(out), "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert said in err and err.count("\n") == 1
    assert not out.exists()


async def test_an_unknown_order_is_a_document_error(app: App) -> None:
    with pytest.raises(documents.DocumentError):
        await app.db.read(
            lambda conn: documents.order_pdf(
                conn, "ZG-2026-999", "zh-CN", default_timezone=ZONE, now=START
            )
        )


def photos_in_media(tmp_path: Path, count: int) -> list[str]:
    """`count` phone-sized photos in the media folder; their media paths."""
    import io

    from PIL import Image

    from bot.media import store_bytes

    paths = []
    for n in range(count):
        content = io.BytesIO()
        Image.new("RGB", (1600, 1200), (40 * n, 90, 160)).save(content, "JPEG")
        paths.append(store_bytes(tmp_path / "media", content.getvalue(), ".jpg"))
    return paths


def lines(path: Path) -> list[str]:
    return [line.strip() for line in pdf_text(path).split("\n")]


async def test_a_document_is_dated_when_it_was_made(
    app: App, org: dict[str, int], tmp_path: Path
) -> None:
    def make(conn: sqlite3.Connection) -> tuple[str, str]:
        order = documents.order_pdf(
            conn, seed_order(conn, org), "zh-CN", default_timezone=ZONE, now=START
        )
        record = documents.incident_pdf(
            conn, seed_incident(conn, org), "zh-CN", default_timezone=ZONE, now=START
        )
        return order, record

    for path in await app.db.transaction(make):
        metadata = PdfReader(tmp_path / "media" / path).metadata
        assert metadata is not None and metadata.creation_date == START  # 09:00 in Shanghai
        assert metadata.creation_date.utcoffset() == timedelta(hours=8)


async def test_emoji_never_print_as_bangs_and_a_gap(
    app: App, org: dict[str, int], tmp_path: Path
) -> None:
    def make(conn: sqlite3.Connection) -> str:
        number = seed_order(conn, org)
        conn.execute(
            "UPDATE hazards SET severity = 'major', description = ?",
            ("配电箱门锁损坏 🔥 门关不上‼️ 吉𠮷",),
        )
        return documents.order_pdf(conn, number, "zh-CN", default_timezone=ZONE, now=START)

    text = pdf_text(tmp_path / "media" / await app.db.transaction(make))
    assert "重大隐患" in text and "配电箱门锁损坏 门关不上" in text
    assert "吉〓" in text  # a character the font lacks is marked, not left out
    for mark in ("‼", "!!", "🔥", "\ufe0f", "\x00"):
        assert mark not in text, repr(mark)


async def test_signature_dates_have_blanks_to_write_in(
    app: App, org: dict[str, int], tmp_path: Path
) -> None:
    def make(conn: sqlite3.Connection) -> tuple[str, str]:
        number = seed_order(conn, org)
        return (
            documents.order_pdf(conn, number, "zh-CN", default_timezone=ZONE, now=START),
            documents.order_pdf(conn, number, "en", default_timezone=ZONE, now=START),
        )

    chinese, english = await app.db.transaction(make)
    assert pdf_text(tmp_path / "media" / chinese).count("日期：____年__月__日") >= 3
    assert pdf_text(tmp_path / "media" / english).count("Date: ________") >= 3


async def test_the_order_carries_up_to_four_photos_and_a_receipt(
    app: App, org: dict[str, int], tmp_path: Path
) -> None:
    photos = photos_in_media(tmp_path, 5)

    def make(conn: sqlite3.Connection) -> str:
        number = seed_order(conn, org)
        conn.execute("UPDATE hazards SET photos = ?", (json.dumps(photos),))
        return documents.order_pdf(conn, number, "zh-CN", default_timezone=ZONE, now=START)

    path = tmp_path / "media" / await app.db.transaction(make)
    images = [image for page in PdfReader(path).pages for image in page.images]
    assert len(images) == 4
    assert all(max(image.image.size) <= 800 for image in images)  # thumbnails, not 1600 px
    assert path.stat().st_size < 400_000
    text = pdf_text(path)
    assert "隐患照片（共 5 张，附前 4 张）" in text
    receipt = ("回执", "签收人（签字）", "签收日期：____年__月__日", "复查结果", "复查人（签字）")
    for label in receipt:
        assert label in text, label


async def test_the_incident_record_carries_its_photos(
    app: App, org: dict[str, int], tmp_path: Path
) -> None:
    photos = photos_in_media(tmp_path, 2)

    def make(conn: sqlite3.Connection) -> str:
        incident = seed_incident(conn, org)
        conn.execute("UPDATE incidents SET photos = ?", (json.dumps(photos),))
        row = incidents.get(conn, int(incident["id"]))
        assert row is not None
        return documents.incident_pdf(conn, row, "en", default_timezone=ZONE, now=START)

    path = tmp_path / "media" / await app.db.transaction(make)
    assert sum(len(page.images) for page in PdfReader(path).pages) == 2
    assert "Photos (2)" in pdf_text(path)


@pytest.mark.parametrize("language", ["en", "zh-CN"])
async def test_no_label_is_broken(
    app: App, org: dict[str, int], tmp_path: Path, language: str
) -> None:
    def make(conn: sqlite3.Connection) -> tuple[documents.Document, ...]:
        number = seed_order(conn, org)
        incident = seed_incident(conn, org)
        return (
            documents.order_document(conn, number, language, default_timezone=ZONE),
            documents.incident_document(conn, incident, language, default_timezone=ZONE),
        )

    for document in await app.db.read(make):
        out = tmp_path / "document.pdf"
        out.write_bytes(documents.render(document, created=START))
        printed = lines(out)
        for label, _ in document.fields:
            assert label in printed, label  # a whole line: neither wrapped nor split
        for signature in document.signatures:
            assert signature in printed, signature


JOIN = "https://work.weixin.qq.com/join/QRCODE-abc123"


@pytest.fixture
def wecom(monkeypatch: pytest.MonkeyPatch, no_telegram: None) -> None:
    """A deployment in mainland China: WeCom configured, Telegram not."""
    for name, value in (
        ("CORP_ID", "ww0123456789abcdef"),
        ("AGENT_ID", "1000002"),
        ("SECRET", "s"),
        ("TOKEN", "t"),
        ("AES_KEY", "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"),
    ):
        monkeypatch.setenv(f"FRONTLINE_WECOM_{name}", value)


def test_with_wecom_the_poster_carries_the_apps_join_link(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    wecom: None,
) -> None:
    monkeypatch.setenv("FRONTLINE_WECOM_JOIN_URL", JOIN)
    db = demo_database(tmp_path / "d.db")
    out = tmp_path / "poster.pdf"
    status = cli.main(["poster", "--unit", "物业服务中心/保安部", "-o", str(out), "--db", str(db)])
    assert status == 0, capsys.readouterr().err
    text = pdf_text(out)
    assert JOIN in text and "t.me" not in text
    assert "企业微信" in text and "WeCom" in text
    assert "分享手机号" not in text and "Share phone number" not in text  # Telegram's step
    assert "/check" in text


def test_with_wecom_and_no_join_link_the_poster_says_which_setting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], wecom: None
) -> None:
    db = demo_database(tmp_path / "d.db")
    capsys.readouterr()
    out = tmp_path / "poster.pdf"
    status = cli.main(["poster", "--unit", "物业服务中心/保安部", "-o", str(out), "--db", str(db)])
    err = capsys.readouterr().err
    assert status == 2 and "FRONTLINE_WECOM_JOIN_URL" in err and err.count("\n") == 1
    assert not out.exists()


def test_the_telegram_poster_can_still_be_asked_for_beside_wecom(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    wecom: None,
) -> None:
    monkeypatch.setenv("FRONTLINE_WECOM_JOIN_URL", JOIN)
    db = demo_database(tmp_path / "d.db")
    out = tmp_path / "poster.pdf"
    args = ["poster", "--unit", "物业服务中心/保安部", "--channel", "telegram"]
    assert cli.main([*args, "--link", "https://t.me/fl_bot", "-o", str(out), "--db", str(db)]) == 0
    text = pdf_text(out)
    assert "https://t.me/fl_bot" in text and "分享手机号" in text and JOIN not in text
