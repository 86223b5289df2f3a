"""Charts drawn on the server as inline SVG: no scripts, no fonts, no outside requests.

Each function takes data already read and returns safe HTML (an `<svg>` with `<title>`
tooltips, and a legend or a table of the figures for those who cannot see the chart).
"""
from datetime import datetime, time, timedelta
from datetime import timezone as dt_timezone

from django.utils import formats
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _

from .choices import FINAL, EventKind, NegotiationStatus

#: One colour per status, kept apart for colour-blind readers where ten colours allow.
STATUS_COLORS = {
    NegotiationStatus.PROPOSED.value: "#9aa5b1",
    NegotiationStatus.IN_TALKS.value: "#4e79a7",
    NegotiationStatus.AGREED_IN_PRINCIPLE.value: "#76b7b2",
    NegotiationStatus.LISTS_EXCHANGED.value: "#59a14f",
    NegotiationStatus.AGREED.value: "#a0cbe8",
    NegotiationStatus.IMPLEMENTING.value: "#edc948",
    NegotiationStatus.SUSPENDED.value: "#f28e2b",
    NegotiationStatus.COMPLETED.value: "#2f6b3a",
    NegotiationStatus.REJECTED.value: "#b07aa1",
    NegotiationStatus.COLLAPSED.value: "#e15759",
}

FONT = "font-family:system-ui,sans-serif;font-size:11px"


def grouped(value):
    """A count with the thousands separator of the user's language (1,730 / 1 730)."""
    return formats.number_format(value, force_grouping=True)


def _r(value):
    """Coordinates to a tenth of a pixel: enough for the eye, short in the page."""
    return round(value, 1)


def _nice_step(top, ticks=4):
    """A round step (1, 2, 5 x 10^n) giving about `ticks` gridlines up to `top`."""
    raw = max(top, 1) / ticks
    magnitude = 10 ** (len(str(int(raw))) - 1)
    for factor in (1, 2, 5, 10):
        if raw <= factor * magnitude:
            return max(1, factor * magnitude)
    return 10 * magnitude


def legend(statuses):
    return format_html(
        '<div class="chart-legend">{}</div>',
        format_html_join(
            " ",
            '<span style="white-space:nowrap;margin-right:10px"><span style="display:inline-block;width:10px;'
            'height:10px;background:{};margin-right:4px;vertical-align:middle"></span>{}</span>',
            ((STATUS_COLORS[status], NegotiationStatus(status).label) for status in statuses),
        ),
    )


