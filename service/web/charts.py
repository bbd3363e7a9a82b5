"""Chart geometry for server-rendered SVG: numbers in, coordinates out, no script needed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from service.store.dashboard_reads import Load, Timeliness

BAR_WIDTH = 160
TREND_WIDTH = 280
TREND_HEIGHT = 120
_LEFT, _RIGHT, _TOP, _BOTTOM = 34, 8, 10, 22
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True, slots=True)
class LoadBar:
    load: Load
    cases_width: int
    overdue_width: int


def load_bars(loads: Sequence[Load]) -> list[LoadBar]:
    """Bars on one scale for open cases and overdue deadlines, so rows compare at a glance."""
    top = max([1, *(x.open_cases for x in loads), *(x.overdue for x in loads)])

    def width(value: int) -> int:
        return max(2, round(value / top * BAR_WIDTH)) if value else 0

    return [LoadBar(x, width(x.open_cases), width(x.overdue)) for x in loads]


def period_label(period: str) -> str:
    """'2026-11' as 'Nov 2026', '2026-W47' as 'Week 47, 2026'."""
    year, _, rest = period.partition("-")
    if rest.startswith("W"):
        return f"Week {int(rest[1:])}, {year}"
    return f"{_MONTHS[int(rest) - 1]} {year}"


def short_label(period: str) -> str:
    rest = period.partition("-")[2]
    return f"W{int(rest[1:])}" if rest.startswith("W") else _MONTHS[int(rest) - 1]


@dataclass(frozen=True, slots=True)
class Point:
    x: float
    y: float
    period: str
    completed: int
    on_time: int
    rate: float


@dataclass(frozen=True, slots=True)
class Trend:
    """One rule's on-time rate over the periods: a small chart among several."""

    rule_id: str
    rule_name: str
    points: tuple[Point, ...]
    lines: tuple[str, ...]
    completed: int
    on_time: int
    first_label: str
    last_label: str
    first_x: float
    last_x: float

    @property
    def overall(self) -> str:
        return f"{self.on_time / self.completed:.0%}" if self.completed else "none completed"


def _y(rate: float) -> float:
    return round(_TOP + (1 - rate) * (TREND_HEIGHT - _TOP - _BOTTOM), 1)


GRID = tuple((label, _y(rate)) for label, rate in (("100%", 1.0), ("50%", 0.5), ("0%", 0.0)))
TREND_AXIS_X = _LEFT
TREND_AXIS_END = TREND_WIDTH - _RIGHT
TREND_LABEL_Y = TREND_HEIGHT - 6


def trends(
    items: Sequence[Timeliness], periods: Sequence[str], names: Mapping[str, str]
) -> list[Trend]:
    """A line per rule across the periods, broken where a period had no completions."""
    step = (TREND_WIDTH - _LEFT - _RIGHT) / max(1, len(periods) - 1)
    xs = {p: round(_LEFT + i * step, 1) for i, p in enumerate(periods)}
    by_rule: dict[str, list[Timeliness]] = {}
    for item in items:
        by_rule.setdefault(item.rule_id, []).append(item)
    charts = []
    for rule_id, rows in by_rule.items():
        points: list[Point] = []
        lines: list[str] = []
        run: list[str] = []
        for row in rows:
            rate = row.on_time_rate
            if rate is None:
                if run:
                    lines.append(" ".join(run))
                run = []
                continue
            point = Point(xs[row.period], _y(rate), row.period, row.completed, row.on_time, rate)
            points.append(point)
            run.append(f"{point.x},{point.y}")
        if run:
            lines.append(" ".join(run))
        charts.append(
            Trend(
                rule_id=rule_id,
                rule_name=names.get(rule_id, rule_id),
                points=tuple(points),
                lines=tuple(line for line in lines if " " in line),
                completed=sum(r.completed for r in rows),
                on_time=sum(r.on_time for r in rows),
                first_label=short_label(periods[0]) if periods else "",
                last_label=short_label(periods[-1]) if periods else "",
                first_x=xs[periods[0]] if periods else 0,
                last_x=xs[periods[-1]] if periods else 0,
            )
        )
    # The rules doing worst come first: that is where a manager looks.
    return sorted(charts, key=lambda c: (c.on_time / c.completed if c.completed else 2, c.rule_id))
