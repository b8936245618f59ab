"""Static import policy: found from the AST alone, with file, line and module."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.policy import Violation, forbidden_imports, large_literals, matches

FORBIDDEN = ("torch", "tensorflow", "jax")


def scan(tmp_path: Path, files: dict[str, str], forbidden: tuple[str, ...] = FORBIDDEN
         ) -> list[Violation]:
    for relative, source in files.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")
    return forbidden_imports(tmp_path, sorted(files), forbidden)


@pytest.mark.parametrize(
    ("source", "line", "module"),
    [
        ("import torch\n", 1, "torch"),
        ("import numpy as np\nimport torch.nn as nn\n", 2, "torch.nn"),
        ("\n\nfrom torch import nn\n", 3, "torch"),
        ("from torch.nn.functional import relu\n", 1, "torch.nn.functional"),
        ("import numpy, jax\n", 1, "jax"),
        ('torch = __import__("torch")\n', 1, "torch"),
        ('import importlib\nm = importlib.import_module("torch.nn")\n', 2, "torch.nn"),
        ('from importlib import import_module\nimport_module("tensorflow")\n', 2, "tensorflow"),
        ("def f():\n    if True:\n        import torch\n", 3, "torch"),
        ("try:\n    import torch\nexcept ImportError:\n    pass\n", 2, "torch"),
    ],
    ids=["import", "import-as", "from-import", "from-submodule", "one-of-several", "dunder",
         "import-module", "bare-import-module", "nested", "try-import"],
)
def test_each_import_form_is_found(tmp_path: Path, source: str, line: int, module: str) -> None:
    found = scan(tmp_path, {"mytorch/conv.py": source})
    assert found == [Violation("mytorch/conv.py", line, module)]


def test_every_import_in_every_file_is_reported(tmp_path: Path) -> None:
    found = scan(tmp_path, {
        "hw2/hw2.py": "import torch\nimport jax.numpy as jnp\n",
        "mytorch/linear.py": "import numpy as np\n",
        "mytorch/conv.py": "from tensorflow import keras\n",
    })
    assert sorted(found, key=lambda v: (v.path, v.line)) == [
        Violation("hw2/hw2.py", 1, "torch"),
        Violation("hw2/hw2.py", 2, "jax.numpy"),
        Violation("mytorch/conv.py", 1, "tensorflow"),
    ]


def test_numpy_only_files_pass(tmp_path: Path) -> None:
    source = "import numpy as np\nfrom numpy.lib.stride_tricks import as_strided\nimport math\n"
    assert scan(tmp_path, {"mytorch/conv.py": source}) == []


@pytest.mark.parametrize(
    "source",
    [
        "from . import torch\n",
        "from .torch import Tensor\n",
        "from ..torch import nn\n",
        "import torchvision\n",
        "import torch_geometric\n",
        "from torchaudio import load\n",
        "import mytorch\nfrom mytorch.conv import Conv1D\n",
        "# import torch\n",
        's = "import torch"\n',
        "__import__(name)\n",
        "__import__()\n",
    ],
    ids=["relative", "relative-module", "relative-parent", "torchvision", "torch-prefix",
         "torchaudio", "mytorch", "comment", "string", "dynamic-name", "no-args"],
)
def test_things_that_are_not_forbidden_imports(tmp_path: Path, source: str) -> None:
    # Only the top-level package counts: torchvision is not torch.
    assert scan(tmp_path, {"mytorch/conv.py": source}) == []


def test_syntax_errors_are_left_to_the_sandbox(tmp_path: Path) -> None:
    found = scan(tmp_path, {
        "hw2/broken.py": "import torch\ndef f(:\n",
        "hw2/nul.py": "import torch\x00\n",
        "hw2/ok.py": "import torch\n",
    })
    assert found == [Violation("hw2/ok.py", 1, "torch")]


def test_only_python_files_are_read(tmp_path: Path) -> None:
    found = scan(tmp_path, {"notes.txt": "import torch\n", "run.sh": "import torch\n"})
    assert found == []


def test_no_forbidden_packages_means_no_scan(tmp_path: Path) -> None:
    # The file list is not even read: a missing file cannot fail.
    assert forbidden_imports(tmp_path, ["missing.py"], ()) == []


def test_violation_sentence_names_file_line_module_and_reason() -> None:
    sentence = Violation("hw2/hw2.py", 7, "torch.nn").sentence("this assignment allows NumPy only")
    assert sentence == "hw2/hw2.py imports torch.nn (line 7): this assignment allows NumPy only."


@pytest.mark.parametrize(
    ("path", "patterns", "expected"),
    [
        ("mytorch/conv.py", ("mytorch/*",), True),
        ("mytorch/sub/deep.py", ("mytorch/*",), True),
        ("hw2/mc.py", ("mytorch/*",), False),
        ("hw2/mc.py", ("hw2/mlp_scan.py", "hw2/mc.py"), True),
        ("hw2/mc.py", ("hw2/*.py",), True),
        ("MyTorch/conv.py", ("mytorch/*",), False),
        ("mytorch/conv.py", (), False),
        ("mytorch", ("mytorch/*",), False),
    ],
)
def test_matches(path: str, patterns: tuple[str, ...], expected: bool) -> None:
    assert matches(path, patterns) is expected


# ---------------------------------------------------------------- large literals (G2)


def handin(tmp_path: Path, files: dict[str, str | bytes]) -> tuple[Path, list[str]]:
    for name, content in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return tmp_path, sorted(files)


def test_weights_smuggled_in_source_or_a_data_file_are_flagged(tmp_path: Path) -> None:
    blob = "QUJD" * 3000
    root, files = handin(tmp_path, {
        "cnn.py": f"import base64\n\nW = base64.b64decode(\n    '{blob}'\n)\n",
        "raw.py": "B = b'" + "x" * 10_001 + "'\n",
        "table.py": "T = [" + ", ".join("0.5" for _ in range(1_001)) + "]\n",
        "pieces.py": "\n".join(f"P{i} = '{'y' * 9_000}'" for i in range(3)) + "\n",
        "weights.b64": blob,
    })
    assert large_literals(root, files) == [
        "cnn.py line 4: a string literal of 12,000 characters",
        "pieces.py: 27,000 characters of string literals in all",
        "raw.py line 1: a bytes literal of 10,001 characters",
        "table.py line 1: a literal of 1,001 items",
        "weights.b64: a data file of 12,000 bytes",
    ]


def test_ordinary_handins_are_not_flagged(tmp_path: Path) -> None:
    solution = Path(__file__).resolve().parents[2] / "assignments/mnist-mlp-cnn-vit"
    files = sorted(p.name for p in (solution / "solution").glob("*.py"))
    assert large_literals(solution / "solution", files) == []
    root, names = handin(tmp_path, {"notes.txt": "fine\n", "broken.py": "def f(:\n"})
    assert large_literals(root, names) == []
