"""The elder-care client list import as a service centre sees it: which clients,
care plans and workers end up in the database, which lines of a bad file are
reported and why, and the command line around it."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from conftest import START, demo_database

from bot import cli, roster
from bot.app import App
from bot.clients import (
    ClientProblem,
    ClientsError,
    ClientsResult,
    describe,
    import_clients_file,
    normalize_client_phone,
)
from bot.store import clients as store

HEADER = "客户编号,姓名,地址,纬度,经度,电话,紧急联系人,服务中心,服务项目,上门时间,护理员"
ENGLISH_HEADER = (
    "number,name,address,lat,lon,phone,emergency_contact,unit,services,visit_times,workers"
)
CENTRE = "物业服务中心/长者服务中心/上门服务组"
GOOD = [
    f"K001,王桂芳,福建中路 120 弄 3 号,31.2386,121.4801,021-63510001,女儿 王丽,{CENTRE},"
    "助餐、用药提醒、meal,每天 10:00-11:00,马秀英",
    f'K002,李德明,北京东路 356 号,31.24,121.48,139 0000 0102,,{CENTRE},"Bathing, 保洁，健康检查",'
    '"周一 09:00，周四 14:30-16:00","何桂兰、13800000013"',
    f"K003,陈秀珍,四川中路 88 弄,,,,,{CENTRE},代购,,E014",
]


def write(tmp_path: Path, lines: list[str], name: str = "clients.csv", **kw: Any) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding=kw.get("encoding", "utf-8"))
    return path


async def run_import(app: App, path: Path, *, deactivate_missing: bool = False) -> ClientsResult:
    return await import_clients_file(app.db, path, deactivate_missing=deactivate_missing, now=START)


async def rows(app: App, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    return await app.db.read(lambda conn: [tuple(r) for r in conn.execute(sql, args).fetchall()])


async def clients(app: App) -> dict[str, tuple[Any, ...]]:
    """Every client by number: (name, lat, lon, phone, contact, unit, plan, times, active)."""
    found = await rows(
        app,
        "SELECT c.number, c.name, c.lat, c.lon, c.phone, c.emergency_contact, u.path,"
        " c.services, c.visit_times, c.active FROM clients c JOIN units u ON u.id = c.unit_id",
    )
    return {r[0]: (*r[1:7], json.loads(r[7]), *r[8:]) for r in found}


async def workers(app: App) -> dict[str, list[str]]:
    found = await rows(
        app,
        "SELECT c.number, s.name FROM client_workers w JOIN clients c ON c.id = w.client_id"
        " JOIN staff s ON s.id = w.staff_id ORDER BY c.number, w.rowid",
    )
    listed: dict[str, list[str]] = {}
    for number, name in found:
        listed.setdefault(number, []).append(name)
    return listed


async def import_fails(app: App, path: Path) -> list[ClientProblem]:
    with pytest.raises(ClientsError) as caught:
        await run_import(app, path)
    return caught.value.problems


def lines_and_keys(problems: list[ClientProblem]) -> list[tuple[int | None, str]]:
    return [(p.line, p.key) for p in problems]


# --- a good list ------------------------------------------------------------------------


async def test_good_list_creates_clients_care_plans_and_workers(
    app: App, org: dict[str, int], tmp_path: Path
) -> None:
    result = await run_import(app, write(tmp_path, [HEADER, *GOOD]))

    assert result == ClientsResult(created=3, updated=0, deactivated=0)
    assert await clients(app) == {
        "K001": (
            "王桂芳",
            31.2386,
            121.4801,
            "+862163510001",
            "女儿 王丽",
            CENTRE,
            ["meal", "medication"],
            "每天 10:00-11:00",
            1,
        ),
        "K002": (
            "李德明",
            31.24,
            121.48,
            "+8613900000102",
            None,
            CENTRE,
            ["bathing", "cleaning", "health_check"],
            "周一 09:00，周四 14:30-16:00",
            1,
        ),
        "K003": ("陈秀珍", None, None, None, None, CENTRE, ["shopping"], None, 1),
    }
    # Workers by name, phone or employee number, in the order listed.
    assert await workers(app) == {
        "K001": ["马秀英"],
        "K002": ["何桂兰", "马秀英"],
        "K003": ["何桂兰"],
    }
    first = await app.db.read(lambda conn: store.get(conn, 1))
    assert first is not None and store.plan(first) == ["meal", "medication"]
    mine = await app.db.read(lambda conn: store.assigned_to(conn, org["马秀英"]))
    assert [c["name"] for c in mine] == ["李德明", "王桂芳"]

    audit = await rows(app, "SELECT entity, action, detail FROM audit_log WHERE entity = 'client'")
    assert [(a[0], a[1]) for a in audit] == [("client", "created")] * 3
    assert all("王丽" not in a[2] and "6351" not in a[2] for a in audit), "no personal data"


async def test_english_headers_and_xlsx(app: App, org: dict[str, int], tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append([*ENGLISH_HEADER.split(","), "notes"])
    sheet.append(
        [
            "K9",
            "Old Li",
            "1 Bund",
            31.23,
            121.47,
            13900000109.0,
            None,
            CENTRE,
            "Meal help, Health check",
            "Mon 09:00, Thu 14:30",
            "E013",
            "stairs",
        ]
    )
    sheet.append([None] * 12)
    sheet.append([7, "Old Wu", "2 Bund", None, 121.47, None, None, CENTRE, "meal", None, None])
    path = tmp_path / "clients.xlsx"
    workbook.save(path)

    problems = await import_fails(app, path)
    # Line numbers are the sheet's rows, blank row included.
    assert lines_and_keys(problems) == [(4, "clients.coordinates_incomplete")]

    sheet.delete_rows(4)
    workbook.save(path)
    assert (await run_import(app, path)).created == 1
    assert (await clients(app))["K9"] == (
        "Old Li",
        31.23,
        121.47,
        "+8613900000109",
        None,
        CENTRE,
        ["meal", "health_check"],
        "Mon 09:00, Thu 14:30",
        1,
    )
    assert (await workers(app))["K9"] == ["马秀英"]


async def test_gbk_csv_from_chinese_excel(app: App, org: dict[str, int], tmp_path: Path) -> None:
    path = write(tmp_path, [HEADER, *GOOD], encoding="gbk")
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")
    assert (await run_import(app, path)).created == 3
    assert (await clients(app))["K001"][0] == "王桂芳"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13800000013", "+8613800000013"),
        ("021-6351 0001", "+862163510001"),
        ("0571 8712 3456", "+8657187123456"),
        ("0571 1234567", None),  # Hangzhou's numbers have eight digits
        ("０２１－６３５１０００１", "+862163510001"),
        ("+86 21 63510001", "+862163510001"),
        ("63510001", None),
        ("12345", None),
    ],
)
def test_client_phones_mobile_or_landline(raw: str, expected: str | None) -> None:
    assert normalize_client_phone(raw) == expected


# --- re-imports -------------------------------------------------------------------------


async def test_reimport_updates_by_number_and_replaces_workers(
    app: App, org: dict[str, int], tmp_path: Path
) -> None:
    await run_import(app, write(tmp_path, [HEADER, *GOOD]))
    changed = [
        GOOD[0],  # unchanged
        f"K002,李德明,北京东路 358 号,31.24,121.48,,,{CENTRE},保洁,周二 09:00,马秀英",
    ]
    result = await run_import(app, write(tmp_path, [HEADER, *changed]))

    assert result == ClientsResult(created=0, updated=1, deactivated=0)
    assert (await clients(app))["K002"][5:] == (CENTRE, ["cleaning"], "周二 09:00", 1)
    assert (await workers(app))["K002"] == ["马秀英"]
    assert (await clients(app))["K003"][-1] == 1  # absent, but kept without the flag
    updated = await rows(app, "SELECT detail FROM audit_log WHERE action = 'updated'")
    detail = json.loads(updated[0][0])
    assert detail["address"] == "changed" and "北京东路" not in updated[0][0]
    assert detail["services"] == [["bathing", "cleaning", "health_check"], ["cleaning"]]
    assert detail["workers"] == [[org["何桂兰"], org["马秀英"]], [org["马秀英"]]]

    result = await run_import(app, write(tmp_path, [HEADER, *changed]), deactivate_missing=True)
    assert result == ClientsResult(created=0, updated=0, deactivated=1)
    assert {n: c[-1] for n, c in (await clients(app)).items()} == {"K001": 1, "K002": 1, "K003": 0}
    mine = await app.db.read(lambda conn: store.search(conn, "陈秀珍", None, 10))
    assert mine == []  # out of every list

    # Back in the file: active again.
    result = await run_import(app, write(tmp_path, [HEADER, *GOOD]))
    assert result == ClientsResult(created=0, updated=2, deactivated=0)
    assert (await clients(app))["K003"][-1] == 1


# --- bad lists --------------------------------------------------------------------------


async def test_every_bad_row_is_reported_and_nothing_imported(
    app: App, org: dict[str, int], tmp_path: Path
) -> None:
    await app.db.transaction(
        lambda conn: conn.execute("UPDATE staff SET active = 0 WHERE name = '郑华'")
    )
    bad = [
        GOOD[0],
        f",无编号,某路 1 号,,,,,{CENTRE},助餐,,马秀英",  # 3
        f"K011,,某路 2 号,,,,,{CENTRE},助餐,,马秀英",  # 4
        f"K012,无地址,,,,,,{CENTRE},助餐,,马秀英",  # 5
        f"K013,纬度越界,某路 3 号,91,121.47,,,{CENTRE},助餐,,马秀英",  # 6
        f"K014,经度不是数,某路 4 号,31.2,东经121,,,{CENTRE},助餐,,马秀英",  # 7
        f"K015,只有纬度,某路 5 号,31.2,,,,{CENTRE},助餐,,马秀英",  # 8
        "K016,没有的中心,某路 6 号,,,,,物业服务中心/不存在,助餐,,马秀英",  # 9
        f"K017,未知服务,某路 7 号,,,,,{CENTRE},助餐、按摩,,马秀英",  # 10
        f"K018,周八,某路 8 号,,,,,{CENTRE},助餐,周八 09:00,马秀英",  # 11
        f"K019,二十五点,某路 9 号,,,,,{CENTRE},助餐,每天 25:00,马秀英",  # 12
        f"K020,没有的护理员,某路 10 号,,,,,{CENTRE},助餐,,马秀英、王小二",  # 13
        f"K021,停用的护理员,某路 11 号,,,,,{CENTRE},助餐,,郑华",  # 14
        f"K001,重复编号,某路 12 号,,,,,{CENTRE},助餐,,马秀英",  # 15
        f"K022,坏电话,某路 13 号,,,12345,,{CENTRE},助餐,,马秀英",  # 16
    ]
    problems = await import_fails(app, write(tmp_path, [HEADER, *bad]))

    assert lines_and_keys(problems) == [
        (3, "clients.number_missing"),
        (4, "clients.name_missing"),
        (5, "clients.address_missing"),
        (6, "clients.lat_invalid"),
        (7, "clients.lon_invalid"),
        (8, "clients.coordinates_incomplete"),
        (9, "clients.unit_unknown"),
        (10, "clients.service_unknown"),
        (11, "clients.visit_time_invalid"),
        (12, "clients.visit_time_invalid"),
        (13, "clients.worker_unknown"),
        (14, "clients.worker_inactive"),
        (15, "clients.duplicate_number"),
        (16, "clients.phone_invalid"),
    ]
    shown = {p.line: describe(p, "zh-CN") for p in problems}
    assert shown[9] == "第 9 行：没有这个单位：物业服务中心/不存在（请先在人员名册中建立该单位）。"
    assert shown[10] == "第 10 行：未知服务项目：按摩。"
    assert shown[11].startswith("第 11 行：上门时间看不懂：周八 09:00")
    assert shown[13] == "第 13 行：名册中没有护理员“王小二”。可用姓名、手机号或工号。"
    assert shown[15] == "第 15 行：客户编号 K001 与第 2 行重复。"
    assert describe(problems[5], "en") == "Line 8: Give both latitude and longitude, or neither."
    assert all(describe(p, "en").startswith(f"Line {p.line}: ") for p in problems)
    assert await clients(app) == {}
    assert await rows(app, "SELECT * FROM audit_log WHERE entity = 'client'") == []


async def test_a_name_two_people_share_is_refused(
    app: App, org: dict[str, int], tmp_path: Path
) -> None:
    await app.db.transaction(
        lambda conn: conn.execute("UPDATE staff SET name = '马秀英' WHERE name = '何桂兰'")
    )
    line = f"K001,王桂芳,某路 1 号,,,,,{CENTRE},助餐,,马秀英"
    problems = await import_fails(app, write(tmp_path, [HEADER, line]))
    assert lines_and_keys(problems) == [(2, "clients.worker_ambiguous")]
    assert "E013" in describe(problems[0], "zh-CN") and "E014" in describe(problems[0], "zh-CN")
    # The employee number tells them apart.
    await run_import(app, write(tmp_path, [HEADER, line.replace("马秀英", "E014")]))
    assert (await workers(app))["K001"] == ["马秀英"]


async def test_people_who_share_a_name_are_told_apart_by_their_phone_as_written(
    app: App, tmp_path: Path
) -> None:
    roster_file = write(
        tmp_path,
        [
            "name,phone,unit,roles",
            f"王芳,139-0000-0201,{CENTRE},护理员",
            f"王芳,+86 139 0000 0202,{CENTRE},护理员",
        ],
        name="roster.csv",
    )
    await roster.import_roster_file(
        app.db, roster_file, deactivate_missing=False, default_language="zh-CN", now=START
    )
    line = f"K001,王桂芳,某路 1 号,,,,,{CENTRE},助餐,,王芳"
    [problem] = await import_fails(app, write(tmp_path, [HEADER, line]))
    assert "王芳（139-0000-0201）、王芳（+86 139 0000 0202）" in describe(problem, "zh-CN")


async def test_file_problems_are_named(app: App, org: dict[str, int], tmp_path: Path) -> None:
    missing = write(tmp_path, ["客户编号,姓名,地址,服务中心", "K1,王,路,物业服务中心"])
    assert [describe(p, "en") for p in await import_fails(app, missing)] == [
        "Required column “services” is missing."
    ]
    header_only = write(tmp_path, [HEADER], name="header.csv")
    assert lines_and_keys(await import_fails(app, header_only)) == [(None, "clients.no_rows")]
    nowhere = tmp_path / "nowhere.xlsx"
    assert lines_and_keys(await import_fails(app, nowhere)) == [(None, "roster.file_missing")]


async def test_lists_over_the_size_limits_are_refused(
    app: App, org: dict[str, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    large = tmp_path / "large.csv"
    with large.open("wb") as handle:
        handle.write((HEADER + "\n").encode())
        handle.truncate(roster.MAX_FILE_BYTES + 1)
    assert lines_and_keys(await import_fails(app, large)) == [(None, "roster.file_too_large")]

    monkeypatch.setattr(roster, "MAX_ROWS", 2)
    long = write(tmp_path, [HEADER, *GOOD], name="long.csv")
    assert lines_and_keys(await import_fails(app, long)) == [(None, "roster.file_too_many_rows")]
    assert await clients(app) == {}
    assert (await run_import(app, write(tmp_path, [HEADER, *GOOD[:2]]))).created == 2


async def test_demo_clients_import_cleanly(app: App, org: dict[str, int]) -> None:
    path = Path(cli.__file__).parent / "data" / "demo_clients.csv"
    result = await run_import(app, path)
    assert 3 <= result.created <= 4
    listed = await workers(app)
    assert {name for names in listed.values() for name in names} == {"马秀英", "何桂兰"}
    assert all(c[5] == CENTRE and c[1] is not None for c in (await clients(app)).values())


# --- the command line -------------------------------------------------------------------


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty working directory, no FRONTLINE_* settings, the demo organisation."""
    for name in list(os.environ):
        if name.startswith("FRONTLINE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return demo_database(tmp_path / "demo.db")


def test_clients_import_command(
    cli_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    good = write(tmp_path, [HEADER, *GOOD])
    assert cli.main(["clients", "import", str(good), "--db", str(cli_env)]) == 0
    assert capsys.readouterr().out.strip() == "客户导入完成：新增 3 位，更新 0 位，停用 0 位。"

    one = write(tmp_path, [HEADER, GOOD[0]], name="one.csv")
    args = ["clients", "import", str(one), "--deactivate-missing", "--db", str(cli_env)]
    assert cli.main(args) == 0
    assert "停用 2 位" in capsys.readouterr().out

    bad = write(tmp_path, [HEADER, GOOD[0], f"K9,,路,,,,,{CENTRE},按摩,,"], name="bad.csv")
    assert cli.main(["clients", "import", str(bad), "--db", str(cli_env)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "客户名单有 2 处错误，未导入任何数据：",
        "第 3 行：姓名为空。",
        "第 3 行：未知服务项目：按摩。",
    ]

    monkeypatch.setenv("FRONTLINE_LANGUAGE", "en")
    assert cli.main(["clients", "import", str(bad), "--db", str(cli_env)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == "The client list has 2 problems; nothing was imported:"
    assert err[1] == "Line 3: The name is empty."
    assert cli.main(["clients", "import", str(tmp_path / "no.csv"), "--db", str(cli_env)]) == 2
    assert "no.csv" in capsys.readouterr().err


def test_visits_tolerance_command(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    centre = "物业服务中心/长者服务中心"
    assert cli.main(["visits", "tolerance", centre, "300", "--db", str(cli_env)]) == 0
    assert "300 米" in capsys.readouterr().out
    for metres in ("9", "5001", "abc", "-5", "1.5"):
        assert cli.main(["visits", "tolerance", centre, metres, "--db", str(cli_env)]) == 2
        assert "10 到 5000" in capsys.readouterr().err
    assert cli.main(["visits", "tolerance", "物业服务中心/没有", "300", "--db", str(cli_env)]) == 2
    assert "没有这个单位" in capsys.readouterr().err

    async def tolerances() -> tuple[int, int]:
        app = await App.open(cli_env, {})
        try:
            return await app.db.read(
                lambda conn: (
                    store.tolerance_m(conn, _unit(conn, f"{centre}/上门服务组")),
                    store.tolerance_m(conn, _unit(conn, "物业服务中心/保安部")),
                )
            )
        finally:
            await app.close()

    assert asyncio.run(tolerances()) == (300, store.DEFAULT_TOLERANCE_M)


def _unit(conn: Any, path: str) -> int:
    return int(conn.execute("SELECT id FROM units WHERE path = ?", (path,)).fetchone()[0])
