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


CLIENTS_HEADER = "客户编号,姓名,地址,纬度,经度,电话,紧急联系人,服务中心,服务项目,上门时间,护理员\n"
CENTRE = "物业服务中心/长者服务中心/上门服务组"
GOOD_CLIENT = (
    f"K901,钱阿婆,黄浦区福州路 88 号 301 室,31.2345,121.4789,13900000901,,{CENTRE},"
    "助餐,每天 10:00-11:00,马秀英\n"
)


async def upload_clients(
    person: Browser,
    content: bytes,
    *,
    filename: str = "clients.csv",
    csrf: str | None = None,
) -> Any:
    form = aiohttp.FormData()
    form.add_field("csrf", person.csrf if csrf is None else csrf)
    form.add_field("clients", content, filename=filename, content_type="text/csv")
    return await person.client.post("/people/clients", data=form, allow_redirects=False)


async def client_numbers(app: App) -> set[str]:
    rows = await app.db.read(lambda conn: conn.execute("SELECT number FROM clients").fetchall())
    return {row["number"] for row in rows}


async def test_a_good_client_list_imports_and_the_audit_names_the_admin(
    app: App, org: dict[str, int], browser: Callable[[], Any]
) -> None:
    admin = await browser()
    await admin.sign_in(org["王建国"])
    response = await upload_clients(admin, (CLIENTS_HEADER + GOOD_CLIENT).encode())
    assert response.status == 200
    assert "客户导入完成：新增 1 位" in await response.text()
    assert "K901" in await client_numbers(app)
    actor = await app.db.read(
        lambda conn: conn.execute(
            "SELECT a.actor_id FROM audit_log a JOIN clients c ON c.id = a.entity_id"
            " WHERE a.entity = 'client' AND a.action = 'created' AND c.number = 'K901'"
        ).fetchone()
    )
    assert actor["actor_id"] == org["王建国"]


async def test_a_client_list_with_bad_lines_changes_nothing_and_names_each_line(
    app: App, org: dict[str, int], browser: Callable[[], Any]
) -> None:
    admin = await browser()
    await admin.sign_in(org["王建国"])
    before = await client_numbers(app)
    bad = (
        CLIENTS_HEADER
        + GOOD_CLIENT  # line 2 is good: it is not imported either
        + f"K902,孙阿公,黄浦区福州路 90 号,95.1,121.4,13900000902,,{CENTRE},助餐,,马秀英\n"
        + f"K903,周阿婆,黄浦区福州路 92 号,31.2,121.4,13900000903,,{CENTRE},助餐,,孙悟空\n"
    )
    page = await (await upload_clients(admin, bad.encode())).text()
    assert "客户名单有 2 处错误，未导入任何数据" in page
    assert "第 3 行" in page and "第 4 行" in page and "孙悟空" in page
    assert "第 2 行" not in page
    assert await client_numbers(app) == before


async def test_only_admins_upload_clients_and_only_with_the_csrf_token(
    app: App, org: dict[str, int], browser: Callable[[], Any]
) -> None:
    before = await client_numbers(app)
    for name in ("刘强", "孙丽", "李静"):  # a supervisor, the centre's head, the safety officer
        person = await browser()
        await person.sign_in(org[name])
        response = await upload_clients(person, (CLIENTS_HEADER + GOOD_CLIENT).encode())
        assert response.status == 403, name
    admin = await browser()
    await admin.sign_in(org["王建国"])
    forged = await upload_clients(admin, (CLIENTS_HEADER + GOOD_CLIENT).encode(), csrf="forged")
    assert forged.status == 403
    assert await client_numbers(app) == before


async def test_a_wrong_or_oversized_client_file_is_refused_with_its_reason(
    app: App, org: dict[str, int], browser: Callable[[], Any]
) -> None:
    from bot.web.people import MAX_UPLOAD

    admin = await browser()
    await admin.sign_in(org["王建国"])
    before = await client_numbers(app)
    wrong = await upload_clients(admin, b"MZ\x90\x00", filename="clients.exe")
    assert "只接受 CSV 或 XLSX 文件" in await wrong.text()
    big = CLIENTS_HEADER.encode() + b"x" * MAX_UPLOAD
    oversized = await upload_clients(admin, big)
    assert "文件超过 10 MB，未导入任何数据" in await oversized.text()
    huge = await upload_clients(admin, b"x" * (MAX_UPLOAD + (1 << 17)))
    assert huge.status == 413 and "上传的文件太大" in await huge.text()
    empty = await upload_clients(admin, b"", filename="clients.xlsx")
    assert "未导入任何数据" in await empty.text()
    assert await client_numbers(app) == before
