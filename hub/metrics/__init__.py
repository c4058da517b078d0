"""Metrics per flow and per system: counters at minute resolution rolled up to hours and days,
a latency histogram per bucket, gauges read from the Delivery table, and the machine endpoints'
readiness checks. Its own Django app (label "metrics") so its migrations never meet hub's."""
