"""The domain vocabulary shared by every room: roles, people, the messages that
cross the channel boundary, and the errors a user can cause. No I/O here."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Role(enum.StrEnum):
    STAFF = "staff"
    SUPERVISOR = "supervisor"
    SAFETY_OFFICER = "safety_officer"
    ADMIN = "admin"
    CARE_WORKER = "care_worker"
    # Elder care (REGULATIONS §5): told at once of anything unusual on a visit
    # to a client of their unit (or of a unit below it).
    CENTRE_LEADER = "centre_leader"
    SUBDISTRICT_LEADER = "subdistrict_leader"


ROLE_ALIASES: dict[str, Role] = {
    **{role.value: role for role in Role},
    "员工": Role.STAFF,
    "主管": Role.SUPERVISOR,
    "安全员": Role.SAFETY_OFFICER,
    "管理员": Role.ADMIN,
    "护理员": Role.CARE_WORKER,
    "服务中心负责人": Role.CENTRE_LEADER,
    "中心负责人": Role.CENTRE_LEADER,
    "街道负责人": Role.SUBDISTRICT_LEADER,
    "街道领导": Role.SUBDISTRICT_LEADER,
}

LANGUAGES = ("zh-CN", "en")


class InboundKind(enum.StrEnum):
    TEXT = "text"
    COMMAND = "command"
    ACTION = "action"  # a button press
    PHOTO = "photo"
    LOCATION = "location"
    CONTACT = "contact"
    FILE = "file"


@dataclass(frozen=True, slots=True)
class Inbound:
    """One thing a person sent, as a channel adapter hands it to the engine.

    `text` holds the text, the command line (`/check redo`), the button action,
    or a photo's / file's local media path; `data` carries the rest (a
    location's lat/lon, a contact's phone, a photo's channel file id)."""

    channel: str
    user_id: str
    event_id: str
    kind: InboundKind
    text: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Button:
    label: str
    action: str


@dataclass(frozen=True, slots=True)
class Outbound:
    """One message for one recipient, as the outbox stores it."""

    id: int
    staff_id: int | None
    channel: str | None
    address: str | None
    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()
    attachments: tuple[str, ...] = ()
    idempotency_key: str = ""
    replaces_id: int | None = None
    attempts: int = 0
    # 0: a reply to someone who just wrote; 1: everything else (alerts, reminders).
    priority: int = 1
    # What the message is (its catalog key), for digests of one kind; None: unique.
    kind: str | None = None
    created_at: str = ""


@dataclass(frozen=True, slots=True)
class Staff:
    id: int
    name: str
    phone: str
    employee_no: str | None
    unit_id: int
    roles: frozenset[Role]
    language: str
    active: bool
    phone_display: str | None = None  # as the roster wrote it; bot.phones.display shows either

    def has(self, *roles: Role) -> bool:
        return any(role in self.roles for role in roles)


@dataclass(frozen=True, slots=True)
class DocumentRequest:
    """A file a message carries that is made after the step commits, off the
    writer (bot/preparer.py): an export or a printable PDF. Everything the
    build needs is decided when it is asked for and kept with the message:
    `params` (JSON values: the register, the period, the unit subtree the
    asker may see, the order's number, the moment the document is dated),
    and the language. `text_key`: the message's final text is this catalog
    entry, given `text_params` and what the build counted (an export's
    `rows`); None: the text queued stands and the file is added to it."""

    kind: str  # 'export', 'order', 'incident'
    params: dict[str, Any]
    language: str
    text_key: str | None = None
    text_params: dict[str, Any] = field(default_factory=dict)


class UserError(Exception):
    """Something a user did that we refuse; the engine replies with the
    catalog text `key`, formatted with `params`, in the user's language."""

    def __init__(self, key: str, **params: Any) -> None:
        super().__init__(key)
        self.key = key
        self.params = params
