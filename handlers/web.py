"""/web: a one-time link that opens the desk (bot/web/) in a browser, signed
in as this person. The link goes out like any reply, through the outbox; the
database keeps only its hash."""

from __future__ import annotations

from bot.clock import iso
from bot.engine import Ctx
from bot.store import desk
from bot.web.tokens import LINK_VALID, digest, new_secret


def command(web_url: str | None, ctx: Ctx, args: str) -> None:
    if web_url is None:
        ctx.say("web.not_configured")
        return
    token = new_secret()
    desk.create_link(
        ctx.conn,
        token_hash=digest(token),
        staff_id=ctx.staff.id,
        now=ctx.now_iso,
        expires_at=iso(ctx.now + LINK_VALID),
    )
    minutes = int(LINK_VALID.total_seconds() // 60)
    ctx.say("web.link", url=f"{web_url}/login/{token}", minutes=minutes)
