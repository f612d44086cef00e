"""conntui: a live terminal dashboard of the machine's network connections, keyed by four-tuple."""

__version__ = "0.1.0"
