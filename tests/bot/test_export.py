"""Registers out: every register as an XLSX sheet or a CSV file, in the
reader's language and the unit's local time, scoped to a unit subtree, with
text that no spreadsheet runs as a formula."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import sqlite3
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import pytest
from conftest import START, demo_database
from openpyxl import load_workbook

from bot import cli, export
from bot.clock import iso
from bot.store import db as store_db

WHEN = iso(START)  # 09:00 in Shanghai
EVIL = '=HYPERLINK("http://evil.example","click")'


def ids(conn: sqlite3.Connection) -> tuple[dict[str, int], dict[str, int]]:
    staff = {r["name"]: r["id"] for r in conn.execute("SELECT id, name FROM staff")}
    units = {r["path"]: r["id"] for r in conn.execute("SELECT id, path FROM units")}
    return staff, units


def seed(conn: sqlite3.Connection) -> None:
    """Two checklist runs (保安部 and the kitchen) and two hazards with history."""
    staff, units = ids(conn)
    guard, kitchen = units["物业服务中心/保安部/一班"], units["物业服务中心/餐饮部/厨房"]
    conn.execute("BEGIN")
    hazard = conn.execute(
        "INSERT INTO hazards (unit_id, reported_by, source, description, photo, severity,"
        " status, deadline_at, created_at, number, category, measure, funding, responsible_id,"
        " photos) VALUES (?, ?, 'checklist', ?, 'ab/abc.jpg', 'general', 'open', ?, ?,"
        " 'YH-2026-001', 'fire', '清理通道', '0', ?, ?)",
        (
            guard,
            staff["张伟"],
            "消防通道堵塞",
            WHEN,
            WHEN,
            staff["刘强"],
            json.dumps(["ab/abd.jpg"]),
        ),
    ).lastrowid
    conn.execute(
        "INSERT INTO hazards (unit_id, reported_by, source, description, severity, status,"
        " deadline_at, created_at, number) VALUES (?, ?, 'report', '灶台油污', 'general',"
        " 'open', ?, ?, 'YH-2026-002')",
        (kitchen, staff["吴刚"], WHEN, WHEN),
    )
    for action, actor in (("reported", staff["张伟"]), ("assigned", staff["刘强"])):
        conn.execute(
            "INSERT INTO audit_log (at, actor_id, entity, entity_id, action) VALUES (?, ?,"
            " 'hazard', ?, ?)",
            (WHEN, actor, hazard, action),
        )
    for who, unit, notes in (
        ("张伟", guard, [("equipment", "problem", EVIL, hazard), ("ppe", "ok", "+1 spare", None)]),
        ("吴刚", kitchen, [("equipment", "ok", None, None)]),
    ):
        run = conn.execute(
            "INSERT INTO checklist_runs (checklist, staff_id, unit_id, local_date, started_at,"
            " completed_at) VALUES ('preshift', ?, ?, '2026-11-27', ?, ?)",
            (staff[who], unit, WHEN, WHEN),
        ).lastrowid
        conn.executemany(
            "INSERT INTO checklist_answers (run_id, item, answer, note, hazard_id, answered_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [(run, item, answer, note, hz, WHEN) for item, answer, note, hz in notes],
        )
    conn.execute(
        "INSERT INTO incidents (number, unit_id, reported_by, occurred_at, place, kind,"
        " description, hurt_count, report_due_at, created_at) VALUES ('SG-2026-001', ?, ?,"
        " '2026-11-01T02:00:00.000000+00:00', '门岗', 'injury', '滑倒', 1,"
        " '2026-11-16T02:00:00.000000+00:00', ?)",
        (guard, staff["张伟"], WHEN),
    )
    conn.execute(
        "INSERT INTO drills (unit_id, kind, at, organiser_id, state, participants, minutes,"
        " created_at) VALUES (?, 'fire', ?, ?, 'done', 12, 25, ?)",
        (guard, WHEN, staff["刘强"], WHEN),
    )
    conn.execute("COMMIT")


def source(conn: sqlite3.Connection, tmp_path: Path, root: int | None, lang: str = "zh-CN"):
    return export.Source(
        conn=conn,
        language=lang,
        period=export.Period(date(2026, 11, 1), date(2026, 11, 30)),
        root_unit=root,
        default_timezone="Asia/Shanghai",
        media_dir=tmp_path / "media",
        now=START,
    )


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    connection = store_db.connect(demo_database(tmp_path / "frontline.db"))
    seed(connection)
    return connection


def sheet_rows(path: Path) -> list[tuple[object, ...]]:
    workbook = load_workbook(path)
    return [tuple(row) for row in workbook.worksheets[0].iter_rows(values_only=True)]


def test_every_register_opens_with_its_headers_and_a_frozen_filtered_header(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    for name, register in export.REGISTERS.items():
        path = tmp_path / f"{name}.xlsx"
        count = export.export(source(conn, tmp_path, None, "en"), register, path)
        sheet = load_workbook(path).worksheets[0]
        rows = list(sheet.iter_rows(values_only=True))
        assert list(rows[0]) == register.headers("en")
        assert len(rows) == count + 1
        assert sheet.freeze_panes == "A2"
        assert sheet.auto_filter.ref.startswith("A1:")
        assert sheet.column_dimensions["A"].width == register.widths[0]


def test_checklist_answers_are_one_row_each_in_local_time_with_photo_links(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    path = tmp_path / "checks.xlsx"
    assert export.export(source(conn, tmp_path, None), export.REGISTERS["checklists"], path) == 3
    rows = sheet_rows(path)
    assert rows[0][:3] == ("检查编号", "检查表", "人员")
    first = rows[1]
    assert first[2] == "张伟" and first[3] == "物业服务中心/保安部/一班"
    assert first[5] == datetime(2026, 11, 27, 9, 0)  # 01:00 UTC in Shanghai
    assert first[8] == "有问题" and first[11] == "YH-2026-001"
    photos = str(first[12]).split("\n")
    assert all(p.startswith("file://") for p in photos)
    assert [p.rsplit("/", 2)[-2:] for p in photos] == [["ab", "abc.jpg"], ["ab", "abd.jpg"]]


def test_text_that_looks_like_a_formula_stays_text(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    path = tmp_path / "checks.xlsx"
    export.export(source(conn, tmp_path, None), export.REGISTERS["checklists"], path)
    sheet = load_workbook(path).worksheets[0]
    assert sheet["J2"].value == EVIL and sheet["J2"].data_type == "s"
    assert sheet["J3"].value == "+1 spare" and sheet["J3"].data_type == "s"
    csv_path = tmp_path / "checks.csv"
    export.export(source(conn, tmp_path, None), export.REGISTERS["checklists"], csv_path, "csv")
    raw = csv_path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM Excel reads as UTF-8
    rows = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
    assert rows[1][9] == "'" + EVIL and rows[2][9] == "'+1 spare"
    assert len(rows) == 4


def test_hazards_carry_the_four_fixes_and_their_history(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    path = tmp_path / "hazards.xlsx"
    export.export(source(conn, tmp_path, None, "en"), export.REGISTERS["hazards"], path)
    header, first, *_ = sheet_rows(path)
    row = dict(zip(header, first, strict=True))
    assert row["Number"] == "YH-2026-001"
    assert row["Responsible person"] == "刘强" and row["Corrective measure"] == "清理通道"
    assert row["Deadline"] == datetime(2026, 11, 27, 9, 0) and row["Funding (CNY)"] == 0
    assert row["History"] == "2026-11-27 09:00 张伟: reported\n2026-11-27 09:00 刘强: assigned"


def test_a_supervisor_scope_holds_only_their_subtree(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    _, units = ids(conn)
    path = tmp_path / "hazards.xlsx"
    scoped = source(conn, tmp_path, units["物业服务中心/保安部"])
    assert export.export(scoped, export.REGISTERS["hazards"], path) == 1
    assert [r[0] for r in sheet_rows(path)[1:]] == ["YH-2026-001"]
    assert export.export(scoped, export.REGISTERS["checklists"], path) == 2


def test_incidents_show_the_15_day_report_status(conn: sqlite3.Connection, tmp_path: Path) -> None:
    path = tmp_path / "incidents.xlsx"
    export.export(source(conn, tmp_path, None), export.REGISTERS["incidents"], path)
    header, first = sheet_rows(path)
    assert dict(zip(header, first, strict=True))["15日报告"] == "已逾期"


def test_a_period_without_data_is_an_empty_sheet_with_headers(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    empty = source(conn, tmp_path, None)
    empty.period = export.Period(date(2025, 1, 1), date(2025, 1, 31))
    path = tmp_path / "empty.xlsx"
    assert export.export(empty, export.REGISTERS["hazards"], path) == 0
    assert sheet_rows(path) == [tuple(export.REGISTERS["hazards"].headers("zh-CN"))]


def test_named_periods_follow_the_local_calendar() -> None:
    friday = date(2026, 11, 27)
    assert export.named_period("week", friday) == export.Period(
        date(2026, 11, 23), date(2026, 11, 29)
    )
    assert export.named_period("last_month", friday) == export.Period(
        date(2026, 10, 1), date(2026, 10, 31)
    )
    assert export.named_period("quarter", friday) == export.Period(
        date(2026, 10, 1), date(2026, 12, 31)
    )
    assert export.named_period("month", date(2026, 12, 5)).last == date(2026, 12, 31)


def test_the_command_line_writes_a_register(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = demo_database(tmp_path / "f.db")
    with store_db.connect(db) as connection:
        seed(connection)
    out = tmp_path / "h.csv"
    args = ["export", "hazards", "--from", "2026-11-01", "--to", "2026-11-30"]
    assert (
        cli.main(
            [
                *args,
                "--unit",
                "物业服务中心/餐饮部",
                "--format",
                "csv",
                "-o",
                str(out),
                "--db",
                str(db),
            ]
        )
        == 0
    )
    rows = list(csv.reader(out.read_text(encoding="utf-8-sig").splitlines()))
    assert [r[0] for r in rows[1:]] == ["YH-2026-002"]
    assert "1" in capsys.readouterr().out


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The usual login umask, under which new files are readable by everyone."""
    before = os.umask(0o022)
    yield
    os.umask(before)


