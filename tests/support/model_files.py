"""Read and write convolab files byte by byte: the 8-byte little-endian header length, the JSON
header (safetensors layout) and the payload, so tests can damage a file and write it back."""

import json
import struct


def header_of(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    return json.loads(raw[8 : 8 + n]), raw[8 + n :]


def write_raw(path, header, payload=b""):
    text = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + payload)


def split(blob):
    n = struct.unpack("<Q", blob[:8])[0]
    return json.loads(blob[8 : 8 + n]), blob[8 + n :]


def join(header, payload, delta=0):
    text = json.dumps(header).encode()
    return struct.pack("<Q", max(0, len(text) + delta)) + text + payload
