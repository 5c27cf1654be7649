"""The pure core: it decides, it does no I/O, and it is told the time."""
