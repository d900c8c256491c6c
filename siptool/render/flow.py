"""Plain-text ladder diagrams (no colour, no box characters) that paste cleanly into a ticket.

Call-ID: 1-4242@127.0.0.1   3 messages, 2.1 ms
ms          127.0.0.1:5061        127.0.0.1:5060
   0.000    |-----INVITE (SDP)--->|
   0.312    |<----100 Trying------|
"""

from __future__ import annotations

from siptool.commands.callflow import CallFlow

_TIME_WIDTH = 12


def _column_width(flow: CallFlow) -> int:
    longest_label = max((len(a.label) for a in flow.arrows), default=0)
    longest_name = max((len(p) for p in flow.participants), default=0)
    return max(22, longest_label + 6, longest_name + 2)


def render_flow(flow: CallFlow) -> str:
    width = _column_width(flow)
    # The first name is centred on its column too: with a long one (IPv6) the columns move
    # right rather than the name being cut or running into the next one.
    first = len(flow.participants[0]) if flow.participants else 0
    origin = max(_TIME_WIDTH, first // 2 + 3)
    columns = {p: origin + i * width for i, p in enumerate(flow.participants)}
    line_width = origin + (len(flow.participants) - 1) * width + 1
    duration = flow.duration_ms
    title = f"Call-ID: {flow.call_id}   {len(flow.arrows)} messages"
    if duration is not None:
        title += f", {duration:.1f} ms"
    lines = [title]

    header = list("ms".ljust(line_width + width))
    for name, x in columns.items():
        start = x - len(name) // 2
        header[start : start + len(name)] = name
    lines.append("".join(header).rstrip())

    for arrow in flow.arrows:
        row = [" "] * line_width
        for x in columns.values():
            row[x] = "|"
        a, b = columns[arrow.src], columns[arrow.dst]
        if a == b:
            # A message from an endpoint to itself (a loop through the same socket).
            text = f"|<- {arrow.label}"
            row = row[:a] + list(text) + row[a + len(text) :]
        else:
            left, right = min(a, b), max(a, b)
            for x in range(left + 1, right):
                row[x] = "-"
            if b > a:
                row[right - 1] = ">"
            else:
                row[left + 1] = "<"
            label = arrow.label[: right - left - 4]
            start = left + 1 + max(1, (right - left - 1 - len(label)) // 2)
            row[start : start + len(label)] = label
        stamp = "" if arrow.time_ms is None else f"{arrow.time_ms:10.3f}"
        lines.append(stamp.ljust(origin)[:origin] + "".join(row[origin:]).rstrip())
    return "\n".join(lines)


def render_flows(flows: list[CallFlow]) -> str:
    if not flows:
        return "no SIP dialogs in the input"
    return "\n\n".join(render_flow(f) for f in flows) + "\n"
