"""The one pipeline every GraphQL operation passes, whatever its transport."""
