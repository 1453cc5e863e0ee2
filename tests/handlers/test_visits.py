"""A home visit through the engine: check-in by location, services,
observations with readings, anything unusual reported at once, check-out
with the no-gifts confirmation; every refusal, the reminders, a restart."""

from __future__ import annotations

import csv
import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import CHANNEL, START, Person, import_demo

from bot import clients, export
from bot.app import App
from bot.clock import FakeClock, iso
from bot.model import InboundKind
from bot.store import people
from schedules import visits as watch

HOME = (31.2304, 121.4737)
CENTRE = "物业服务中心/长者服务中心/上门服务组"


async def add_client(
    app: App,
    number: str,
    name: str,
    workers: list[int],
    *,
    services: tuple[str, ...] = ("meal", "health_check", "cleaning"),
    home: tuple[float, float] | None = HOME,
) -> int:
    def insert(conn: Any) -> int:
        unit = people.unit_id(conn, CENTRE)
        cursor = conn.execute(
            "INSERT INTO clients (number, name, address, lat, lon, phone, emergency_contact,"
            " unit_id, services, created_at, updated_at)"
            " VALUES (?, ?, '幸福路 8 号 302', ?, ?, '13900000000', '女儿 13900000001',"
            " ?, ?, ?, ?)",
            (
                number,
                name,
                home[0] if home else None,
                home[1] if home else None,
                unit,
                json.dumps(list(services)),
                iso(START),
                iso(START),
            ),
        )
        client_id = int(cursor.lastrowid)
        conn.executemany(
            "INSERT INTO client_workers (client_id, staff_id) VALUES (?, ?)",
            [(client_id, w) for w in workers],
        )
        return client_id

    return int(await app.db.transaction(insert))


async def locate(someone: Person, lat: float, lon: float) -> list[str]:
    return await someone.deliver(InboundKind.LOCATION, "", data={"lat": lat, "lon": lon})


async def visit_row(app: App) -> dict[str, Any]:
    row = await app.db.read(lambda c: c.execute("SELECT * FROM visits ORDER BY id").fetchone())
    return dict(row) if row else {}


@pytest.fixture
async def ma(person, app: App, org) -> Person:
    worker: Person = await person("马秀英")
    await add_client(app, "K001", "王奶奶", [org["马秀英"]])
    return worker


async def check_in(
    worker: Person, lat: float = HOME[0] + 0.0002, lon: float = HOME[1]
) -> list[str]:
    await worker.send("/visit")
    await worker.press("王奶奶")
    return await locate(worker, lat, lon)


async def test_a_whole_visit_holds_the_six_elements(ma: Person, app: App, clock: FakeClock) -> None:
    replies = await check_in(ma)
    assert "已签到：王奶奶" in replies[0] and "距老人家 22 米" in replies[0]
    assert "上门服务进行中" in replies[-1]
    await ma.press("服务项目")
    for service in ("助餐", "健康检查", "保洁"):
        await ma.press(service)
    await ma.press("计划外")
    await ma.press("陪伴聊天")
    await ma.press("完成")
    await ma.press("观察记录")
    await ma.send("精神好，饮食正常")
    await ma.press("跳过")
    replies = await ma.send("血压 135/85 心率 72 体温 36.6")
    assert "135/85 mmHg · ♥72 · 36.6℃" in replies[0]
    clock.advance(timedelta(minutes=50))
    await ma.press("签退")
    await locate(ma, HOME[0], HOME[1] + 0.0003)
    replies = await ma.press("确认未收受礼品")
    assert "已签退：王奶奶" in replies[0] and "用时 0:50" in replies[0]
    assert "助餐、健康检查（血压等）、保洁、陪伴聊天" in replies[0]
    row = await visit_row(app)
    assert row["state"] == "done" and row["no_gifts"] == 1
    assert json.loads(row["services"]) == ["meal", "health_check", "cleaning", "companionship"]
    assert row["checkin_at"] == iso(START) and row["checkout_at"] == iso(clock.now())
    assert 20 < row["checkin_distance_m"] < 25 and 25 < row["checkout_distance_m"] < 35
    assert row["checkin_exception"] is None and row["checkout_exception"] is None
    note = await app.db.read(lambda c: c.execute("SELECT * FROM visit_notes").fetchone())
    assert note["kind"] == "observation" and json.loads(note["readings"]) == {
        "systolic": 135,
        "diastolic": 85,
        "pulse": 72,
        "temperature": 36.6,
    }
    audit = await app.db.read(
        lambda c: [r[0] for r in c.execute("SELECT action FROM audit_log WHERE entity = 'visit'")]
    )
    assert audit == ["checkin", "observation", "checkout"]