@pytest.mark.parametrize("file_format", ["xlsx", "csv"])
@pytest.mark.parametrize("existing", [False, True])
def test_an_exported_file_is_readable_by_its_owner_only(
    tmp_path: Path, umask_022: None, file_format: str, existing: bool
) -> None:
    db = demo_database(tmp_path / "f.db")
    out = tmp_path / f"h.{file_format}"
    if existing:  # an older export, or any file, in the way
        out.write_text("old")
        out.chmod(0o644)
    args = ["export", "hazards", "--from", "2026-11-01", "--to", "2026-11-30"]
    assert cli.main([*args, "--format", file_format, "-o", str(out), "--db", str(db)]) == 0
    assert out.stat().st_mode & 0o777 == 0o600
    assert out.read_bytes() != b"old"


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["nonsense", "--from", "2026-11-01", "--to", "2026-11-30"], "没有这个台账"),
        (["hazards", "--from", "2026-11-31", "--to", "2026-11-30"], "日期无效"),
        (["hazards", "--from", "2026-11-30", "--to", "2026-11-01"], "早于"),
        (["hazards", "--from", "2026-11-01", "--to", "2026-11-30", "--unit", "没有"], "没有"),
    ],
)
def test_bad_export_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], said: str
) -> None:
    db = demo_database(tmp_path / "f.db")
    capsys.readouterr()
    assert cli.main(["export", *args, "-o", str(tmp_path / "x.xlsx"), "--db", str(db)]) == 2
    err = capsys.readouterr().err.strip()
    assert said in err and "\n" not in err
    assert not (tmp_path / "x.xlsx").exists()


