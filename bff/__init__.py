"""bff: a GraphQL backend-for-frontend over several downstream REST services."""
