"""sla-daemon: keeps a service team's promises to its clients by watching its mailboxes."""

__version__ = "0.1.0"
