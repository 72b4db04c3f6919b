"""Resolver functions and batch loads per domain: context and keys in, downstream records out.

Nothing here knows about GraphQL types: ``schema/`` turns records into types. That keeps the
dependency one way (schema -> resolvers) and lets the functions be tested without a schema.
"""
