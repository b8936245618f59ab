"""sandbox.dropout_replay: equal dropout masks on both sides of the trust boundary."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812 - PyTorch's own convention

from sandbox import dropout_replay
from sandbox.backend import AGENT_FILES, agent_dir

ROOT = Path(__file__).resolve().parents[2]


def test_float32_and_float64_get_the_same_mask_scaled_by_one_over_keep() -> None:
    x = torch.ones(40, 50)
    with dropout_replay.replaying(7) as single:
        a = nn.Dropout(0.25).train()(x.float())
    with dropout_replay.replaying(7):
        b = F.dropout(x.double(), 0.25)
    assert torch.equal(a == 0, b == 0)
    assert torch.allclose(a.double(), b)
    assert set(np.unique(a.numpy()).tolist()) == {0.0, np.float32(1 / 0.75)}
    assert abs(float((a == 0).float().mean()) - 0.25) < 0.05
    assert single.calls == [{"shape": [40, 50], "p": 0.25, "function": "dropout"}]


def test_each_call_draws_its_own_mask_and_seeds_differ() -> None:
    x = torch.ones(30, 30)
    with dropout_replay.replaying(1):
        first, second = F.dropout(x, 0.5), F.dropout(x, 0.5)
    with dropout_replay.replaying(2):
        other = F.dropout(x, 0.5)
    assert not torch.equal(first, second) and not torch.equal(first, other)


def test_channel_dropout_drops_whole_feature_maps() -> None:
    with dropout_replay.replaying(3) as replay:
        out = nn.Dropout2d(0.5).train()(torch.ones(4, 6, 5, 5))
    per_map = out.reshape(4, 6, -1)
    assert torch.all(per_map.min(dim=-1).values == per_map.max(dim=-1).values)
    assert replay.calls[0]["function"] == "dropout2d"


def test_eval_mode_and_p_zero_are_untouched_and_not_logged() -> None:
    x = torch.randn(5, 5)
    with dropout_replay.replaying(4) as replay:
        assert torch.equal(nn.Dropout(0.5).eval()(x), x)
        assert torch.equal(F.dropout(x, 0.0), x)
    assert replay.calls == []


def test_outside_a_replay_and_in_other_threads_dropout_is_pytorchs_own() -> None:
    x = torch.ones(200)
    dropout_replay.install()
    seen: list[torch.Tensor] = []
    with dropout_replay.replaying(5) as replay:
        thread = threading.Thread(target=lambda: seen.append(F.dropout(x, 0.5)))
        thread.start()
        thread.join()
    assert replay.calls == []  # the other thread's call was not replayed
    torch.manual_seed(0)
    a = F.dropout(x, 0.5)
    torch.manual_seed(0)
    assert torch.equal(a, F.dropout(x, 0.5))  # PyTorch's generator decides, as without us


def test_describe_lists_calls() -> None:
    calls = [{"shape": [2, 3, 3], "p": 0.1, "function": "dropout"}] * 2
    assert dropout_replay.describe([]) == "no dropout"
    assert dropout_replay.describe(calls) == (
        "2 times: dropout on (2, 3, 3) with p=0.1, dropout on (2, 3, 3) with p=0.1")


def test_the_agent_copy_has_every_agent_file_and_the_image_none() -> None:
    # The production sandbox image carries no agent: every container gets agent_dir()'s
    # copy mounted read-only at /agent (sandbox/images/Dockerfile).
    copied = {path.name for path in (agent_dir() / "sandbox").iterdir()}
    assert set(AGENT_FILES) <= copied, set(AGENT_FILES) - copied
    text = (ROOT / "sandbox/images/Dockerfile").read_text()
    assert not re.findall(r"COPY\s+sandbox/", text)
