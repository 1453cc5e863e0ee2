"""The outbox: every message a person must receive is a row here first. Rows
are written in the transaction that decided to send them and drained by the
sender, which records each attempt. A row is 'preparing' (its file is being
made off the writer, bot/preparer.py; the person's later rows wait behind it),
'pending' (only these are claimed), 'sending', 'sent', 'failed', or
'cancelled' (its recipient left)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace

from bot.model import Button, DocumentRequest, Outbound
from bot.store import dialect, people
from bot.store.dialect import engine_of


@dataclass(frozen=True, slots=True)
class NewMessage:
    staff_id: int | None
    channel: str | None
    address: str | None
    text: str
    idempotency_key: str
    buttons: tuple[tuple[Button, ...], ...] = ()
    attachments: tuple[str, ...] = ()
    replaces_id: int | None = None
    priority: int = 1  # 0: a reply to someone who just wrote
    kind: str | None = None  # the catalog key, for digests of one kind
    # A file to make before the message can go: queued 'preparing'.
    document: DocumentRequest | None = None


@dataclass(frozen=True, slots=True)
class Preparing:
    """A queued message whose file is still to be made."""

    id: int
    staff_id: int | None
    text: str
    attachments: tuple[str, ...]
    document: DocumentRequest


# With PostgreSQL, every process hears at commit that rows were queued (or a file
# made), so that the one that sends (or makes files) looks at once (LISTEN).
NOTIFY_CHANNEL = "frontline_outbox"

REPLY = 0
NOTICE = 1


def enqueue(conn: sqlite3.Connection, message: NewMessage, now: str) -> int | None:
    """Queue a message and return its row's id; a second row with the same
    idempotency key is ignored (None is returned), so a retried decision never
    sends twice."""
    cursor = _insert(conn, message, now)
    return cursor.lastrowid if cursor.rowcount else None


def queue(conn: sqlite3.Connection, message: NewMessage, now: str) -> None:
    """enqueue() for a caller that needs no answer: on PostgreSQL the row then
    goes with the transaction's next round trip (or its COMMIT)."""
    _insert(conn, message, now)


def _insert(conn: sqlite3.Connection, message: NewMessage, now: str) -> sqlite3.Cursor:
    buttons = (
        json.dumps(
            [[[b.label, b.action] for b in row] for row in message.buttons], ensure_ascii=False
        )
        if message.buttons
        else None
    )
    attachments = json.dumps(list(message.attachments)) if message.attachments else None
    document = _document_json(message.document) if message.document else None
    cursor = conn.execute(
        "INSERT INTO outbox (staff_id, channel, address, text, buttons, attachments,"
        " idempotency_key, replaces_id, priority, kind, next_attempt_at, created_at,"
        " status, document)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (idempotency_key) DO NOTHING",
        (
            message.staff_id,
            message.channel,
            message.address,
            message.text,
            buttons,
            attachments,
            message.idempotency_key,
            message.replaces_id,
            message.priority,
            message.kind,
            now,
            now,
            "preparing" if document else "pending",
            document,
        ),
    )
    # Told whether or not the row was new: a needless wake costs the sender one look.
    announce(conn)
    return cursor


def announce(conn: sqlite3.Connection) -> None:
    """Tell the other processes, once this transaction commits, that the outbox
    has work (nothing to do with SQLite: one process owns its database)."""
    if engine_of(conn) == "postgresql":
        conn.notify(NOTIFY_CHANNEL)  # type: ignore[attr-defined]


def _document_json(request: DocumentRequest) -> str:
    return json.dumps(
        {
            "kind": request.kind,
            "params": request.params,
            "language": request.language,
            "text_key": request.text_key,
            "text_params": request.text_params,
        },
        ensure_ascii=False,
    )


def _document(stored: str) -> DocumentRequest:
    data = json.loads(stored)
    return DocumentRequest(
        kind=str(data["kind"]),
        params=dict(data.get("params") or {}),
        language=str(data["language"]),
        text_key=data.get("text_key"),
        text_params=dict(data.get("text_params") or {}),
    )


