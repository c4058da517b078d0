from django.core.management.base import BaseCommand

from hub.engine.run import engine_run


class Command(BaseCommand):
    help = "Run the engine: the fast webhook front door (/hooks/<system>/) and deliveries, in one process."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8001)

    def handle(self, *args, host, port, **options):
        engine_run(host, port)
