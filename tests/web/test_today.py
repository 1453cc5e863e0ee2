"""Today's numbers as a supervisor reads them: each unit counting the units
below it, the people who have not checked, the running incident reports."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from importlib import resources
from typing import Any

from conftest import START

from bot import clients
from bot.app import App
from bot.clock import iso
from bot.store import desk_reads, incidents
from bot.store.incidents import NewIncident
from bot.web import today
from bot.web.access import Access
from bot.web.context import Desk
from bot.web.units import UnitTree
from tests.web.deskkit import browser_fixture, desk_fixture, report  # noqa: F401

SECURITY = "物业服务中心/保安部"
TEAM = "物业服务中心/保安部/一班"


async def seed_day(app: App, org: dict[str, int]) -> None:
    await report(
        app, unit_path=TEAM, reporter=org["张伟"], description="灭火器压力不足", severity="major"
    )
    await report(app, unit_path=SECURITY, reporter=org["刘强"], description="消防通道堆放杂物")
    await report(app, unit_path="物业服务中心/工程部", reporter=org["黄海"], description="配电箱")

    def more(conn: Any) -> None:
        team = conn.execute("SELECT id FROM units WHERE path = ?", (TEAM,)).fetchone()[0]
        conn.execute(
            "INSERT INTO checklist_runs (checklist, staff_id, unit_id, local_date, started_at,"
            " completed_at) VALUES ('preshift', ?, ?, '2026-11-27', ?, ?)",
            (org["张伟"], team, iso(START), iso(START)),
        )
        incidents.create(
            conn,
            NewIncident(
                unit_id=team,
                reported_by=org["陈磊"],
                occurred_at=iso(START - timedelta(days=20)),
                place="车库",
                kind="injury",
                description="扭伤脚踝",
                hurt_count=1,
                hurt_names="陈磊",
                first_actions=None,
                photos=[],
                report_due_at=iso(START - timedelta(days=5)),
            ),
            year=2026,
            now=iso(START),
        )

    await app.db.transaction(more)


async def test_each_unit_counts_the_units_below_it(
    app: App, org: dict[str, int], desk: Desk
) -> None:
    await seed_day(app, org)
    async with desk.reader.connection() as conn:
        tree = UnitTree(await desk_reads.units(conn))
        liu = await desk_reads.staff(conn, org["刘强"])
        assert liu is not None
        view = await today.gather(
            conn,
            Access(liu, tree),
            now=START + timedelta(hours=1),
            default_timezone="Asia/Shanghai",
            drills_required=2,
        )
    rows = {row.path: row for row in view.rows}
    assert list(rows) == [SECURITY, TEAM]  # his part of the tree only
    security, team = rows[SECURITY].numbers, rows[TEAM].numbers
    assert (security.general, security.major, security.overdue) == (1, 1, 2)
    assert (team.general, team.major) == (0, 1)
    assert (team.checks_done, team.checks_expected) == (1, 3)  # 张伟 of 张伟, 陈磊, 杨洋
    assert security.checks_done == 1 and security.checks_expected == 4
    assert (security.reports, security.reports_late) == (1, 1)
    assert [r.days_left for r in view.reports] == [-5]
    assert view.total.open == 2


async def test_the_checks_page_names_who_has_not_checked(
    app: App, org: dict[str, int], browser: Callable[[], Any]
) -> None:
    await seed_day(app, org)
    liu = await browser()
    await liu.sign_in(org["刘强"])
    page = await (await liu.get("/checks")).text()
    team = page[page.index(TEAM) :]
    assert "陈磊" in team and "杨洋" in team and "张伟" not in team.split("</section>")[0]
    assert "08:30" in page
    today_page = await (await liu.get("/")).text()
    assert "扭伤" not in today_page  # no personal data of the incident beyond its number
    assert "SG-2026-001" in today_page and "已超期 5 天" in today_page


async def test_the_incident_register_follows_the_chats_rules(
    app: App, org: dict[str, int], browser: Callable[[], Any]
) -> None:
    await seed_day(app, org)  # 陈磊 reported an injury in 保安部/一班
    for name, sees in (
        ("刘强", True),
        ("陈磊", True),
        ("张伟", False),
        ("赵敏", False),
        ("李静", True),
    ):
        person = await browser()
        await person.sign_in(org[name])
        page = await (await person.get("/incidents?running=1")).text()
        assert ("SG-2026-001" in page) is sees, name


async def test_todays_visits_show_who_goes_and_who_is_late(
    app: App, org: dict[str, int], browser: Callable[[], Any]
) -> None:
    demo = resources.files("bot.data").joinpath("demo_clients.csv")
    with resources.as_file(demo) as path:
        await clients.import_clients_file(app.db, path, deactivate_missing=False, now=START)

    def plan(conn: Any) -> None:
        client = conn.execute("SELECT id FROM clients WHERE number = 'K001'").fetchone()[0]
        conn.execute(
            "INSERT INTO visit_requests (client_id, origin, services, starts_at, ends_at,"
            " worker_id, state, created_at) VALUES (?, 'request', '[]', ?, ?, ?, 'accepted', ?)",
            (
                client,
                iso(START - timedelta(minutes=30)),
                iso(START + timedelta(minutes=30)),
                org["马秀英"],
                iso(START),
            ),
        )

    await app.db.transaction(plan)
    sun = await browser()
    await sun.sign_in(org["孙丽"])
    page = await (await sun.get("/visits")).text()
    assert "王桂芳" in page and "马秀英" in page and "迟到" in page
    liu = await browser()
    await liu.sign_in(org["刘强"])
    assert "王桂芳" not in await (await liu.get("/visits")).text()  # not his units' client


async def test_drills_and_notices_as_the_chat_keeps_them(
    app: App, org: dict[str, int], browser: Callable[[], Any]
) -> None:
    def record(conn: Any) -> None:
        security = conn.execute("SELECT id FROM units WHERE path = ?", (SECURITY,)).fetchone()[0]
        conn.execute(
            "INSERT INTO drills (unit_id, kind, at, organiser_id, state, participants, minutes,"
            " created_at) VALUES (?, 'fire', ?, ?, 'done', 12, 30, ?)",
            (security, iso(START - timedelta(days=3)), org["李静"], iso(START)),
        )
        notice = conn.execute(
            "INSERT INTO notices (sender_id, text, audience, created_at)"
            " VALUES (?, '明天消防检查', '{}', ?)",
            (org["刘强"], iso(START)),
        ).lastrowid
        for name, read in (("张伟", iso(START)), ("陈磊", None)):
            conn.execute(
                "INSERT INTO notice_recipients (notice_id, staff_id, read_at) VALUES (?, ?, ?)",
                (notice, org[name], read),
            )

    await app.db.transaction(record)
    liu = await browser()
    await liu.sign_in(org["刘强"])
    drills = await (await liu.get("/drills")).text()
    assert "消防演练" in drills and "12 人" in drills and "李静" in drills
    notices = await (await liu.get("/notices")).text()
    assert "已读 1/2" in notices and "未读：陈磊" in notices
    zhang = await browser()
    await zhang.sign_in(org["张伟"])
    assert "明天消防检查" in await (await zhang.get("/notices")).text()
    assert (await zhang.get("/drills")).status == 403