def preparing(conn: sqlite3.Connection, limit: int = 100) -> list[Preparing]:
    """Messages whose file is still to be made, oldest first (on their own
    small index): what the documents worker builds, and what a crash left."""
    rows = conn.execute(
        "SELECT id, staff_id, text, attachments, document FROM outbox INDEXED BY outbox_preparing"
        " WHERE status = 'preparing' ORDER BY id LIMIT ?",
        (limit,),
    ).fetchall()
    return [
        Preparing(
            id=row["id"],
            staff_id=row["staff_id"],
            text=row["text"],
            attachments=tuple(json.loads(row["attachments"])) if row["attachments"] else (),
            document=_document(row["document"]),
        )
        for row in rows
    ]


def prepared(
    conn: sqlite3.Connection, outbox_id: int, text: str, attachments: Sequence[str]
) -> bool:
    """The file is made (or could not be): the message's final text and
    files, and it goes. False if it was no longer being prepared (cancelled
    meanwhile, or finished by an earlier run): nothing changes then."""
    done = bool(
        conn.execute(
            "UPDATE outbox SET status = 'pending', text = ?, attachments = ?"
            " WHERE id = ? AND status = 'preparing'",
            (text, json.dumps(list(attachments)) if attachments else None, outbox_id),
        ).rowcount
    )
    if done:
        announce(conn)
    return done


def _holds(conn: sqlite3.Connection, channel: str) -> dict[str, int]:
    """Addresses of a channel with a message being prepared, each with the
    first such row's id: the rows queued after it wait (usually none, one
    look-up on a nearly empty index)."""
    found = conn.execute(
        "SELECT address, MIN(id) FROM outbox INDEXED BY outbox_preparing"
        " WHERE status = 'preparing' AND channel = ? GROUP BY address",
        (channel,),
    )
    return {row[0]: row[1] for row in found}


# The first row of an address (channel = ?, address = ?) being prepared, as a
# bound for the ids that may go; evaluated once per statement, on its small index.
_FIRST_PREPARING = (
    "COALESCE((SELECT MIN(p.id) FROM outbox p INDEXED BY outbox_preparing"
    " WHERE p.status = 'preparing' AND p.channel = ? AND p.address = ?), 9223372036854775807)"
)


def _outbound(row: sqlite3.Row) -> Outbound:
    buttons: tuple[tuple[Button, ...], ...] = ()
    if row["buttons"]:
        buttons = tuple(
            tuple(Button(label, action) for label, action in r) for r in json.loads(row["buttons"])
        )
    return Outbound(
        id=row["id"],
        staff_id=row["staff_id"],
        channel=row["channel"],
        address=row["address"],
        text=row["text"],
        buttons=buttons,
        attachments=tuple(json.loads(row["attachments"])) if row["attachments"] else (),
        idempotency_key=row["idempotency_key"],
        replaces_id=row["replaces_id"],
        attempts=row["attempts"],
        priority=row["priority"],
        kind=row["kind"],
        created_at=row["created_at"],
    )


_COLUMNS = (
    "id, staff_id, channel, address, text, buttons, attachments, idempotency_key,"
    " replaces_id, attempts, priority, kind, created_at"
)

# A row waits behind any pending row of its address that comes before it
# (a reply before notices, then oldest first) and is not due yet: a person
# reads messages in the order queued, replies first.
_NOTHING_AHEAD_WAITS = (
    "NOT EXISTS (SELECT 1 FROM outbox e WHERE e.channel = o.channel AND e.address = o.address"
    " AND e.status = 'pending' AND e.next_attempt_at > ?"
    " AND (e.priority < o.priority OR (e.priority = o.priority AND e.id < o.id)))"
)


def due_addresses(
    conn: sqlite3.Connection, channel: str, now: str, limit: int, busy: Sequence[str] = ()
) -> list[str]:
    """Addresses of one channel whose next message is due, those with a reply
    waiting first, then by their oldest row; `busy` ones (being served) left out.
    Looks at a window of rows, so a long backlog of one address is passed over
    once that address is busy."""
    holds = _holds(conn, channel)
    sql = (
        # The rows' ids only where some row is being prepared (the rows after it wait).
        f"SELECT o.address{', o.id' if holds else ''} FROM outbox o INDEXED BY outbox_due_pending"
        " WHERE o.status = 'pending' AND o.channel = ? AND o.next_attempt_at <= ?"
        " AND o.address IS NOT NULL"
    )
    params: list[object] = [channel, now]
    if busy:
        sql += f" AND o.address NOT IN ({','.join('?' * len(busy))})"
        params.extend(busy)
    sql += f" AND {_NOTHING_AHEAD_WAITS} ORDER BY o.priority, o.id LIMIT ?"
    params.extend([now, limit * 20])
    found: list[str] = []
    for row in conn.execute(sql, params):
        if holds and row[0] in holds and row[1] > holds[row[0]]:
            continue  # queued after a message whose file is being made
        if row[0] not in found:
            found.append(row[0])
            if len(found) == limit:
                break
    return found


