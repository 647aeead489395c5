"""Plots for the HTML report as inline SVG strings: no plotting library, no external files."""

from __future__ import annotations

from html import escape

FONT = 'font-family="system-ui, sans-serif" font-size="12"'
BAR = "#3b6ea8"


def bar_chart(rows: list[tuple[str, float | None]], width: int = 640) -> str:
    """Horizontal bars for values in [0, 1], one row per metric; n/a rows stay empty."""
    label_w, row_h, value_w = 190, 20, 70
    plot_w = width - label_w - value_w
    parts = []
    for i, (label, value) in enumerate(rows):
        y = i * row_h
        parts.append(f'<text x="{label_w - 8}" y="{y + 14}" text-anchor="end">{escape(label)}</text>')
        if value is not None:
            parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{max(value, 0) * plot_w:.1f}" height="{row_h - 6}" fill="{BAR}"/>')
        shown = "n/a" if value is None else f"{value * 100:.1f} %"
        parts.append(f'<text x="{label_w + plot_w + 6}" y="{y + 14}">{shown}</text>')
    parts.append(f'<line x1="{label_w}" y1="0" x2="{label_w}" y2="{len(rows) * row_h}" stroke="#888"/>')
    return _svg(width, len(rows) * row_h, parts)


def heatmap(row_labels: list[str], column_labels: list[str], values: list[list[float | None]]) -> str:
    """Cells shaded by value in [0, 1] (darker is higher), the value written in each."""
    label_w, cell_w, cell_h, head_h = 170, 100, 22, 40
    width, height = label_w + cell_w * len(column_labels), head_h + cell_h * len(row_labels)
    parts = []
    for j, label in enumerate(column_labels):
        x = label_w + j * cell_w + cell_w / 2
        group, _, name = label.rpartition(".")  # "citation.precision" on two lines, so names fit
        lines = [group, name] if group else [name]
        for n, line in enumerate(lines):
            y = head_h - 8 - 13 * (len(lines) - 1 - n)
            parts.append(f'<text x="{x}" y="{y}" text-anchor="middle" font-size="11">{escape(line)}</text>')
    for i, label in enumerate(row_labels):
        y = head_h + i * cell_h
        parts.append(f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end">{escape(label)}</text>')
        for j, value in enumerate(values[i]):
            x = label_w + j * cell_w
            fill = "#eee" if value is None else f"rgba(59,110,168,{0.1 + 0.9 * max(min(value, 1), 0):.2f})"
            ink = "#fff" if value is not None and value > 0.6 else "#222"
            shown = "n/a" if value is None else f"{value * 100:.0f} %"
            parts.append(f'<rect x="{x + 1}" y="{y + 1}" width="{cell_w - 2}" height="{cell_h - 2}" fill="{fill}"/>')
            parts.append(f'<text x="{x + cell_w / 2}" y="{y + 15}" text-anchor="middle" fill="{ink}">{shown}</text>')
    return _svg(width, height, parts)


def histogram(values: list[float], bins: int = 20, width: int = 640, height: int = 200, unit: str = "ms") -> str:
    """Counts of values in equal-width bins, with the range on the x axis."""
    if not values:
        return _svg(width, 30, ['<text x="0" y="20">no values</text>'])
    low, high = min(values), max(values)
    step = (high - low) / bins or 1.0
    counts = [0] * bins
    for value in values:
        counts[min(int((value - low) / step), bins - 1)] += 1
    axis_h, top = 30, 10
    plot_h, bar_w = height - axis_h - top, width / bins
    tallest = max(counts)
    parts = []
    for i, count in enumerate(counts):
        h = plot_h * count / tallest
        parts.append(f'<rect x="{i * bar_w + 1:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w - 2:.1f}" height="{h:.1f}" fill="{BAR}">'
                     f'<title>{low + i * step:.0f}–{low + (i + 1) * step:.0f} {unit}: {count}</title></rect>')
    parts.append(f'<line x1="0" y1="{top + plot_h}" x2="{width}" y2="{top + plot_h}" stroke="#888"/>')
    parts.append(f'<text x="0" y="{height - 8}">{low:.0f} {unit}</text>')
    parts.append(f'<text x="{width}" y="{height - 8}" text-anchor="end">{high:.0f} {unit}</text>')
    parts.append(f'<text x="{width / 2}" y="{height - 8}" text-anchor="middle">{len(values)} questions, tallest bin {tallest}</text>')
    return _svg(width, height, parts)


def _svg(width: float, height: float, parts: list[str]) -> str:
    # No xmlns: inline SVG in HTML needs none, and the report then holds no URL at all.
    return f'<svg width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" {FONT}>' + "".join(parts) + "</svg>"
