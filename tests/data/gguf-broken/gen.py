#!/usr/bin/env python3
"""gen.py - regenerates the broken-GGUF corpus in this directory, its README
table, and the valid fuzz seeds in tests/fuzz/seeds/fuzz_gguf/.

Each broken file is a small valid file with exactly one thing wrong, so the
error it must produce is unambiguous. The files are committed; this script only
documents how they were made (python3 stdlib, deterministic).
Run from the repository root: python3 tests/data/gguf-broken/gen.py
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
SEEDS = os.path.join(HERE, "..", "..", "fuzz", "seeds", "fuzz_gguf")

U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
SCALAR_FMT = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f",
              BOOL: "<B", U64: "<Q", I64: "<q", F64: "<d"}
F32_T, F16_T, Q8_0_T, I32_T = 0, 1, 8, 26
BLOCK = {F32_T: (1, 4), F16_T: (1, 2), Q8_0_T: (32, 34), I32_T: (1, 4)}


def s(b):
    if isinstance(b, str):
        b = b.encode()
    return struct.pack("<Q", len(b)) + b


def val(t, v):
    if t in SCALAR_FMT:
        return struct.pack(SCALAR_FMT[t], v)
    if t == STRING:
        return s(v)
    et, items = v  # ARRAY
    return struct.pack("<IQ", et, len(items)) + b"".join(val(et, x) for x in items)


def kv(key, t, v):
    return s(key) + struct.pack("<I", t) + val(t, v)


def nbytes(ty, ne):
    be, bb = BLOCK.get(ty, (1, 1))
    n = 1
    for d in ne:
        n *= d
    return n // be * bb


def info(name, ne, ty, off):
    return s(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", d) for d in ne) + struct.pack("<IQ", ty, off)


def gguf(kvs, tensors, align=32, version=3, magic=b"GGUF", n_kv=None, n_tensors=None, offsets=None,
         data_len=None):
    """kvs: encoded kv entries; tensors: (name, ne, type). Offsets default to
    the writer's layout (declaration order, aligned)."""
    if offsets is None:
        offsets, o = [], 0
        for _, ne, ty in tensors:
            offsets.append(o)
            o += (nbytes(ty, ne) + align - 1) // align * align
    head = magic + struct.pack("<IQQ", version, len(tensors) if n_tensors is None else n_tensors,
                               len(kvs) if n_kv is None else n_kv)
    body = head + b"".join(kvs) + b"".join(info(n, ne, ty, off) for (n, ne, ty), off in zip(tensors, offsets))
    pad = (-len(body)) % align
    data = bytearray()
    for (n, ne, ty), off in zip(tensors, offsets):
        end = off + nbytes(ty, ne)
        if data_len is not None:  # hostile shapes: only the bytes that will be kept
            end = min(end, data_len)
        if len(data) < end:
            data.extend(b"\0" * (end - len(data)))
        for i in range(off, end):
            data[i] = (i * 7 + 3) & 0xFF
    if data_len is None:
        data_len = (len(data) + align - 1) // align * align
    data = bytes(data[:data_len]) + b"\0" * max(0, data_len - len(data))
    return body + b"\0" * pad + data


BASE_KV = [kv("general.architecture", STRING, "deepseek4"), kv("x.count", U32, 4)]
BASE_T = [("a", [8], F32_T), ("b", [32, 2], Q8_0_T)]


def nested(depth):
    """An array value whose nesting depth (outer array = 1) is `depth`."""
    v = (U8, [5])
    for _ in range(depth - 1):
        v = (ARRAY, [v])
    return v


CASES = []  # (file, what is wrong, substring the error must contain, bytes)


def case(name, what, want, data):
    CASES.append((name, what, want, data))


good = gguf(BASE_KV, BASE_T)
INFOS_END = 24 + sum(map(len, BASE_KV)) + len(info("a", [8], F32_T, 0)) + len(info("b", [32, 2], Q8_0_T, 32))
assert INFOS_END % 32 != 0  # there is padding, so a file cut here ends before the data section
case("empty.gguf", "zero-byte file", "magic: file is 0 bytes", b"")
case("bad_magic.gguf", 'magic is "GGUX"', 'magic: 0x58554747 ("GGUX"): expected 0x46554747 ("GGUF")',
     b"GGUX" + good[4:])
case("version2.gguf", "version 2 (only v3 is read)", "version: 2: expected 3", gguf(BASE_KV, BASE_T, version=2))
case("short_header.gguf", "file ends inside n_tensors", "n_tensors: 2 bytes left at offset 8: expected 8",
     good[:10])
case("huge_n_kv.gguf", "n_kv = 10^12 in a small file", "n_kv: 1000000000000: expected at most",
     gguf(BASE_KV, BASE_T, n_kv=10**12))
