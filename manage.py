#!/usr/bin/env python
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")
    if sys.argv[1:2] in (["up"], ["bench"], ["bench_backlog"]):
        # The one-command local run and the benchmarks make their own keys once (var/hub.env); see README "Security".
        from hub import localenv

        if localenv.ensure(localenv.env_file_path()):
            print(f"Generated SECRET_KEY and HUB_ENCRYPTION_KEYS in {localenv.env_file_path()}")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