async def test_a_far_check_in_is_an_exception_with_a_reason(ma: Person, app: App) -> None:
    replies = await check_in(ma, HOME[0] + 0.009, HOME[1])  # about 1 km north
    assert "超出了允许范围" in replies[0] and "1,001 米" in replies[0]
    replies = await ma.press("定位不准")
    assert "位置异常：定位不准" in replies[0]
    row = await visit_row(app)
    assert (row["checkin_exception"], row["checkin_reason"]) == ("far", "gps_poor")


async def test_the_units_tolerance_applies(ma: Person, app: App) -> None:
    await app.db.transaction(
        lambda c: c.execute(
            "INSERT INTO visit_settings (unit_id, tolerance_m) VALUES (?, 2000)",
            (people.unit_id(c, "物业服务中心/长者服务中心"),),
        )
    )
    replies = await check_in(ma, HOME[0] + 0.009, HOME[1])
    assert "已签到" in replies[0]


async def test_no_location_needs_a_reason(ma: Person, app: App) -> None:
    await ma.send("/visit")
    await ma.press("王奶奶")
    await ma.press("无法发送位置")
    await ma.press("其他原因")
    replies = await ma.send("手机没电了，借用同事手机")
    assert "未发送位置：其他原因" in replies[0]
    row = await visit_row(app)
    assert (row["checkin_exception"], row["checkin_note"]) == (
        "no_location",
        "手机没电了，借用同事手机",
    )


async def test_cannot_send_location_typed_back_as_its_label_is_the_choice(
    ma: Person, app: App
) -> None:
    """A reply-keyboard button (Telegram's, beside the location button) sends
    its label as text: that is a press of the button, on every channel."""
    await ma.send("/visit")
    await ma.press("王奶奶")
    replies = await ma.send("🚫 无法发送位置")
    assert "无法发送位置的原因" in replies[-1]
    await ma.press("定位不准")
    row = await visit_row(app)
    assert (row["checkin_exception"], row["checkin_reason"]) == ("no_location", "gps_poor")
    await ma.press("签退")
    await ma.press("仍然签退")  # nothing ticked yet
    replies = await ma.send("🚫 无法发送位置")
    assert "无法发送位置的原因" in replies[-1]


async def test_a_label_of_an_earlier_keyboard_is_only_text(ma: Person, app: App) -> None:
    await check_in(ma)
    replies = await ma.send("🚫 无法发送位置")  # the location keyboard is no longer asked
    assert "上门服务进行中" in replies[-1]
    assert (await visit_row(app))["checkin_exception"] is None


async def test_impossible_locations_are_refused_and_nothing_is_saved(ma: Person, app: App) -> None:
    await ma.send("/visit")
    await ma.press("王奶奶")
    assert "位置无效" in (await locate(ma, 95.0, 121.0))[0]
    replies = await locate(ma, 39.9042, 116.4074)  # Beijing, about 1,070 km away
    assert "约 1,067 公里" in replies[0]
    assert await visit_row(app) == {}
    assert "已签到" in (await locate(ma, *HOME))[0]  # still asked where they are


async def test_check_out_without_check_in_and_a_second_check_in(ma: Person, app: App) -> None:
    assert "没有进行中的上门服务" in (await ma.send("/checkout"))[0]
    await check_in(ma)
    replies = await ma.send("/visit")
    assert "进行中的上门服务：王奶奶" in replies[0]
    count = await app.db.read(lambda c: c.execute("SELECT COUNT(*) FROM visits").fetchone()[0])
    assert count == 1


