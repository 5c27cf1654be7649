"""Allows ``python -m sla_daemon``."""

from sla_daemon.cli import main

raise SystemExit(main())
