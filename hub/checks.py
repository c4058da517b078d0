"""`manage.py check --deploy`: the keys a production hub must not run with (README "Keys").

The settings already refuse to start with DEBUG off on these; this says the same to whoever checks
a configuration with DEBUG on, where the hub falls back to development keys.
"""

from django.conf import settings
from django.core.checks import Error

from hub import localenv


def keys_check(app_configs=None, **kwargs) -> list[Error]:
    """The public default SECRET_KEY, and HUB_ENCRYPTION_KEYS missing (the development key in
    use) or not Fernet keys."""
    errors = []
    if problem := localenv.secret_key_problem(settings.SECRET_KEY):
        errors.append(Error(problem, id="hub.E001"))
    given = [] if settings.HUB_DEVELOPMENT_KEY_IN_USE else list(settings.HUB_ENCRYPTION_KEYS)
    for problem in localenv.encryption_key_problems(given):
        errors.append(Error(problem, id="hub.E002"))
    return errors
