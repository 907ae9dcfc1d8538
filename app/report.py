"""`raf report` / `GET /v1/jobs/{id}/report`: one self-contained HTML page of a roster summary.

The page renders offline: no script, no font, no stylesheet or image from anywhere
else; its charts are static inline SVG written by this module (`bar_chart`,
`histogram`). Our own ~100 lines of SVG rather than a charting library: the
charts are four bar charts; pygal, the well-kept pure-Python SVG library, links
its tooltip script from a CDN by default, and matplotlib is a large dependency
for four bar charts. Every chart is a `<figure class="chart">` holding one
`<svg>`, which is what the browser test checks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

from app.summary import RosterSummary, Stats

WIDTH = 720
BAR_HEIGHT = 22
LABEL_WIDTH = 150
VALUE_WIDTH = 110
PALETTE = {"bar": "#3b6ea8", "negative": "#b5523b", "axis": "#555", "grid": "#ddd"}

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;
max-width:960px;color:#222;padding:0 1rem}
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5rem 0}td,th{padding:.25rem .6rem;border:1px solid #ddd}
th{background:#f3f5f8;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}
figure.chart{margin:1rem 0}figcaption{font-weight:600;margin-bottom:.3rem}
.note{color:#666;font-size:.9rem}svg text{font-size:12px;fill:#222}
"""


def _fmt(value: float | None, digits: int = 6) -> str:
    return "" if value is None else f"{value:,.{digits}f}"


def _money(value: float | None) -> str:
    return "" if value is None else f"${value:,.2f}"


def bar_chart(items: Sequence[tuple[str, float]], value_text: Sequence[str]) -> str:
    """Horizontal bars, one per item; negative values go left of a zero axis."""
    if not items:
        items, value_text = [("(none)", 0.0)], [""]
    low = min(0.0, *(v for _, v in items))
    high = max(0.0, *(v for _, v in items))
    span = (high - low) or 1.0
    plot = WIDTH - LABEL_WIDTH - VALUE_WIDTH
    zero = LABEL_WIDTH + plot * (-low / span)
    height = BAR_HEIGHT * len(items) + 10
    parts = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
             f'viewBox="0 0 {WIDTH} {height}" role="img">')]
    for i, ((label, value), text) in enumerate(zip(items, value_text, strict=True)):
        y = 5 + i * BAR_HEIGHT
        length = plot * abs(value) / span
        x = zero if value >= 0 else zero - length
        color = PALETTE["bar"] if value >= 0 else PALETTE["negative"]
        parts.append(
            f'<text x="{LABEL_WIDTH - 6}" y="{y + 15}" text-anchor="end">{escape(label)}</text>'
            f'<rect x="{x:.1f}" y="{y + 3}" width="{max(length, 0.5):.1f}" height="{BAR_HEIGHT - 6}"'
            f' fill="{color}"><title>{escape(label)}: {escape(text)}</title></rect>'
            f'<text x="{LABEL_WIDTH + plot + 6}" y="{y + 15}">{escape(text)}</text>'
        )
    parts.append(f'<line x1="{zero:.1f}" x2="{zero:.1f}" y1="0" y2="{height}" '
                 f'stroke="{PALETTE["axis"]}"/></svg>')
    return "".join(parts)


def histogram(bins: Sequence[tuple[str, int]]) -> str:
    """Vertical bars of member counts, labelled under every other bin."""
    height, bottom, left = 260, 40, 50
    plot_w, plot_h = WIDTH - left - 10, height - bottom - 10
    highest = max((n for _, n in bins), default=0)
    step = max(1, -(-highest // 4))  # whole-member gridlines, four or fewer
    top = step * 4
    width = plot_w / max(len(bins), 1)
    parts = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
             f'viewBox="0 0 {WIDTH} {height}" role="img">')]
    for tick in range(5):
        value = top * tick / 4
        y = 10 + plot_h - plot_h * tick / 4
        parts.append(f'<line x1="{left}" x2="{WIDTH - 10}" y1="{y:.1f}" y2="{y:.1f}" '
                     f'stroke="{PALETTE["grid"]}"/><text x="{left - 4}" y="{y + 4:.1f}" '
                     f'text-anchor="end">{value:,.0f}</text>')
    for i, (label, count) in enumerate(bins):
        h = plot_h * count / top
        x = left + i * width
        parts.append(f'<rect x="{x + 1:.1f}" y="{10 + plot_h - h:.1f}" width="{width - 2:.1f}" '
                     f'height="{h:.1f}" fill="{PALETTE["bar"]}"><title>{escape(label)}: '
                     f'{count:,} members</title></rect>')
        if i % 2 == 0:
            parts.append(f'<text x="{x + width / 2:.1f}" y="{height - bottom + 16}" '
                         f'text-anchor="middle">{escape(label.split("–")[0])}</text>')
    parts.append(f'<text x="{left + plot_w / 2}" y="{height - 6}" text-anchor="middle">'
                 'active score</text></svg>')
    return "".join(parts)


def _figure(chart_id: str, caption: str, svg: str) -> str:
    return (f'<figure class="chart" id="{chart_id}"><figcaption>{escape(caption)}</figcaption>'
            f'{svg}</figure>')


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], numeric_from: int = 1) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(
            f'<td class="n">{escape(c)}</td>' if i >= numeric_from else f"<td>{escape(c)}</td>"
            for i, c in enumerate(row)
        ) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _stats_row(name: str, stats: Stats | None) -> list[str]:
    if stats is None:
        return [name, "0", "", "", "", "", "", ""]
    return [name, f"{stats.count:,}", _fmt(stats.mean), _fmt(stats.median), _fmt(stats.p10),
            _fmt(stats.p90), _fmt(stats.min), _fmt(stats.max)]