def status_over_time(series):
    """Stacked bars: how many negotiations stood in each status at the end of each month.

    `series` is a list of (month start, {status: count}) as `selectors.status_by_month` gives.
    """
    if not series:
        return ""
    width, height, left, bottom, top = 720, 240, 48, 28, 10
    plot_w, plot_h = width - left - 10, height - top - bottom
    totals = [sum(counts.values()) for _month, counts in series]
    step = _nice_step(max(totals))
    y_max = max(step, ((max(totals) + step - 1) // step) * step)
    band = plot_w / len(series)
    bar = band * 0.7
    statuses = [str(status) for status in NegotiationStatus]
    shapes = []
    for value in range(0, y_max + 1, step):
        y = top + plot_h - plot_h * value / y_max
        shapes.append(
            format_html(
                '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="#ddd"/>'
                '<text x="{}" y="{}" text-anchor="end" style="{}" fill="#666">{}</text>',
                left, width - 10, _r(y), _r(y), left - 6, _r(y + 4), FONT, grouped(value),
            )
        )
    for index, (month, counts) in enumerate(series):
        x = left + index * band + (band - bar) / 2
        month_label = formats.date_format(month, "M Y")
        base = top + plot_h
        for status in statuses:
            count = counts.get(status, 0)
            if not count:
                continue
            h = plot_h * count / y_max
            base -= h
            shapes.append(
                format_html(
                    '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}: {} {}</title></rect>',
                    _r(x), _r(base), _r(bar), _r(h), STATUS_COLORS[status], month_label, NegotiationStatus(status).label,
                    grouped(count),
                )
            )
        if len(series) <= 12 or index % 2 == 0:
            shapes.append(
                format_html(
                    '<text x="{}" y="{}" text-anchor="middle" style="{}" fill="#444">{}</text>',
                    _r(x + bar / 2), height - 10, FONT, formats.date_format(month, "M y"),
                )
            )
    title = _("Negotiations by status at the end of each month")
    svg = format_html(
        '<svg class="status-chart" role="img" viewBox="0 0 {} {}" width="100%" style="max-width:{}px" '
        'xmlns="http://www.w3.org/2000/svg"><title>{}</title>{}</svg>',
        width, height, width, title, mark_safe("".join(shapes)),
    )
    present = [status for status in statuses if any(counts.get(status) for _month, counts in series)]
    table_rows = format_html_join(
        "",
        "<tr><th>{}</th>{}</tr>",
        (
            (
                formats.date_format(month, "M Y"),
                format_html_join("", "<td>{}</td>", ((counts.get(status, 0),) for status in present)),
            )
            for month, counts in series
        ),
    )
    table = format_html(
        "<details><summary>{}</summary><table><thead><tr><th></th>{}</tr></thead><tbody>{}</tbody></table></details>",
        _("Show the figures"),
        format_html_join("", "<th>{}</th>", ((NegotiationStatus(status).label,) for status in present)),
        table_rows,
    )
    return format_html("{}{}{}", svg, legend(present or statuses), table)


def _as_datetime(day):
    return datetime.combine(day, time.min, tzinfo=dt_timezone.utc)


def negotiation_timeline(negotiation, *, changes, events, now):
    """A negotiation's life on one axis: a band coloured by status, its events as dots below,
    the next step's due date as a dashed line.

    `changes` are its StatusChange rows in order, `events` its Event rows.
    """
    start = _as_datetime(negotiation.opened_on)
    moments = [change.occurred_at for change in changes] + [event.occurred_at for event in events]
    start = min([start, *moments])
    final = negotiation.status in FINAL and changes
    end = max([changes[-1].occurred_at if final else now, *moments])
    if negotiation.next_step_due and not final:
        end = max(end, _as_datetime(negotiation.next_step_due + timedelta(days=1)))
    span = max((end - start).total_seconds(), 86400.0)
    if final:
        # A final status lasts from its change on: give it a visible band (a twentieth of
        # the axis) instead of a segment of no width at the very end.
        end = end + timedelta(seconds=span / 19)
        span = (end - start).total_seconds()
    width, left, right = 900, 10, 10
    plot_w = width - left - right
    band_y, band_h, dots_y, axis_y, height = 8, 26, 52, 72, 92

    def x_of(moment):
        return left + plot_w * (moment - start).total_seconds() / span

    shapes = []
    status, since = NegotiationStatus.PROPOSED.value, start
    periods = []
    for change in changes:
        periods.append((status, since, change.occurred_at))
        status, since = change.to_status, change.occurred_at
    periods.append((status, since, end))
    # A status left the moment it was entered (two changes at one time, or a first change
    # on the opening day) lasted no time: not drawn, rather than as a sliver of no width.
    periods = [period for index, period in enumerate(periods) if period[2] > period[1] or index == len(periods) - 1]
    for status, began, ended in periods:
        x0, x1 = x_of(began), x_of(ended)
        label = NegotiationStatus(status).label
        shapes.append(
            format_html(
                '<rect x="{}" y="{}" width="{}" height="{}" fill="{}" stroke="#fff"><title>{}: {} – {}</title></rect>',
                _r(x0), band_y, _r(max(x1 - x0, 1.5)), band_h, STATUS_COLORS[status], label,
                formats.date_format(began, "SHORT_DATE_FORMAT"), formats.date_format(ended, "SHORT_DATE_FORMAT"),
            )
        )
        if x1 - x0 > 7 * len(str(label)):
            shapes.append(
                format_html(
                    '<text x="{}" y="{}" style="{}" fill="#fff" font-weight="bold">{}</text>',
                    _r(x0 + 5), band_y + 17, FONT, label,
                )
            )
    for event in events:
        shapes.append(
            format_html(
                '<circle cx="{}" cy="{}" r="5" fill="#264b73" fill-opacity="0.8" stroke="#fff">'
                "<title>{} · {}: {}</title></circle>",
                _r(x_of(event.occurred_at)), dots_y, formats.date_format(event.occurred_at, "SHORT_DATE_FORMAT"),
                EventKind(event.kind).label, event.summary[:200],
            )
        )
    if negotiation.next_step_due and not final:
        due_x = x_of(_as_datetime(negotiation.next_step_due))
        shapes.append(
            format_html(
                '<line x1="{}" x2="{}" y1="2" y2="{}" stroke="#ba2121" stroke-dasharray="4 3"/>'
                '<text x="{}" y="{}" text-anchor="end" style="{}" fill="#ba2121">{}</text>',
                _r(due_x), _r(due_x), axis_y, _r(due_x - 3), dots_y + 4, FONT,
                _("next step due %(date)s") % {"date": formats.date_format(negotiation.next_step_due, "SHORT_DATE_FORMAT")},
            )
        )
    ticks = 6
    shapes.append(format_html('<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="#999"/>', left, width - right, axis_y, axis_y))
    for index in range(ticks + 1):
        moment = start + (end - start) * index / ticks
        anchor = "start" if index == 0 else "end" if index == ticks else "middle"
        shapes.append(
            format_html(
                '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="#999"/>'
                '<text x="{}" y="{}" text-anchor="{}" style="{}" fill="#444">{}</text>',
                _r(x_of(moment)), _r(x_of(moment)), axis_y, axis_y + 4, _r(x_of(moment)), axis_y + 16, anchor, FONT,
                formats.date_format(moment, "SHORT_DATE_FORMAT"),
            )
        )
    svg = format_html(
        '<svg class="negotiation-timeline" role="img" viewBox="0 0 {} {}" width="100%" style="max-width:{}px" '
        'xmlns="http://www.w3.org/2000/svg"><title>{}</title>{}</svg>',
        width, height, width,
        _("Statuses and events of %(reference)s over time") % {"reference": negotiation.reference},
        mark_safe("".join(shapes)),
    )
    seen = list(dict.fromkeys(status for status, _began, _ended in periods))
    return format_html(
        "{}{}<p class=\"help\">{}</p>", svg, legend(seen), _("Dots are events; hover for details.")
    )
