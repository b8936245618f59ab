"""Stand-ins for the packages the course's psthree/data.py, train_test.py and utils.py
import at the top (TensorFlow Datasets, torchvision, NLTK, tqdm, matplotlib), which the
sandbox does not have and could not download data for: nothing here reaches a network.

checks.py sends this file's text into the sandbox, where it runs once per session (before
the student's modules are imported) and puts the modules below into ``sys.modules``, plus
``dlgrade_course`` with the helpers the checks call. It runs next to student code, so
nothing it reports is trusted: the checks verify what it returns.

* ``nltk``: ``download`` does nothing and says so; ``corpus.stopwords.words("english")`` is
  scikit-learn's English stop-word list; ``stem.PorterStemmer().stem`` only lower-cases;
  ``tokenize.word_tokenize`` splits words and punctuation.
* ``tensorflow_datasets`` and ``torchvision.datasets``: loading raises (no data in here);
  ``torchvision.transforms`` has ``Compose`` and ``ToTensor``.
* ``tqdm.tqdm``: the iterable itself, with ``set_postfix``, ``update`` and ``close``.
* ``matplotlib`` / ``matplotlib.pyplot``: every function does nothing.
"""

from __future__ import annotations

import importlib.machinery
import re
import sys
import tempfile
import types
from typing import Any

FALLBACK_STOPWORDS = (
    "a an and are as at be but by for from has have he her his i in is it its me my no not "
    "of on or our she so that the their them they this to was we were what when which who "
    "will with you your").split()


def _module(name: str, **attributes: Any) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None)  # find_spec() asks for one
    module.__dict__.update(attributes)
    return module


def _stopwords(language: str = "english") -> list[str]:
    try:
        from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS
    except ImportError:
        return list(FALLBACK_STOPWORDS)
    return sorted(ENGLISH_STOP_WORDS)


class PorterStemmer:
    """Stems nothing (lower-cases, as nltk's does): the vocabulary then shows what the
    preprocessing kept, and a stem can never look like a stop word."""

    def stem(self, word: str, to_lowercase: bool = True) -> str:
        return word.lower() if to_lowercase else word


def word_tokenize(text: str, language: str = "english", preserve_line: bool = False
                  ) -> list[str]:
    return re.findall(r"\w+|[^\w\s]", text)


