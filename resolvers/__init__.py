"""The behaviour: plain async functions over an AsyncSession and a viewer. No GraphQL types."""
