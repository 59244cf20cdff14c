"""The study report's charts, drawn with Pillow (a torchvision dependency): no plotting library to install.

Optuna's own plots need matplotlib or plotly; these draw the same views (optimization history, intermediate
values, parameter importances, parallel coordinates, Pareto front) as PNG bytes, small and legible in
TensorBoard's Images tab and in a Markdown viewer. Each chart is a `Chart`: axes with "nice" ticks mapped
onto a fixed canvas, on which the report places points, lines, bars and labels.
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT = 720, 420
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 78, 24, 56, 56
BACKGROUND, INK, GRID, MUTED = (255, 255, 255), (40, 40, 40), (228, 228, 228), (150, 150, 150)
BLUE, ORANGE, RED, GREEN = (31, 119, 180), (255, 127, 14), (214, 39, 40), (44, 160, 44)
Color = tuple[int, int, int]


@functools.lru_cache(maxsize=2)
def font(size: int = 13) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's built-in font at `size` (the fixed-size bitmap font on a Pillow without FreeType)."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):
        return ImageFont.load_default()


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About `count` round tick values covering [low, high] (1, 2 or 5 times a power of ten apart)."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low]
    raw = (high - low) / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(factor * magnitude for factor in (1, 2, 5, 10) if factor * magnitude >= raw)
    first = math.ceil(low / step - 1e-9) * step
    return [first + index * step for index in range(int((high - first) / step + 1e-9) + 1)]


def tick_text(value: float) -> str:
    return f"{value:.4g}"


def viridis(fraction: float) -> Color:
    """A colour from dark purple (0) through teal to yellow (1): better values read brighter."""
    stops = [(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)]
    fraction = min(max(fraction, 0.0), 1.0) * (len(stops) - 1)
    index = min(int(fraction), len(stops) - 2)
    part = fraction - index
    left, right = stops[index], stops[index + 1]
    return tuple(round(a + (b - a) * part) for a, b in zip(left, right, strict=True))  # type: ignore[return-value]


@dataclass
class Axis:
    low: float
    high: float
    log: bool = False

    @classmethod
    def around(cls, values: Sequence[float], log: bool = False) -> Axis:
        """An axis spanning `values` with a little room at both ends (a single value gets a unit span)."""
        finite = [value for value in values if math.isfinite(value) and (value > 0 or not log)]
        if not finite:
            return cls(0.0, 1.0)
        low, high = min(finite), max(finite)
        if log:
            low, high = math.log10(low), math.log10(high)
        pad = (high - low) * 0.05 or (abs(high) * 0.1 or 0.5)
        return cls(low - pad, high + pad, log)

    def fraction(self, value: float) -> float:
        position = math.log10(value) if self.log and value > 0 else value
        return (position - self.low) / (self.high - self.low)

    def ticks(self) -> list[tuple[float, str]]:
        """(position in axis units, label) pairs; a log axis ticks its powers of ten."""
        if self.log:  # powers of ten, and 2 and 5 times them when the axis spans less than three decades
            factors = (1,) if self.high - self.low >= 3 else (1, 2, 5)
            values = [
                factor * 10.0**power
                for power in range(math.floor(self.low), math.ceil(self.high) + 1)
                for factor in factors
                if self.low <= math.log10(factor * 10.0**power) <= self.high
            ]
            return [(math.log10(value), tick_text(value)) for value in values] or [(self.low, tick_text(10**self.low))]
        return [(value, tick_text(value)) for value in nice_ticks(self.low, self.high)]


class Chart:
    """A canvas with a plot area, an x and a y axis, a title and axis labels."""

    def __init__(self, title: str, x: Axis, y: Axis, x_label: str = "", y_label: str = "") -> None:
        self.image = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
        self.draw = ImageDraw.Draw(self.image)
        self.x, self.y = x, y
        self.left, self.right = MARGIN_LEFT, WIDTH - MARGIN_RIGHT
        self.top, self.bottom = MARGIN_TOP, HEIGHT - MARGIN_BOTTOM
        self.draw.text((WIDTH // 2, 12), title, fill=INK, font=font(15), anchor="mt")
        self._axes(x_label, y_label)

    def point(self, x: float, y: float) -> tuple[float, float]:
        """Canvas coordinates of data point (x, y)."""
        return (
            self.left + self.x.fraction(x) * (self.right - self.left),
            self.bottom - self.y.fraction(y) * (self.bottom - self.top),
        )

    def _axes(self, x_label: str, y_label: str) -> None:
        draw = self.draw
        for position, label in self.y.ticks():
            fraction = (position - self.y.low) / (self.y.high - self.y.low)
            y = self.bottom - fraction * (self.bottom - self.top)
            draw.line([(self.left, y), (self.right, y)], fill=GRID)
            draw.text((self.left - 6, y), label, fill=INK, font=font(), anchor="rm")
        for position, label in self.x.ticks():
            fraction = (position - self.x.low) / (self.x.high - self.x.low)
            x = self.left + fraction * (self.right - self.left)
            draw.line([(x, self.bottom), (x, self.bottom + 4)], fill=INK)
            draw.text((x, self.bottom + 7), label, fill=INK, font=font(), anchor="mt")
        draw.rectangle([self.left, self.top, self.right, self.bottom], outline=INK)
        draw.text(((self.left + self.right) // 2, HEIGHT - 18), x_label, fill=INK, font=font(), anchor="mm")
        if y_label:
            label = Image.new("RGB", (int(self.draw.textlength(y_label, font=font())) + 8, 18), BACKGROUND)
            ImageDraw.Draw(label).text((4, 2), y_label, fill=INK, font=font())
            rotated = label.rotate(90, expand=True)
            self.image.paste(rotated, (4, (self.top + self.bottom - rotated.height) // 2))

    def dots(self, points: Sequence[tuple[float, float]], color: Color, radius: int = 4) -> None:
        for x, y in points:
            cx, cy = self.point(x, y)
            self.draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=color)

    def crosses(self, points: Sequence[tuple[float, float]], color: Color, size: int = 4) -> None:
        for x, y in points:
            cx, cy = self.point(x, y)
            self.draw.line([(cx - size, cy - size), (cx + size, cy + size)], fill=color, width=2)
            self.draw.line([(cx - size, cy + size), (cx + size, cy - size)], fill=color, width=2)

    def line(self, points: Sequence[tuple[float, float]], color: Color, width: int = 2) -> None:
        if len(points) > 1:
            self.draw.line([self.point(x, y) for x, y in points], fill=color, width=width)

    def legend(self, entries: Sequence[tuple[str, Color]]) -> None:
        """Entries left to right between the title and the plot, each a colour swatch and its text."""
        x, y = self.left, self.top - 22
        for text, color in entries:
            self.draw.rectangle([x, y + 3, x + 10, y + 13], fill=color)
            self.draw.text((x + 14, y + 8), text, fill=INK, font=font(), anchor="lm")
            x += 26 + int(self.draw.textlength(text, font=font()))

    def note(self, text: str) -> None:
        """A line of small print at the bottom left (what the chart leaves out)."""
        self.draw.text((6, HEIGHT - 4), text, fill=MUTED, font=font(11), anchor="ld")

    def png(self) -> bytes:
        return png(self.image)


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def bar_chart(title: str, bars: Sequence[tuple[str, float]], value_label: str) -> bytes:
    """Horizontal bars, largest on top, each labelled with its name and value (parameter importances)."""
    height = max(HEIGHT // 2, MARGIN_TOP + MARGIN_BOTTOM + 30 * len(bars))
    image = Image.new("RGB", (WIDTH, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    draw.text((WIDTH // 2, 12), title, fill=INK, font=font(15), anchor="mt")
    names = [name for name, _ in bars]
    left = 16 + max((int(draw.textlength(name, font=font())) for name in names), default=0)
    right = WIDTH - 80
    largest = max((value for _, value in bars), default=0.0) or 1.0
    for index, (name, value) in enumerate(bars):
        top = MARGIN_TOP + 30 * index
        draw.text((left - 8, top + 10), name, fill=INK, font=font(), anchor="rm")
        draw.rectangle([left, top + 2, left + max(1, (right - left) * value / largest), top + 18], fill=BLUE)
        draw.text(
            (left + (right - left) * value / largest + 6, top + 10), f"{value:.3f}", fill=INK, font=font(), anchor="lm"
        )
    draw.text((WIDTH // 2, height - 18), value_label, fill=INK, font=font(), anchor="mm")
    return png(image)


def parallel_coordinates(
    title: str,
    axes: Sequence[tuple[str, Axis, Sequence[str] | None]],
    lines: Sequence[tuple[Sequence[float], float]],
    objective: str,
) -> bytes:
    """One vertical axis per parameter (then the objective), one polyline per trial, coloured by its value.

    `axes`: (name, axis, category names or None); a categorical axis places its categories at 0, 1, 2, ...
    `lines`: (positions on every axis, colour fraction 0..1: 1 is the best trial).
    """
    image = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    draw = ImageDraw.Draw(image)
    draw.text((WIDTH // 2, 12), title, fill=INK, font=font(15), anchor="mt")
    top, bottom = MARGIN_TOP + 10, HEIGHT - MARGIN_BOTTOM
    left, right = 60, WIDTH - 60
    xs = [left + (right - left) * index / max(len(axes) - 1, 1) for index in range(len(axes))]

    def y_of(axis: Axis, value: float) -> float:
        return bottom - axis.fraction(value) * (bottom - top)

    for values, shade in sorted(lines, key=lambda line: line[1]):  # the best drawn last, on top
        points = [(x, y_of(axis, value)) for x, (_, axis, _), value in zip(xs, axes, values, strict=True)]
        draw.line(points, fill=viridis(shade), width=2)
    for x, (name, axis, categories) in zip(xs, axes, strict=True):
        draw.line([(x, top), (x, bottom)], fill=INK, width=1)
        draw.text((x, bottom + 8), name, fill=INK, font=font(), anchor="mt")
        ticks = (
            [(float(index), category) for index, category in enumerate(categories)]
            if categories is not None
            else axis.ticks()
        )
        for position, label in ticks:
            fraction = (position - axis.low) / (axis.high - axis.low)
            if 0 <= fraction <= 1:
                y = bottom - fraction * (bottom - top)
                draw.line([(x - 3, y), (x + 3, y)], fill=INK)
                draw.text((x + 5, y), label, fill=MUTED, font=font(11), anchor="lm")
    draw.text(
        (WIDTH // 2, HEIGHT - 14),
        f"lines: complete trials, coloured by {objective} (bright: better)",
        fill=MUTED,
        font=font(11),
        anchor="mm",
    )
    return png(image)
