"""Action functions: what each CLI command does, as plain functions over the domain modules."""