@pytest.mark.parametrize(
    ("typed", "says"),
    [
        ("血压 400/20", "高压 400 不在合理范围"),
        ("120/130", "高压应高于低压"),
        ("心率 300", "心率 300 不在合理范围"),
        ("体温 45", "体温 45 不在合理范围"),
        ("挺好的", "看不懂"),
    ],
)
async def test_readings_out_of_range_are_refused(ma: Person, app: App, typed, says) -> None:
    await check_in(ma)
    await ma.press("观察记录")
    await ma.send("头晕")
    await ma.press("跳过")
    replies = await ma.send(typed)
    assert says in replies[0]
    notes = await app.db.read(lambda c: c.execute("SELECT COUNT(*) FROM visit_notes").fetchone()[0])
    assert notes == 0
    assert "观察记录已保存" in (await ma.send("血压 128/80"))[0]


async def test_a_reading_outside_the_normal_range_is_confirmed_and_flagged(
    ma: Person, person, app: App
) -> None:
    supervisor, outsider = await person("孙丽"), await person("刘强")
    await check_in(ma)
    await ma.press("观察记录")
    await ma.send("头晕，说昨晚没睡好")
    await ma.press("跳过")
    replies = await ma.send("血压 165/100 心率 80")
    assert "165/100 mmHg" in replies[-1] and "高压、低压超出正常范围" in replies[-1]
    assert "数值正确吗" in replies[-1]
    count = await app.db.read(lambda c: c.execute("SELECT COUNT(*) FROM visit_notes").fetchone())
    assert count[0] == 0  # nothing saved before the worker confirms
    replies = await ma.press("重新输入")
    assert "有测量数据吗" in replies[-1]
    await ma.send("血压 165/100 心率 80")
    replies = await ma.press("数值正确")
    assert "观察记录已保存" in replies[0] and "已告知 1 位主管" in replies[0]
    note = await app.db.read(lambda c: c.execute("SELECT readings FROM visit_notes").fetchone())
    assert json.loads(note[0]) == {"systolic": 165, "diastolic": 100, "pulse": 80}
    alert = (await supervisor.replies())[-1]
    assert "值得留意" in alert and "王奶奶" in alert and "165/100 mmHg" in alert
    assert "马秀英" in alert and "头晕" in alert
    assert await outsider.replies() == []
    audit = await app.db.read(
        lambda c: c.execute("SELECT detail FROM audit_log WHERE action = 'observation'").fetchone()[
            0
        ]
    )
    assert json.loads(audit)["noteworthy"] == ["systolic", "diastolic"]


async def test_normal_readings_are_saved_without_a_question(ma: Person, person) -> None:
    supervisor = await person("孙丽")
    await check_in(ma)
    await ma.press("观察记录")
    await ma.send("精神好")
    await ma.press("跳过")
    replies = await ma.send("血压 128/80 体温 36.5")
    assert "观察记录已保存" in replies[0] and "告知" not in replies[0]
    assert await supervisor.replies() == []


async def test_a_client_not_assigned_to_the_worker(ma: Person, app: App, org) -> None:
    other = await add_client(app, "K002", "李爷爷", [org["何桂兰"]])
    assert "不是分配给您的服务对象" in (await ma.send(f"/visit {other}"))[0]
    await ma.send("/visit")
    assert "不是分配给您的服务对象" in (await ma.send("李爷爷"))[0]
    assert "找不到客户" in (await ma.send("/visit 999"))[0]
    assert await visit_row(app) == {}


async def test_anything_unusual_reaches_the_leaders_at_once(ma: Person, person, app: App) -> None:
    leader, subdistrict, supervisor, outsider = [
        await person(n) for n in ("郑华", "冯军", "孙丽", "刘强")
    ]
    await check_in(ma)
    await ma.press("异常情况")
    await ma.press("摔倒")
    await ma.send("老人在卫生间摔倒，右腿疼痛，已扶到床上")
    replies = await ma.photo("ab/fall.jpg")
    assert "已立即通知 3 位负责人" in replies[0]
    for someone in (leader, subdistrict, supervisor):
        alert = (await someone.replies())[-1]
        assert "上门服务异常：摔倒或受伤" in alert and "王奶奶" in alert
        assert "幸福路 8 号 302" in alert and "马秀英" in alert and "右腿疼痛" in alert
    assert await outsider.replies() == []


