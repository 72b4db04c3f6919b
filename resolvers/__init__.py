"""The Chinook app's data access: its resources, topics, access rule and mutation workflows.

Installed as ``bff_chinook.resolvers``. Nothing here knows about GraphQL types: ``schema/`` turns
records into types, so the dependency runs one way (schema -> resolvers).
"""
