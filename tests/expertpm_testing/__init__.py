"""The pytest plugin of expertpm's test suite (loaded with `-p expertpm_testing`).

Fixtures live in the submodules below, one per area; this module only gathers them.
"""

from .core import *  # noqa: F401,F403