async def test_the_alert_shows_the_clients_phone_as_the_list_wrote_it(
    person, app: App, org, tmp_path: Path
) -> None:
    listing = tmp_path / "clients.csv"
    listing.write_text(
        "客户编号,姓名,地址,纬度,经度,电话,紧急联系人,服务中心,服务项目,上门时间,护理员\n"
        f"K009,王奶奶,幸福路 8 号 302,{HOME[0]},{HOME[1]},021-63510001,,{CENTRE},助餐,,马秀英\n",
        encoding="utf-8",
    )
    await clients.import_clients_file(app.db, listing, deactivate_missing=False, now=START)
    ma, leader = await person("马秀英"), await person("郑华")

    async def report_a_fall() -> str:
        await check_in(ma)
        await ma.press("异常情况")
        await ma.press("摔倒")
        await ma.send("老人在卫生间摔倒")
        await ma.press("跳过")
        await ma.press("签退")
        await ma.press("仍然签退")  # no service ticked: checked out all the same
        await locate(ma, *HOME)
        await ma.press("确认未收受礼品")
        return (await leader.replies())[-1]

    assert "电话：021-63510001" in await report_a_fall()
    # A client imported before the list's spelling was kept: formatted, never +8621...
    await app.db.transaction(lambda c: c.execute("UPDATE clients SET phone_display = NULL"))
    assert "电话：021 6351 0001" in await report_a_fall()


async def test_an_unsafe_home_can_become_a_hazard(ma: Person, person, app: App) -> None:
    await check_in(ma)
    await ma.press("异常情况")
    await ma.press("居家不安全")
    await ma.send("燃气软管老化开裂")
    await ma.press("跳过")
    replies = await ma.press("登记隐患")
    assert any("已登记隐患 YH-2026-0001" in r for r in replies)
    hazard = await app.db.read(
        lambda c: c.execute(
            "SELECT h.place, u.path, n.hazard_id FROM hazards h JOIN units u ON u.id = h.unit_id"
            " JOIN visit_notes n ON n.hazard_id = h.id"
        ).fetchone()
    )
    assert tuple(hazard) == ("王奶奶 · 幸福路 8 号 302", CENTRE, 1)


async def test_a_check_out_with_no_service_and_no_time_is_asked_about(
    ma: Person, app: App, clock: FakeClock
) -> None:
    await check_in(ma)
    replies = await ma.press("签退")
    assert "还没有勾选任何服务项目" in replies[-1] and "0:00" in replies[-1]
    assert "确定现在签退吗" in replies[-1]
    replies = await ma.press("返回勾选服务")
    assert "上门服务进行中" in replies[-1]
    await ma.press("服务项目")
    await ma.press("助餐")
    await ma.press("完成")
    clock.advance(timedelta(minutes=2))
    replies = await ma.send("/checkout")
    assert "还没有勾选任何服务项目" not in replies[-1] and "0:02" in replies[-1]
    await ma.press("仍然签退")
    await locate(ma, *HOME)
    replies = await ma.press("确认未收受礼品")
    assert "已签退：王奶奶" in replies[-1] and "用时 0:02" in replies[-1]
    assert (await visit_row(app))["state"] == "done"


async def test_a_visit_with_services_and_time_checks_out_without_a_question(
    ma: Person, clock: FakeClock
) -> None:
    await check_in(ma)
    await ma.press("服务项目")
    await ma.press("保洁")
    await ma.press("完成")
    clock.advance(timedelta(minutes=30))
    replies = await ma.press("签退")
    assert "签退：请点「发送位置」" in replies[-1]


async def visits_export(app: App, tmp_path: Path, language: str = "zh-CN") -> list[dict]:
    def write(conn: Any) -> list[dict]:
        src = export.Source(
            conn=conn,
            language=language,
            period=export.Period(date(2026, 11, 1), date(2026, 11, 30)),
            root_unit=None,
            default_timezone="Asia/Shanghai",
            media_dir=tmp_path / "media",
            now=START,
        )
        path = tmp_path / "visits.csv"
        export.export(src, export.REGISTERS["visits"], path, "csv")
        with path.open(encoding="utf-8-sig") as handle:
            return list(csv.DictReader(handle))

    return list(await app.db.read(write))


