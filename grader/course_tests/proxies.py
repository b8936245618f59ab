"""What the student's code looks like to a course test: proxies over the sandbox channel.

This module runs in the trusted runner process (``grader.course_tests.runner``), never in
the sandbox. Every operation on a proxy is one request that the grader relays to the
student's sandbox; what comes back is plain data (None, bool, int, float, str, lists,
dicts, ndarrays) or an opaque handle, which becomes another proxy. Nothing the student
wrote ever runs here:

- a proxy never calls back into trusted code on the student's behalf (a trusted callable
  cannot be sent; there is no callback operation);
- equality, truth, hashing, ``repr`` and array conversion of a proxy are this module's
  own code: identity, True, identity, a fixed text, refused (tensors: see
  ``grader.course_tests.tensors``, whose values are computed here from fetched data);
- dunder attributes are answered locally (numpy and pytest probe ``__array__``,
  ``__len__`` and the like: a remote answer would let student code choose how the
  trusted side treats the object);
- a library module the student's code imported (``np`` in ``rnn_cell``) is not handed to
  the test: a test imports its own libraries, so ``np.allclose`` is always the trusted one.
"""

from __future__ import annotations

import builtins
import sys
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from sandbox import protocol
from sandbox.protocol import Handle

TENSOR_TYPES = frozenset({
    "torch.Tensor", "torch.nn.parameter.Parameter", "torch.nn.parameter.Buffer",
    "torch.nn.parameter.UninitializedParameter",
})
MAX_REPLY_BYTES = 256 << 20
_LOCAL = ("_dl_handle", "_dl_label")


class SandboxGone(Exception):  # noqa: N818 - reads as a sentence in a test's failure
    """The student's sandbox died (time limit, crash, kill); no further call can run."""


class StudentError(Exception):
    """The student's code raised an exception that is not a built-in one."""

    def __init__(self, type_name: str, message: str, traceback: str) -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name
        self.student_traceback = traceback


_MIRRORS: dict[str, type[Exception]] = {}


def student_exception(type_name: str, message: str, traceback: str) -> Exception:
    """An exception of the built-in class the student's code raised (so that
    ``pytest.raises(ValueError)`` and ``hasattr`` behave as in-process), marked as the
    student's; anything else (SystemExit included) becomes :class:`StudentError`."""
    base = getattr(builtins, type_name, None)
    if not (isinstance(base, type) and issubclass(base, Exception)):
        return StudentError(type_name, message, traceback)
    if type_name not in _MIRRORS:
        _MIRRORS[type_name] = type(type_name, (base,), {"student_traceback": ""})
    error = _MIRRORS[type_name](message)
    error.student_traceback = traceback  # type: ignore[attr-defined]
    return error


class Channel:
    """The runner's end of the relay: one request at a time, blocking."""

    def __init__(self, request_fd: int, reply_fd: int) -> None:
        self.request_fd, self.reply_fd = request_fd, reply_fd
        self.gone: str | None = None
        self.requests = 0

    def send(self, message: dict[str, Any]) -> None:
        protocol.write_all(self.request_fd, protocol.encode(message))

    def receive(self) -> Any:
        return protocol.read_frame(self.reply_fd, MAX_REPLY_BYTES)

    def request(self, message: dict[str, Any]) -> Any:
        if self.gone is not None:
            raise SandboxGone(self.gone)
        self.requests += 1
        self.send(message)
        reply = self.receive()
        if not isinstance(reply, dict):
            raise SandboxGone("the grader sent a malformed reply")
        if reply.get("ok") is True:
            return reply.get("value")
        if "died" in reply:
            self.gone = str(reply["died"])
            raise SandboxGone(self.gone)
        error = reply.get("error")
        if not isinstance(error, dict):
            error = {}
        raise student_exception(str(error.get("type", "Exception")),
                                str(error.get("message", "")), str(error.get("traceback", "")))


@dataclass(frozen=True)
class TensorSupport:
    """What proxies need of ``grader.course_tests.tensors``, which is built on them (so
    they cannot import it): the runner hands :func:`install` a loader, called the first
    time a torch value or a tensor handle crosses (NumPy-only courses never import torch).
    """

    to_wire: Callable[[Any], Any]  # a trusted torch value or a tensor proxy -> wire
    wrap: Callable[[Handle, str], Any]  # a tensor's handle -> its proxy
    is_proxy: Callable[[Any], bool]  # a remote or lazy tensor


_channel: Channel | None = None
_student_modules: set[str] = set()
_tensor_loader: Callable[[], TensorSupport] | None = None
_tensors: TensorSupport | None = None  # loaded: tensor proxies may exist


def install(channel: Channel, student_modules: set[str], *,
            tensors: Callable[[], TensorSupport]) -> None:
    global _channel, _tensor_loader, _tensors
    _channel = channel
    _student_modules.clear()
    _student_modules.update(student_modules)
    _tensor_loader, _tensors = tensors, None


def channel() -> Channel:
    if _channel is None:
        raise RuntimeError("the course-test channel is not set up")
    return _channel