case("huge_n_tensors.gguf", "n_tensors = 2^63", "n_tensors: 9223372036854775808: expected at most",
     gguf(BASE_KV, BASE_T, n_tensors=2**63))
case("key_len_absurd.gguf", "first key length is 2^63", "kv[0] key: length 9223372036854775808 at offset 24",
     gguf([struct.pack("<Q", 2**63) + b"abc"] + BASE_KV[1:], BASE_T))
case("empty_key.gguf", "a key of length 0", "kv[1] key: empty at offset",
     gguf([BASE_KV[0], kv("", U32, 1)], BASE_T))
case("key_bad_utf8.gguf", "key contains byte 0xFF", "kv[1] key: invalid UTF-8",
     gguf([BASE_KV[0], kv(b"x.\xffcount", U32, 1)], BASE_T))
case("key_with_nul.gguf", "key contains a NUL byte", "kv[1] key: contains a NUL byte",
     gguf([BASE_KV[0], kv(b"x.c\0ount", U32, 1)], BASE_T))
case("dup_key.gguf", "the same key twice", 'kv[2] key "x.count": duplicate of kv[1]: expected unique keys',
     gguf(BASE_KV + [kv("x.count", U32, 5)], BASE_T))
case("bad_value_type.gguf", "value type 13", 'kv[1] "x.bad" value type: 13: expected 0..12',
     gguf([BASE_KV[0], s("x.bad") + struct.pack("<II", 13, 0)], BASE_T))
case("string_too_long.gguf", "string value length past end of file",
     'kv[1] "x.str" string: length 100000 at offset',
     gguf([BASE_KV[0], s("x.str") + struct.pack("<IQ", STRING, 100000) + b"abc"], BASE_T))
case("array_count_absurd.gguf", "u32 array claiming 10^12 elements",
     'kv[1] "x.arr" array count: 1000000000000 of u32',
     gguf([BASE_KV[0], s("x.arr") + struct.pack("<IIQ", ARRAY, U32, 10**12) + b"\0" * 8], BASE_T))
case("array_elem_type_bad.gguf", "array element type 77", 'kv[1] "x.arr" array element type: 77',
     gguf([BASE_KV[0], s("x.arr") + struct.pack("<IIQ", ARRAY, 77, 1) + b"\0" * 8], BASE_T))
case("array_depth9.gguf", "arrays nested 9 deep", 'kv[1] "x.deep" array nesting depth: 9: expected at most 8',
     gguf([BASE_KV[0], kv("x.deep", ARRAY, nested(9))], BASE_T))
case("truncated_in_kv.gguf", "file (no tensors) ends inside a u32 metadata value",
     'kv[1] "x.count" u32: 2 bytes left at offset 92: expected 4 (file truncated)', gguf(BASE_KV, [])[:94])
case("alignment_zero.gguf", "general.alignment = 0", "general.alignment: 0: expected a nonzero power of two",
     gguf(BASE_KV + [kv("general.alignment", U32, 0)], BASE_T))
case("alignment_48.gguf", "general.alignment = 48", "general.alignment: 48: expected a nonzero power of two",
     gguf(BASE_KV + [kv("general.alignment", U32, 48)], BASE_T, align=16))
case("alignment_huge.gguf", "general.alignment = 2^31: the data section would start past the end",
     "data section: starts at 2147483648 past end of file",
     gguf(BASE_KV + [kv("general.alignment", U32, 2**31)], BASE_T))
case("key_newline_bad_type.gguf", "key with a newline (shown escaped, the message stays one line), value type 99",
     'kv[1] "x\\x0ay" value type: 99: expected 0..12',
     gguf([BASE_KV[0], s("x\ny") + struct.pack("<II", 99, 0)], BASE_T))
case("alignment_u64.gguf", "general.alignment stored as u64", "general.alignment: type u64: expected u32",
     gguf(BASE_KV + [kv("general.alignment", U64, 32)], BASE_T))
case("n_dims_0.gguf", "tensor with 0 dims", 'tensor "a" n_dims: 0: expected 1..8',
     gguf(BASE_KV, [("a", [], F32_T)]))
case("n_dims_9.gguf", "tensor with 9 dims", 'tensor "a" n_dims: 9: expected 1..8',
     gguf(BASE_KV, [("a", [1] * 9, F32_T)]))
case("dim_zero.gguf", "a dimension of 0", 'tensor "b" dim 1: 0: expected 1..2^63-1',
     gguf(BASE_KV, [("a", [8], F32_T), ("b", [32, 0], Q8_0_T)]))