STATS_HEADER = ("score", "members", "mean", "median", "p10", "p90", "min", "max")


def render_report(summary: RosterSummary, title: str | None = None) -> str:
    """The HTML page (a str) of one roster summary."""
    year = f"PY{summary.payment_year}" if summary.payment_year else "roster"
    title = title or f"Risk-score roster summary, {year}"
    s = summary
    out = [(f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}'
           f'</title><meta name="viewport" content="width=device-width,initial-scale=1">'
           f"<style>{CSS}</style></head><body><h1>{escape(title)}</h1>")]
    overview = [
        ("members received", "" if s.members_received is None else f"{s.members_received:,}"),
        ("members scored", f"{s.members_scored:,}"),
        ("members rejected", f"{s.members_rejected:,}"),
        ("member-months", f"{s.member_months:,}"),
        ("mean active score, member-month weighted", _fmt(s.active_mean_member_month_weighted)),
    ]
    if s.payment is not None:
        overview += [
            ("projected MA payment (priced members)", _money(s.payment.total)),
            ("PMPM", _money(s.payment.pmpm)),
            ("members priced / without a rate",
             f"{s.payment.members_priced:,} / {s.payment.members_unpriced:,}"),
        ]
    out.append("<h2>Overview</h2>" + _table(("", "value"), overview))
    scores = [("active", s.scores.active), ("raw V28", s.scores.raw_v28),
              ("raw V24", s.scores.raw_v24), ("raw ESRD V24", s.scores.raw_esrd_v24)]
    out.append("<h2>Scores</h2>" + _table(
        STATS_HEADER, [_stats_row(name, stats) for name, stats in scores if stats is not None]
    ))
    if s.active_histogram:
        bins = [(f"{b.lower:.1f}–{'' if b.upper is None else f'{b.upper:.1f}'}", b.members)
                for b in s.active_histogram]
        out.append(_figure("chart-histogram", "Active scores (members per 0.1)", histogram(bins)))

    out.append("<h2>By segment</h2>")
    out.append(_figure(
        "chart-mean-by-segment", "Mean active score by segment",
        bar_chart([(g.segment, g.scores.active.mean or 0.0) for g in s.by_segment],
                  [_fmt(g.scores.active.mean) for g in s.by_segment]),
    ))
    out.append(_table(
        ("segment", "family", "members", "member-months", "mean active", "median active",
         "mean raw V28", "mean raw V24", "payment"),
        ([g.segment, g.family, f"{g.members:,}", f"{g.member_months:,}",
          _fmt(g.scores.active.mean), _fmt(g.scores.active.median),
          _fmt(g.scores.raw_v28.mean if g.scores.raw_v28 else None),
          _fmt(g.scores.raw_v24.mean if g.scores.raw_v24 else None), _money(g.payment)]
         for g in s.by_segment),
        numeric_from=2,
    ))
    out.append("<h3>Members by segment family and RAType</h3>")
    out.append(_table(("segment family", "members"),
                      ((k, f"{v:,}") for k, v in s.by_segment_family.items())))
    out.append(_table(("RAType", "members"), ((k, f"{v:,}") for k, v in s.by_ratype.items())))

    out.append("<h2>V24 → V28 transition</h2>")
    if s.transition:
        out.append(_figure(
            "chart-transition", "Mean raw V28 − mean raw V24 by segment",
            bar_chart([(t.segment, t.effect) for t in s.transition],
                      [f"{t.effect:+.6f}" for t in s.transition]),
        ))
        rows = [*s.transition, *([s.transition_overall] if s.transition_overall else [])]
        out.append(_table(("segment", "members", "mean raw V24", "mean raw V28", "effect"),
                          ([t.segment, f"{t.members:,}", _fmt(t.mean_raw_v24),
                            _fmt(t.mean_raw_v28), f"{t.effect:+.6f}"] for t in rows)))
    else:
        out.append('<p class="note">No member has both a V24 and a V28 row (only PY2024 and '
                   "PY2025 blend the two models).</p>")

    out.append("<h2>Revenue</h2>")
    priced = [g for g in s.by_segment if g.payment is not None]
    if s.payment is not None and priced:
        out.append(_figure(
            "chart-revenue-by-segment", "Projected MA payment by segment",
            bar_chart([(g.segment, g.payment or 0.0) for g in priced],
                      [_money(g.payment) for g in priced]),
        ))
    else:
        out.append('<p class="note">No member has a rate (send Monthly_Rate or County with a '
                   "rate table); the service ships no county rates.</p>")

    out.append("<h2>Rejected members and dropped diagnoses</h2>")
    out.append(_table(("rejected: field", "members"),
                      ((k, f"{v:,}") for k, v in s.rejected.by_field.items())))
    if s.diagnoses is not None:
        out.append(_table(
            ("diagnoses", "rows"),
            [("received", f"{s.diagnoses.received:,}"), ("used", f"{s.diagnoses.used:,}"),
             *((f"dropped: {k}", f"{v:,}") for k, v in s.diagnoses.dropped_by_reason.items())],
        ))
    if s.warnings:
        out.append("<h2>Warnings</h2>")
        out.append(_table(("code", "message", "count"),
                          ([w.code, w.message, f"{w.count:,}"] for w in s.warnings),
                          numeric_from=2))
    if s.reference:
        out.append(f'<p class="note">Reference data: {escape(str(s.reference.get("release_id")))}'
                   "</p>")
    out.append("</body></html>")
    return "".join(out)
