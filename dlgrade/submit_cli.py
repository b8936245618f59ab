"""``dlgrade submit``: a student's handin through API v1, standard library only.

``dlgrade submit --server URL --token T SLUG handin.tar [--course C] [--no-wait] [--json]``
uploads the archive (a progress bar on stderr when it is a terminal), polls until the
submission is graded and prints the per-test table. The token may come from
``DLGRADE_TOKEN``. Exit status 0 once graded, whatever the score; 2 with one sentence
(a :class:`SubmitError`) when it could not: bad token, upload refused (the server's own
sentence), server unreachable, grading failed or took too long.

The upload carries an ``Idempotency-Key`` chosen once per command, and is resent with
that same key when the connection fails or the server answers 5xx (``--retries``
times, waiting 1, 2, 4, ... s, or the server's Retry-After): the server then answers
with the first upload's submission if it had been stored, so a retry never makes a
second one. Polling retries the same way.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from sandbox.output import neutralise

CHUNK = 64 << 10
RETRIES = 5  # resends after a dropped connection or a 5xx
MAX_DELAY = 30.0  # seconds between two tries, at most


class SubmitError(Exception):
    """The submission could not be made or graded; the message is the sentence."""


def add_submit_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    submit = commands.add_parser("submit", help="hand in to a dlgrade server and wait")
    submit.add_argument("assignment", help="the assignment's slug")
    submit.add_argument("path", type=Path, help="the archive (.tar, .tar.gz, .tgz or .zip)")
    submit.add_argument("--server", default=os.environ.get("DLGRADE_SERVER"),
                        help="e.g. https://grader.example.edu (or $DLGRADE_SERVER)")
    submit.add_argument("--token", default=None, help="an API token (or $DLGRADE_TOKEN)")
    submit.add_argument("--course", default=None, help="when the slug is in several courses")
    submit.add_argument("--no-wait", action="store_true", help="upload, print the id, exit")
    submit.add_argument("--json", action="store_true", help="print the submission as JSON")
    submit.add_argument("--timeout", type=float, default=1800.0,
                        help="seconds to wait for grading (default 1800)")
    submit.add_argument("--retries", type=int, default=RETRIES,
                        help=f"resends after a dropped connection or a 5xx (default {RETRIES}; "
                             "the same upload is never stored twice)")
    submit.add_argument("--interval", type=float, default=2.0, help=argparse.SUPPRESS)
    submit.add_argument("--retry-delay", type=float, default=1.0, help=argparse.SUPPRESS)
    submit.set_defaults(run=run_submit)


def run_submit(args: argparse.Namespace) -> int:
    token = args.token or os.environ.get("DLGRADE_TOKEN")
    if not token:
        raise SubmitError("give an API token with --token or DLGRADE_TOKEN.")
    if not args.server:
        raise SubmitError("give the server's address with --server or DLGRADE_SERVER.")
    path: Path = args.path
    if not path.is_file():
        raise SubmitError(f"{path} is not a file.")
    client = Client(args.server, token, retries=max(0, args.retries), delay=args.retry_delay)
    created = client.upload(args.assignment, path, args.course, progress_printer())
    if args.no_wait:
        print(json.dumps(created) if args.json else
              f"Submitted {path.name} as submission {created['id']}: {created['url']}")
        return 0
    progress = None if args.json else Progress(sys.stderr)
    try:
        body = client.wait(str(created["url"]), args.timeout, args.interval, progress)
    finally:
        if progress is not None:
            progress.end()
    if body["status"] == "error":
        raise SubmitError(neutralise(f"submission {body['id']} could not be graded: "
                                     f"{body.get('error')}"))
    # The server's text is shown as text: no terminal escape in it acts (issue 12.9).
    print(json.dumps(body, indent=2) if args.json else neutralise(render(body)))
    return 0


class Transient(Exception):
    """A failure worth another try: a dropped connection or a 5xx."""

    def __init__(self, sentence: str, retry_after: float | None = None) -> None:
        super().__init__(sentence)
        self.sentence, self.retry_after = sentence, retry_after


class Client:
    def __init__(self, server: str, token: str, *, retries: int = RETRIES,
                 delay: float = 1.0, sleep: Callable[[float], None] = time.sleep) -> None:
        self.base = server.rstrip("/") + "/api/v1"
        self.headers = {"Authorization": f"Bearer {token}", "Accept": "application/json",
                        "User-Agent": "dlgrade-submit"}
        self.retries, self.delay, self.sleep = retries, delay, sleep
        self.tries = 0  # requests sent, retries included

    def upload(self, slug: str, path: Path, course: str | None,
               progress: Callable[[int, int], None], key: str | None = None) -> dict[str, Any]:
        """POST the archive; resent (from its first byte, with the same key) after a
        dropped connection or a 5xx."""
        query = f"?{urllib.parse.urlencode({'course': course})}" if course else ""
        url = f"{self.base}/assignments/{urllib.parse.quote(slug, safe='')}/submissions{query}"
        key = key or str(uuid.uuid4())

        def once() -> dict[str, Any]:
            with path.open("rb") as handle:
                body = MultipartFile(handle, path.name, path.stat().st_size, progress)
                headers = {**self.headers, "Content-Type": body.content_type,
                           "Content-Length": str(body.length), "Idempotency-Key": key}
                return self.send(urllib.request.Request(url, data=body, headers=headers,
                                                        method="POST"))

        return self.retrying(once)

    def wait(self, url: str, timeout: float, interval: float,
             progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Poll until graded, showing each answer to ``progress`` until then."""
        deadline = time.monotonic() + timeout
        while True:
            body = self.call(urllib.request.Request(url, headers=self.headers))
            if body.get("status") in ("done", "error"):
                return body
            if progress is not None:
                progress(body)
            if time.monotonic() > deadline:
                raise SubmitError(f"submission {body.get('id')} was not graded within "
                                  f"{timeout:g} s; see {url} later.")
            time.sleep(interval)

    def call(self, request: urllib.request.Request) -> dict[str, Any]:
        return self.retrying(lambda: self.send(request))

    def retrying(self, once: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """``once()``, tried again after a :class:`Transient` failure, ``retries`` times."""
        for attempt in range(self.retries + 1):
            try:
                return once()
            except Transient as failure:
                if attempt == self.retries:
                    raise SubmitError(failure.sentence) from None
                wait = failure.retry_after or self.delay * 2 ** attempt
                print(f"{failure.sentence} Trying again in {wait:g} s.", file=sys.stderr)
                self.sleep(min(wait, MAX_DELAY))
        raise AssertionError("unreachable")

    def send(self, request: urllib.request.Request) -> dict[str, Any]:
        self.tries += 1
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                return dict(json.loads(answer.read()))
        except urllib.error.HTTPError as exc:
            if exc.code >= 500:
                raise Transient(server_sentence(exc), retry_after(exc)) from None
            raise SubmitError(server_sentence(exc)) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise Transient(f"could not reach {self.base} ({reason}).") from None
        except http.client.HTTPException as exc:  # the connection dropped mid-answer
            raise Transient(f"{self.base} stopped answering mid-way ({type(exc).__name__})."
                            ) from None
        except ValueError:
            raise SubmitError(f"{self.base} did not answer like a dlgrade server.") from None


class Progress:
    """The server's one-line state while grading waits ("queued — position 12 in queue,
    about 3 min to go", then "running"): rewritten in place on a terminal, else one line
    per status, so a log is not flooded by a countdown."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream, self.terminal = stream, stream.isatty()
        self.shown, self.status = "", ""

    def __call__(self, body: dict[str, Any]) -> None:
        message = str(body.get("message") or body.get("status") or "")
        status = str(body.get("status") or "")
        if self.terminal and message != self.shown:
            self.stream.write("\r\033[K" + message)
        elif not self.terminal and status != self.status:
            self.stream.write(message + "\n")
        self.stream.flush()
        self.shown, self.status = message, status

    def end(self) -> None:
        if self.terminal and self.shown:
            self.stream.write("\n")
            self.stream.flush()


def retry_after(error: urllib.error.HTTPError) -> float | None:
    try:
        return max(0.0, float(error.headers.get("Retry-After", "")))
    except ValueError:
        return None


def server_sentence(error: urllib.error.HTTPError) -> str:
    try:
        message = str(json.loads(error.read())["error"])
    except (ValueError, KeyError, TypeError, OSError):
        message = f"the server answered HTTP {error.code}."
    if error.code == 401:
        return f"the server refused the token: {message}"
    if error.code == 429 and error.headers.get("Retry-After"):
        return f"{message} (retry after {error.headers['Retry-After']} s)"
    return message


class MultipartFile:
    """A multipart/form-data body with one field ``file``, read in chunks (so
    http.client streams it and the progress bar moves)."""

    def __init__(self, handle: IO[bytes], filename: str, size: int,
                 progress: Callable[[int, int], None]) -> None:
        boundary = "dlgrade-" + secrets.token_hex(12)
        safe = filename.replace('"', "").replace("\r", "").replace("\n", "")
        self.head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                     f"filename=\"{safe}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                     ).encode()
        self.tail = f"\r\n--{boundary}--\r\n".encode("ascii")
        self.content_type = f"multipart/form-data; boundary={boundary}"
        self.handle, self.size, self.progress = handle, size, progress
        self.length = len(self.head) + size + len(self.tail)
        self.sent = 0
        self.parts = [self.head]

    def read(self, size: int = CHUNK) -> bytes:
        size = CHUNK if size is None or size < 0 else size
        if self.parts:
            return self.parts.pop()
        chunk = self.handle.read(size)
        if chunk:
            self.sent += len(chunk)
            self.progress(self.sent, self.size)
            return chunk
        tail, self.tail = self.tail, b""
        return tail


def progress_printer(stream: IO[str] | None = None) -> Callable[[int, int], None]:
    """A bar redrawn in place on a terminal; one line at the end otherwise."""
    out = stream or sys.stderr
    tty = out.isatty()

    def show(sent: int, total: int) -> None:
        fraction = sent / total if total else 1.0
        if tty:
            bar = "#" * int(fraction * 30)
            out.write(f"\rUploading [{bar:<30}] {fraction:4.0%} of {total / 1e6:.1f} MB")
            if sent >= total:
                out.write("\n")
        elif sent >= total:
            out.write(f"Uploaded {total / 1e6:.1f} MB.\n")
        out.flush()

    return show


def render(body: dict[str, Any]) -> str:
    """The per-test table of ``dlgrade check`` for a graded submission."""
    tests = [t for t in (body.get("results") or {}).get("tests", []) if isinstance(t, dict)]
    width = max([len(str(t.get("name", ""))) for t in tests] + [4])
    lines = [f"{'#':>2}  {'test':<{width}}  {'score':>11}  outcome", "-" * (width + 32)]
    for test in tests:
        score = f"{test.get('score', 0):g}/{test.get('max_score', 0):g}"
        lines.append(f"{test.get('number', ''):>2}  {test.get('name', ''):<{width}}  "
                     f"{score:>11}  {test.get('status', '')}")
    lines.append("-" * (width + 32))
    total = f"{body.get('score') or 0:g}/{body.get('max_score') or 0:g}"
    lines.append(f"{'':>2}  {'total':<{width}}  {total:>11}  (submission {body['id']})")
    withheld = body.get("withheld_tests") or 0
    if withheld:
        lines.append(f"{withheld} more test(s) are shown once submissions close.")
    for test in tests:
        if test.get("status") != "passed" and test.get("output"):
            output = "\n".join(f"    {line}" for line in str(test["output"]).splitlines())
            lines.append(f"\n[{test.get('number', '')}] {test.get('name', '')}\n{output}")
    return "\n".join(lines)
