"""
The differential scenarios, one module per area; importing this package registers
them all in L{tests.support.differential.SCENARIOS}.
"""

from tests.integration.scenarios import nodes  # noqa: F401
from tests.support.differential import SCENARIOS

__all__ = ["SCENARIOS"]