def request(message: dict[str, Any]) -> Any:
    return channel().request(message)


def tensor_support() -> TensorSupport:
    global _tensors
    if _tensors is None:
        if _tensor_loader is None:
            raise RuntimeError("the course-test channel is not set up")
        _tensors = _tensor_loader()
    return _tensors


def _is_tensor_proxy(value: Any) -> bool:
    return _tensors is not None and _tensors.is_proxy(value)


# -- values crossing the boundary ------------------------------------------------------


def to_wire(value: Any, depth: int = 0) -> Any:
    """A trusted value as the protocol carries it: plain data, arrays and handles."""
    if depth > protocol.MAX_DEPTH:
        raise TypeError("value is nested too deeply to send into the sandbox")
    if value is None or type(value) in (bool, int, float, str):
        return value
    if isinstance(value, RemoteObject):
        return object.__getattribute__(value, "_dl_handle")
    if isinstance(value, RemoteModule):
        return value.__dict__["__dlgrade_handle__"]
    if isinstance(value, np.ndarray):
        if value.dtype.str not in protocol.ALLOWED_DTYPES:
            raise TypeError(f"an array of dtype {value.dtype} cannot be sent into the sandbox")
        return np.ascontiguousarray(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bool | int | float | str):  # subclasses (IntEnum, ...) as plain
        return type(value).__mro__[-2](value)
    if type(value) in (list, tuple):
        return [to_wire(item, depth + 1) for item in value]
    if isinstance(value, dict) and all(type(key) is str for key in value):
        # an OrderedDict (a state_dict) arrives as a plain dict
        return {key: to_wire(item, depth + 1) for key, item in value.items()}
    if _is_torch(value):
        return tensor_support().to_wire(value)
    if callable(value):
        raise TypeError(f"a course test cannot pass the trusted callable {value!r} into the "
                        "sandbox (student code never calls back into the grader)")
    raise TypeError(f"a value of type {type(value).__name__} cannot be sent into the sandbox")


def _is_torch(value: Any) -> bool:
    return type(value).__module__.partition(".")[0] == "torch" or _is_tensor_proxy(value)


