"""Keeps secrets out of everything we store or show: attempts, dead letters, logs, API answers."""

from collections.abc import Iterable

REDACTED = "[redacted]"


class Redactor:
    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first so a secret containing another is replaced whole.
        self.secrets = sorted(
            {s for s in secrets if isinstance(s, str) and len(s) >= 4}, key=len, reverse=True
        )

    @classmethod
    def for_system(cls, system) -> "Redactor":
        values = [v for v in (system.credentials or {}).values() if isinstance(v, str)]
        values.append(system.secret)
        return cls(values)

    def text(self, value: str) -> str:
        for secret in self.secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value

    def headers(self, headers: dict[str, str], secret_names: set[str]) -> dict[str, str]:
        return {k: (REDACTED if k.lower() in secret_names else self.text(str(v))) for k, v in headers.items()}
