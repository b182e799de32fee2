"""Named NNI model spaces: ``create("darts-cifar", ...)``, ``list_spaces()``."""

from uboost.search_spaces.registry import SPACES, create, list_spaces, register
from uboost.search_spaces import darts as _darts  # noqa: F401  (registers)
from uboost.search_spaces import lenet as _lenet  # noqa: F401
from uboost.search_spaces.darts import OP_SETS, DartsCifar, parse_channels
from uboost.search_spaces.lenet import LeNetSpace

__all__ = ["OP_SETS", "SPACES", "DartsCifar", "LeNetSpace", "create", "list_spaces", "parse_channels", "register"]
