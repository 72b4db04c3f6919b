"""A second example app: a GraphQL BFF over JSONPlaceholder-shaped REST services (data in ``data/``)."""
