"""One reminder, a day after a notice went out, to those who have not read it."""

from __future__ import annotations

from bot.engine import Visitor
from bot.i18n import t
from bot.model import Button
from bot.store import notices
from bot.store.reminders import Reminder
from schedules.runner import Kind


def reread(visitor: Visitor, reminder: Reminder, late: bool) -> bool:
    notice_id = int(reminder.target["notice"])
    notice = notices.get(visitor.conn, notice_id)
    if notice is None:
        return False
    waiting = notices.unread(visitor.conn, notice_id)
    for person in waiting:
        visitor.notify(
            person,
            "notice.reminder",
            idempotency_key=f"notice:{notice_id}:reminder:{person.id}",
            buttons=[[Button(t(person.language, "notice.read_button"), f"/read {notice_id}")]],
            text=str(notice["text"])[:500],
        )
    return bool(waiting)


KINDS = {"notice_reread": Kind(reread)}
