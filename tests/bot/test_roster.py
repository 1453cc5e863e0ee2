"""The roster import as an admin sees it: who ends up in the database, and which
lines of a bad file are reported and why."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import tempfile
import tomllib
import tracemalloc
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bot
from bot import roster
from bot.roster import (
    RosterError,
    RosterProblem,
    RosterResult,
    describe,
    import_roster_file,
    normalize_phone,
)
from bot.store.db import Database

NOW = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
LATER = datetime(2024, 6, 1, 8, 0, tzinfo=UTC)
HEADER = "name,phone,unit,roles,language,telegram_id,wecom_userid,employee_no"
BOT_DIR = Path(bot.__file__).parent


@pytest_asyncio.fixture
async def db(db_target: Path | str) -> AsyncIterator[Database]:
    database = await Database.open(db_target)
    yield database
    await database.close()


def write(tmp_path: Path, lines: list[str], name: str = "roster.csv", **kw: Any) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding=kw.get("encoding", "utf-8"))
    return path


async def run_import(
    db: Database, path: Path, *, deactivate_missing: bool = False, now: datetime = NOW
) -> RosterResult:
    return await import_roster_file(
        db, path, deactivate_missing=deactivate_missing, default_language="zh-CN", now=now
    )


async def rows(db: Database, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    return await db.read(lambda conn: [tuple(r) for r in conn.execute(sql, args).fetchall()])


async def staff(db: Database) -> dict[str, tuple[Any, ...]]:
    """Everyone by name: (phone, unit path, roles, language, active, employee_no)."""
    found = await rows(
        db,
        "SELECT s.name, s.phone, u.path, s.roles, s.language, s.active, s.employee_no"
        " FROM staff s JOIN units u ON u.id = s.unit_id",
    )
    return {row[0]: row[1:] for row in found}


async def import_fails(db: Database, path: Path) -> list[RosterProblem]:
    with pytest.raises(RosterError) as caught:
        await run_import(db, path)
    return caught.value.problems


def lines_and_keys(problems: list[RosterProblem]) -> list[tuple[int | None, str]]:
    return [(p.line, p.key) for p in problems]


# --- reading files ---------------------------------------------------------------


@pytest.mark.asyncio
async def test_utf8_csv_creates_people_with_audit(db: Database, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        [
            HEADER,
            "张伟,13800000003,物业服务中心/保安部/一班,员工,,,,E003",
            "  刘强 , 13800000004 , 物业服务中心/保安部 , 主管 , zh-CN ,"
            " 1234567 , liuqiang , E004 ",
        ],
    )
    result = await run_import(db, path)

    assert result == RosterResult(created=2, updated=0, deactivated=0, units_created=3)
    assert await staff(db) == {
        "张伟": ("+8613800000003", "物业服务中心/保安部/一班", "staff", "zh-CN", 1, "E003"),
        "刘强": ("+8613800000004", "物业服务中心/保安部", "supervisor", "zh-CN", 1, "E004"),
    }
    assert await rows(db, "SELECT channel, user_id FROM channel_identities ORDER BY channel") == [
        ("telegram", "1234567"),
        ("wecom", "liuqiang"),
    ]
    audit = await rows(db, "SELECT entity, action, actor_id, detail, at FROM audit_log")
    assert [(a[0], a[1], a[2]) for a in audit] == [("staff", "created", None)] * 2
    assert all("138" not in a[3] for a in audit), "phone numbers stay out of the audit log"
    assert audit[0][4] == "2024-05-01T08:00:00.000000+00:00"


@pytest.mark.asyncio
async def test_csv_with_bom_is_read(db: Database, tmp_path: Path) -> None:
    path = write(tmp_path, [HEADER, "张伟,13800000003,物业服务中心,员工,,,,"], encoding="utf-8-sig")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    result = await run_import(db, path)
    assert result.created == 1
    assert "张伟" in await staff(db)


@pytest.mark.asyncio
async def test_gbk_csv_from_chinese_excel_is_read(db: Database, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        [
            "姓名,手机,部门,角色,语言,工号",
            "张伟,13800000003,物业服务中心/餐饮部/厨房,员工,中文,E003",
        ],
        encoding="gbk",
    )
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")
    await run_import(db, path)
    assert await staff(db) == {
        "张伟": ("+8613800000003", "物业服务中心/餐饮部/厨房", "staff", "zh-CN", 1, "E003")
    }


@pytest.mark.asyncio
async def test_xlsx_numeric_phone_cells_become_plain_numbers(db: Database, tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["name", "phone", "unit", "roles", "language", "employee_no", "备注"])
    sheet.append(["张伟", 13800000003, "物业服务中心/保安部/一班", "员工", None, 3, "夜班"])
    sheet.append([None] * 7)
    sheet.append(["李静", 13800000002.0, "物业服务中心", "安全员", "en", "E002", None])
    sheet.append(["王五", "138", "物业服务中心", "员工", None, None, None])
    path = tmp_path / "roster.xlsx"
    workbook.save(path)

    problems = await import_fails(db, path)
    # Line numbers are the sheet's row numbers, blank row included.
    assert lines_and_keys(problems) == [(5, "roster.phone_invalid")]

    sheet.delete_rows(5)
    workbook.save(path)
    await run_import(db, path)
    assert await staff(db) == {
        "张伟": ("+8613800000003", "物业服务中心/保安部/一班", "staff", "zh-CN", 1, "3"),
        "李静": ("+8613800000002", "物业服务中心", "safety_officer", "en", 1, "E002"),
    }


@pytest.mark.asyncio
async def test_chinese_role_names_and_every_separator(db: Database, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        [
            HEADER,
            "甲,13800000001,物业服务中心,主管，员工,,,,",
            '乙,13800000002,物业服务中心,"安全员 , 管理员",,,,',
            "丙,13800000003,物业服务中心,护理员 、 员工、护理员,,,,",
            "丁,13800000004,物业服务中心,Supervisor，admin,,,,",
        ],
    )
    await run_import(db, path)
    roles = {name: row[2] for name, row in (await staff(db)).items()}
    assert roles == {
        "甲": "staff,supervisor",
        "乙": "admin,safety_officer",
        "丙": "care_worker,staff",
        "丁": "admin,supervisor",
    }


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+86 138-0000-0001", "+8613800000001"),
        ("0086 13800000001", "+8613800000001"),
        ("8613800000001", "+8613800000001"),
        ("138 0000 0001", "+8613800000001"),
        ("(138) 0000.0001", "+8613800000001"),
        ("１３８００００００01", "+8613800000001"),
        ("+44 20 7946 0958", "+442079460958"),
        ("12345", None),
        ("23800000001", None),
        ("+12", None),
        ("phone", None),
        ("", None),
    ],
)
def test_phone_spellings(raw: str, expected: str | None) -> None:
    assert normalize_phone(raw) == expected


@pytest.mark.asyncio
async def test_phone_spellings_are_stored_in_one_form(db: Database, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        [
            HEADER,
            "甲,+86 138-0000-0001,物业服务中心,员工,,,,",
            "乙,0086 13800000002,物业服务中心,员工,,,,",
            "丙, 138 0000 0003 ,物业服务中心,员工,,,,",
        ],
    )
    await run_import(db, path)
    assert sorted(row[0] for row in (await staff(db)).values()) == [
        "+8613800000001",
        "+8613800000002",
        "+8613800000003",
    ]


@pytest.mark.asyncio
async def test_the_phone_is_kept_as_written_beside_its_matching_form(
    db: Database, tmp_path: Path
) -> None:
    async def phones() -> list[tuple[Any, ...]]:
        return await rows(db, "SELECT phone, phone_display FROM staff")

    path = write(tmp_path, [HEADER, "甲,１３８-0000-0001 ,物业服务中心,员工,,,,"])
    await run_import(db, path)
    assert await phones() == [("+8613800000001", "138-0000-0001")]
    # Imported before the spelling was kept: recorded now, not reported as a change.
    await db.transaction(lambda conn: conn.execute("UPDATE staff SET phone_display = NULL"))
    assert (await run_import(db, path)).updated == 0
    assert await phones() == [("+8613800000001", "138-0000-0001")]
    # The same number written another way is shown the new way.
    respelled = write(tmp_path, [HEADER, "甲,+86 138 0000 0001,物业服务中心,员工,,,,"])
    assert (await run_import(db, respelled)).updated == 1
    assert await phones() == [("+8613800000001", "+86 138 0000 0001")]


@pytest.mark.asyncio
async def test_language_aliases_and_default(db: Database, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        [
            "name,phone,unit,roles,language",
            "甲,13800000001,物业服务中心,员工,English",
            "乙,13800000002,物业服务中心,员工,zh_CN",
            "丙,13800000003,物业服务中心,员工,英文",
            "丁,13800000004,物业服务中心,员工,",
        ],
    )
    await import_roster_file(db, path, deactivate_missing=False, default_language="en", now=NOW)
    languages = {name: row[3] for name, row in (await staff(db)).items()}
    assert languages == {"甲": "en", "乙": "zh-CN", "丙": "en", "丁": "en"}


# --- units and re-imports ---------------------------------------------------------


@pytest.mark.asyncio
async def test_units_form_a_tree_and_reimport_adds_none(db: Database, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        [
            HEADER,
            "甲,13800000001,物业服务中心/保安部/一班,员工,,,,",
            "乙,13800000002,物业服务中心/保安部,主管,,,,",
            "丙,13800000003,物业服务中心 / 工程部,员工,,,,",
        ],
    )
    first = await run_import(db, path)
    second = await run_import(db, path)

    assert first.units_created == 4
    assert second == RosterResult(created=0, updated=0, deactivated=0, units_created=0)
    units = await rows(db, "SELECT id, parent_id, name, path, timezone FROM units ORDER BY id")
    by_path = {u[3]: u for u in units}
    assert sorted(by_path) == [
        "物业服务中心",
        "物业服务中心/保安部",
        "物业服务中心/保安部/一班",
        "物业服务中心/工程部",
    ]
    assert by_path["物业服务中心"][1] is None
    assert by_path["物业服务中心/保安部"][1] == by_path["物业服务中心"][0]
    assert by_path["物业服务中心/保安部/一班"][1] == by_path["物业服务中心/保安部"][0]
    assert by_path["物业服务中心/工程部"][1] == by_path["物业服务中心"][0]
    assert by_path["物业服务中心/保安部/一班"][2] == "一班"
    assert all(u[4] is None for u in units)


@pytest.mark.asyncio
async def test_reimport_updates_people_by_employee_no_and_by_phone(
    db: Database, tmp_path: Path
) -> None:
    await run_import(
        db,
        write(
            tmp_path,
            [
                HEADER,
                "张伟,13800000003,物业服务中心/保安部/一班,员工,,,,E003",
                "李静,13800000002,物业服务中心,安全员,,,,",
            ],
        ),
    )
    result = await run_import(
        db,
        write(
            tmp_path,
            [
                HEADER,
                # new phone, new unit, promoted: found by employee number
                "张伟,13900000003,物业服务中心/保安部,主管,en,,,E003",
                # found by phone; her employee number is added
                "李静静,13800000002,物业服务中心,安全员、管理员,,,,E002",
            ],
        ),
        now=LATER,
    )

    assert result == RosterResult(created=0, updated=2, deactivated=0, units_created=0)
    assert await staff(db) == {
        "张伟": ("+8613900000003", "物业服务中心/保安部", "supervisor", "en", 1, "E003"),
        "李静静": ("+8613800000002", "物业服务中心", "admin,safety_officer", "zh-CN", 1, "E002"),
    }
    updates = await rows(db, "SELECT detail FROM audit_log WHERE action = 'updated' ORDER BY id")
    zhang = json.loads(updates[0][0])
    assert zhang["unit"] == ["物业服务中心/保安部/一班", "物业服务中心/保安部"]
    assert zhang["phone"] == "changed"
    assert "139" not in updates[0][0]


@pytest.mark.asyncio
async def test_deactivate_missing_ends_access_of_absent_people(
    db: Database, tmp_path: Path
) -> None:
    full = [
        HEADER,
        "张伟,13800000003,物业服务中心,员工,,,,E003",
        "陈磊,13800000005,物业服务中心,员工,,,,E005",
    ]
    await run_import(db, write(tmp_path, full))
    chen_id = (await rows(db, "SELECT id FROM staff WHERE name = '陈磊'"))[0][0]
    await db.transaction(
        lambda conn: conn.execute(
            "INSERT INTO conversations (staff_id, flow, step, data, version, updated_at)"
            " VALUES (?, 'checklist', 'q1', '{}', 1, ?)",
            (chen_id, NOW.isoformat()),
        )
    )
    shorter = write(tmp_path, full[:2], name="shorter.csv")

    without_flag = await run_import(db, shorter)
    assert without_flag.deactivated == 0
    assert (await staff(db))["陈磊"][4] == 1

    result = await run_import(db, shorter, deactivate_missing=True, now=LATER)
    assert result == RosterResult(created=0, updated=0, deactivated=1, units_created=0)
    assert (await staff(db))["陈磊"][4] == 0
    assert (await staff(db))["张伟"][4] == 1
    assert await rows(db, "SELECT staff_id FROM conversations") == []
    assert await rows(db, "SELECT action FROM audit_log WHERE entity_id = ?", chen_id) == [
        ("created",),
        ("deactivated",),
    ]

    # Back on the roster: the same person is active again, not a new one.
    back = await run_import(db, write(tmp_path, full, name="full.csv"))
    assert back == RosterResult(created=0, updated=1, deactivated=0, units_created=0)
    assert (await staff(db))["陈磊"][4] == 1


# --- rejected files -----------------------------------------------------------------


@pytest.mark.asyncio
async def test_every_bad_row_is_reported_and_nothing_imported(db: Database, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        [
            HEADER,
            "张伟,13800000003,物业服务中心/保安部/一班,员工,,,,E003",
            "",
            "陈磊,138 0000 0003,物业服务中心/保安部/一班,员工,,,,E005",
            "杨洋,13800000006,物业服务中心,保洁,,,,E006",
            " ,13800000007,物业服务中心,员工,,,,E007",
            "黄海,13800000008,物业服务中心//工程部,员工,,,,E008",
        ],
    )
    problems = await import_fails(db, path)

    assert lines_and_keys(problems) == [
        (4, "roster.duplicate_phone"),
        (5, "roster.role_unknown"),
        (6, "roster.name_missing"),
        (7, "roster.unit_invalid"),
    ]
    assert [describe(p, "zh-CN") for p in problems] == [
        "第 4 行：手机号与第 2 行重复。",
        "第 5 行：未知角色：保洁（可填：员工、主管、安全员、管理员、护理员、"
        "服务中心负责人、街道负责人）。",
        "第 6 行：姓名为空。",
        "第 7 行：单位路径无效：物业服务中心//工程部（各级用 / 分隔，每一级都不能为空）。",
    ]
    assert describe(problems[1], "en").startswith("Line 5: Unknown role: 保洁")
    assert await rows(db, "SELECT COUNT(*) FROM staff") == [(0,)]
    assert await rows(db, "SELECT COUNT(*) FROM units") == [(0,)]
    assert await rows(db, "SELECT COUNT(*) FROM audit_log") == [(0,)]


@pytest.mark.asyncio
async def test_in_file_duplicates_name_the_earlier_line(db: Database, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        [
            HEADER,
            "甲,13800000001,物业服务中心,员工,,111,jia,E001",
            "乙,13800000002,物业服务中心,员工,,111,yi,E001",
            "丙,13800000003,物业服务中心,员工,,333,jia,E003",
            "丁,13800000004,物业服务中心,,,,,E004",
        ],
    )
    problems = await import_fails(db, path)
    assert [describe(p, "en") for p in problems] == [
        "Line 3: Employee number E001 already appears on line 2.",
        "Line 3: telegram_id 111 already appears on line 2.",
        "Line 4: wecom_userid jia already appears on line 2.",
        "Line 5: The roles are empty.",
    ]


@pytest.mark.asyncio
async def test_identity_bound_to_someone_else_rejects_import(db: Database, tmp_path: Path) -> None:
    await run_import(db, write(tmp_path, [HEADER, "张伟,13800000003,物业服务中心,员工,,555,,"]))
    path = write(
        tmp_path,
        [
            HEADER,
            "陈磊,13800000005,物业服务中心,员工,,,,",
            "杨洋,13800000006,物业服务中心,员工,,555,,",
        ],
        name="second.csv",
    )
    problems = await import_fails(db, path)
    assert [describe(p, "zh-CN") for p in problems] == [
        "第 3 行：telegram_id 555 已绑定到另一位人员 张伟。"
    ]
    assert sorted(await staff(db)) == ["张伟"]


@pytest.mark.asyncio
async def test_employee_no_and_phone_of_different_people_is_refused(
    db: Database, tmp_path: Path
) -> None:
    await run_import(
        db,
        write(
            tmp_path,
            [
                HEADER,
                "张伟,13800000003,物业服务中心,员工,,,,E003",
                "陈磊,13800000005,物业服务中心,员工,,,,E005",
            ],
        ),
    )
    path = write(
        tmp_path,
        [
            HEADER,
            "新人,13800000009,物业服务中心,员工,,,,E009",
            "张伟,13800000005,物业服务中心,员工,,,,E003",
        ],
        name="swap.csv",
    )
    problems = await import_fails(db, path)
    assert [describe(p, "zh-CN") for p in problems] == [
        "第 3 行：工号 E003 属于 张伟，但这个手机号属于另一个人 陈磊。"
    ]
    assert sorted(await staff(db)) == ["张伟", "陈磊"]


@pytest.mark.asyncio
async def test_missing_required_column_is_named(db: Database, tmp_path: Path) -> None:
    path = write(tmp_path, ["name,unit,roles", "张伟,物业服务中心,员工"])
    problems = await import_fails(db, path)
    assert [describe(p, "zh-CN") for p in problems] == ["缺少必填列“phone”。"]
    assert [describe(p, "en") for p in problems] == ["Required column “phone” is missing."]


@pytest.mark.asyncio
async def test_unreadable_files_are_refused_with_a_reason(db: Database, tmp_path: Path) -> None:
    pdf = tmp_path / "roster.pdf"
    pdf.write_bytes(b"%PDF-1.4 ...")
    garbage_xlsx = tmp_path / "roster.xlsx"
    garbage_xlsx.write_bytes(bytes(range(256)) * 4)
    binary_csv = tmp_path / "binary.csv"
    binary_csv.write_bytes(b"\x00\x01\x02\xff\xfe\x00" * 100)
    empty_csv = tmp_path / "empty.csv"
    empty_csv.write_bytes(b"\n\n")
    header_only = write(tmp_path, [HEADER], name="header.csv")

    cases = {
        tmp_path / "nowhere.csv": "roster.file_missing",
        pdf: "roster.file_unsupported",
        garbage_xlsx: "roster.file_unreadable",
        binary_csv: "roster.file_unreadable",
        tmp_path: "roster.file_unreadable",
        empty_csv: "roster.file_empty",
        header_only: "roster.no_rows",
    }
    for path, key in cases.items():
        problems = await import_fails(db, path)
        assert lines_and_keys(problems) == [(None, key)], path
        assert describe(problems[0], "zh-CN")
        assert describe(problems[0], "en")


# --- size limits ---------------------------------------------------------------------


def numbered_rows(count: int, start: int = 0) -> str:
    return "".join(f"员工{n},139{n:08d},物业服务中心,员工,,,,E{n}\n" for n in range(start, count))


def peak_while(action: Any) -> int:
    """The most memory Python held at once (bytes) while `action` ran."""
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("suffix", ["csv", "xlsx"])
def test_a_file_over_the_byte_limit_is_refused_before_it_is_read(
    tmp_path: Path, suffix: str
) -> None:
    path = tmp_path / f"roster.{suffix}"
    with path.open("wb") as handle:
        handle.write((HEADER + "\n").encode())
        handle.truncate(roster.MAX_FILE_BYTES + 1)  # just over, however it continues
    problems: list[RosterProblem] = []

    def load() -> None:
        with pytest.raises(RosterError) as caught:
            roster.load_roster(path, "zh-CN")
        problems.extend(caught.value.problems)

    assert peak_while(load) < 2**20
    assert lines_and_keys(problems) == [(None, "roster.file_too_large")]
    assert describe(problems[0], "en") == (
        f"roster.{suffix} is 20.0 MB, over the limit of 20 MB: it was not read."
        " Please split it into smaller files."
    )
    assert describe(problems[0], "zh-CN") == (
        f"文件 roster.{suffix} 有 20.0 MB，超过 20 MB 的上限，未读取。请拆分成几个较小的文件。"
    )


@pytest.mark.asyncio
async def test_a_file_over_the_row_limit_is_refused_in_one_line(
    db: Database, tmp_path: Path
) -> None:
    path = tmp_path / "roster.csv"
    path.write_text(
        HEADER + "\n" + numbered_rows(roster.MAX_ROWS + 1) + "坏行,12345,,\n", encoding="utf-8"
    )
    problems = await import_fails(db, path)
    assert lines_and_keys(problems) == [(None, "roster.file_too_many_rows")]
    assert describe(problems[0], "en") == (
        "roster.csv has more than 50000 rows, the limit: nothing was imported."
        " Please split it into smaller files."
    )
    assert await rows(db, "SELECT COUNT(*) FROM staff") == [(0,)]


@pytest.mark.asyncio
async def test_an_xlsx_over_the_row_limit_is_refused(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(roster, "MAX_ROWS", 3)
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(HEADER.split(","))
    for line in numbered_rows(4).splitlines():
        sheet.append(line.split(","))
    workbook.save(tmp_path / "roster.xlsx")
    problems = await import_fails(db, tmp_path / "roster.xlsx")
    assert lines_and_keys(problems) == [(None, "roster.file_too_many_rows")]
    (tmp_path / "roster.xlsx").unlink()
    workbook.worksheets[0].delete_rows(5)  # at the limit: imported
    workbook.save(tmp_path / "roster.xlsx")
    assert (await run_import(db, tmp_path / "roster.xlsx")).created == 3


@pytest.mark.asyncio
async def test_an_xlsx_that_unpacks_beyond_the_limit_is_refused_before_it_is_read(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small XLSX may unpack to far more (its shared strings are read whole)."""
    workbook = openpyxl.Workbook()
    workbook.active.append(HEADER.split(","))
    workbook.active.append(numbered_rows(1).strip().split(","))
    workbook.save(tmp_path / "roster.xlsx")
    monkeypatch.setattr(roster, "MAX_XLSX_UNPACKED_MB", 0.001)
    problems = await import_fails(db, tmp_path / "roster.xlsx")
    assert lines_and_keys(problems) == [(None, "roster.file_unpacks_too_large")]
    assert describe(problems[0], "en").startswith("roster.xlsx unpacks to 0.0")


