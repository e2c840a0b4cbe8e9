"""The toolkit's user-facing error types share one base, and only they are user errors."""

from __future__ import annotations

import pytest

from hd_deploy.cli.common import USER_ERRORS, OutputError
from hd_deploy.cli.deploy import _UserError
from hd_deploy.errors import ConfigError, HdError
from hd_deploy.exporters.c import CExportError
from hd_deploy.exporters.onnx import ExportError
from hd_deploy.models.checkpoint import CheckpointError
from hd_deploy.morphology.errors import MorphologyError
from hd_deploy.runtime.metadata import ControllerError

USER_ERROR_TYPES = (
    ConfigError,
    MorphologyError,
    ControllerError,
    ExportError,
    CExportError,
    CheckpointError,
    OutputError,
    _UserError,
)


@pytest.mark.parametrize("cls", USER_ERROR_TYPES, ids=lambda c: c.__name__)
def test_every_user_error_type_is_an_hd_error(cls: type[Exception]) -> None:
    assert issubclass(cls, HdError)
    assert issubclass(cls, ValueError)  # callers that caught ValueError still catch it


def test_the_cli_treats_only_toolkit_errors_and_paths_as_user_errors() -> None:
    assert USER_ERRORS == (HdError, FileNotFoundError, FileExistsError)
    assert not issubclass(ValueError, USER_ERRORS)
