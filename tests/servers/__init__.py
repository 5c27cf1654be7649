"""Real servers the integration and end-to-end tests run against.

Each class starts its server on a free loopback port, owns a private temporary
directory, and stops the server again; nothing here touches the system's own services.
"""
