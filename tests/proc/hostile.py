"""hostile: a peer that holds the cluster key but speaks nonsense.

Seals with libsodium through ctypes (the same XChaCha20-Poly1305 format as
agent/io/seal.c) and hand-encodes the few protobuf fields it needs, so the
process tests can send well-sealed messages with a wrong protocol version
or a malformed body and check that meshd counts and drops them.
"""
import base64
import ctypes
import ctypes.util
import os

_lib = ctypes.CDLL(ctypes.util.find_library("sodium") or "libsodium.so.23")
if _lib.sodium_init() < 0:
    raise RuntimeError("sodium_init failed")

SEAL_VERSION = 1


def read_primary_key(keyring_path):
    with open(keyring_path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                return base64.b64decode(line)
    raise ValueError("no key in " + keyring_path)


def seal(key, plain):
    nonce = os.urandom(24)
    ad = bytes([SEAL_VERSION])
    out = ctypes.create_string_buffer(len(plain) + 16)
    out_len = ctypes.c_ulonglong(0)
    rc = _lib.crypto_aead_xchacha20poly1305_ietf_encrypt(
        out, ctypes.byref(out_len), plain, ctypes.c_ulonglong(len(plain)),
        ad, ctypes.c_ulonglong(1), None, nonce, key)
    if rc != 0:
        raise RuntimeError("encrypt failed")
    return ad + nonce + out.raw[:out_len.value]


def varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def field_varint(num, v):
    return varint(num << 3) + varint(v)


def field_bytes(num, b):
    return varint(num << 3 | 2) + varint(len(b)) + b


def ping_packet(version, target, seq=7):
    """mesh.Packet{protocol_version, ping{seq, target}}."""
    ping = field_varint(1, seq) + field_bytes(2, target.encode())
    return field_varint(1, version) + field_bytes(2, ping)


def push_pull(version, sender):
    """mesh.PushPull{protocol_version, from} (a digest-less request)."""
    return field_varint(1, version) + field_bytes(4, sender.encode())


def frame(sealed):
    return len(sealed).to_bytes(4, "big") + sealed