def next_for(
    conn: sqlite3.Connection, channel: str, address: str, now: str, limit: int
) -> list[Outbound]:
    """The next rows of one address in the order they go (not claimed): the
    first and what follows it while due, at most `limit`; empty if the first is
    not due yet. Rows queued after one being prepared wait for it."""
    rows = conn.execute(
        f"SELECT {_COLUMNS}, next_attempt_at FROM outbox INDEXED BY outbox_waiting"
        " WHERE channel = ? AND address = ? AND status = 'pending'"
        f" AND id < {_FIRST_PREPARING} ORDER BY priority, id LIMIT ?",
        (channel, address, channel, address, limit),
    ).fetchall()
    taken: list[Outbound] = []
    for row in rows:
        if row["next_attempt_at"] > now:
            break
        taken.append(_outbound(row))
    return taken


def claim(conn: sqlite3.Connection, rows: Sequence[Outbound]) -> list[Outbound]:
    """Mark rows 'sending' (still pending ones only); return those claimed,
    their attempt counts including this one."""
    if not rows:
        return []
    marks = ",".join("?" * len(rows))
    ids = [row.id for row in rows]
    claimed = {
        r[0]
        for r in conn.execute(
            f"UPDATE outbox SET status = 'sending', attempts = attempts + 1"
            f" WHERE id IN ({marks}) AND status = 'pending' RETURNING id",
            ids,
        )
    }
    return [replace(row, attempts=row.attempts + 1) for row in rows if row.id in claimed]


def claim_due(
    conn: sqlite3.Connection, channel: str, now: str, limit: int, address: str | None = None
) -> list[Outbound]:
    """Take up to `limit` due rows of one channel (optionally one address) and
    mark them 'sending', oldest first, inside the caller's transaction."""
    # Skip rows queued behind an earlier row to the same address that waits
    # for a retry: a person reads messages in the order they were queued.
    sql = (
        f"SELECT {_COLUMNS} FROM outbox o WHERE status = 'pending' AND channel = ?"
        f" AND next_attempt_at <= ? AND {_NOTHING_AHEAD_WAITS}"
    )
    params: list[object] = [channel, now, now]
    if address is not None:
        sql += " AND address = ?"
        params.append(address)
    sql += (
        " AND NOT EXISTS (SELECT 1 FROM outbox p INDEXED BY outbox_preparing"
        " WHERE p.channel = o.channel AND p.address = o.address AND p.status = 'preparing'"
        " AND p.id < o.id) ORDER BY priority, id LIMIT ?"
    )
    params.append(limit)
    return _take(conn, conn.execute(sql, params).fetchall())


def claim_undeliverable_for(conn: sqlite3.Connection, staff_id: int) -> list[Outbound]:
    """Rows for a person that no channel of theirs can deliver (no reachable
    identity when queued), marked 'sending' for the console to show."""
    found = conn.execute(
        f"SELECT {_COLUMNS} FROM outbox WHERE status = 'pending' AND staff_id = ?"
        " AND channel IS NULL ORDER BY id",
        (staff_id,),
    ).fetchall()
    return _take(conn, found)


def _take(conn: sqlite3.Connection, found: Sequence[sqlite3.Row]) -> list[Outbound]:
    """Mark rows 'sending' and return them, their attempt counts including this one."""
    rows = [replace(_outbound(row), attempts=row["attempts"] + 1) for row in found]
    if rows:
        marks = ",".join("?" * len(rows))
        conn.execute(
            f"UPDATE outbox SET status = 'sending', attempts = attempts + 1 WHERE id IN ({marks})",
            [row.id for row in rows],
        )
    return rows


