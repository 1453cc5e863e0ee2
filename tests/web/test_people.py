"""People and the audit log on the desk: admins upload a roster (all or
nothing, problems by line) and deactivate people; supervisors only read."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp

from bot.app import App
from tests.web.deskkit import Browser, browser_fixture, desk_fixture  # noqa: F401

HEADER = "name,phone,unit,roles,language,telegram_id,wecom_userid,employee_no\n"


async def upload(person: Browser, text: str, *, csrf: str | None = None) -> Any:
    form = aiohttp.FormData()
    form.add_field("csrf", person.csrf if csrf is None else csrf)
    form.add_field("roster", text.encode(), filename="roster.csv", content_type="text/csv")
    return await person.client.post("/people/roster", data=form, allow_redirects=False)


async def test_a_roster_with_a_bad_line_imports_nothing_and_names_the_line(
    app: App, org: dict[str, int], browser: Callable[[], Any]
) -> None:
    admin = await browser()
    await admin.sign_in(org["王建国"])
    rows = [
        "孙悟空,13900000001,物业服务中心/新部门,员工,zh-CN,,,E901",
        "猪八戒,12345,物业服务中心,员工,zh-CN,,,E902",
    ]
    bad = HEADER + "\n".join(rows) + "\n"
    response = await upload(admin, bad)
    page = await response.text()
    assert "花名册未导入" in page and "第 3 行" in page and "12345" in page
    names = await app.db.read(lambda conn: conn.execute("SELECT name FROM staff").fetchall())
    assert "孙悟空" not in {row["name"] for row in names}
    good = HEADER + "孙悟空,13900000001,物业服务中心/新部门,员工,zh-CN,,,E901\n"
    page = await (await upload(admin, good)).text()
    assert "新增 1 人" in page
    assert "孙悟空" in await (await admin.get("/people?q=孙悟空")).text()


async def test_only_admins_import_and_only_with_the_csrf_token(
    org: dict[str, int], browser: Callable[[], Any]
) -> None:
    liu = await browser()
    await liu.sign_in(org["刘强"])
    assert (await upload(liu, HEADER)).status == 403
    admin = await browser()
    await admin.sign_in(org["王建国"])
    assert (await upload(admin, HEADER, csrf="forged")).status == 403


async def test_deactivating_someone_ends_their_desk_session_and_is_audited(
    app: App, org: dict[str, int], browser: Callable[[], Any]
) -> None:
    chen = await browser()
    await chen.sign_in(org["陈磊"])
    admin = await browser()
    await admin.sign_in(org["王建国"])
    liu = await browser()
    await liu.sign_in(org["刘强"])
    assert (await liu.post(f"/people/{org['陈磊']}/deactivate", csrf=liu.csrf)).status == 403
    done = await admin.post(f"/people/{org['陈磊']}/deactivate", csrf=admin.csrf)
    assert done.status == 303
    assert (await chen.get("/")).status == 401
    row = await app.db.read(
        lambda conn: conn.execute(
            "SELECT actor_id FROM audit_log WHERE entity = 'staff' AND action = 'deactivated'"
        ).fetchone()
    )
    assert row["actor_id"] == org["王建国"]
    log = await (await admin.get("/audit?entity=staff")).text()
    assert "王建国" in log and "deactivated" in log


async def test_supervisors_read_their_units_people_without_phones(
    org: dict[str, int], browser: Callable[[], Any]
) -> None:
    liu = await browser()
    await liu.sign_in(org["刘强"])
    page = await (await liu.get("/people")).text()
    assert "陈磊" in page and "黄海" not in page and "13800000005" not in page
    admin = await browser()
    await admin.sign_in(org["王建国"])
    page = await (await admin.get("/people?q=陈磊")).text()
    assert "+8613800000005" in page
