"""Re-encrypt every stored secret under the first of HUB_ENCRYPTION_KEYS: `manage.py rotate_keys`.

A new key: HUB_ENCRYPTION_KEYS=<new>,<old>, restart, run this, then drop <old>. A database from
before HUB_ENCRYPTION_KEYS existed (its secrets under a key derived from SECRET_KEY): run it with
`--old-secret-key -` and type that SECRET_KEY on standard input (README "Keys"). Safe to run again:
values already under the first key are left alone. Exits non-zero when some value no key opens,
after re-encrypting all the others.
"""

import sys

from django.core.management.base import BaseCommand, CommandError

from hub.services.keys import secrets_reencrypt


class Command(BaseCommand):
    help = "Re-encrypt every stored secret under the first of HUB_ENCRYPTION_KEYS."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--old-secret-key",
            action="append",
            default=[],
            metavar="SECRET_KEY",
            help="Also open secrets saved by earlier versions, whose key came from this SECRET_KEY. "
            "Give '-' to read it from standard input (keeps it out of the shell history). Repeatable.",
        )
        parser.add_argument("--batch-size", type=int, default=200, help="Rows per transaction (200).")
        parser.add_argument("--dry-run", action="store_true", help="Count what would change; write nothing.")

    def handle(self, *args, old_secret_key: list[str], batch_size: int, dry_run: bool, **options) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        old_keys = [sys.stdin.readline().strip() if key == "-" else key for key in old_secret_key]
        if any(not key for key in old_keys):
            raise CommandError("--old-secret-key is empty")
        counts = secrets_reencrypt(
            old_secret_keys=old_keys,
            batch_size=batch_size,
            dry_run=dry_run,
            progress=lambda line: self.stdout.write(line) if options["verbosity"] > 1 else None,
        )
        for count in counts:
            self.stdout.write(count.summary())
            for row in count.unreadable:
                self.stdout.write(f"  cannot decrypt: {row}")
        done = sum(c.reencrypted for c in counts)
        self.stdout.write(
            f"{'Would re-encrypt' if dry_run else 'Re-encrypted'} {done} values under the first key of "
            f"HUB_ENCRYPTION_KEYS; {sum(c.current for c in counts)} were already under it."
        )
        unreadable = sum(len(c.unreadable) for c in counts)
        if unreadable:
            raise CommandError(
                f"{unreadable} values could not be decrypted with any key given (listed above); "
                "everything else was handled. Add the key they were saved with to HUB_ENCRYPTION_KEYS "
                "(or --old-secret-key) and run again, or enter those credentials again in the hub."
            )
