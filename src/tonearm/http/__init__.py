"""The HTTP layer: thin routers over the domain services, one app factory, error mapping."""