def test_with_photos_embeds_a_thumbnail_of_each_rows_first_photo(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    from PIL import Image

    photo = tmp_path / "media" / "ab" / "abc.jpg"
    photo.parent.mkdir(parents=True)
    Image.new("RGB", (640, 480), (200, 30, 30)).save(photo)  # ab/abd.jpg stays missing
    path = tmp_path / "hazards.xlsx"
    hazards = export.REGISTERS["hazards"]
    count = export.export(source(conn, tmp_path, None), hazards, path, with_photos=True)
    sheet = load_workbook(path).worksheets[0]
    headers = [cell.value for cell in next(sheet.iter_rows(max_row=1))]
    assert headers == [*hazards.headers("zh-CN"), "照片（缩略图）", "整改照片（缩略图）"]
    assert count == 2
    assert len(sheet._images) == 1  # the hazard with a photo file; the other has none
    picture = sheet._images[0]
    assert max(picture.width, picture.height) == 96


def test_with_photos_needs_xlsx(tmp_path: Path, capsys) -> None:
    db = demo_database(tmp_path / "f.db")
    status = cli.main(
        [
            "export",
            "hazards",
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-30",
            "--format",
            "csv",
            "--with-photos",
            "-o",
            str(tmp_path / "h.csv"),
            "--db",
            str(db),
        ]
    )
    assert status == 2 and "XLSX" in capsys.readouterr().err


# Emoji and the variation selector that asks for their picture form.
EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf\u203c\u2049\ufe0f]")


