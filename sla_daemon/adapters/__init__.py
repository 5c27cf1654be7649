"""Adapters: the only code that talks to servers, files and the database."""
