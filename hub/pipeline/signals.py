"""What the pipeline announces, for apps that build on it (the dead-letter inbox).

Receivers run inside the transaction that records the outcome, so what they write commits or
rolls back with it.
"""

from django.dispatch import Signal

# Sent with delivery, error_class, reason and last_response when a delivery is given up on.
delivery_dead_lettered = Signal()
