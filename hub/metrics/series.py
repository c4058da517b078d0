"""Reading metric rows back for a time range at one resolution, whatever has been rolled up yet.

Rows of a span hold what its finer span had before the roll-up watermark; after it, the finer
rows hold the rest. So a series at span S reads S's rows, then each finer span's rows from the
watermark of the span above it, and adds the finer ones into S's buckets. Each layer is one
aggregate query."""

from collections import defaultdict
from datetime import datetime

from django.db.models import Max, Sum

from hub.metrics.buckets import FINER, Span, bucket_start
from hub.metrics.rollup import watermark

Totals = dict[tuple, dict[str, float]]


def collect(model, span: str, since: datetime, *, group: tuple[str, ...] = (), **filters) -> Totals:
    """{(bucket start, *group values): {column: value}} for `model`'s rows matching `filters`,
    in buckets of `span` from the one holding `since` on."""
    found: Totals = defaultdict(lambda: {name: 0 for name in model.ADDED} | dict.fromkeys(model.HIGHEST))
    layer, lower = span, bucket_start(since, span)
    while True:
        rows = (
            model.objects.filter(span=layer, start__gte=lower, **filters)
            .values("start", *group)
            .annotate(
                **{f"{n}__s": Sum(n) for n in model.ADDED}, **{f"{n}__m": Max(n) for n in model.HIGHEST}
            )
            .order_by()
        )
        for row in rows:
            into = found[(bucket_start(row["start"], span), *(row[g] for g in group))]
            for name in model.ADDED:
                into[name] += row[f"{name}__s"] or 0
            for name in model.HIGHEST:
                value = row[f"{name}__m"]
                if value is not None and (into[name] is None or value > into[name]):
                    into[name] = value
        if layer not in FINER:
            return found
        lower = max(lower, watermark(layer))
        layer = FINER[layer]


def total(model, since: datetime, span: str = Span.MINUTE, **filters) -> dict[str, float]:
    """One subject's columns added up since `since` (in whole buckets of `span`)."""
    summed = {name: 0 for name in model.ADDED} | dict.fromkeys(model.HIGHEST)
    for values in collect(model, span, since, **filters).values():
        for name in model.ADDED:
            summed[name] += values[name]
        for name in model.HIGHEST:
            if values[name] is not None and (summed[name] is None or values[name] > summed[name]):
                summed[name] = values[name]
    return summed