def test_a_large_file_is_read_as_a_stream(tmp_path: Path) -> None:
    path = tmp_path / "roster.csv"
    path.write_text(HEADER + "\n" + numbered_rows(40_000), encoding="gb18030")
    assert path.stat().st_size > 1_500_000
    assert peak_while(lambda: sum(1 for _ in roster.read_table(path))) < 2**20


@pytest.mark.asyncio
async def test_demo_roster_imports_cleanly(db: Database) -> None:
    result = await run_import(db, BOT_DIR / "data" / "demo_roster.csv")

    people = await staff(db)
    assert 10 <= result.created == len(people) <= 16
    assert people["张伟"][:4] == ("+8613800000003", "物业服务中心/保安部/一班", "staff", "zh-CN")
    roles = [row[2] for row in people.values()]
    assert roles.count("safety_officer") == 1
    assert roles.count("admin") == 1
    assert roles.count("care_worker") == 2
    assert [row[3] for row in people.values()].count("en") == 1
    paths = {row[0] for row in await rows(db, "SELECT path FROM units")}
    assert {
        "物业服务中心/保安部/一班",
        "物业服务中心/工程部",
        "物业服务中心/餐饮部/厨房",
    } <= paths
    assert any(path.endswith("长者服务中心/上门服务组") for path in paths)


