"""The config: validation schema, resolvers, command-line overrides, resumable keys, flattening for HParams."""
