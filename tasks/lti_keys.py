"""The tool's own RSA key pair for LTI 1.3: it signs the client assertions of AGS and
NRPS token requests, and its public half is served as the tool's JWKS (``/lti/jwks``).

The private key is a PEM file, never in the repository or the database: by default
``<data_dir>/lti/tool-key.pem``, created (mode 0600, in a 0700 folder) the first time it
is needed; ``DLGRADE_LTI_PRIVATE_KEY_FILE`` points to one managed elsewhere (a mounted
secret). Every web and worker host must read the same file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwcrypto.jwk import JWK

from tasks.settings import ConfigError, Settings

KEY_BITS = 2048


@dataclass(frozen=True)
class ToolKey:
    private_pem: str
    public_pem: str
    kid: str

    def jwk(self) -> dict[str, Any]:
        key = JWK.from_pem(self.public_pem.encode("ascii"))
        public: dict[str, Any] = json.loads(key.export_public())
        public.update(kid=self.kid, alg="RS256", use="sig")
        return public

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        return {"keys": [self.jwk()]}


def key_path(settings: Settings) -> Path:
    if settings.lti_private_key_file:
        return Path(settings.lti_private_key_file)
    return settings.data_dir / "lti" / "tool-key.pem"


def load_key(settings: Settings, *, create: bool = True) -> ToolKey:
    """The tool key of ``settings``; generated when missing and ``create`` (only at the
    default place: a configured file that does not exist is a configuration error)."""
    path = key_path(settings)
    if not path.is_file():
        if settings.lti_private_key_file or not create:
            raise ConfigError(f"the LTI private key {path} does not exist; create it with "
                              "`dlgrade lti keygen` or unset DLGRADE_LTI_PRIVATE_KEY_FILE.")
        generate_key(path)
    return from_pem(path.read_bytes())


def from_pem(data: bytes) -> ToolKey:
    private = serialization.load_pem_private_key(data, password=None)
    if not isinstance(private, rsa.RSAPrivateKey):
        raise ConfigError("the LTI private key must be an RSA key (RS256).")
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    kid = JWK.from_pem(public_pem.encode("ascii")).thumbprint()
    return ToolKey(data.decode("ascii"), public_pem, kid)


def generate_key(path: Path) -> None:
    """Write a new key to ``path`` (0600) without ever leaving it readable by others;
    an existing file is kept (two hosts starting at once keep the first one's key)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    private = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    pem = private.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
