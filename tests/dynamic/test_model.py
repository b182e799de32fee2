"""The dynamic network really exits: call counts at batch 1, the batch path against per-sample decisions."""

import numpy as np
import pytest
import torch
from torch import nn

from uboost.dynamic.heads import build_heads
from uboost.dynamic.model import DynamicNetwork
from uboost.dynamic.policy import decide, softmax_confidence
from uboost.dynamic.segments import SegmentedBackbone, candidate_positions, default_positions, resolve_positions
from uboost.exceptions import ConfigError


class Toy(nn.Module):
    """Two stages with a skip tensor kept across the first exit and x.size(0) taken early."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.pool2 = nn.MaxPool2d(2)
        self.conv3 = nn.Conv2d(4, 4, 3, padding=1)
        self.fc1 = nn.Linear(16, 16)
        self.fc2 = nn.Linear(16, 3)

    def forward(self, x):
        n = x.size(0)
        a = self.pool1(self.conv1(x).relu())
        b = self.pool2(self.conv2(a).relu() + a)
        c = self.conv3(b).relu() + b
        return self.fc2(self.fc1(c.view(n, -1)).relu())


def dynamic(thresholds=(None, None)):
    torch.manual_seed(0)
    net = Toy().eval()
    positions = resolve_positions(None, candidate_positions(net, (1, 8, 8)))
    heads = build_heads([p.feature_shape for p in positions], 3, width=4).eval()
    return DynamicNetwork(SegmentedBackbone(net, [p.name for p in positions]), heads, list(thresholds)), net


def test_default_positions_are_the_stage_ends():
    net = Toy()
    candidates = candidate_positions(net, (1, 8, 8))
    assert default_positions(candidates) == ["pool1", "pool2"]
    assert [p.feature_shape for p in candidates if p.name in ("pool1", "pool2")] == [(4, 4, 4), (4, 2, 2)]


def test_bad_positions_are_one_line():
    candidates = candidate_positions(Toy(), (1, 8, 8))
    with pytest.raises(ConfigError, match="'nope' does not exist.*0:conv1"):
        resolve_positions(["nope"], candidates)
    with pytest.raises(ConfigError, match="index 99 does not exist"):
        resolve_positions(["99"], candidates)
    assert [p.name for p in resolve_positions(["pool2", "0"], candidates)] == ["conv1", "pool2"]


def test_confident_input_skips_the_later_blocks():
    network, net = dynamic((0.0, None))  # every input is confident enough at the first exit
    calls = {}
    for name in ("conv1", "conv2", "conv3", "fc2"):
        getattr(net, name).register_forward_hook(lambda *_, name=name: calls.__setitem__(name, calls.get(name, 0) + 1))
    with torch.no_grad():
        logits, taken = network.forward_with_exits(torch.randn(1, 1, 8, 8))
    assert taken.tolist() == [0]
    assert calls == {"conv1": 1}  # conv2, conv3 and the classifier never ran
    network.set_thresholds([1.0, None])  # never confident: the whole path runs
    calls.clear()
    with torch.no_grad():
        network.forward_with_exits(torch.randn(1, 1, 8, 8))
    assert calls == {"conv1": 1, "conv2": 1, "conv3": 1, "fc2": 1}


def test_batch_path_equals_per_sample_decisions():
    network, _ = dynamic()
    x = torch.randn(32, 1, 8, 8)
    with torch.no_grad():
        outs = network.all_exits(x)
        conf = np.stack([softmax_confidence(o.numpy())[0] for o in outs[:-1]], 1)
        thresholds = [float(np.median(conf[:, 0])), float(np.median(conf[:, 1]))]  # some leave at each exit
        network.set_thresholds(thresholds)
        logits, taken = network.forward_with_exits(x)
        single = [network.forward_with_exits(x[i:i + 1]) for i in range(len(x))]
    expected = decide(conf, thresholds)
    assert set(expected.tolist()) == {0, 1, 2}
    assert taken.tolist() == expected.tolist() == [int(t) for _, t in single]
    for i, (l, _) in enumerate(single):
        torch.testing.assert_close(logits[i], l[0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(logits[i], outs[expected[i]][i], atol=1e-5, rtol=1e-5)


def test_thresholds_outside_unit_interval_are_refused():
    network, _ = dynamic()
    for bad in (1.5, -0.1, float("nan")):
        with pytest.raises(ConfigError, match=r"\[0, 1\]"):
            network.set_thresholds([bad, None])


def test_onnx_graph_reproduces_the_decisions(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from uboost.dynamic.model import export_onnx
    from uboost.dynamic.policy import decide_outputs

    network, _ = dynamic((0.5, 0.6))
    export_onnx(network, tmp_path / "d.onnx", (1, 8, 8))
    x = torch.randn(8, 1, 8, 8)
    session = ort.InferenceSession(str(tmp_path / "d.onnx"))
    outputs = session.run(None, {"input": x.numpy()})
    assert [o.name for o in session.get_outputs()] == ["exit0", "exit1", "final"]
    preds, taken = decide_outputs(outputs, network.thresholds)
    with torch.no_grad():
        logits, expected = network.forward_with_exits(x)
    assert taken.tolist() == expected.tolist()
    assert preds.tolist() == logits.argmax(1).tolist()


def test_distillation_leaves_the_backbone_untouched_joint_training_does_not():
    from torch.utils.data import DataLoader, TensorDataset

    from uboost.dynamic.training import train_heads

    data = DataLoader(TensorDataset(torch.randn(32, 1, 8, 8), torch.randint(0, 3, (32,))), batch_size=16)
    for mode, changes in (("distill", False), ("joint", True)):
        network, net = dynamic()
        before = {k: v.clone() for k, v in net.state_dict().items()}
        heads_before = [p.clone() for p in network.heads.parameters()]
        losses = train_heads(network, data, mode=mode, epochs=2, learning_rate=0.05)
        assert len(losses) == 2 and all(l > 0 for l in losses)
        moved = any(not torch.equal(before[k], v) for k, v in net.state_dict().items())
        assert moved == changes, mode
        assert any(not torch.equal(a, b) for a, b in zip(heads_before, network.heads.parameters()))


def test_a_frozen_darts_network_exits_after_its_cells():
    """NNI's DARTS cells (tuple outputs, Python loops) become single calls; the batch path holds."""
    import random

    from uboost.search_spaces import SPACES

    random.seed(0)
    torch.manual_seed(0)
    space = SPACES.get("darts-cifar")(width=4, cells=3, num_classes=10, input_shape=(3, 8, 8))
    state = np.random.RandomState(0)  # NNI's random() draws from an unseeded RandomState otherwise
    net = space.freeze({k: v.random(random_state=state) for k, v in space.simplify().items()}).eval()
    positions = resolve_positions(None, candidate_positions(net, (3, 8, 8)))
    assert [p.name for p in positions] == ["stages.0.0", "stages.1.0"]
    heads = build_heads([p.feature_shape for p in positions], 10, width=0).eval()
    network = DynamicNetwork(SegmentedBackbone(net, [p.name for p in positions]), heads)
    x = torch.randn(12, 3, 8, 8)
    with torch.no_grad():
        outs = network.all_exits(x)
        torch.testing.assert_close(outs[-1], net(x))  # the traced backbone is the network
        conf = np.stack([softmax_confidence(o.numpy())[0] for o in outs[:-1]], 1)
        thresholds = [float(np.quantile(conf[:, 0], 0.6)), float(np.quantile(conf[:, 1], 0.5))]
        network.set_thresholds(thresholds)
        logits, taken = network.forward_with_exits(x)
    expected = decide(conf, thresholds)
    assert taken.tolist() == expected.tolist() and len(set(expected.tolist())) > 1
    for i in range(len(x)):
        torch.testing.assert_close(logits[i], outs[expected[i]][i], atol=1e-5, rtol=1e-5)


