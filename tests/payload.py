"""DUMP payloads of the `ratelimit` type, built and taken apart in Python, so tests can forge
exactly the bytes they mean: Redis 7.0's layout is the RDB type byte, the value (module id,
then opcode-tagged fields, then the EOF opcode), the 2-byte RDB version and a CRC64 (LE)."""

RDB_TYPE_MODULE_2 = 7
OPCODE_EOF, OPCODE_SINT, OPCODE_UINT = 0, 1, 2
MAX_LIMIT = 10**9
MAX_WINDOW_MS = 10**12
MAX_TAT_MS = 1 << 60


def _crc64_table():
    poly = 0x95AC9329AC4BC9B5  # Jones polynomial 0xad93d23594c935a9, bit-reflected
    table = []
    for i in range(256):
        v = i
        for _ in range(8):
            v = (v >> 1) ^ poly if v & 1 else v >> 1
        table.append(v)
    return table


CRC64_TABLE = _crc64_table()


def crc64(data):
    """Redis's CRC64 (Jones, reflected, init 0, no final xor)."""
    crc = 0
    for b in data:
        crc = CRC64_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc


def rdb_len(n):
    if n < 1 << 6:
        return bytes([n])
    if n < 1 << 14:
        return bytes([0x40 | n >> 8, n & 0xFF])
    if n <= 0xFFFFFFFF:
        return b"\x80" + n.to_bytes(4, "big")
    return b"\x81" + n.to_bytes(8, "big")


def read_rdb_len(buf, i):
    kind = buf[i] >> 6
    if kind == 0:
        return buf[i] & 0x3F, i + 1
    if kind == 1:
        return (buf[i] & 0x3F) << 8 | buf[i + 1], i + 2
    if buf[i] == 0x80:
        return int.from_bytes(buf[i + 1:i + 5], "big"), i + 5
    assert buf[i] == 0x81, buf[i]
    return int.from_bytes(buf[i + 1:i + 9], "big"), i + 9


def parse_dump(payload):
    """(module id, unsigned fields, RDB version) of a ratelimit DUMP payload."""
    assert payload[0] == RDB_TYPE_MODULE_2
    module_id, i = read_rdb_len(payload, 1)
    fields = []
    while True:
        opcode, i = read_rdb_len(payload, i)
        if opcode == OPCODE_EOF:
            break
        assert opcode == OPCODE_UINT
        value, i = read_rdb_len(payload, i)
        fields.append(value)
    assert len(payload) - i == 10
    return module_id, fields, payload[i:i + 2]


def build_dump(module_id, fields, version, opcode=OPCODE_UINT):
    body = bytes([RDB_TYPE_MODULE_2]) + rdb_len(module_id)
    for f in fields:
        body += rdb_len(opcode) + rdb_len(f)
    body += rdb_len(OPCODE_EOF) + version
    return body + crc64(body).to_bytes(8, "little")


def sealed(body):
    """`body` (type byte, value, RDB version) with its CRC64 appended."""
    return body + crc64(body).to_bytes(8, "little")
