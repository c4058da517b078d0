"""Group commit: webhooks arriving together share one transaction and one flush to disk.

Each request waits for the commit that holds its event and is answered 202 only after it. While
one group commits, the next gathers, so under load a group holds what arrived during one commit
and at low load a lone webhook commits at once, with no added wait.
"""

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from django.db import connection

from hub.pipeline.ingest import DATABASE_UNAVAILABLE, IncomingEvent, IngestResult, events_store

log = logging.getLogger("hub.engine")
GROUP_LIMIT = 500  # events per transaction: keeps one statement's size and a group's wait bounded


def store_group(items: list[IncomingEvent]) -> list[IngestResult | Exception]:
    """Store a group in one transaction. If the group fails for another reason than the database
    being away, each event is stored on its own, so one bad event fails only its own request."""
    try:
        return list(events_store(items))
    except DATABASE_UNAVAILABLE:
        connection.close_if_unusable_or_obsolete()
        raise
    except Exception:
        if len(items) == 1:
            raise
        log.exception("a group of %d events failed; storing them one by one", len(items))
    results: list[IngestResult | Exception] = []
    for item in items:
        try:
            results.append(events_store([item])[0])
        except Exception as exc:  # answered to its own request
            results.append(exc)
    return results


class GroupCommit:
    """Hands events to one database thread in groups; `await store(item)` returns once it is
    committed (or raises what storing it raised)."""

    def __init__(self) -> None:
        # One thread, one connection: groups commit one after another, never competing for locks.
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hub-ingest")
        self.gathering: list[tuple[IncomingEvent, asyncio.Future]] = []
        self.committing = False

    async def store(self, item: IncomingEvent) -> IngestResult:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.gathering.append((item, future))
        if not self.committing:
            self.committing = True
            loop.create_task(self._commit_while_gathering())
        return await future

    async def run_in_database_thread(self, function, *args):
        """Other database work of the front door (an uncached system), on the same connection."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, function, *args)

    async def _commit_while_gathering(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            await asyncio.sleep(0)  # requests read in the same turn of the loop join this group
            while self.gathering:
                group = self.gathering[:GROUP_LIMIT]
                del self.gathering[:GROUP_LIMIT]
                try:
                    results = await loop.run_in_executor(
                        self.executor, store_group, [item for item, _ in group]
                    )
                except Exception as exc:
                    results = [exc] * len(group)
                for (_, future), result in zip(group, results, strict=True):
                    if future.done():  # its sender hung up; the event is stored all the same
                        continue
                    if isinstance(result, Exception):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self.committing = False

    def close(self) -> None:
        self.executor.shutdown(wait=True)