# --- catalogs -----------------------------------------------------------------------


def test_roster_catalogs_have_the_same_keys_and_placeholders() -> None:
    def placeholders(language: str) -> dict[str, set[str]]:
        text = (BOT_DIR / "i18n" / language / "roster.toml").read_text(encoding="utf-8")
        table = tomllib.loads(text)["roster"]
        texts = {
            key: " ".join(value.values()) if isinstance(value, dict) else value  # plural forms
            for key, value in table.items()
        }
        return {key: set(re.findall(r"\{(\w+)\}", text)) for key, text in texts.items()}

    assert placeholders("zh-CN") == placeholders("en")


# --- untrusted input ----------------------------------------------------------------


def _numbered(prefix: str, low: int, high: int) -> st.SearchStrategy[str]:
    return st.integers(low, high).map(lambda n: f"{prefix}{n}")


VALID = {
    "name": st.sampled_from(["张伟", "James Wilson", " 李静 "]),
    "phone": st.one_of(
        _numbered("", 13800000000, 13800000099), _numbered("+86 ", 13800000000, 13800000099)
    ),
    "unit": st.sampled_from(["物业服务中心", "物业服务中心/保安部", "物业服务中心 / 工程部"]),
    "roles": st.sampled_from(["员工", "主管，安全员", "admin、staff"]),
    "language": st.sampled_from(["", "en", "中文"]),
    "telegram_id": st.one_of(st.just(""), _numbered("", 1, 99)),
    "wecom_userid": st.one_of(st.just(""), _numbered("user", 1, 99)),
    "employee_no": st.one_of(st.just(""), _numbered("E", 1, 99)),
}
ODD = {
    "name": st.sampled_from(["", "x" * 65, "a\x07b"]),
    "phone": st.sampled_from(["1", "", "+12", "２３８"]),
    "unit": st.sampled_from(["a//b", "/a", "a/", ""]),
    "roles": st.sampled_from(["", "boss", ",,"]),
    "language": st.sampled_from(["klingon", "zh-TW"]),
    "telegram_id": st.sampled_from(["abc", "-5"]),
    "wecom_userid": st.sampled_from(["张伟", "_x"]),
    "employee_no": st.sampled_from(["x" * 65, "\x00"]),
}
# Mostly sensible cells, so that some files import and later rows meet earlier ones;
# now and then a known-bad value or any text at all.
KINDS = st.sampled_from(["valid"] * 18 + ["odd", "text"])
CELL = {
    column: KINDS.flatmap(
        lambda kind, c=column: {"valid": VALID[c], "odd": ODD[c]}.get(kind, st.text(max_size=30))
    )
    for column in VALID
}
ROW = st.fixed_dictionaries(CELL)


