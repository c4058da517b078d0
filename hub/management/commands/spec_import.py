"""Bring the hub in line with a data-flow specification document, through the same services as the
pages (all or nothing; --dry-run makes the same calls and rolls them back; whole systems, models,
flows and channels the document does not list are removed only with --remove-unlisted)."""

from pathlib import Path
from types import SimpleNamespace

from django.core.management.base import BaseCommand, CommandError

from hub.services.specification import spec_import


class Command(BaseCommand):
    help = "Import a data-flow specification: add, change (and on request remove) systems, models, flows and channels."

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", help='The YAML document ("-" reads standard input).')
        parser.add_argument("--dry-run", action="store_true", help="Only show what would change.")
        parser.add_argument(
            "--remove-unlisted",
            action="store_true",
            help="Also remove the systems, models, flows and channels a section of the document does not list.",
        )

    def handle(
        self, *args, file: str, dry_run: bool = False, remove_unlisted: bool = False, **options
    ) -> None:
        if file == "-":
            import sys

            text = sys.stdin.read()
        else:
            try:
                text = Path(file).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise CommandError(f"cannot read {file}: {exc}") from None
        # Audit entries name the command as the actor.
        actor = SimpleNamespace(pk=None, username="manage.py spec_import")
        report = spec_import(text=text, actor=actor, dry_run=dry_run, remove_unlisted=remove_unlisted)
        for error in report.errors:
            self.stderr.write(self.style.ERROR(error))
        for change in report.changes:
            self.stdout.write(("would " if dry_run else "") + str(change))
        for note in report.notes:
            self.stdout.write(self.style.WARNING(note))
        if report.errors:
            raise CommandError(report.summary())
        self.stdout.write(self.style.SUCCESS(report.summary()))
