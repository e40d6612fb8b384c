"""Action functions: what each CLI command does, as plain functions over the domain modules.

`project`: init, add, remove, lock, tree, why, outdated (see docs/resolver.md).
"""
