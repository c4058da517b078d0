"""Prove the audit trail whole: `manage.py audit_verify [--head SEQ:HASH]`.

Exits non-zero naming the first entry that was edited or removed. Keep the printed head
somewhere else (a ticket, a log shipped off the machine): passing it back with --head also
catches entries cut off the end, which a hash chain alone cannot see.
"""

from django.core.management.base import BaseCommand, CommandError

from hub.services.audit import audit_head_check, audit_verify


class Command(BaseCommand):
    help = "Check the audit log's hash chain; exit non-zero naming the first edited or missing entry."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--head", default="", help="SEQ:HASH printed by an earlier run, to check it is still there."
        )

    def handle(self, *args, head: str = "", **options) -> None:
        report = audit_verify()
        if not report.ok:
            raise CommandError(f"audit log broken: {report.problem}")
        if head:
            seq, _, expected = head.partition(":")
            if not seq.isdigit() or len(expected) != 64:
                raise CommandError("--head takes SEQ:HASH as printed by audit_verify")
            problem = audit_head_check(seq=int(seq), hash=expected)
            if problem:
                raise CommandError(f"audit log broken: {problem}")
        self.stdout.write(
            f"audit log whole: {report.checked} entries, head #{report.head_seq} {report.head_hash}"
        )
