"""WeCom's callback crypto (the WXBizMsgCrypt scheme) and the XML around it.
Everything here reads bytes from the internet: bad input raises this module's
errors and nothing else, and no XML entity is ever expanded or fetched."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import struct
from dataclasses import dataclass
from xml.etree.ElementTree import Element, ParseError, SubElement, tostring

import defusedxml
import defusedxml.ElementTree as SafeTree
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

# WeCom pads to 32 bytes (PKCS#7 with a 32-byte block), not to AES's 16.
PAD_BLOCK = 32
_RANDOM = 16
_LENGTH = struct.Struct(">I")
# Nested elements worth reading are two levels down (SendLocationInfo.Location_X);
# anything deeper is ignored rather than walked.
_MAX_DEPTH = 3


class WeComCryptoError(Exception):
    """A callback we must refuse; the channel answers it without reading it."""


class SignatureError(WeComCryptoError):
    """msg_signature does not match: not from WeCom, or not for our token."""


class CorpIdError(WeComCryptoError):
    """The message decrypts but was meant for another corp (receive id)."""


class CryptoFormatError(WeComCryptoError):
    """Malformed input: bad base64, padding, length or XML, or XML with entities."""


def signature(token: str, timestamp: str, nonce: str, encrypted: str) -> str:
    """WeCom's msg_signature: SHA-1 hex of the four strings, sorted and joined."""
    joined = "".join(sorted([token, timestamp, nonce, encrypted]))
    return hashlib.sha1(joined.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class Envelope:
    """The outer XML of a callback POST: the ciphertext and where it was sent."""

    encrypted: str
    to_user: str
    agent_id: str


class WeComCrypto:
    """One application's callback keys: the token and EncodingAESKey set in
    WeCom's admin console, and the corp id every message must be addressed to."""

    def __init__(self, token: str, encoding_aes_key: str, corp_id: str) -> None:
        if len(encoding_aes_key) != 43:
            raise ValueError("EncodingAESKey must be 43 characters")
        key = _b64decode(encoding_aes_key + "=")
        if key is None or len(key) != 32:
            raise ValueError("EncodingAESKey is not valid base64 for a 32-byte key")
        self.token = token
        self.corp_id = corp_id
        self._receive_id = corp_id.encode()
        self._cipher = Cipher(algorithms.AES(key), modes.CBC(key[:16]))

    def verify_url(self, msg_signature: str, timestamp: str, nonce: str, echostr: str) -> str:
        """The answer to WeCom's URL check (GET): echostr decrypted."""
        plain = self.decrypt(msg_signature, timestamp, nonce, echostr)
        try:
            return plain.decode()
        except UnicodeDecodeError as exc:
            raise CryptoFormatError("echostr is not UTF-8") from exc

    def decrypt(self, msg_signature: str, timestamp: str, nonce: str, encrypted: str) -> bytes:
        """The inner message of a callback, after checking its signature and corp id."""
        expected = signature(self.token, timestamp, nonce, encrypted)
        given = msg_signature.encode("utf-8", "surrogatepass")
        if not hmac.compare_digest(expected.encode(), given):
            raise SignatureError("msg_signature does not match")
        return self._open(encrypted)

    def encrypt(self, plain: bytes, nonce: str, timestamp: str) -> tuple[str, str]:
        """(ciphertext, msg_signature) of `plain`, as WeCom would send it."""
        body = os.urandom(_RANDOM) + _LENGTH.pack(len(plain)) + plain + self._receive_id
        pad = PAD_BLOCK - len(body) % PAD_BLOCK
        encryptor = self._cipher.encryptor()
        sealed = encryptor.update(body + bytes([pad]) * pad) + encryptor.finalize()
        encrypted = base64.b64encode(sealed).decode("ascii")
        return encrypted, signature(self.token, timestamp, nonce, encrypted)

    def reply(self, plain: bytes, nonce: str, timestamp: str) -> bytes:
        """A passive reply to a callback: `plain` (the reply's XML) encrypted and signed."""
        encrypted, msg_signature = self.encrypt(plain, nonce, timestamp)
        root = Element("xml")
        for tag, value in (
            ("Encrypt", encrypted),
            ("MsgSignature", msg_signature),
            ("TimeStamp", timestamp),
            ("Nonce", nonce),
        ):
            SubElement(root, tag).text = value
        return tostring(root, encoding="unicode").encode()

    def _open(self, encrypted: str) -> bytes:
        sealed = _b64decode(encrypted)
        if sealed is None:
            raise CryptoFormatError("ciphertext is not base64")
        if not sealed or len(sealed) % 16:
            raise CryptoFormatError("ciphertext is not a whole number of AES blocks")
        decryptor = self._cipher.decryptor()
        padded = decryptor.update(sealed) + decryptor.finalize()
        pad = padded[-1]
        if not 1 <= pad <= PAD_BLOCK or padded[-pad:] != bytes([pad]) * pad:
            raise CryptoFormatError("bad padding")
        body = padded[:-pad]
        head = _RANDOM + _LENGTH.size
        if len(body) < head:
            raise CryptoFormatError("plaintext too short")
        length: int = _LENGTH.unpack_from(body, _RANDOM)[0]
        if head + length > len(body):
            raise CryptoFormatError("message length runs past the plaintext")
        if body[head + length :] != self._receive_id:
            raise CorpIdError("message is addressed to another corp")
        return body[head : head + length]


def parse_callback(body: bytes) -> Envelope:
    """The envelope of a callback POST: <Encrypt>, <ToUserName>, <AgentID>."""
    fields = parse_message(body)
    encrypted = fields.get("Encrypt", "")
    if not encrypted:
        raise CryptoFormatError("callback has no Encrypt element")
    return Envelope(encrypted, fields.get("ToUserName", ""), fields.get("AgentID", ""))


def parse_message(xml: bytes) -> dict[str, str]:
    """The fields of a decrypted message (MsgType, FromUserName, Content, Event,
    EventKey, ResponseCode ...). A nested element's fields appear under dotted
    names (ScanCodeInfo.ScanResult); a name that repeats keeps its first value."""
    root = _parse_xml(xml)
    fields: dict[str, str] = {}
    stack: list[tuple[Element, str, int]] = [(child, "", 1) for child in reversed(root)]
    while stack:
        element, prefix, depth = stack.pop()
        if not isinstance(element.tag, str):  # comments and processing instructions
            continue
        name = prefix + element.tag
        if len(element):
            if depth < _MAX_DEPTH:
                stack.extend((child, name + ".", depth + 1) for child in reversed(element))
        else:
            fields.setdefault(name, element.text or "")
    return fields


def _parse_xml(xml: bytes) -> Element:
    try:
        return SafeTree.fromstring(xml, forbid_dtd=True)
    except defusedxml.DefusedXmlException as exc:
        raise CryptoFormatError(f"XML refused: {type(exc).__name__}") from exc
    except (ParseError, ValueError, LookupError) as exc:  # LookupError: unknown encoding
        raise CryptoFormatError(f"malformed XML: {exc}") from exc


def _b64decode(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:  # binascii.Error, and non-ASCII text
        return None
