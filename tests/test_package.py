import subprocess
import sys

import pytest

import uboost


def test_import_is_cheap_and_lazy():
    code = "import sys, uboost; print('torch' in sys.modules, 'nni' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_public_names_resolve():
    assert uboost.create_cost_model("systolic", rows=8, cols=8).spec.pes == 64
    assert "darts-cifar" in uboost.list_spaces()
    assert issubclass(uboost.UBoostError, Exception)
    with pytest.raises(AttributeError):
        uboost.not_a_name
