"""Routing SPI messages written the way the OpenShift broker plugin writes them: a Ruby
hash with symbol keys through Psych's ``to_yaml`` (``:action: :add_alias``, multi-line
strings as ``|`` blocks, nil as an empty value), plus the plain spelling for
comparison, and certificates for ``add_ssl``."""

from __future__ import annotations

from typing import Any

import trustme
import yaml
from cryptography.hazmat.primitives import serialization

APP = {"app_name": "myapp", "namespace": "demo"}


def _scalar(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str) and "\n" in value:
        chomp = "" if value.endswith("\n") else "-"
        body = "".join("  " + line + "\n" for line in value.rstrip("\n").split("\n"))
        return f"|{chomp}\n{body}".rstrip("\n")
    text = yaml.safe_dump(value, default_flow_style=True).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def ruby_yaml(fields: dict[str, Any]) -> str:
    """``fields`` (plain keys; ``action`` a plain name) as the Ruby plugin publishes it."""
    lines = ["---"]
    for key, value in fields.items():
        if key == "action":
            lines.append(f":action: :{value}")
        elif isinstance(value, list) and not value:
            lines.append(f":{key}: []")
        elif isinstance(value, list):
            lines.append(f":{key}:")
            for item in value:
                if isinstance(item, dict):
                    pairs = [f"{k}: {_scalar(v)}" for k, v in item.items()]
                    lines.append("- " + "\n  ".join(pairs))
                else:
                    lines.append(f"- {_scalar(item)}")
        else:
            scalar = _scalar(value)
            lines.append(f":{key}: {scalar}".rstrip(" ") if scalar else f":{key}:")
    return "\n".join(lines) + "\n"


def plain_yaml(fields: dict[str, Any]) -> str:
    """The same message as a non-Ruby publisher would write it."""
    return yaml.safe_dump(fields, sort_keys=False)


def endpoint(port: int = 35546, address: str = "10.4.59.221", **extra: Any) -> dict[str, Any]:
    return {
        "action": "add_public_endpoint",
        **APP,
        "gear_id": "53d1f0e9e0b8cd4d4f000011",
        "public_port_name": "haproxy-1.4",
        "public_address": address,
        "public_port": port,
        "protocols": ["http", "ws"],
        "types": ["load_balancer"],
        "mappings": [
            {"frontend": "", "backend": ""},
            {"frontend": "/health", "backend": "/configuration/health"},
        ],
        **extra,
    }


def removal(port: int = 35546, address: str = "10.4.59.221", **extra: Any) -> dict[str, Any]:
    return {
        "action": "remove_public_endpoint",
        **APP,
        "gear_id": "53d1f0e9e0b8cd4d4f000011",
        "public_address": address,
        "public_port": port,
        **extra,
    }


class Certs:
    """A CA and a certificate for ``alias`` with its key: plain, encrypted as PKCS#8 and
    encrypted the traditional OpenSSL way (``Proc-Type``/``DEK-Info``, as
    ``openssl rsa -aes256`` writes it)."""

    def __init__(self, alias: str, phrase: str = "open sesame") -> None:
        self.ca = trustme.CA()
        self.cert = self.ca.issue_cert(alias)
        self.phrase = phrase
        self.chain_pem = "".join(blob.bytes().decode() for blob in self.cert.cert_chain_pems)
        self.key_pem = self.cert.private_key_pem.bytes().decode()
        key = serialization.load_pem_private_key(self.key_pem.encode(), password=None)
        crypt = serialization.BestAvailableEncryption(phrase.encode())
        pem = serialization.Encoding.PEM
        self.pkcs8_encrypted = key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, crypt
        ).decode()
        self.traditional_encrypted = key.private_bytes(
            pem, serialization.PrivateFormat.TraditionalOpenSSL, crypt
        ).decode()

    def add_ssl(self, alias: str, key: str | None = None, **extra: Any) -> dict[str, Any]:
        return {
            "action": "add_ssl",
            **APP,
            "alias": alias,
            "ssl": self.chain_pem,
            "private_key": self.key_pem if key is None else key,
            "pass_phrase": None,
            **extra,
        }
