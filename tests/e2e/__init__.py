"""Tests of sla-daemon."""
