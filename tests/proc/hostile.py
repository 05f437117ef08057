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
PROTOCOL = 2 << 8          # the membership protocol meshd speaks (swim.h)
PROTOCOL_UNKNOWN = 3 << 8  # a major version it must refuse

ALIVE, SUSPECT, DEAD, LEFT = 0, 1, 2, 3


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


def update(name, state, inc, ip=None, port=0, frm=None, key=None, sig=None):
    """mesh.Update; ip is 4 raw bytes."""
    out = field_bytes(1, name.encode())
    if state:
        out += field_varint(2, state)
    out += field_varint(3, inc)
    if ip is not None:
        out += field_bytes(4, ip) + field_varint(5, port)
    if frm:
        out += field_bytes(7, frm.encode())
    if key is not None:
        out += field_bytes(8, key)
    if sig is not None:
        out += field_bytes(9, sig)
    return out


def gossip_packet(updates, version=PROTOCOL):
    """mesh.Packet with only piggybacked updates."""
    return field_varint(1, version) + b"".join(field_bytes(15, u)
                                               for u in updates)


def push_pull_members(sender, updates, version=PROTOCOL):
    """mesh.PushPull{protocol_version, from, members}: a full view."""
    return (field_varint(1, version) + field_bytes(4, sender.encode()) +
            b"".join(field_bytes(5, u) for u in updates))


def record_bytes(name, inc, ip, port):
    """What a node signs to say it is alive (swim_record_bytes() in
    agent/core/swim.c; docs/protocol.md), with empty metadata."""
    n = name.encode()
    return (b"packmesh-swim-record-1" + b"\x01" + bytes([len(n)]) + n +
            inc.to_bytes(8, "big") + b"\x04" + ip + port.to_bytes(2, "big") +
            b"\x00\x00\x00\x00")


class Identity:
    """An Ed25519 key pair of our own: an insider's, not a member's."""

    def __init__(self):
        self.pk = ctypes.create_string_buffer(32)
        self.sk = ctypes.create_string_buffer(64)
        _lib.crypto_sign_keypair(self.pk, self.sk)

    def sign(self, msg):
        sig = ctypes.create_string_buffer(64)
        _lib.crypto_sign_detached(sig, None, msg, ctypes.c_ulonglong(len(msg)),
                                  self.sk)
        return sig.raw

    def key(self):
        return self.pk.raw
