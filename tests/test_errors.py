"""One error tree: ``SwimError`` at the root, one ``errors`` module per layer.

Each error keeps the bases it always had, so an existing ``except ValueError`` or
``except RemoteError`` catches what it caught before.
"""

from __future__ import annotations

import importlib

import pytest

from swimgossip.core.errors import LocalError, RemoteError, SwimError

ERROR_MODULES = (
    "swimgossip.core.errors",
    "swimgossip.security.errors",
    "swimgossip.net.errors",
    "swimgossip.node.errors",
    "swimgossip.cli.errors",
)

#: Every error, and the classes it must still be (its branch and its old bases).
EXPECTED_BASES = {
    "swimgossip.core.errors.ConfigError": (LocalError, ValueError),
    "swimgossip.core.errors.MetadataTooLarge": (LocalError, ValueError),
    "swimgossip.core.errors.MessageTooLarge": (LocalError, ValueError),
    "swimgossip.core.errors.NotRunning": (LocalError, RuntimeError),
    "swimgossip.core.errors.DecodeError": (RemoteError, ValueError),
    "swimgossip.core.errors.UnknownMember": (LocalError, LookupError),
    "swimgossip.core.errors.EmptyRing": (LocalError, LookupError),
    "swimgossip.core.errors.StateLimitExceeded": (LocalError, ValueError),
    "swimgossip.security.errors.KeyringError": ("SecurityError", LocalError, ValueError),
    "swimgossip.security.errors.PayloadError": ("SecurityError", LocalError, ValueError),
    "swimgossip.security.errors.AuthenticationError": ("SecurityError", RemoteError),
    "swimgossip.security.errors.PeerRefused": ("AuthenticationError", RemoteError),
    "swimgossip.net.errors.FrameError": (RemoteError,),
    "swimgossip.net.errors.FrameTooLarge": (RemoteError, ValueError),
    "swimgossip.net.errors.MalformedFramePrefix": (RemoteError, ValueError),
    "swimgossip.node.errors.JoinError": (LocalError,),
    "swimgossip.node.errors.SendFailed": (LocalError,),
    "swimgossip.cli.errors.AgentError": ("CliError",),
    "swimgossip.cli.errors.StatusError": ("CliError",),
}


@pytest.mark.parametrize("module_name", ERROR_MODULES)
def test_every_error_of_every_layer_is_a_swim_error(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert module.__all__
    for name in module.__all__:
        error = getattr(module, name)
        if not issubclass(error, BaseException):
            continue  # a value the errors carry (RejectReason), not an error
        assert issubclass(error, SwimError), f"{module_name}.{name}"
        assert error.__module__ == module_name, f"{name} is defined in {error.__module__}"


@pytest.mark.parametrize("qualified", sorted(EXPECTED_BASES))
def test_each_error_keeps_its_bases(qualified: str) -> None:
    module_name, name = qualified.rsplit(".", 1)
    module = importlib.import_module(module_name)
    error = getattr(module, name)
    for base in EXPECTED_BASES[qualified]:
        if isinstance(base, str):
            base = getattr(module, base)
        assert issubclass(error, base), f"{qualified} is not a {base.__name__}"


def test_the_list_covers_every_error() -> None:
    listed = {q.rsplit(".", 1)[1] for q in EXPECTED_BASES}
    branches = {"SwimError", "LocalError", "RemoteError", "SecurityError", "CliError"}
    for module_name in ERROR_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            if not issubclass(getattr(module, name), BaseException):
                continue  # a value the errors carry (RejectReason), not an error
            assert name in listed or name in branches, f"{module_name}.{name} is not listed"


def test_the_layers_and_the_facade_export_the_same_classes() -> None:
    import swimgossip
    import swimgossip.cli.errors
    import swimgossip.node
    import swimgossip.security

    assert swimgossip.SecurityError is swimgossip.security.SecurityError
    assert swimgossip.KeyringError is swimgossip.security.KeyringError
    assert swimgossip.AuthenticationError is swimgossip.security.AuthenticationError
    assert swimgossip.JoinError is swimgossip.node.JoinError
    assert issubclass(swimgossip.cli.errors.AgentError, Exception)