def _no_data(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("no dataset can be downloaded or loaded inside the grader's sandbox")


class _Progress:
    def __init__(self, iterable: Any = None, *args: Any, **kwargs: Any) -> None:
        self.iterable = iterable if iterable is not None else []

    def __iter__(self) -> Any:
        return iter(self.iterable)

    def __len__(self) -> int:
        return len(self.iterable)

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        pass

    def update(self, *args: Any, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        pass


def _nothing(*args: Any, **kwargs: Any) -> Any:
    return _Anything()


class _Anything:
    """What a stubbed plotting call returns: anything called or read on it does nothing."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return _nothing

    def __iter__(self) -> Any:
        return iter((_Anything(), _Anything()))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _Anything()


def _plotting(name: str) -> Any:
    """Any pyplot function (module attributes such as __file__ stay missing)."""
    if name.startswith("__"):
        raise AttributeError(name)
    return _nothing


class _Compose:
    def __init__(self, steps: Any) -> None:
        self.steps = list(steps)

    def __call__(self, value: Any) -> Any:
        for step in self.steps:
            value = step(value)
        return value


def install() -> None:
    stopwords = _module("nltk.corpus.stopwords", words=_stopwords)
    corpus = _module("nltk.corpus", stopwords=stopwords)
    stem = _module("nltk.stem", PorterStemmer=PorterStemmer)
    tokenize = _module("nltk.tokenize", word_tokenize=word_tokenize)
    nltk = _module("nltk", download=lambda *a, **k: False, corpus=corpus, stem=stem,
                   tokenize=tokenize, word_tokenize=word_tokenize)
    transforms = _module("torchvision.transforms", Compose=_Compose,
                         ToTensor=lambda: _no_data, Normalize=lambda *a, **k: _no_data)
    vision_data = _module("torchvision.datasets", MNIST=_no_data, FashionMNIST=_no_data)
    torchvision = _module("torchvision", datasets=vision_data, transforms=transforms)
    pyplot = _module("matplotlib.pyplot")
    pyplot.__getattr__ = _plotting  # type: ignore[method-assign]
    matplotlib = _module("matplotlib", pyplot=pyplot, use=_nothing)
    modules = {
        "nltk": nltk, "nltk.corpus": corpus, "nltk.corpus.stopwords": stopwords,
        "nltk.stem": stem, "nltk.tokenize": tokenize,
        "tensorflow_datasets": _module("tensorflow_datasets", load=_no_data,
                                       as_numpy=_no_data),
        "torchvision": torchvision, "torchvision.datasets": vision_data,
        "torchvision.transforms": transforms,
        "tqdm": _module("tqdm", tqdm=_Progress), "matplotlib": matplotlib,
        "matplotlib.pyplot": pyplot,
        "dlgrade_course": _module("dlgrade_course", rows=rows, stopwords=_stopwords,
                                  problem=problem, metric=metric, Steps=Steps,
                                  with_parameters=with_parameters),
    }
    Steps.__module__ = "dlgrade_course"  # so that torch.save can pickle it
    for name, module in modules.items():
        sys.modules.setdefault(name, module)


def rows(dataset: Any) -> dict[str, Any]:
    """A dataset's items as plain data: token ids per item (lists) and labels."""
    ids, labels = [], []
    for item in dataset.data:
        tokens, label = item
        ids.append([int(t) for t in (tokens.tolist() if hasattr(tokens, "tolist") else tokens)])
        labels.append(int(label))
    return {"ids": ids, "labels": labels}


class _Placeholder:
    """Replaced in ``problem`` by a torch module class (torch is imported lazily)."""


Steps: Any = _Placeholder


def problem(x_train: Any, y_train: Any, x_val: Any, y_val: Any, x_test: Any, y_test: Any,
            sequence: bool, seed: int, batch_size: int, lr: float, weight: Any
            ) -> dict[str, Any]:
    """A small classification problem for the course's train() and test(): a model (one
    linear layer per time step, output (B, T, C), when ``sequence``; else (B, C)) starting
    from ``weight`` (C, features), loaders,
    a loss, an optimizer and a scratch folder for the results it writes."""
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    global Steps

    class Steps(nn.Module):
        def __init__(self, features: int, classes: int, sequence: bool) -> None:
            super().__init__()
            self.linear, self.sequence = nn.Linear(features, classes), sequence

        def forward(self, x: Any) -> Any:
            out = self.linear(x)
            return out.cumsum(dim=1) if self.sequence else out

    Steps.__module__ = "dlgrade_course"
    setattr(sys.modules["dlgrade_course"], "Steps", Steps)  # noqa: B010 - a ModuleType
    torch.manual_seed(seed)
    model = Steps(int(x_train.shape[-1]), int(y_train.max()) + 1, sequence)
    with torch.no_grad():  # the grader's starting point: every prediction wrong
        model.linear.weight.copy_(torch.tensor(weight))
        model.linear.bias.zero_()

    def loader(x: Any, y: Any, shuffle: bool) -> Any:
        data = TensorDataset(torch.tensor(x), torch.tensor(y))
        return DataLoader(data, batch_size=batch_size, shuffle=shuffle)

    return {"model": model, "train": loader(x_train, y_train, True),
            "val": loader(x_val, y_val, True), "test": loader(x_test, y_test, True),
            "criterion": nn.CrossEntropyLoss(),
            "optimizer": torch.optim.Adam(model.parameters(), lr=lr),
            "path": tempfile.mkdtemp(prefix="results-")}


def with_parameters(module_name: str, class_name: str, names: list[str]) -> str:
    """A subclass of the student's class whose plain-tensor attributes ``names`` become
    nn.Parameters after ``__init__``, published as ``dlgrade_course.<class_name>``; returns
    its dotted name."""
    import importlib

    from torch import nn

    base = getattr(importlib.import_module(module_name), class_name)

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        base.__init__(self, *args, **kwargs)
        for name in names:
            value = self.__dict__.get(name)
            if value is not None and not isinstance(value, nn.Parameter):
                del self.__dict__[name]
                setattr(self, name, nn.Parameter(value.detach().clone()))

    wrapped = type(class_name, (base,), {"__init__": __init__, "__module__": "dlgrade_course"})
    setattr(sys.modules["dlgrade_course"], class_name, wrapped)
    return f"dlgrade_course.{class_name}"


def metric(logger: Any, name: str) -> list[float]:
    """Every value the course's MetricsLogger recorded for ``name``, all epochs."""
    return [float(v) for epoch in logger.epoch_metrics for v in epoch.get(name, [])]


install()