def reroute_unserved(conn: sqlite3.Connection, served: Collection[str]) -> int:
    """Pending rows for a channel this deployment does not run (a roster row
    with a WeCom id where only Telegram runs, a command that queued without
    knowing): a person's go to a served channel that reaches them, or wait for
    any channel (the console shows them); others cannot go and fail. Rows
    being prepared move with them, so a person's messages keep their order."""
    marks = ",".join("?" * len(served)) or "''"
    found = conn.execute(
        f"SELECT id, staff_id, replaces_id FROM outbox WHERE status IN ('pending', 'preparing')"
        f" AND channel IS NOT NULL AND channel NOT IN ({marks})",
        list(served),
    ).fetchall()
    routes: dict[int, tuple[str, str] | None] = {}
    for row in found:
        if row["staff_id"] is None or row["replaces_id"] is not None:
            mark_failed(conn, row["id"], "its channel is not served by this deployment")
            continue
        staff_id = row["staff_id"]
        if staff_id not in routes:
            routes[staff_id] = people.reachable_channel(conn, staff_id, served=served)
        route = routes[staff_id]
        conn.execute(
            "UPDATE outbox SET channel = ?, address = ? WHERE id = ?",
            (route[0] if route else None, route[1] if route else None, row["id"]),
        )
    return len(found)


def route_held(conn: sqlite3.Connection, staff_id: int, channel: str, address: str) -> int:
    """Send what was held for a person (no channel reached them) to a channel
    that now does."""
    return conn.execute(
        "UPDATE outbox SET channel = ?, address = ? WHERE staff_id = ? AND channel IS NULL"
        " AND status IN ('pending', 'preparing')",
        (channel, address, staff_id),
    ).rowcount


def mark_sent(
    conn: sqlite3.Connection, outbox_id: int, channel_message_id: str | None, now: str
) -> None:
    conn.execute(
        "UPDATE outbox SET status = 'sent', channel_message_id = ?, sent_at = ?, last_error = NULL"
        " WHERE id = ?",
        (channel_message_id, now, outbox_id),
    )


# Putting a claimed row back to 'pending' never revives one cancelled meanwhile.
def mark_retry(conn: sqlite3.Connection, outbox_id: int, error: str, next_attempt_at: str) -> None:
    conn.execute(
        "UPDATE outbox SET status = 'pending', last_error = ?, next_attempt_at = ?"
        " WHERE id = ? AND status = 'sending'",
        (error, next_attempt_at, outbox_id),
    )


def release(conn: sqlite3.Connection, outbox_id: int) -> None:
    """Put a claimed row back unsent, its claim not counted as an attempt."""
    conn.execute(
        "UPDATE outbox SET status = 'pending', attempts = attempts - 1"
        " WHERE id = ? AND status = 'sending'",
        (outbox_id,),
    )


def retry_now(conn: sqlite3.Connection, channel: str, now: str) -> int:
    """A channel is back: rows waiting out its outage are due at once (flood
    limits, which are about one chat, keep their wait)."""
    return conn.execute(
        "UPDATE outbox SET next_attempt_at = ? WHERE channel = ? AND status = 'pending'"
        " AND next_attempt_at > ? AND attempts > 0 AND COALESCE(last_error, '') NOT LIKE 'flood%'",
        (now, channel, now),
    ).rowcount


def redrive(conn: sqlite3.Connection, now: str, outbox_id: int | None = None) -> int:
    """Failed rows (one, or all) back to pending, due now, attempts from zero."""
    sql = (
        "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = ?"
        " WHERE status = 'failed'"
    )
    params: list[object] = [now]
    if outbox_id is not None:
        sql += " AND id = ?"
        params.append(outbox_id)
    return conn.execute(sql, params).rowcount


def cancel_for(conn: sqlite3.Connection, staff_id: int, reason: str) -> int:
    """Cancel every message still queued for a person (held, due, or being
    handed over), keeping the rows with `reason` for admins to see."""
    return conn.execute(
        "UPDATE outbox SET status = 'cancelled', last_error = ?"
        " WHERE staff_id = ? AND status IN ('preparing', 'pending', 'sending')",
        (reason, staff_id),
    ).rowcount


def mark_failed(conn: sqlite3.Connection, outbox_id: int, error: str) -> None:
    conn.execute(
        "UPDATE outbox SET status = 'failed', last_error = ? WHERE id = ?", (error, outbox_id)
    )


