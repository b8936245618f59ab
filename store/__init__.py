"""SQLAlchemy models and named queries shared by web and tasks (grader never)."""