def cells(path: Path) -> dict[str, object]:
    """The first data row's cells, by header."""
    sheet = load_workbook(path).worksheets[0]
    header = [cell.value for cell in sheet[1]]
    return dict(zip(header, sheet[2], strict=False))


def test_cells_are_typed_so_excel_can_sum_and_filter(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    conn.execute("UPDATE hazards SET funding = '1200.50', severity = 'major' WHERE id = 1")
    conn.commit()
    path = tmp_path / "hazards.xlsx"
    export.export(source(conn, tmp_path, None), export.REGISTERS["hazards"], path)
    row = cells(path)
    funding = row["整改资金（元）"]
    assert funding.data_type == "n" and funding.value == 1200.5
    assert "¥" in funding.number_format and "0.00" in funding.number_format
    for header in ("报告时间", "整改期限"):
        moment = row[header]
        assert moment.is_date and moment.value == datetime(2026, 11, 27, 9, 0), header
        assert moment.number_format == "yyyy-mm-dd hh:mm"
    assert row["类别"].value == "消防" and row["等级"].value == "重大隐患"

    export.export(source(conn, tmp_path, None), export.REGISTERS["checklists"], path)
    row = cells(path)
    assert row["检查编号"].data_type == "n"
    assert row["日期"].is_date and row["日期"].value == datetime(2026, 11, 27)
    assert row["日期"].number_format == "yyyy-mm-dd"

    export.export(source(conn, tmp_path, None), export.REGISTERS["incidents"], path)
    row = cells(path)
    assert row["受伤人数"].data_type == "n" and row["受伤人数"].value == 1
    assert row["发生时间"].value == datetime(2026, 11, 1, 10, 0)

    export.export(source(conn, tmp_path, None), export.REGISTERS["drills"], path)
    row = cells(path)
    assert row["演练类型"].value == "消防演练"
    assert (row["参加人数"].value, row["用时（分钟）"].value) == (12, 25)


def test_csv_keeps_times_and_amounts_as_a_person_writes_them(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    conn.execute("UPDATE hazards SET funding = '1200.50' WHERE id = 1")
    conn.commit()
    path = tmp_path / "hazards.csv"
    export.export(source(conn, tmp_path, None), export.REGISTERS["hazards"], path, "csv")
    header, first, *_ = csv.reader(path.read_text(encoding="utf-8-sig").splitlines())
    row = dict(zip(header, first, strict=True))
    assert row["报告时间"] == "2026-11-27 09:00" and row["整改资金（元）"] == "1200.50"
    assert row["类别"] == "消防"


@pytest.mark.parametrize("language", ["zh-CN", "en"])
def test_no_register_cell_carries_an_emoji(
    conn: sqlite3.Connection, tmp_path: Path, language: str
) -> None:
    for name, register in export.REGISTERS.items():
        path = tmp_path / f"{name}.xlsx"
        export.export(source(conn, tmp_path, None, language), register, path)
        for row in load_workbook(path).worksheets[0].iter_rows(values_only=True):
            for value in row:
                assert not EMOJI.search(str(value or "")), (name, value)


def test_hazard_history_gives_every_step_with_its_reason(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    staff, _ = ids(conn)
    steps = [
        (staff["刘强"], "assign", {"responsible": "陈磊", "measure": "清理通道",
                                  "deadline_at": "2026-11-28T15:59:00+00:00", "funding": "300"}),
        (staff["陈磊"], "request_extension", {"description": "先设围挡和警示牌",
                                             "proposed_deadline_at": "2026-12-01T10:00:00+00:00"}),
        (staff["刘强"], "refuse_extension", {"reason": "通道必须当天畅通"}),
        (staff["陈磊"], "submit", {"description": "杂物已清走", "photos": ["cd/x.jpg"]}),
        (staff["刘强"], "send_back", {"reason": "照片看不清门口"}),
        (staff["刘强"], "order", {"order": "ZG-2026-001", "description": "两日内清空",
                                 "deadline_at": "2026-11-30T10:00:00+00:00"}),
    ]  # fmt: skip
    conn.executemany(
        "INSERT INTO audit_log (at, actor_id, entity, entity_id, action, detail) VALUES"
        " (?, ?, 'hazard', 1, ?, ?)",
        [(WHEN, who, action, json.dumps(detail)) for who, action, detail in steps],
    )
    conn.commit()
    path = tmp_path / "hazards.xlsx"
    export.export(source(conn, tmp_path, None), export.REGISTERS["hazards"], path)
    history = str(cells(path)["处理过程"].value).split("\n")
    assert history[0] == "2026-11-27 09:00 张伟：报告"
    assert history[2] == (
        "2026-11-27 09:00 刘强：指派（责任人：陈磊；整改措施：清理通道；"
        "期限：2026-11-28 23:59；资金：300.00 元）"
    )
    assert history[3] == (
        "2026-11-27 09:00 陈磊：申请延期（临时防护措施：先设围挡和警示牌；"
        "申请延期至：2026-12-01 18:00）"
    )
    assert history[4] == "2026-11-27 09:00 刘强：不同意延期（原因：通道必须当天畅通）"
    assert history[5] == "2026-11-27 09:00 陈磊：提交整改（整改情况：杂物已清走；照片 1 张）"
    assert history[6] == "2026-11-27 09:00 刘强：退回重改（原因：照片看不清门口）"
    assert history[7] == (
        "2026-11-27 09:00 刘强：下达整改通知书（ZG-2026-001；整改要求：两日内清空；"
        "期限：2026-11-30 18:00）"
    )


def seed_visit(conn: sqlite3.Connection) -> None:
    """A visit to 王桂芳 by 马秀英: an observation with readings and a photo,
    a fall reported as unusual, checked out a little away from the door."""
    staff, units = ids(conn)
    centre = units["物业服务中心/长者服务中心/上门服务组"]
    client = conn.execute(
        "INSERT INTO clients (number, name, address, lat, lon, unit_id, services, created_at,"
        " updated_at) VALUES ('K001', '王桂芳', '福建中路 120 弄 3 号', 31.2386, 121.4801, ?,"
        " '[\"meal\"]', ?, ?)",
        (centre, WHEN, WHEN),
    ).lastrowid
    visit = conn.execute(
        "INSERT INTO visits (client_id, worker_id, unit_id, state, checkin_at, checkin_lat,"
        " checkin_lon, checkin_distance_m, checkout_at, checkout_lat, checkout_lon,"
        " checkout_distance_m, services, no_gifts, gifts, created_at) VALUES (?, ?, ?, 'done',"
        " ?, 31.2386, 121.4801, 3.2, '2026-11-27T02:00:00+00:00', 31.2391, 121.4807, 75.4,"
        " '[\"meal\"]', 1, 'none', ?)",
        (client, staff["马秀英"], centre, WHEN, WHEN),
    ).lastrowid
    conn.executemany(
        "INSERT INTO visit_notes (visit_id, kind, unusual_kind, text, photo, readings, at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (visit, "observation", None, "精神好，胃口一般", "ef/obs.jpg",
             json.dumps({"systolic": 130, "diastolic": 85, "pulse": 72}),
             "2026-11-27T01:20:00+00:00"),
            (visit, "unusual", "fall", "在卫生间滑倒，膝盖擦伤", "ef/fall.jpg", None,
             "2026-11-27T01:40:00+00:00"),
        ],
    )  # fmt: skip
    conn.commit()


def test_visits_carry_observations_unusual_events_gifts_and_the_check_out_point(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    seed_visit(conn)
    path = tmp_path / "visits.xlsx"
    export.export(source(conn, tmp_path, None), export.REGISTERS["visits"], path)
    row = {header: cell.value for header, cell in cells(path).items()}
    assert row["观察记录"] == "09:20 精神好，胃口一般（血压 130/85 mmHg，心率 72）"
    assert row["异常情况"] == "09:40 摔倒或受伤：在卫生间滑倒，膝盖擦伤"
    assert row["礼品"] == "未收受"
    assert row["签到位置"] == "31.238600,121.480100"
    assert row["签退位置"] == "31.239100,121.480700"
    assert (row["签到距离（米）"], row["签退距离（米）"]) == (3, 75)
    photos = str(row["服务照片"]).split("\n")
    assert [p.rsplit("/", 1)[-1] for p in photos] == ["obs.jpg", "fall.jpg"]


def test_with_photos_gives_each_kind_of_photo_its_column_and_rows_fit_them(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    from PIL import Image

    conn.execute("UPDATE hazards SET rectification_photos = '[\"cd/done.jpg\"]' WHERE id = 1")
    conn.commit()
    for name, size in (("ab/abc.jpg", (640, 480)), ("cd/done.jpg", (300, 600))):
        photo = tmp_path / "media" / name
        photo.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", size, (200, 30, 30)).save(photo)
    path = tmp_path / "hazards.xlsx"
    hazards = export.REGISTERS["hazards"]
    export.export(source(conn, tmp_path, None), hazards, path, with_photos=True)
    sheet = load_workbook(path).worksheets[0]
    headers = [cell.value for cell in sheet[1]]
    width = len(hazards.columns)
    assert headers[width:] == ["照片（缩略图）", "整改照片（缩略图）"]
    placed = sorted((p.anchor._from.row, p.anchor._from.col) for p in sheet._images)
    assert placed == [(1, width), (1, width + 1)]  # both on the first hazard's row
    tallest = max(p.height for p in sheet._images)
    assert sheet.row_dimensions[2].height * 4 / 3 >= tallest  # points to pixels
    assert sheet.row_dimensions[3].height is None  # no photo: the usual height


def test_a_zip_carries_the_register_and_its_photos_with_relative_links(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import zipfile

    from PIL import Image

    db = demo_database(tmp_path / "f.db")
    with store_db.connect(db) as connection:
        seed(connection)
    photo = tmp_path / "media" / "ab" / "abc.jpg"  # ab/abd.jpg is missing on the server
    photo.parent.mkdir(parents=True)
    Image.new("RGB", (64, 48), (200, 30, 30)).save(photo)
    out = tmp_path / "registers.zip"
    args = ["export", "hazards", "--from", "2026-11-01", "--to", "2026-11-30", "--with-photos"]
    assert cli.main([*args, "-o", str(out), "--db", str(db)]) == 0
    assert str(out) in capsys.readouterr().out
    assert out.stat().st_mode & 0o077 == 0
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(out) as archive:
        assert sorted(archive.namelist()) == ["hazards.xlsx", "photos/ab/abc.jpg"]
        archive.extractall(unpacked)
    assert (unpacked / "photos/ab/abc.jpg").read_bytes() == photo.read_bytes()
    sheet = load_workbook(unpacked / "hazards.xlsx").worksheets[0]
    header = [cell.value for cell in sheet[1]]
    cell = sheet.cell(2, header.index("照片") + 1)
    assert cell.value == "photos/ab/abc.jpg\nphotos/ab/abd.jpg"
    assert cell.hyperlink is not None and cell.hyperlink.target == "photos/ab/abc.jpg"
    assert len(sheet._images) == 1  # --with-photos still embeds the thumbnail


def test_a_zip_of_a_csv_links_photos_relatively_too(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    import zipfile

    out = tmp_path / "checks.zip"
    export.export_zip(source(conn, tmp_path, None), export.REGISTERS["checklists"], out, "csv")
    with zipfile.ZipFile(out) as archive:
        assert archive.namelist() == ["checklists.csv"]  # the photos are not on this server
        text = archive.read("checklists.csv").decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[1][12].split("\n") == ["photos/ab/abc.jpg", "photos/ab/abd.jpg"]
