"""HTML fragments of the review admin: score bars, status badges, thumbnails, the heat map.

Pure functions of plain values (no queries), so the changelist stays free of N+1 queries and
the fragments can be tested alone. Everything user-provided goes through ``format_html``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy

#: Scores at or above this share are drawn in the "confident" colour.
HIGH_SCORE = 0.9
#: Opacity of the most attended title word's shading: at most this much keeps its text at
#: 4.5:1 or better over the shade in both themes.
TOKEN_SHADE = 0.55
#: Below this share a suggestion is drawn as "unsure" (the merchant should look closely).
LOW_SCORE = 0.5

#: What a merchant reads for each stored status (the stored values stay internal).
MERCHANT_STATUS = {
    "pending": _lazy("Waiting"),
    "running": _lazy("Classifying"),
    "ready": _lazy("Suggested"),
    "failed": _lazy("Could not suggest"),
    "accepted": _lazy("Accepted"),
    "rejected": _lazy("Rejected"),
    "obsolete": _lazy("Superseded"),
}


def merchant_status(status: str) -> str:
    """The merchant's word for a stored status (the status itself when unknown)."""
    return str(MERCHANT_STATUS.get(status, status))


def confidence(score: float | None) -> str:
    """``high``, ``mid`` or ``low``: the band a score is drawn in."""
    if score is None:
        return "low"
    if score >= HIGH_SCORE:
        return "high"
    return "mid" if score >= LOW_SCORE else "low"


def confidence_badge(label: str, score: float | None) -> SafeString:
    """``Tops 98%`` in a pill whose colour and icon say how sure the model is; the words
    ("sure", "unsure") are there for screen readers and for colour-blind merchants."""
    band = confidence(score)
    words = {"high": _("confident"), "mid": _("fairly sure"), "low": _("unsure")}[band]
    pct = "" if score is None else f" {percent(score)}%"
    return format_html(
        '<span class="prodcat-confidence prodcat-confidence--{}" title="{}">'
        '<span class="prodcat-confidence__dot" aria-hidden="true"></span>{}{}'
        '<span class="prodcat-sr"> ({})</span></span>',
        band,
        words,
        label,
        pct,
        words,
    )


def percent(score: float) -> int:
    """A score in [0, 1] as a whole percentage, clamped (bad data never breaks the page)."""
    try:
        value = float(score)
    except (TypeError, ValueError):
        return 0
    if value != value:  # NaN
        return 0
    return max(0, min(100, round(value * 100)))


def score_bars(labels: Iterable[tuple[str, float]], *, limit: int = 3) -> SafeString:
    """A list of ``label  [bar]  87%`` rows, best first. The bar itself is decorative
    (``aria-hidden``); the visible percentage is the accessible text."""
    rows = []
    for label, score in list(labels)[:limit]:
        pct = percent(score)
        rows.append(
            format_html(
                '<li title="{label}: {pct}%"><span class="prodcat-label">{label}</span>'
                '<span class="prodcat-bar{high}" aria-hidden="true">'
                '<span class="prodcat-bar__fill" style="width: {pct}%"></span></span>'
                '<span class="prodcat-pct">{pct}%</span></li>',
                label=label,
                pct=pct,
                high=" prodcat-bar--high" if pct >= HIGH_SCORE * 100 else "",
            )
        )
    if not rows:
        return format_html('<span class="prodcat-decision">{}</span>', "—")
    return format_html(
        '<ul class="prodcat-scores" aria-label="{}">{}</ul>',
        _("Top labels"),
        SafeString("".join(rows)),
    )


def status_badge(status: str, display: str | None = None) -> SafeString:
    """A pill with the merchant's word for ``status`` (``display`` overrides it)."""
    text = merchant_status(status) if display is None else display
    return format_html('<span class="prodcat-status prodcat-status--{}">{}</span>', status, text)


def thumbnail(url: str | None, alt: str, *, size: int = 48) -> SafeString:
    """A small lazily loaded photo; a grey placeholder where the product has none."""
    if not url:
        return format_html(
            '<span class="prodcat-thumb prodcat-thumb--empty" style="width:{0}px;height:{0}px">'
            "{1}</span>",
            size,
            _("no photo"),
        )
    return format_html(
        '<img class="prodcat-thumb" src="{}" alt="{}" width="{}" height="{}" loading="lazy" '
        'decoding="async">',
        url,
        alt,
        size,
        size,
    )


def heat_map(image_url: str | None, regions: Sequence[Sequence[float]], alt: str) -> SafeString:
    """The 7x7 attention grid laid over the photo. Opacity is min-max scaled (strongest region
    65% opaque, weakest clear), so near-uniform attention leaves the photo visible; each
    cell's title gives its share as text."""
    flat = [float(w) for row in regions for w in row]
    peak, low = max(flat, default=0.0), min(flat, default=0.0)
    if not image_url or peak <= 0:
        return format_html('<p class="prodcat-decision">{}</p>', _("No photo regions to show."))
    spread = peak - low
    cells = format_html_join(
        "",
        '<span class="prodcat-heatmap__cell" style="opacity: {}" title="{}"></span>',
        (
            (
                f"{0.65 * (w - low) / spread:.3f}" if spread > 1e-9 else "0",
                _("row %(row)d, column %(col)d: %(pct)s%%")
                % {"row": i // 7 + 1, "col": i % 7 + 1, "pct": f"{w * 100:.1f}"},
            )
            for i, w in enumerate(flat)
        ),
    )
    return format_html(
        '<div class="prodcat-heatmap"><img src="{}" alt="{}">'
        '<div class="prodcat-heatmap__grid" aria-hidden="true">{}</div></div>',
        image_url,
        alt,
        cells,
    )


def token_weights(tokens: Sequence[tuple[str, float]]) -> SafeString:
    """Title words, each shaded by its share of the text attention, with the share as text."""
    if not tokens:
        return format_html('<p class="prodcat-decision">{}</p>', _("No title words."))
    peak = max((float(w) for _, w in tokens), default=0.0) or 1.0
    return format_html(
        '<div class="prodcat-tokens">{}</div>',
        format_html_join(
            "",
            '<span class="prodcat-token" style="--w: {}" title="{}%">{}</span>',
            (
                (f"{TOKEN_SHADE * float(w) / peak:.3f}", f"{float(w) * 100:.1f}", word)
                for word, w in tokens
            ),
        ),
    )
