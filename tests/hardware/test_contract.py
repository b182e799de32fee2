"""Every registered cost model passes the plug-in contract (new models are tested for free)."""

import pytest

from uboost.hardware import list_models
from uboost.testing import CostModelContract


@pytest.fixture(params=sorted(list_models()))
def model_name(request):
    return request.param


class TestEveryRegisteredModel(CostModelContract):
    @pytest.fixture(autouse=True)
    def _name(self, model_name):
        self.model_name = model_name
