"""Blueprint commands: validate, explain, schema, packages."""
