"""What the export commands share: a time range, a format, and a stream to a file or stdout."""

from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from hub.selectors.exports import FORMATS, export_chunks


def moment(value: str) -> datetime:
    """2026-11-01 or 2026-11-01T08:00 (the hub's time zone unless an offset is given)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a date or date and time (e.g. 2026-11-01T08:00)") from None
    return timezone.make_aware(parsed) if timezone.is_naive(parsed) else parsed


class ExportCommand(BaseCommand):
    """Subclasses set `columns` and implement `rows(since, until)`."""

    columns: tuple[str, ...] = ()

    def add_arguments(self, parser) -> None:
        parser.add_argument("--since", type=moment, help="From this moment (inclusive).")
        parser.add_argument("--until", type=moment, help="Until this moment (exclusive).")
        parser.add_argument("--format", choices=sorted(FORMATS), default="csv")
        parser.add_argument("--output", default="-", help="A file to write; - (the default) for stdout.")

    def rows(self, *, since: datetime | None, until: datetime | None):
        raise NotImplementedError

    def handle(self, *args, since=None, until=None, format="csv", output="-", **options) -> None:
        if since and until and since >= until:
            raise CommandError("--until must be later than --since")
        chunks = export_chunks(self.rows(since=since, until=until), columns=self.columns, fmt=format)
        if output == "-":
            for chunk in chunks:
                self.stdout.write(chunk, ending="")
            return
        with open(output, "w", encoding="utf-8", newline="") as file:
            for chunk in chunks:
                file.write(chunk)
