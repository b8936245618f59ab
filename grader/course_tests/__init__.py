"""A course's own test files, run unchanged on the trusted side with the student's modules
behind the sandbox boundary (``course.pytest`` and ``course.script``).

- ``proxies``: what a student module, object or tensor looks like to a course test
  (runs in the trusted runner process);
- ``finder``: the import hook that makes ``import rnn_cell`` such a proxy;
- ``runner``: the trusted runner process (``python -m grader.course_tests.runner``);
- ``relay``: the grader's side: starts a runner per run, forwards its requests to the
  student's sandbox session, collects the outcomes;
- ``checks``: the two check kinds and how spec tests map to course tests.

See docs/course-tests.md for the trust argument.
"""
