"""The promises as a new user would attack them: fixtures shared with the engine suite."""

from tests.engine.conftest import project, project_factory

__all__ = ["project", "project_factory"]
