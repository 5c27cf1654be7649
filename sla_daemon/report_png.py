"""The report's charts as PNG images, for mail: Gmail and Outlook show no SVG.

The shapes are those of ``report_charts`` (the same as the HTML page's SVG), drawn with
Pillow's ``ImageDraw`` at ``SCALE`` times their size so that they stay sharp on
high-density screens; the mail shows them at the chart's own width and height.
"""

from __future__ import annotations

import io

from PIL import Image, ImageDraw, ImageFont

from sla_daemon.report_charts import Bar, Chart, Dot, Label, Line

SCALE = 2
"""Image pixels per chart unit."""

_ANCHORS = {"start": "ls", "middle": "ms", "end": "rs"}  # Pillow's left/middle/right baseline


def chart_png(chart: Chart) -> bytes:
    """``chart`` as PNG bytes, ``chart.width * SCALE`` by ``chart.height * SCALE`` pixels."""
    image = Image.new("RGB", (chart.width * SCALE, chart.height * SCALE), "white")
    draw = ImageDraw.Draw(image)
    fonts: dict[int, ImageFont.FreeTypeFont | ImageFont.ImageFont] = {}
    for shape in chart.shapes:
        if isinstance(shape, Line):
            draw.line([(x * SCALE, y * SCALE) for x, y in shape.points], shape.colour, SCALE)
        elif isinstance(shape, Dot):
            r = shape.radius * SCALE
            x, y = shape.x * SCALE, shape.y * SCALE
            draw.ellipse((x - r, y - r, x + r, y + r), fill=shape.colour)
        elif isinstance(shape, Bar):
            if shape.height > 0:
                box = (shape.x, shape.y, shape.x + shape.width, shape.y + shape.height)
                draw.rectangle(tuple(v * SCALE for v in box), fill=shape.colour)
        else:
            label: Label = shape
            if label.size not in fonts:
                fonts[label.size] = ImageFont.load_default(size=label.size * SCALE)
            draw.text(
                (label.x * SCALE, label.y * SCALE),
                label.text,
                fill=label.colour,
                font=fonts[label.size],
                anchor=_ANCHORS[label.anchor],
            )
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
