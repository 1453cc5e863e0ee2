"""The WeCom directory sync and group robots as an admin sees them: which units
and people the sync creates, updates and deactivates, what it reports, what a
dry run leaves alone, and binding a unit's alert group robot."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from conftest import demo_database

from bot import cli
from bot.channels.wecom.api import Department, Member
from bot.store import people
from bot.store.roster import StoredPerson
from bot.wecom_sync import department_paths, plan_sync, robot_key
from tests.wecom.fakewecom import AGENT_ID, CORP_ID, SECRET, FakeWeCom

AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
ROBOT = "693a91f6-7a3c-4bc4-97a0-0ec2a1f5aaaa"

DEPARTMENTS = [
    {"id": 1, "name": "物业服务中心", "parentid": 0, "order": 1},
    {"id": 2, "name": "保安部", "parentid": 1, "order": 1},
    {"id": 3, "name": "一班", "parentid": 2, "order": 1},
    {"id": 4, "name": "工程部", "parentid": 1, "order": 2},
    {"id": 5, "name": "二班", "parentid": 2, "order": 2},
]
# Against the demo roster: 张伟 (13800000003) and 赵敏 (13800000007) match by mobile,
# 王建国 the admin (13800000001) too but WeCom files him under 保安部; 新人 is new
# and WeCom shows the app no mobile; 离职 has left.
USERS = [
    {"userid": "zhangwei", "name": "张伟", "department": [3], "mobile": "13800000003", "status": 1},
    {
        "userid": "wangjg",
        "name": "王建国",
        "department": [2],
        "mobile": "138 0000 0001",
        "status": 1,
    },
    {"userid": "zhaomin", "name": "赵敏", "department": [4], "mobile": "13800000007", "status": 1},
    {"userid": "xinren", "name": "新人", "department": [5, 3], "status": 1},
    {"userid": "lizhi", "name": "离职", "department": [3], "mobile": "13900000000", "status": 5},
]


# -- the command line against a fake WeCom -------------------------------------------------


@pytest.fixture
def demo_db(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty working directory, no FRONTLINE_* settings, the demo organisation."""
    for name in list(os.environ):
        if name.startswith("FRONTLINE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return demo_database(tmp_path / "demo.db")


@pytest.fixture
async def wecom(monkeypatch: pytest.MonkeyPatch, demo_db: Path) -> AsyncIterator[FakeWeCom]:
    async with FakeWeCom() as server:
        server.set_directory(DEPARTMENTS, USERS)
        monkeypatch.setenv("FRONTLINE_WECOM_CORP_ID", CORP_ID)
        monkeypatch.setenv("FRONTLINE_WECOM_AGENT_ID", str(AGENT_ID))
        monkeypatch.setenv("FRONTLINE_WECOM_SECRET", SECRET)
        monkeypatch.setenv("FRONTLINE_WECOM_TOKEN", "callback-token")
        monkeypatch.setenv("FRONTLINE_WECOM_AES_KEY", AES_KEY)
        monkeypatch.setenv("FRONTLINE_WECOM_API_URL", server.base_url)
        yield server


async def sync(db: Path, *extra: str) -> int:
    """`frontline roster sync-wecom`; in a thread, since it runs its own event loop."""
    return await asyncio.to_thread(cli.main, ["roster", "sync-wecom", "--db", str(db), *extra])


@pytest.fixture
def query(demo_db: Path) -> Iterator[Any]:
    conn = sqlite3.connect(demo_db)

    def run(sql: str, *args: Any) -> list[tuple[Any, ...]]:
        return conn.execute(sql, args).fetchall()

    yield run
    conn.close()


def person(query: Any, name: str) -> dict[str, Any]:
    rows = query(
        "SELECT s.id, s.phone, u.path, s.roles, s.language, s.active,"
        " (SELECT group_concat(user_id) FROM channel_identities"
        "  WHERE staff_id = s.id AND channel = 'wecom')"
        " FROM staff s JOIN units u ON u.id = s.unit_id WHERE s.name = ?",
        name,
    )
    assert len(rows) == 1, rows
    keys = ("id", "phone", "unit", "roles", "language", "active", "wecom")
    return dict(zip(keys, rows[0], strict=True))


async def test_first_sync_creates_units_and_people_and_binds_identities(
    wecom: FakeWeCom, demo_db: Path, query: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await sync(demo_db) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "新建单位：物业服务中心/保安部/二班",
        "新增人员：新人（物业服务中心/保安部/二班）",
        "更新人员：张伟：企业微信账号 - → zhangwei",
        "更新人员：王建国：单位 物业服务中心 → 物业服务中心/保安部；企业微信账号 - → wangjg",
        "更新人员：赵敏：企业微信账号 - → zhaomin",
        "企业微信同步完成：新增 1 人，更新 3 人，停用 0 人，新建单位 1 个。",
    ]
    newcomer = person(query, "新人")
    # No mobile from WeCom: filed under a placeholder no real phone can equal.
    assert newcomer | {"id": 0} == {
        "id": 0,
        "phone": "wecom:xinren",
        "unit": "物业服务中心/保安部/二班",
        "roles": "staff",
        "language": "zh-CN",
        "active": 1,
        "wecom": "xinren",
    }
    admin = person(query, "王建国")
    assert (admin["roles"], admin["phone"], admin["wecom"]) == ("admin", "+8613800000001", "wangjg")
    assert person(query, "张伟")["wecom"] == "zhangwei"
    assert query("SELECT COUNT(*) FROM staff WHERE name = '离职'") == [(0,)]
    audit = query(
        "SELECT action, detail FROM audit_log WHERE entity = 'staff' AND entity_id = ?"
        " ORDER BY id DESC LIMIT 1",
        admin["id"],
    )
    assert audit[0][0] == "updated"
    assert json.loads(audit[0][1]) == {
        "unit": ["物业服务中心", "物业服务中心/保安部"],
        "wecom_userid": [None, "wangjg"],
        "source": "wecom",
    }

    audited = query("SELECT COUNT(*) FROM audit_log")
    assert await sync(demo_db) == 0
    assert capsys.readouterr().out.strip() == "单位和人员与企业微信通讯录一致，无需更改。"
    assert query("SELECT COUNT(*) FROM audit_log") == audited


async def test_a_moved_member_changes_unit_and_a_departed_one_is_deactivated(
    wecom: FakeWeCom,
    demo_db: Path,
    query: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert await sync(demo_db) == 0
    with closing(sqlite3.connect(demo_db)) as conn, conn:  # a reminder waits for 赵敏
        conn.execute(
            "INSERT INTO outbox (staff_id, channel, address, text, idempotency_key,"
            " next_attempt_at, created_at) VALUES (?, 'wecom', 'zhaomin', '提醒', 'r:1', '', '')",
            (person(query, "赵敏")["id"],),
        )
    users = [dict(u) for u in USERS if u["userid"] != "zhaomin"]
    users[0]["department"] = [4]  # 张伟 moves to 工程部
    wecom.set_directory(DEPARTMENTS, users)
    monkeypatch.setenv("FRONTLINE_LANGUAGE", "en")
    capsys.readouterr()

    assert await sync(demo_db) == 0
    assert capsys.readouterr().out.splitlines() == [
        "Updated 张伟: unit 物业服务中心/保安部/一班 → 物业服务中心/工程部",
        "Deactivated: 赵敏 (no longer in the WeCom directory)",
        "WeCom sync finished: 0 added, 1 updated, 1 deactivated; units created: 0.",
    ]
    assert person(query, "张伟")["unit"] == "物业服务中心/工程部"
    assert person(query, "赵敏")["active"] == 0
    # People WeCom never knew (Telegram-only, say) are not the sync's business.
    assert person(query, "刘强")["active"] == 1
    (detail,) = query(
        "SELECT detail FROM audit_log WHERE action = 'deactivated' AND entity_id = ?",
        person(query, "赵敏")["id"],
    )
    assert json.loads(detail[0]) == {"reason": "missing_from_wecom"}
    assert query("SELECT status, last_error FROM outbox WHERE idempotency_key = 'r:1'") == [
        ("cancelled", "deactivated: missing_from_wecom")
    ]

    wecom.set_directory(DEPARTMENTS, USERS)  # 赵敏 is back
    assert await sync(demo_db) == 0
    assert "Updated 赵敏: reactivated" in capsys.readouterr().out
    assert person(query, "赵敏")["active"] == 1


async def test_a_dry_run_reports_and_writes_nothing(
    wecom: FakeWeCom, demo_db: Path, query: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    before = [query(f"SELECT * FROM {table}") for table in ("staff", "units", "audit_log")]
    assert await sync(demo_db, "--dry-run") == 0
    out = capsys.readouterr().out.splitlines()
    assert "新增人员：新人（物业服务中心/保安部/二班）" in out
    assert out[-1] == "试运行：将新增 1 人，更新 3 人，停用 0 人，新建单位 1 个；未写入任何更改。"
    assert [query(f"SELECT * FROM {table}") for table in ("staff", "units", "audit_log")] == before
    assert query("SELECT COUNT(*) FROM channel_identities WHERE channel = 'wecom'") == [(0,)]


async def test_nothing_changes_when_wecom_cannot_be_read_or_shows_nobody(
    wecom: FakeWeCom,
    demo_db: Path,
    query: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert await sync(demo_db) == 0
    capsys.readouterr()
    wecom.set_directory(DEPARTMENTS, [])  # a visible scope narrowed to nobody
    assert await sync(demo_db) == 2
    assert "没有应用可见的在职成员" in capsys.readouterr().err
    assert query("SELECT COUNT(*) FROM staff WHERE active = 0") == [(0,)]

    monkeypatch.setenv("FRONTLINE_WECOM_SECRET", "wrong")
    assert await sync(demo_db) == 2
    err = capsys.readouterr().err
    assert err.startswith("无法读取企业微信通讯录") and "40001" in err
    assert "wrong" not in err


def test_sync_without_wecom_settings_is_refused(
    demo_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["roster", "sync-wecom", "--db", str(demo_db)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("未配置企业微信") and "\n" not in err


# -- the planner, without WeCom --------------------------------------------------------------


def department(id: int, name: str, parentid: int) -> Department:
    return Department(id=id, name=name, parentid=parentid)


def stored(id: int, name: str, phone: str, *user_ids: str, active: bool = True) -> StoredPerson:
    return StoredPerson(id, name, phone, "总部", "staff", "zh-CN", active, user_ids)


def test_paths_run_from_the_top_department_the_app_sees() -> None:
    # The app sees only 物业 and below; a '/' in a name cannot split a level.
    departments = [
        department(7, "物业/后勤", 3),
        department(8, "保安部", 7),
        department(9, " 夜班 ", 8),
    ]
    assert department_paths(departments) == {
        7: "物业／后勤",
        8: "物业／后勤/保安部",
        9: "物业／后勤/保安部/夜班",
    }


def test_a_mobile_held_by_another_wecom_account_does_not_merge_two_people() -> None:
    plan = plan_sync(
        [department(1, "总部", 0)],
        [
            Member(userid="old", name="甲", department=(1,), mobile="13800000001"),
            Member(userid="new", name="乙", department=(1,), mobile="13800000001"),
        ],
        [stored(1, "甲", "+8613800000001", "old")],
        {"总部"},
        default_language="zh-CN",
    )
    assert plan.created == () and plan.updated == () and plan.deactivated == ()
    assert [(p.userid, p.key) for p in plan.problems] == [("new", "wecom.phone_taken")]


def test_a_stored_phone_is_kept_when_wecom_hides_mobiles() -> None:
    plan = plan_sync(
        [department(1, "总部", 0)],
        [Member(userid="jia", name="甲", department=(1,))],
        [stored(1, "甲", "+8613800000001", "jia")],
        {"总部"},
        default_language="zh-CN",
    )
    assert not plan.changes_anything


# -- the alert group robot ----------------------------------------------------------------------


def robot(db: Path, *args: str) -> int:
    return cli.main(["wecom", "robot", *args, "--db", str(db)])


def groups(db: Path, unit: str) -> list[tuple[str, str, str]]:
    with closing(sqlite3.connect(db)) as conn:
        conn.row_factory = sqlite3.Row
        (unit_id,) = conn.execute("SELECT id FROM units WHERE path = ?", (unit,)).fetchone()
        return people.alert_groups(conn, unit_id)


def test_a_robot_key_becomes_the_units_alert_group(
    demo_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    unit = "物业服务中心/保安部"
    assert robot(demo_db, unit, ROBOT) == 0
    assert (
        capsys.readouterr().out.strip()
        == f"已将群机器人设为 {unit} 的告警群，消息使用 王建国 的语言。"
    )
    assert groups(demo_db, unit + "/一班") == [("wecom_robot", ROBOT, "zh-CN")]

    # A new key replaces the old; the webhook URL as copied from WeCom works too.
    other = "0a1b2c3d-0000-4bc4-97a0-0ec2a1f5bbbb"
    url = f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={other}"
    assert robot(demo_db, unit, url, "--by", "James Wilson") == 0
    assert groups(demo_db, unit) == [("wecom_robot", other, "en")]

    assert robot(demo_db, unit, "--remove") == 0
    assert groups(demo_db, unit) == []
    assert robot(demo_db, unit, "--remove") == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"{unit} 没有绑定告警群机器人。"


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["物业服务中心", "not a key!"], "不像企业微信群机器人的 key"),
        (["物业服务中心", "abc"], "不像企业微信群机器人的 key"),
        (["物业服务中心/没有", ROBOT], "没有这个单位"),
        (["物业服务中心"], "--remove"),
        (["物业服务中心", ROBOT, "--remove"], "--remove"),
        (["物业服务中心", ROBOT, "--by", "没这个人"], "没这个人"),
    ],
)
def test_a_bad_robot_binding_is_refused(
    demo_db: Path, capsys: pytest.CaptureFixture[str], args: list[str], error: str
) -> None:
    assert robot(demo_db, *args) == 2
    assert error in capsys.readouterr().err
    assert groups(demo_db, "物业服务中心") == []


def test_robot_keys_look_like_webhook_keys() -> None:
    assert robot_key(f" {ROBOT} ") == ROBOT
    assert robot_key("x" * 64) == "x" * 64
    for bad in ("x" * 65, "1234567", "-abcdefgh", "key with spaces", "a/b/c/d/e/f"):
        assert robot_key(bad) is None
