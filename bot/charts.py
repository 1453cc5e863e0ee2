"""Draws the weekly picture (bot/stats.py) as one small PNG and keeps it in
the media folder. Headless (Agg, no pyplot), with the vendored CJK font so
Chinese labels read; it must stay fast: it runs inside a store transaction."""

from __future__ import annotations

import io
from functools import cache
from importlib import resources
from pathlib import Path

from matplotlib import font_manager, rc_context
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bot.i18n import t
from bot.media import store_bytes
from bot.stats import Picture, completion_of

DPI = 100
SIZE = (8.0, 4.2)  # inches: 800 x 420 pixels, readable on a phone
GOOD, FAIR, POOR, MUTED = "#2e9d5b", "#f0a030", "#d9534f", "#9aa5b1"

# Where charts are kept; App.open sets it from the settings (media/ beside the database).
_media_dir: Path | None = None


def configure(media_dir: Path) -> None:
    global _media_dir
    _media_dir = media_dir


@cache
def font_family() -> str:
    """Register the vendored WenQuanYi Micro Hei once; its family name."""
    font = resources.files("bot.data").joinpath("fonts/wqy-microhei.ttc")
    path = Path(str(font))
    font_manager.fontManager.addfont(str(path))
    return font_manager.FontProperties(fname=str(path)).get_name()


def render(picture: Picture, language: str, title: str) -> bytes:
    """The picture as PNG bytes: pre-shift completion by day on the left,
    the registers' counts on the right."""
    with rc_context({"font.family": [font_family(), "DejaVu Sans"], "axes.unicode_minus": False}):
        figure = draw(picture, language, title)
        out = io.BytesIO()
        figure.savefig(out, format="png", dpi=DPI, metadata={"Software": None})
        figure.clear()
    return out.getvalue()


def draw(picture: Picture, language: str, title: str) -> Figure:
    """The chart as a matplotlib figure, before it becomes pixels."""
    figure = Figure(figsize=SIZE, dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    left, right = figure.subplots(1, 2, width_ratios=[3, 2])
    _checks(left, picture, language)
    _registers(right, picture, language)
    figure.suptitle(title, fontsize=13)
    return figure


def _checks(axes: Axes, picture: Picture, language: str) -> None:
    weekdays = t(language, "stats.weekdays").split(",")
    short = len(picture.checks) <= 7
    positions, heights, colours = [], [], []
    for n, day in enumerate(picture.checks):
        if day.day > picture.today:
            continue
        rate = completion_of(day)
        positions.append(n)
        heights.append(rate)
        colours.append(GOOD if rate >= 90 else FAIR if rate >= 60 else POOR)
    bars = axes.bar(positions, heights, color=colours, width=0.7)
    if short:
        labels = [f"{d.day:%m-%d}\n{weekdays[d.day.weekday()]}" for d in picture.checks]
        shown = [picture.checks[n] for n in positions]
        axes.bar_label(bars, labels=[f"{d.done}/{d.staff}" for d in shown], fontsize=9)
    else:
        # Every day's number would run together on a phone: the 1st and every 5th.
        labels = [
            str(d.day.day) if d.day.day == 1 or d.day.day % 5 == 0 else "" for d in picture.checks
        ]
    axes.set_xticks(range(len(picture.checks)), labels, fontsize=9 if short else 7)
    axes.set_xlim(-0.6, len(picture.checks) - 0.4)
    axes.set_ylim(0, 110)
    axes.set_yticks([0, 25, 50, 75, 100])
    axes.set_ylabel("%")
    axes.set_title(t(language, "stats.chart_checks"), fontsize=11)
    axes.spines[["top", "right"]].set_visible(False)


def _registers(axes: Axes, picture: Picture, language: str) -> None:
    rows = [
        ("stats.chart_hazards_opened", picture.hazards_opened, FAIR),
        ("stats.chart_hazards_closed", picture.hazards_closed, GOOD),
        ("stats.chart_hazards_overdue", picture.hazards_overdue, POOR),
        ("stats.chart_incidents", picture.incidents, POOR),
        ("stats.chart_drills", picture.drills, GOOD),
    ]
    if picture.serves_clients:  # a row of zero home visits says nothing to a kitchen
        rows += [
            ("stats.chart_visits", picture.visits, MUTED),
            ("stats.chart_visit_exceptions", picture.visit_exceptions, FAIR),
        ]
    rows.reverse()  # barh draws bottom-up; read top-down
    values = [value for _, value, _ in rows]
    bars = axes.barh(range(len(rows)), values, color=[colour for _, _, colour in rows], height=0.6)
    axes.bar_label(bars, padding=3, fontsize=9)
    axes.set_yticks(range(len(rows)), [t(language, key) for key, _, _ in rows], fontsize=9)
    axes.set_xlim(0, max([*values, 1]) * 1.25)
    axes.xaxis.set_visible(False)
    axes.set_title(t(language, "stats.chart_registers"), fontsize=11)
    axes.spines[["top", "right", "bottom"]].set_visible(False)


def save(png: bytes) -> str:
    """Keep the chart in the media folder; its path relative to the folder."""
    if _media_dir is None:
        raise RuntimeError("charts.configure was not called")
    return store_bytes(_media_dir, png, ".png")


def attachment(picture: Picture, language: str, title: str) -> str:
    """Render and keep: the relative media path to attach to a message."""
    return save(render(picture, language, title))