class Chain(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.pool1 = nn.Conv2d(1, 4, 3, padding=1), nn.MaxPool2d(2)
        self.conv2, self.pool2 = nn.Conv2d(4, 4, 3, padding=1), nn.MaxPool2d(2)
        self.conv3, self.fc = nn.Conv2d(4, 4, 3, padding=1), nn.Linear(16, 3)

    def forward(self, x):
        a = self.pool1(self.conv1(x).relu())
        b = self.pool2(self.conv2(a).relu() + a)  # a skip tensor lives across the first exit
        return self.fc((self.conv3(b).relu() + b).flatten(1))


def test_onnx_segments_skip_the_rest_in_onnxruntime(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from uboost.dynamic.onnx_segments import export_onnx_segments, run_segments

    torch.manual_seed(0)
    net = Chain().eval()
    heads = build_heads([(4, 4, 4), (4, 2, 2)], 3, width=4).eval()
    network = DynamicNetwork(SegmentedBackbone(net, ["pool1", "pool2"]), heads)
    x = torch.randn(24, 1, 8, 8)
    with torch.no_grad():
        *outs, _ = network.all_exits(x)
    conf = np.stack([softmax_confidence(o.numpy())[0] for o in outs], 1)
    # fixed thresholds (0.4, 0.5) sent all 24 inputs out at the first head: segments 1 and 2 never ran
    thresholds = [float(np.quantile(conf[:, 0], 0.7)), float(np.quantile(conf[:, 1], 0.5))]
    network.set_thresholds(thresholds)
    sessions = [ort.InferenceSession(str(p)) for p in export_onnx_segments(network, tmp_path, (1, 8, 8))]
    assert len(sessions) == 3
    preds, taken, ran = run_segments(sessions, x.numpy(), network.thresholds)
    with torch.no_grad():
        logits, expected = network.forward_with_exits(x)
    assert len(set(expected.tolist())) == 3 and ran == 3  # some leave at each head, some reach the end
    assert expected.tolist() == decide(conf, thresholds).tolist()
    assert taken.tolist() == expected.tolist() and preds.tolist() == logits.argmax(1).tolist()
    network.set_thresholds([0.0, None])  # everyone leaves at the first exit: one session runs
    sessions = [ort.InferenceSession(str(p)) for p in export_onnx_segments(network, tmp_path, (1, 8, 8))]
    assert len(sessions) == 2 and run_segments(sessions, x.numpy(), [0.0])[2] == 1
    toy, _ = dynamic((0.5, 0.5))  # Toy takes n = x.size(0) before its exits: a number cannot cross a segment
    with pytest.raises(ConfigError, match="only tensors"):
        export_onnx_segments(toy, tmp_path, (1, 8, 8))


class Unpacked(nn.Module):
    """Takes ``b, c, h, w = x.shape`` before its exit and uses h, w and b after it."""

    def __init__(self):
        super().__init__()
        self.conv1, self.pool1 = nn.Conv2d(1, 4, 3, padding=1), nn.MaxPool2d(2)
        self.conv2, self.fc = nn.Conv2d(4, 8, 3, padding=1), nn.Linear(8, 10)

    def forward(self, x):
        b, c, h, w = x.shape
        y = self.conv2(self.pool1(self.conv1(x)))
        return self.fc((y.sum((2, 3)) / (h * w / 4)).view(b, -1))  # the mean over the pooled map


@pytest.mark.parametrize("batch", [8, 16])
def test_sizes_equal_to_the_batch_are_not_taken_for_it(batch):
    """After an exit every int equal to the batch size became the new row count: at batch 8 == H == W the
    samples that went on got logits 1.89 off the static network's."""
    torch.manual_seed(0)
    net = Unpacked().eval()
    heads = build_heads([(4, 4, 4)], 10, width=0, pool=2).eval()
    network = DynamicNetwork(SegmentedBackbone(net, ["pool1"]), heads)
    x = torch.randn(batch, 1, 8, 8)
    with torch.no_grad():
        conf = heads[0](net.pool1(net.conv1(x))).softmax(-1).amax(-1)
        network.set_thresholds([float(conf.sort().values[batch // 2])])  # about half leave, the rest go on
        logits, taken = network.forward_with_exits(x)
        static = net(x)
    stay = taken == 1
    assert 0 < int(stay.sum()) < batch
    torch.testing.assert_close(logits[stay], static[stay], atol=1e-5, rtol=1e-5)