async def test_a_gift_pressed_on_the_worker_is_declared_at_checkout(
    ma: Person, person, app: App, clock: FakeClock, tmp_path: Path
) -> None:
    leader, supervisor = await person("郑华"), await person("孙丽")
    await check_in(ma)
    await ma.press("服务项目")
    await ma.press("助餐")
    await ma.press("完成")
    clock.advance(timedelta(minutes=40))
    await ma.press("签退")
    await locate(ma, *HOME)
    replies = await ma.press("有人送礼品")
    assert "礼品是怎么处理的" in replies[-1]
    await ma.press("上交服务中心")
    replies = await ma.send("老人女儿硬塞了两盒月饼，约 200 元")
    assert "已签退：王奶奶" in replies[-1]
    assert "礼品申报：收下后上交服务中心，已告知 1 位负责人" in replies[-1]
    row = await visit_row(app)
    assert row["state"] == "done" and row["no_gifts"] == 0
    assert (row["gifts"], row["gifts_note"]) == ("handed_in", "老人女儿硬塞了两盒月饼，约 200 元")
    alert = (await leader.replies())[-1]
    assert "礼品申报" in alert and "马秀英" in alert and "王奶奶" in alert
    assert "两盒月饼" in alert and "收下后上交服务中心" in alert
    assert not any("礼品" in text for text in await supervisor.replies())
    audit = await app.db.read(
        lambda c: c.execute(
            "SELECT detail FROM audit_log WHERE entity = 'visit' AND action = 'checkout'"
        ).fetchone()[0]
    )
    assert json.loads(audit)["gifts"] == "handed_in"
    exported = await visits_export(app, tmp_path)
    assert exported[0]["礼品"] == "收下后上交服务中心：老人女儿硬塞了两盒月饼，约 200 元"


async def test_a_declined_gift_and_no_gifts_in_the_export(
    ma: Person, person, app: App, org, tmp_path: Path
) -> None:
    await check_in(ma)
    await ma.press("签退")
    await ma.press("仍然签退")
    await locate(ma, *HOME)
    await ma.press("有人送礼品")
    replies = await ma.press("↩")
    assert "确认未收受礼品" in str(ma.last_buttons)
    await ma.press("有人送礼品")
    await ma.press("已婉拒")
    replies = await ma.send("   ")
    assert "请说明" in replies[-1]  # the declaration needs its text
    replies = await ma.send("家属要给红包，已婉拒")
    assert "礼品申报：已婉拒" in replies[-1]
    await add_client(app, "K002", "李爷爷", [org["马秀英"]])
    await ma.send("/visit")
    await ma.press("李爷爷")
    await locate(ma, *HOME)
    await ma.press("签退")
    await ma.press("仍然签退")
    await locate(ma, *HOME)
    replies = await ma.press("确认未收受礼品")
    assert "礼品：未收受" in replies[-1]
    exported = await visits_export(app, tmp_path, "en")
    assert [r["Gifts"] for r in exported] == ["Declined: 家属要给红包，已婉拒", "None accepted"]


async def test_planned_visit_reminders(ma: Person, person, app: App, org, clock: FakeClock) -> None:
    supervisor = await person("孙丽")
    starts = START + timedelta(hours=1)

    def plan(conn: Any) -> None:
        client = conn.execute("SELECT id FROM clients").fetchone()[0]
        cursor = conn.execute(
            "INSERT INTO visit_requests (client_id, origin, services, starts_at, ends_at,"
            " worker_id, state, created_at) VALUES (?, 'regular', '[]', ?, ?, ?, 'accepted', ?)",
            (client, iso(starts), iso(starts + timedelta(hours=1)), org["马秀英"], iso(START)),
        )
        watch.plan_request(conn, int(cursor.lastrowid), starts, START)

    await app.db.transaction(plan)
    clock.set(starts - timedelta(minutes=30))
    await app.scheduler.tick()
    assert "30 分钟后上门服务：王奶奶" in (await ma.replies())[-1]
    assert ("📍 签到", "/visit 1") in ma.last_buttons
    clock.set(starts + timedelta(minutes=15))
    await app.scheduler.tick()
    assert "还没有签到" in (await ma.replies())[-1]
    clock.set(starts + timedelta(minutes=30))
    await app.scheduler.tick()
    assert "仍未签到" in (await supervisor.replies())[-1]


