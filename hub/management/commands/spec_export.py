"""Write the data-flow specification (the whole configuration, without secrets) as YAML."""

from pathlib import Path

from django.core.management.base import BaseCommand

from hub.services.specification import spec_export


class Command(BaseCommand):
    help = "Export the data-flow specification: systems (no secrets), data models, flows and mappings."

    def add_arguments(self, parser) -> None:
        parser.add_argument("-o", "--output", help="Write to this file instead of standard output.")

    def handle(self, *args, output: str | None = None, **options) -> None:
        text = spec_export()
        if output:
            Path(output).write_text(text, encoding="utf-8")
            self.stderr.write(self.style.SUCCESS(f"Specification written to {output}"))
        else:
            self.stdout.write(text, ending="")
