"""Where the bytes of one tracked client go, in Redis 7.0 on x86-64: each allocation Redis
makes per key, rounded up to the allocator's size class, next to the measured figure.

Two allocators matter: Debian's system jemalloc (the one this machine's redis-server links)
has a 16-byte quantum (classes 8, 16, 32, 48, ...), so a 24-byte dictEntry takes 32; Redis's
bundled jemalloc is configured `--with-lg-quantum=3` (classes 8, 16, 24, 32, 40, ...), where
it takes 24.
"""

import math

CLIENTS = 100_000
# Hash-table slots for 100k keys: the dict doubles to the next power of two, 8 bytes a slot.
SLOTS_BYTES_PER_KEY = 8 * 2 ** math.ceil(math.log2(CLIENTS)) / CLIENTS

# (what, requested bytes) per key; the key is `rl:` + 12 digits (15 bytes).
COMMON = [("dictEntry in the main dict (key, value, next pointers)", 24),
          ("key: sds, 3-byte sdshdr8 + 15 bytes + NUL", 19)]
EXPIRY = [("dictEntry in the expires dict (shares the key; the expiry is its value)", 24)]
RL_ALLOW = COMMON + [("robj (type, encoding, refcount, pointer)", 16),
                     ("moduleValue (type pointer, value pointer)", 16),
                     ("the module's value: the TAT packed into the moduleValue's pointer word "
                      "(`value.rs`: inline when the TAT's fraction has a denominator below 512; "
                      "here T = 600 ms, whole)", 0),
                     ] + EXPIRY
SET_PX = COMMON + [("robj, int-encoded: the 13-digit value lives in its pointer", 16)] + EXPIRY


def size_class(n, quantum):
    """jemalloc's usable size for n bytes (small classes: quantum steps up to 4 quanta, then
    four classes per doubling)."""
    if n == 0:
        return 0
    if n <= 8:
        return 8
    if n <= 4 * quantum:
        return -(-n // quantum) * quantum
    lg = (n - 1).bit_length() - 1
    step = (1 << lg) // 4
    return -(-n // step) * step


def rows(items, has_expiry):
    out = [(what, n, size_class(n, 16), size_class(n, 8)) for what, n in items]
    tables = SLOTS_BYTES_PER_KEY * (2 if has_expiry else 1)
    return out, tables


def table(title, items, measured):
    body, tables = rows(items, True)
    lines = [f"**{title}**", "",
             "| allocation | bytes asked | Debian jemalloc (16-B quantum) | Redis's bundled "
             "jemalloc (8-B quantum) |", "| --- | ---: | ---: | ---: |"]
    for what, n, a, b in body:
        lines.append(f"| {what} | {n} | {a} | {b} |")
    lines.append(f"| hash-table slots, main + expires dict (2 × 8 B × 131,072 / 100k) | "
                 f"{tables:.1f} | {tables:.1f} | {tables:.1f} |")
    lines.append(f"| **total** | {sum(r[1] for r in body) + tables:.0f} | "
                 f"**{sum(r[2] for r in body) + tables:.0f}** | "
                 f"**{sum(r[3] for r in body) + tables:.0f}** |")
    if measured is not None:
        lines.append(f"| measured here (used_memory delta / clients) | | {measured:.0f} | |")
    return "\n".join(lines)


def breakdown_md(rl_measured, set_measured):
    return "\n\n".join([
        "### Per-key breakdown: RL.ALLOW vs SET PX",
        "Redis 7.0 allocates per key a dictEntry and the key's sds; the value's robj; for a "
        "module type, a moduleValue wrapper and then the module's own value; and, for a key "
        "with a TTL, a second dictEntry in the expires dict. RL.ALLOW pays 16 bytes more than "
        "a SET of an integer: the moduleValue wrapper, which Redis allocates for every module "
        "value (the TAT itself is packed into the wrapper's pointer word; a SET keeps its "
        "integer inside the robj). Most of the difference between the allocators is the two "
        "dictEntries and the key, Redis's own, which round up from 24 and 19 to 32 bytes with "
        "a 16-byte quantum.",
        table("RL.ALLOW (usage-only key, default or inline policy)", RL_ALLOW, rl_measured),
        table("SET rl:… 1700000000000 PX 60000", SET_PX, set_measured),
    ])
