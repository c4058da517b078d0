"""The pieces of `manage.py bench`: a lean target to deliver to (`target`), the senders
(`sender`), the processes and what they cost in CPU and memory (`processes`), and the figures
printed and appended to bench/RESULTS.md (`report`)."""
