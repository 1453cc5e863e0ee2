"""The one place that wires the conversations into the engine: commands,
flows, who may interrupt what, and each role's command menu."""

from __future__ import annotations

from functools import partial

from bot.checklists import Checklist, load_all
from bot.engine import Ctx, Router
from bot.i18n import t
from bot.model import Role
from handlers import (
    checklist,
    common,
    drill,
    duties,
    export,
    followup,
    groups,
    hazard_card,
    hazard_report,
    hazards,
    incident,
    incident_card,
    leave,
    notice,
    signup,
    stats,
    training,
    visit,
    visit_request,
    visit_views,
    web,
)


def build_router(*, web_url: str | None = None) -> Router:
    """`web_url`: the desk's public base (FRONTLINE_WEB_URL), for /web's links."""
    router = Router(
        fallback=common.fallback,
        stranger=signup.on_stranger,
        group=groups.on_group,
        anytime=frozenset(
            {
                "start",
                "help",
                "cancel",
                "lang",
                "leave",
                "read",
                "notices",
                "done",
                "schedules",
                "hazards",
                "overdue",
                "incidents",
                "visit",
                "checkout",
                "visits",
                "stats",
                "hz",
                "web",
            }
        ),
        # An injury or a hazard is never behind a checklist.
        urgent=frozenset({"incident", "hazard"}),
    )
    router.commands.update(
        start=common.start,
        help=common.help_,
        cancel=common.cancel,
        lang=common.lang,
        leave=leave.leave,
        notice=notice.start,
        notices=notice.sent,
        read=notice.read,
        drill=drill.start,
        drilldone=drill.record_start,
        done=duties.done,
        schedules=duties.schedules,
        training=training.start,
        hazard=hazard_report.command,
        hz=hazard_card.command,
        hazards=hazards.mine,
        overdue=hazards.overdue,
        incident=incident.command,
        incidents=incident.register,
        visit=visit.command,
        checkout=visit.checkout_command,
        request=visit_request.start,
        vr=visit_request.command,
        followup=followup.start,
        visits=visit_views.command,
        stats=stats.command,
        export=export.start,
        web=partial(web.command, web_url),
    )
    for definition in load_all().values():
        router.commands[definition.command] = partial(_run_checklist, definition)
    router.flows[checklist.FLOW] = checklist.flow
    router.flows[common.LANG_FLOW] = common.language_flow
    router.flows[notice.FLOW] = notice.flow
    router.flows[drill.PLAN] = drill.plan_flow
    router.flows[drill.RECORD] = drill.record_flow
    router.flows[training.FLOW] = training.flow
    router.flows[incident.REPORT] = incident.report_flow
    router.flows[incident_card.INVESTIGATE] = incident_card.investigation_flow
    router.flows[incident_card.ACTION] = incident_card.action_flow
    router.flows[incident_card.SUBMIT] = incident_card.submission_flow
    router.flows[hazard_report.FLOW] = hazard_report.flow
    router.flows[visit.FLOW] = visit.flow
    router.flows[visit_request.REQUEST] = visit_request.request_flow
    router.flows[visit_request.DECLINE] = visit_request.decline_flow
    router.flows[followup.FLOW] = followup.flow
    router.flows[export.FLOW] = export.flow
    for flow in hazard_card.FLOWS:
        router.flows[flow.name] = flow
    return router


def menu(roles: frozenset[Role], language: str) -> list[tuple[str, str]]:
    """The commands a person with these roles sees in their chat menu."""
    items = [(c.command, c.title.get(language)) for c in load_all().values() if c.may_run(roles)]
    items += [
        (name, t(language, f"menu.{name}"))
        for name in ("hazard", "hazards", "incident", "leave", "help", "lang", "cancel", "start")
    ]
    if Role.SUPERVISOR in roles or Role.SAFETY_OFFICER in roles or Role.ADMIN in roles:
        items.append(("overdue", t(language, "menu.overdue")))
    if Role.CARE_WORKER in roles:
        items.append(("visit", t(language, "menu.visit")))
        items.append(("checkout", t(language, "menu.checkout")))
    if Role.SAFETY_OFFICER in roles or Role.ADMIN in roles:
        items.append(("drill", t(language, "menu.drill")))
        items.append(("drilldone", t(language, "menu.drilldone")))
        items.append(("training", t(language, "menu.training")))
    if roles & {Role.SUPERVISOR, Role.SAFETY_OFFICER, Role.ADMIN}:
        items.append(("incidents", t(language, "menu.incidents")))
        items.append(("stats", t(language, "menu.stats")))
        items.append(("export", t(language, "menu.export")))
    if Role.SUPERVISOR in roles or Role.ADMIN in roles:
        items.append(("schedules", t(language, "menu.schedules")))
        items.append(("notice", t(language, "menu.notice")))
        items.append(("notices", t(language, "menu.notices")))
        items.append(("bindgroup", t(language, "menu.bindgroup")))
    if Role.SUPERVISOR in roles:
        items.append(("request", t(language, "menu.request")))
        items.append(("followup", t(language, "menu.followup")))
    if roles & {Role.CARE_WORKER, Role.SUPERVISOR, Role.CENTRE_LEADER}:
        items.append(("visits", t(language, "menu.visits")))
    if roles & {Role.STAFF, Role.SUPERVISOR, Role.SAFETY_OFFICER, Role.ADMIN}:
        items.append(("web", t(language, "menu.web")))
    return items


def _run_checklist(definition: Checklist, ctx: Ctx, args: str) -> None:
    checklist.start(ctx, definition)
