import io
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")


class ChunkedBodies:
    """Gives Django the body of a chunked request.

    gunicorn decodes a chunked body and says so with `wsgi.input_terminated`, but Django reads only
    CONTENT_LENGTH bytes, so a vendor that streams its webhook would arrive empty. The body is read
    here, up to one byte past the largest the hub takes, so the views still answer 413 when it is
    too large.
    """

    def __init__(self, app, limit: int) -> None:
        self.app, self.limit = app, limit

    def __call__(self, environ, start_response):
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if chunked and not environ.get("CONTENT_LENGTH") and environ.get("wsgi.input_terminated"):
            body = environ["wsgi.input"].read(self.limit + 1)
            environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))
        return self.app(environ, start_response)


def _application():
    from django.conf import settings

    django_app = get_wsgi_application()
    return ChunkedBodies(django_app, max(settings.HUB_MAX_WEBHOOK_BYTES, settings.HUB_MAX_BATCH_BYTES))


application = _application()
