"""SQLAlchemy models and named queries shared by web and tasks (grader never)."""

# The web features' and the LTI models share store.models.Base (and so the metadata the
# migrations are checked against): importing any module of the store registers them all,
# without store.models importing back the modules that build on it.
from store import lti_models, web_models  # noqa: E402, F401
