import errno
import os


def _try(label, action):
    try:
        result = action()
        print(f"ALLOWED {label}: {str(result)[:200]}")
    except Exception as exc:  # noqa: BLE001
        code = errno.errorcode.get(getattr(exc, "errno", None) or 0, "")
        print(f"DENIED {label}: {type(exc).__name__} {code}".rstrip())

import socket

for _path in ("/var/run/docker.sock", "/run/docker.sock", "/run/containerd/containerd.sock"):
    def _connect(path=_path):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(2)
        s.connect(path)
        s.sendall(b"GET /containers/json HTTP/1.0\r\n\r\n")
        return s.recv(200)
    _try(f"docker-socket {_path}", _connect)
for _host, _port in (("127.0.0.1", 2375), ("172.17.0.1", 2375), ("169.254.169.254", 80)):
    _try(f"tcp {_host}:{_port}", lambda h=_host, p=_port: socket.create_connection((h, p), timeout=2))


# Do not import any additional 3rd party external libraries as they will not
# be available to AutoLab and are not needed (or allowed)

# Answer the multiple-choice questions from the writeup.
# Each function returns a single lowercase letter, 'a' to 'e'.


def question_1():
    mc_answer = 'b'
    return mc_answer


def question_2():
    mc_answer = 'd'
    return mc_answer


def question_3():
    mc_answer = 'c'
    return mc_answer


def question_4():
    mc_answer = 'a'
    return mc_answer


def question_5():
    mc_answer = 'a'
    return mc_answer