def release_interrupted(
    conn: sqlite3.Connection, channel: str | None = None, address: str | None = None
) -> int:
    """Rows left 'sending' by a process that died: back to pending, so the
    sender decides again. Only the process that owns those rows' sender may
    call it, before it sends: a channel's rows when `frontline run` becomes the
    channel's sender, one console chat's for that chat (None: every row)."""
    sql = "UPDATE outbox SET status = 'pending' WHERE status = 'sending'"
    if channel is None:
        return conn.execute(sql).rowcount
    if address is None:
        return conn.execute(f"{sql} AND channel = ?", (channel,)).rowcount
    return conn.execute(f"{sql} AND channel = ? AND address = ?", (channel, address)).rowcount


def channel_message_id(conn: sqlite3.Connection, outbox_id: int) -> str | None:
    row = conn.execute(
        "SELECT channel_message_id FROM outbox WHERE id = ?", (outbox_id,)
    ).fetchone()
    return row["channel_message_id"] if row else None


def delivered_message(
    conn: sqlite3.Connection, channel: str, address: str, channel_message_id: str
) -> Outbound | None:
    """The message we delivered to a chat under the channel's message id."""
    return delivered_message_ahead(conn, channel, address, channel_message_id)()


def delivered_message_ahead(
    conn: sqlite3.Connection, channel: str, address: str, channel_message_id: str
) -> Callable[[], Outbound | None]:
    """delivered_message(), asked now and read when called: on PostgreSQL the read
    goes with the transaction's next round trip (a button press's arrival)."""
    cursor = dialect.ahead(
        conn,
        f"SELECT {_COLUMNS} FROM outbox WHERE channel = ? AND address = ?"
        " AND channel_message_id = ? ORDER BY id DESC LIMIT 1",
        (channel, address, channel_message_id),
    )

    def read() -> Outbound | None:
        row = cursor.fetchone()
        return _outbound(row) if row else None

    return read


def latest_question(conn: sqlite3.Connection, channel: str, address: str) -> Outbound | None:
    """The question a bare number answers, where a channel shows choices as a
    numbered list: the newest message sent to a chat, if it has buttons (a
    newer one without them asks for words, and a number is then text)."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM outbox WHERE channel = ? AND address = ? AND status = 'sent'"
        " AND replaces_id IS NULL ORDER BY id DESC LIMIT 1",
        (channel, address),
    ).fetchone()
    return _outbound(row) if row and row["buttons"] else None


def latest_reply_question(conn: sqlite3.Connection, channel: str, address: str) -> Outbound | None:
    """The newest reply with buttons for a chat, delivered or still queued:
    the question a person answers from its reply keyboard."""
    return latest_reply_question_ahead(conn, channel, address)()


def latest_reply_question_ahead(
    conn: sqlite3.Connection, channel: str, address: str
) -> Callable[[], Outbound | None]:
    """latest_reply_question(), asked now and read when called: on PostgreSQL the
    read goes with the transaction's next round trip (a text's arrival)."""
    one = (
        f"SELECT * FROM (SELECT {_COLUMNS} FROM outbox WHERE channel = ? AND address = ?"
        " AND status = ? AND priority = ? AND buttons IS NOT NULL AND replaces_id IS NULL"
        " ORDER BY id DESC LIMIT 1) AS newest"
    )
    # One indexed look-up per status, in one statement.
    statuses = ("pending", "sending", "sent")
    cursor = dialect.ahead(
        conn,
        " UNION ALL ".join([one] * len(statuses)),
        tuple(value for status in statuses for value in (channel, address, status, REPLY)),
    )

    def read() -> Outbound | None:
        found = max(cursor.fetchall(), key=lambda row: row["id"], default=None)
        return _outbound(found) if found else None

    return read


def undelivered(conn: sqlite3.Connection, limit: int = 200) -> Sequence[sqlite3.Row]:
    """Rows still to go (being prepared or pending), failed and cancelled, for
    admins, oldest first, with the recipient's name."""
    return conn.execute(
        "SELECT o.id, o.status, o.channel, o.attempts, o.last_error, o.created_at, o.text,"
        " o.next_attempt_at,"
        " s.name AS recipient FROM outbox o LEFT JOIN staff s ON s.id = o.staff_id"
        " WHERE o.status IN ('preparing', 'pending', 'failed', 'cancelled') ORDER BY o.id LIMIT ?",
        (limit,),
    ).fetchall()