def from_wire(value: Any, label: str) -> Any:
    """A reply as the test sees it: data as is, handles as proxies."""
    if isinstance(value, Handle):
        return wrap(value, label)
    if isinstance(value, list):
        return [from_wire(item, f"{label}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, dict):
        return {key: from_wire(item, f"{label}[{key!r}]") for key, item in value.items()}
    return value


def wrap(handle: Handle, label: str) -> Any:
    if handle.type_name in TENSOR_TYPES:
        return tensor_support().wrap(handle, label)
    if handle.type_name == "builtins.module":
        return module_for(handle, label)
    return RemoteObject(handle, label)


def module_for(handle: Handle, label: str) -> RemoteModule:
    """A module object the sandbox handed back: the student's (a proxy) or refused."""
    name = request({"op": "getattr", "obj": handle, "name": "__name__"})
    if not isinstance(name, str) or name.partition(".")[0] not in _student_modules:
        raise AttributeError(f"{label} is a library module the student's code imported; a "
                             "course test imports its own libraries")
    existing = sys.modules.get(name)
    if isinstance(existing, RemoteModule):
        return existing
    module = RemoteModule(name, handle, package=False)
    sys.modules[name] = module
    return module


def getattr_remote(handle: Handle, name: str, label: str) -> Any:
    return from_wire(request({"op": "getattr", "obj": handle, "name": name}), f"{label}.{name}")


def call_remote(handle: Handle, name: str | None, args: tuple[Any, ...],
                kwargs: dict[str, Any], label: str) -> Any:
    message = {"op": "call", "obj": handle, "name": name,
               "args": [to_wire(a) for a in args],
               "kwargs": {k: to_wire(v) for k, v in kwargs.items()}}
    return from_wire(request(message), f"{label}()")


def _dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__")


# -- proxies ----------------------------------------------------------------------------


class RemoteObject:
    """An object in the sandbox (a class, an instance, a function, a bound method)."""

    __slots__ = _LOCAL

    def __init__(self, handle: Handle, label: str) -> None:
        object.__setattr__(self, "_dl_handle", handle)
        object.__setattr__(self, "_dl_label", label)

    def __getattr__(self, name: str) -> Any:
        if _dunder(name):
            raise AttributeError(name)
        return getattr_remote(self._dl_handle, name, self._dl_label)

    def __setattr__(self, name: str, value: Any) -> None:
        request({"op": "setattr", "obj": self._dl_handle, "name": name,
                 "value": to_wire(value)})

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return call_remote(self._dl_handle, None, args, kwargs, self._dl_label)

    def __getitem__(self, key: Any) -> Any:
        value = request({"op": "getitem", "obj": self._dl_handle, "key": to_wire(key)})
        return from_wire(value, f"{self._dl_label}[{key!r}]")

    def __setitem__(self, key: Any, value: Any) -> None:
        call_remote(self._dl_handle, "__setitem__", (key, value), {}, self._dl_label)

    def __len__(self) -> int:
        value = request({"op": "len", "obj": self._dl_handle})
        if type(value) is not int:
            raise TypeError(f"len({self._dl_label}) is not an int")
        return value

    def __iter__(self) -> Iterator[Any]:
        iterator = call_remote(self._dl_handle, "__iter__", (), {}, self._dl_label)
        if not isinstance(iterator, RemoteObject):
            raise TypeError(f"{self._dl_label} is not iterable")
        while True:
            try:
                yield call_remote(iterator._dl_handle, "__next__", (), {}, self._dl_label)
            except StudentError as error:
                if error.type_name == "StopIteration":
                    return
                raise

    def __bool__(self) -> bool:
        return True

    def __repr__(self) -> str:
        return f"<student {self._dl_handle.type_name} {self._dl_label}>"


class RemoteModule(types.ModuleType):
    """One of the student's modules. Attributes are read from the sandbox when used;
    ``from m import *`` binds the module's public names (not the library modules it
    imported)."""

    _SET_LOCALLY = frozenset({"__spec__", "__loader__", "__file__", "__path__", "__package__",
                              "__name__", "__doc__", "__all__", "__cached__", "__builtins__",
                              "__dlgrade_handle__"})

    def __init__(self, name: str, handle: Handle, *, package: bool) -> None:
        super().__init__(name)
        self.__dict__["__dlgrade_handle__"] = handle
        if package:
            self.__dict__["__path__"] = []

    def __getattr__(self, name: str) -> Any:
        if name == "__all__":
            # Read by ``from m import *`` in the frame that runs it (the C loop that binds
            # the names pushes no frame of its own): the names depend on that importer.
            return self._public_names(sys._getframe(1))
        if _dunder(name):
            raise AttributeError(name)
        return getattr_remote(self.__dict__["__dlgrade_handle__"], name, self.__name__)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self._SET_LOCALLY or isinstance(value, RemoteModule):
            self.__dict__[name] = value  # the import system's own bookkeeping
            return
        request({"op": "setattr", "obj": self.__dict__["__dlgrade_handle__"], "name": name,
                 "value": to_wire(value)})

    def _public_names(self, importer: types.FrameType) -> list[str]:
        """What ``from m import *`` binds in ``importer``'s namespace: the module's public
        names (its ``__all__``, else those without a leading underscore), less the
        library modules it imported, and only where binding one cannot change what
        trusted code does (:func:`star_import_may_bind`)."""
        handle = self.__dict__["__dlgrade_handle__"]
        namespace = request({"op": "getattr", "obj": handle, "name": "__dict__"})
        if not isinstance(namespace, dict):
            return []
        declared = namespace.get("__all__")
        if isinstance(declared, list) and all(isinstance(n, str) for n in declared):
            wanted = [n for n in declared if n.isidentifier()]
        else:
            wanted = [n for n in namespace if not n.startswith("_")]
        referenced = names_used_by(importer.f_code)
        return [n for n in wanted if not _library_module(namespace.get(n))
                and star_import_may_bind(n, referenced, importer.f_globals, importer.f_locals)]

    def __repr__(self) -> str:
        return f"<student module {self.__name__!r}>"


def _library_module(value: Any) -> bool:
    return isinstance(value, Handle) and value.type_name == "builtins.module"


_BUILTIN_NAMES = frozenset(dir(builtins))


def star_import_may_bind(name: str, referenced: set[str], *namespaces: dict[str, Any]) -> bool:
    """Whether ``from student_module import *`` may bind ``name`` in a trusted namespace.

    In-process a star import rebinds whatever the student's module names, so a student
    module that defines ``bool``, ``isinstance`` or ``np`` takes over the course test's
    own code (``passed = bool(test())`` becomes the student's answer). Here a student's
    name reaches a trusted namespace only where the test can mean it:

    - never a name of ``builtins`` (the test's ``bool``, ``print``, ``all`` stay Python's);
    - never a name the importer has already bound to a trusted value (``np`` imported
      before, the course's own helpers); one bound to a student proxy may be rebound, as
      a second star import of the student's modules does in-process;
    - never a dunder (``__builtins__``, ``__name__``, ``__getattr__``...);
    - only a name the importing code itself uses (its code and the functions and classes
      it defines): names read implicitly by the machinery that runs the test
      (``pytest_plugins``, ``setup_module``, ``pytestmark``) are not the test's to take.
    """
    if _dunder(name) or name in _BUILTIN_NAMES or name not in referenced:
        return False
    return not any(name in namespace and not is_student_value(namespace[name])
                   for namespace in namespaces)


def is_student_value(value: Any) -> bool:
    """A proxy of something in the sandbox (a module, an object, a tensor)."""
    return isinstance(value, RemoteObject | RemoteModule) or _is_tensor_proxy(value)


def names_used_by(code: types.CodeType) -> set[str]:
    """Every global, attribute or module-level name ``code`` (and the code nested in it:
    functions, classes, comprehensions) can look up."""
    names = set(code.co_names)
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            names |= names_used_by(constant)
    return names