case("dims_overflow.gguf", "dims 2^32 x 2^32 (2^64 elements)", 'tensor "a" dims: element count overflows',
     gguf(BASE_KV, [("a", [2**32, 2**32], F32_T)], offsets=[0], data_len=64))
case("unknown_type.gguf", "tensor type 2 (Q4_0, not a type this engine knows)",
     'tensor "b" type: 2: expected a known GGML type',
     gguf(BASE_KV, [("a", [8], F32_T), ("b", [32], 2)], offsets=[0, 32], data_len=64))
case("row_not_block_multiple.gguf", "Q8_0 tensor with rows of 33 elements",
     'tensor "b" dim 0: 33 (row length) for type Q8_0: expected a multiple of 32',
     gguf(BASE_KV, [("a", [8], F32_T), ("b", [33], Q8_0_T)], offsets=[0, 32], data_len=96))
case("tensor_name_bad_utf8.gguf", "tensor name with an overlong UTF-8 form", "tensor[1] name: invalid UTF-8",
     gguf(BASE_KV, [("a", [8], F32_T), (b"b\xc0\xaf", [32, 2], Q8_0_T)]))
case("dup_tensor.gguf", "two tensors named a", 'tensor[1] name "a": duplicate of tensor[0]',
     gguf(BASE_KV, [("a", [8], F32_T), ("a", [32, 2], Q8_0_T)]))
case("tensor_past_eof.gguf", "tensor offset points past the end of the file",
     'tensor "b" data: 68 bytes at data offset 4096 end past end of file',
     gguf(BASE_KV, BASE_T, offsets=[0, 4096], data_len=128))
case("truncated_in_data.gguf", "file cut inside the last tensor's bytes",
     'tensor "b" data: 68 bytes at data offset 32 end past end of file', good[:len(good) - 40])
case("data_section_missing.gguf", "file ends before the padded start of the data section",
     "data section: starts at", good[:INFOS_END])
case("tensor_overlap.gguf", "tensor b starts inside tensor a",
     'tensor "b" data: [0, 68) overlaps tensor "a" [0, 32): expected disjoint tensors',
     gguf(BASE_KV, BASE_T, offsets=[0, 0], data_len=96))
case("tensor_misaligned.gguf", "tensor offset 36 with alignment 32",
     'tensor "b" offset: 36: expected a multiple of the alignment 32',
     gguf(BASE_KV, BASE_T, offsets=[0, 36], data_len=128))


def seeds():
    every = [
        kv("general.architecture", STRING, "deepseek4"),
        kv("t.u8", U8, 250), kv("t.i8", I8, -3), kv("t.u16", U16, 65000), kv("t.i16", I16, -300),
        kv("t.u32", U32, 7), kv("t.i32", I32, -7), kv("t.f32", F32, 0.5), kv("t.bool", BOOL, 1),
        kv("t.u64", U64, 2**40), kv("t.i64", I64, -2**40), kv("t.f64", F64, 1e-300),
        kv("t.arr_i32", ARRAY, (I32, [0, 0, 4, 128])),
        kv("t.arr_str", ARRAY, (STRING, ["<s>", "a", "", "\u00e9"])),
        kv("t.nested", ARRAY, nested(3)),
    ]
    tens = [("token_embd.weight", [4, 3], F16_T), ("output.weight", [32, 2], Q8_0_T), ("hash", [2, 2], I32_T)]
    return {
        "every_type.gguf": gguf(every, tens),
        "align64.gguf": gguf(BASE_KV + [kv("general.alignment", U32, 64)], BASE_T, align=64),
        "no_tensors.gguf": gguf(BASE_KV, []),
        "header_only.gguf": gguf([], []),
        "deep8.gguf": gguf([kv("x.deep", ARRAY, nested(8))], [("a", [1], F32_T)]),
    }


def main():
    names = set()
    for name, what, want, data in CASES:
        assert name not in names and len(data) < 4096 and "|" not in want, name
        names.add(name)
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(data)
    with open(os.path.join(HERE, "README.md"), "w") as f:
        f.write("# gguf-broken - files the GGUF reader must refuse\n\n"
                "Each file is a small GGUF with exactly one thing wrong (made by `gen.py`, committed as is).\n"
                "`tests/unit/test_gguf_broken.c` reads this table: it opens every file listed, checks that\n"
                "it is refused, that the one-line message starts with the file's path and contains the\n"
                "substring in the last column, and that every `.gguf` here is listed.\n\n"
                "| file | what is wrong | error must contain |\n|---|---|---|\n")
        for name, what, want, data in CASES:
            f.write("| `%s` | %s | `%s` |\n" % (name, what, want))
    os.makedirs(SEEDS, exist_ok=True)
    for name, data in seeds().items():
        assert len(data) < 4096
        with open(os.path.join(SEEDS, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
