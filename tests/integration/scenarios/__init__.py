"""
The differential scenarios, one module per area; importing this package registers
them all in L{tests.support.differential.SCENARIOS}.
"""

from tests.integration.scenarios import (  # noqa: F401
    acl,
    containers_ttl,
    multi,
    nodes,
    paths,
    precedence,
    randomized,
    recipes,
    restart,
    sessions,
    special,
    watches,
    wire,
)
from tests.support.differential import SCENARIOS

__all__ = ["SCENARIOS"]
