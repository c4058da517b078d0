"""The engine: one asyncio process that takes webhooks in (hub/engine/server.py, committed in
groups: hub/engine/groupcommit.py) and carries deliveries out (a drain that never ends, woken in
process the moment ingest commits: hub/engine/run.py). Everything it does goes through the same
pipeline functions as the web server and the task workers, so either may stand in for it."""
