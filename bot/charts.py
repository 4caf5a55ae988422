"""The report's picture: departures by reason per month, the save rate, the revenue lost, as a PNG.

Drawn with matplotlib's Agg backend, selected before anything could import
pyplot: no display, no GUI toolkit, the same pixels on a server as on a
laptop. pyplot itself is never imported: a ``Figure`` made directly belongs
to no figure manager, so nothing is kept open between reports and two
reports drawn at once (Slack's, the digest's) share no state. matplotlib is
imported on the first chart, so that starting the bot does not wait for it.
The words come from the caller (prompts/); the data is plain numbers.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # for the types only: matplotlib itself is imported on the first chart
    from matplotlib.figure import Figure

WIDTH_INCHES = 10.0
HEIGHT_INCHES = 11.0
DPI = 100
# Month labels beyond this many are thinned out, so they stay readable.
MAX_MONTH_LABELS = 18


@dataclass(frozen=True)
class ChartData:
    title: str
    months: list[str]  # YYYY-MM, in order
    reasons: list[tuple[str, list[int]]]  # label, departures per month
    save_rates: list[float | None]  # percent per month; None: no save attempt ended that month
    lost: list[tuple[str, list[float]]]  # currency, revenue lost per month
    reasons_title: str
    save_rate_title: str
    lost_title: str
    empty: str  # shown when the period has no departure


def render_png(data: ChartData) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(WIDTH_INCHES, HEIGHT_INCHES), dpi=DPI, layout="constrained")
    figure.suptitle(data.title, fontsize=14)
    if not data.months:
        figure.text(0.5, 0.5, data.empty, ha="center", va="center", fontsize=13)
        return _png(figure)
    reasons, rates, lost = figure.subplots(3, 1, sharex=True, height_ratios=(2.2, 1, 1.2))
    x = list(range(len(data.months)))

    bottom = [0] * len(x)
    for label, counts in data.reasons:
        reasons.bar(x, counts, bottom=bottom, label=label, width=0.8)
        bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    reasons.set_title(data.reasons_title, loc="left", fontsize=11)
    reasons.yaxis.get_major_locator().set_params(integer=True)
    if data.reasons:
        reasons.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)

    shown = [math.nan if r is None else r for r in data.save_rates]
    rates.plot(x, shown, marker="o", color="tab:green")
    rates.set_ylim(0, 105)
    rates.set_title(data.save_rate_title, loc="left", fontsize=11)
    rates.grid(axis="y", alpha=0.3)

    width = 0.8 / max(1, len(data.lost))
    for n, (currency, amounts) in enumerate(data.lost):
        offset = (n - (len(data.lost) - 1) / 2) * width
        lost.bar([i + offset for i in x], amounts, width=width, label=currency)
    lost.set_title(data.lost_title, loc="left", fontsize=11)
    if data.lost:
        lost.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)

    step = max(1, math.ceil(len(x) / MAX_MONTH_LABELS))
    lost.set_xticks(x[::step], data.months[::step], rotation=45, ha="right")
    return _png(figure)


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
