"""The trusted side's view of a student model: its reported computation, checked,
rebuilt and run by the grader."""