def roster_csv(header: list[str], rows_: list[dict[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for row in rows_:
        writer.writerow([row[column] for column in header])
    return buffer.getvalue()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    first=st.lists(ROW, max_size=5),
    second=st.lists(ROW, max_size=5),
    header=st.permutations(list(VALID)),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "gb18030"]),
)
def test_arbitrary_cells_import_or_report_problems(
    first: list[dict[str, str]], second: list[dict[str, str]], header: list[str], encoding: str
) -> None:
    """Two imports into one database, the second against the people the first left:
    each either succeeds or raises RosterError with readable problems and no change."""

    async def attempt(folder: Path) -> None:
        database = await Database.open(folder / "t.db")
        try:
            for number, rows_ in enumerate((first, second)):
                path = folder / f"roster{number}.csv"
                path.write_bytes(roster_csv(header, rows_).encode(encoding, errors="replace"))
                before = await rows(database, "SELECT * FROM staff ORDER BY id")
                try:
                    await run_import(database, path, deactivate_missing=number == 1)
                except RosterError as error:
                    assert error.problems
                    assert all(describe(p, "zh-CN") and describe(p, "en") for p in error.problems)
                    assert await rows(database, "SELECT * FROM staff ORDER BY id") == before
        finally:
            await database.close()

    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(attempt(Path(folder)))
