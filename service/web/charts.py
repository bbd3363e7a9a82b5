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
    """'2026-11' as 'Nov 2026', '2026-W47' as 'Week 47 2026': with the year, as a chart that
    spans twelve months crosses one."""
    year, _, rest = period.partition("-")
    if rest.startswith("W"):
        return f"Week {int(rest[1:])} {year}"
    return f"{_MONTHS[int(rest) - 1]} {year}"


@dataclass(frozen=True, slots=True)
class Point:
    x: float
    y: float
    period: str
    completed: int
    on_time: int
    rate: float
    # The period still running at as_of: a rate "so far", drawn apart from whole periods.
    so_far: bool = False


@dataclass(frozen=True, slots=True)
class Trend:
    """One rule's on-time rate over the periods: a small chart among several."""

    rule_id: str
    rule_name: str
    points: tuple[Point, ...]
    lines: tuple[str, ...]
    # A dashed segment from the last whole period's point to the point so far, if both exist.
    so_far_line: str | None
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
    items: Sequence[Timeliness],
    periods: Sequence[str],
    names: Mapping[str, str],
    so_far: str | None = None,
) -> list[Trend]:
    """A line per rule across the periods, broken where a period had no completions.

    The period `so_far` (the one still running at as_of) is not joined to the line as if it
    were whole: its few completions would swing the rate (one late completion early in a
    month reads 0%), so it is a hollow point on a dashed segment, labelled "so far".
    """
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
        so_far_line = None
        for row in rows:
            rate = row.on_time_rate
            if rate is None:
                if run:
                    lines.append(" ".join(run))
                run = []
                continue
            point = Point(
                xs[row.period],
                _y(rate),
                row.period,
                row.completed,
                row.on_time,
                rate,
                so_far=row.period == so_far,
            )
            points.append(point)
            if point.so_far:
                if run:
                    so_far_line = f"{run[-1]} {point.x},{point.y}"
                continue
            run.append(f"{point.x},{point.y}")
        if run:
            lines.append(" ".join(run))
        charts.append(
            Trend(
                rule_id=rule_id,
                rule_name=names.get(rule_id, rule_id),
                points=tuple(points),
                lines=tuple(line for line in lines if " " in line),
                so_far_line=so_far_line,
                completed=sum(r.completed for r in rows),
                on_time=sum(r.on_time for r in rows),
                first_label=period_label(periods[0]) if periods else "",
                last_label=(
                    period_label(periods[-1]) + (" so far" if periods[-1] == so_far else "")
                    if periods
                    else ""
                ),
                first_x=xs[periods[0]] if periods else 0,
                last_x=xs[periods[-1]] if periods else 0,
            )
        )
    # The rules doing worst come first: that is where a manager looks.
    return sorted(charts, key=lambda c: (c.on_time / c.completed if c.completed else 2, c.rule_id))
