class ConfigError(Exception):
    """A configuration change that cannot be made, with the reason in plain words."""