async def test_check_in_stops_the_planned_reminders_and_open_visits_are_chased(
    ma: Person, person, app: App, org, clock: FakeClock
) -> None:
    supervisor = await person("孙丽")
    starts = START + timedelta(minutes=10)

    def plan(conn: Any) -> None:
        cursor = conn.execute(
            "INSERT INTO visit_requests (client_id, origin, services, starts_at, ends_at,"
            " worker_id, state, created_at) VALUES (1, 'regular', '[]', ?, ?, ?, 'accepted', ?)",
            (iso(starts), iso(starts + timedelta(hours=1)), org["马秀英"], iso(START)),
        )
        watch.plan_request(conn, int(cursor.lastrowid), starts, START)

    await app.db.transaction(plan)
    await check_in(ma)
    row = await visit_row(app)
    assert row["request_id"] == 1
    clock.set(starts + timedelta(minutes=31))
    await app.scheduler.tick()
    assert await supervisor.replies() == []
    clock.set(START + timedelta(hours=4, minutes=1))
    await app.scheduler.tick()
    assert "超过 4 小时" in (await ma.replies())[-1]
    assert ("🏁 签退", "/checkout") in ma.last_buttons
    clock.set(START + timedelta(hours=6, minutes=1))
    await app.scheduler.tick()
    assert "超过 6 小时仍未签退" in (await supervisor.replies())[-1]


async def test_a_restart_between_check_in_and_check_out_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "frontline.db"
    clock = FakeClock(START)
    app = await App.open(path, {}, clock=clock)
    org = await import_demo(app)
    await app.db.transaction(
        lambda c: people.bind_identity(c, CHANNEL, "ma", org["马秀英"], iso(START))
    )
    await add_client(app, "K001", "王奶奶", [org["马秀英"]])
    worker = Person(app, org["马秀英"], "马秀英")
    worker.user_id = "ma"
    await check_in(worker)
    await app.close()  # the process ends with the visit open

    clock.advance(timedelta(minutes=40))
    app = await App.open(path, {}, clock=clock)
    worker = Person(app, org["马秀英"], "马秀英")
    worker.user_id = "ma"
    await worker.replies()  # what the first process sent
    assert await app.engine.resume(CHANNEL, "ma")
    assert "上门服务进行中：王奶奶" in (await worker.replies())[0]  # the menu, asked again
    replies = await worker.send("/checkout")
    assert "还没有勾选任何服务项目" in replies[0]
    await worker.press("仍然签退")
    await locate(worker, *HOME)
    replies = await worker.press("确认未收受礼品")
    assert "用时 0:40" in replies[0]
    await app.close()


async def test_english(person, app: App, org) -> None:
    james = await person("James Wilson")
    await app.db.transaction(
        lambda c: c.execute(
            "UPDATE staff SET roles = 'care_worker' WHERE id = ?", (org["James Wilson"],)
        )
    )
    await add_client(app, "K009", "Mrs Chen", [org["James Wilson"]])
    await james.send("/visit")
    await james.press("Mrs Chen")
    replies = await locate(james, *HOME)
    assert "Checked in: Mrs Chen" in replies[0] and "0 m from the client's home" in replies[0]
    await james.press("Observation")
    await james.send("Cheerful")
    await james.press("Skip")
    assert "outside the plausible range" in (await james.send("BP 400/20"))[0]
    replies = await james.send("BP 165/100")
    assert "Outside the normal range: upper blood pressure, lower blood pressure" in replies[-1]
    await james.press("The values are right")
    await james.press("Services")
    for service in ("Meal help", "Cleaning"):
        await james.press(service)
    await james.press("Done")
    await james.press("Check out")
    await james.press("Check out anyway")  # the health check was planned, not done
    await locate(james, *HOME)
    replies = await james.press("I accepted no gifts")
    assert "Services: Meal help, Cleaning" in replies[0]
