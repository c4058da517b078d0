"""The hub's keys and the local environment file, read before Django's settings exist.

`var/hub.env` holds KEY=value lines that the settings load (real environment variables win).
`manage.py up`, the one-command local run, writes it once with freshly generated keys; a
production deployment sets the same variables in its own environment instead.

With DEBUG on and no HUB_ENCRYPTION_KEYS, credentials are encrypted with a development key that
`development_key()` generates once into the same file as HUB_DEVELOPMENT_ENCRYPTION_KEY: never a
key derived from SECRET_KEY, so changing SECRET_KEY leaves them readable. `check --deploy` reports
it, and `ensure()` makes it the first HUB_ENCRYPTION_KEYS so `manage.py up` keeps reading them.
"""

import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet

DEFAULT_SECRET_KEY = "dev-only-insecure-key-change-me-in-production-0123456789"

GENERATE_SECRET_KEY = "python -c 'import secrets; print(secrets.token_urlsafe(50))'"
GENERATE_ENCRYPTION_KEY = (
    "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
)


def env_file_path() -> Path:
    """var/hub.env, or HUB_ENV_FILE; var/ moves with HUB_VAR_DIR."""
    var_dir = Path(os.environ.get("HUB_VAR_DIR", Path(__file__).resolve().parent.parent / "var"))
    return Path(os.environ.get("HUB_ENV_FILE", var_dir / "hub.env"))


HEADER = (
    '# Written by the hub for this machine (README "Keys"). Keep it secret and back it up apart\n'
    "# from the database: stored credentials cannot be read without HUB_ENCRYPTION_KEYS.\n"
)
DEVELOPMENT_KEY = "HUB_DEVELOPMENT_ENCRYPTION_KEY"


def read(path: Path) -> dict[str, str]:
    """The file's KEY=value lines ({} when there is no file)."""
    if not path.exists():
        return {}
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def load(path: Path) -> None:
    """Put the file's KEY=value lines into os.environ, never overriding what is already set."""
    for name, value in read(path).items():
        os.environ.setdefault(name, value)


def _add(path: Path, values: dict[str, str]) -> bool:
    """Append the lines the file lacks (creating it, readable by its owner only)."""
    present = read(path)
    missing = {name: value for name, value in values.items() if name not in present}
    if not missing:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    text = path.read_text() if path.exists() else HEADER
    if text and not text.endswith("\n"):
        text += "\n"
    path.write_text(text + "".join(f"{name}={value}\n" for name, value in missing.items()))
    path.chmod(0o600)
    return True


def ensure(path: Path) -> bool:
    """Give the file a SECRET_KEY and HUB_ENCRYPTION_KEYS unless it has them; returns whether it
    was written. A development key already there becomes the encryption key, so the credentials
    it encrypted stay readable."""
    present = read(path)
    key = present.get(DEVELOPMENT_KEY) or Fernet.generate_key().decode()
    return _add(path, {"SECRET_KEY": secrets.token_urlsafe(50), "HUB_ENCRYPTION_KEYS": key})


def development_key(path: Path) -> str:
    """The key that encrypts credentials with DEBUG on and no HUB_ENCRYPTION_KEYS: generated once
    into the file, then read from it (and from the environment, where load() put it)."""
    key = os.environ.get(DEVELOPMENT_KEY) or read(path).get(DEVELOPMENT_KEY)
    if not key:
        key = Fernet.generate_key().decode()
        _add(path, {DEVELOPMENT_KEY: key})
    return key


def key_problems(secret_key: str, encryption_keys: list[str]) -> list[str]:
    """What is wrong with the keys for a production start, each with how to fix it."""
    return [p for p in (secret_key_problem(secret_key), *encryption_key_problems(encryption_keys)) if p]


def secret_key_problem(secret_key: str) -> str:
    if not secret_key or secret_key == DEFAULT_SECRET_KEY:
        return (
            "SECRET_KEY is the public default. Set SECRET_KEY to a long random value, e.g. the "
            f"output of: {GENERATE_SECRET_KEY}"
        )
    return ""


def encryption_key_problems(encryption_keys: list[str]) -> list[str]:
    if not encryption_keys:
        return [
            "HUB_ENCRYPTION_KEYS is not set, so stored credentials would have no key of their own. "
            f"Set it to a Fernet key, e.g. the output of: {GENERATE_ENCRYPTION_KEY} (credentials "
            f"saved with DEBUG on used the development key {DEVELOPMENT_KEY} in var/hub.env: list it "
            "after the new key and run `manage.py rotate_keys`)"
        ]
    problems = []
    for position, key in enumerate(encryption_keys, start=1):
        try:
            Fernet(key.encode())
        except ValueError:
            problems.append(
                f"HUB_ENCRYPTION_KEYS entry {position} is not a Fernet key (32 url-safe base64 "
                f"bytes). Generate one with: {GENERATE_ENCRYPTION_KEY}"
            )
    return problems
