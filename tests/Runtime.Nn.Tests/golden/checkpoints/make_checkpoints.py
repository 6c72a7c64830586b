#!/usr/bin/python3
"""Writes the checkpoint goldens. Run with /usr/bin/python3 (python3-torch); tests never call python."""
import json, os, struct, zipfile, zlib
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
torch.manual_seed(1234)
model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
model.train()
model(torch.randn(5, 4))  # running stats and num_batches_tracked move
sd = model.state_dict()
base = torch.arange(24, dtype=torch.float32).reshape(4, 6) * 0.5
sd["extra.base"] = base
sd["extra.view"] = base[1:, ::2].t()  # non-contiguous view sharing base's storage
sd["extra.long"] = torch.tensor([[-3, 0, 7], [2**40, -(2**33), 1]], dtype=torch.int64)
sd["extra.mask"] = torch.tensor([True, False, True, True])
sd["extra.double"] = torch.tensor([1.0 / 3.0, -2.5], dtype=torch.float64)
sd["extra.int"] = torch.tensor([1, -2, 2**31 - 1], dtype=torch.int32)

torch.save(sd, os.path.join(HERE, "small.pth"))
torch.save({"model": sd}, os.path.join(HERE, "wrapped.pth"))

DT = {torch.float32: "F32", torch.float64: "F64", torch.int32: "I32", torch.int64: "I64", torch.bool: "BOOL"}

def write_safetensors(path, tensors, metadata=None, header_override=None):
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for k, t in tensors.items():
        b = t.contiguous().numpy().tobytes()
        header[k] = {"dtype": DT[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    if header_override:
        header_override(header)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))

write_safetensors(os.path.join(HERE, "small.safetensors"), sd, {"format": "pt"})

expected = {}
for k, t in sd.items():
    vals = t.contiguous().reshape(-1).tolist()
    if t.dtype == torch.bool:
        vals = [bool(v) for v in vals]
    expected[k] = {"dtype": DT[t.dtype], "shape": list(t.shape), "values": vals}
with open(os.path.join(HERE, "expected.json"), "w") as f:
    json.dump(expected, f, indent=1)

# ZIP64 variant: the same entries written by hand with every size and offset in ZIP64 extra fields
# (0xFFFFFFFF in the 32-bit fields), a ZIP64 end-of-central-directory record and its locator.
def write_zip64(path, entries):
    out, central = bytearray(), bytearray()
    for name, data in entries:
        n, crc, off = name.encode(), zlib.crc32(data), len(out)
        extra = struct.pack("<HHQQ", 1, 16, len(data), len(data))
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 0, 0, 0x21, crc, 0xFFFFFFFF, 0xFFFFFFFF, len(n), len(extra)) + n + extra + data
        cextra = struct.pack("<HHQQQ", 1, 24, len(data), len(data), off)
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 0, 0, 0x21, crc, 0xFFFFFFFF, 0xFFFFFFFF,
                               len(n), len(cextra), 0, 0, 0, 0, 0xFFFFFFFF) + n + cextra
    cd_off = len(out)
    out += central
    z64 = len(out)
    out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, len(entries), len(entries), len(central), cd_off)
    out += struct.pack("<IIQI", 0x07064B50, 0, z64, 1)
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    with open(path, "wb") as f:
        f.write(out)

with zipfile.ZipFile(os.path.join(HERE, "small.pth")) as src:
    write_zip64(os.path.join(HERE, "zip64.pth"), [(i.filename.replace("small/", "zip64/"), src.read(i)) for i in src.infolist()])
with zipfile.ZipFile(os.path.join(HERE, "zip64.pth")) as check:  # Python's reader agrees
    assert check.testzip() is None

# Hostile: a pickle that calls os.system via GLOBAL + REDUCE.
evil = b"\x80\x02cos\nsystem\nq\x00X\x0c\x00\x00\x00echo pwned!!q\x01\x85q\x02Rq\x03."
def write_pth(path, pkl):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for name, data in (("data.pkl", pkl), ("byteorder", b"little"), ("version", b"3\n")):
            z.writestr(zipfile.ZipInfo("archive/" + name, date_time=(2020, 1, 1, 0, 0, 0)), data)
write_pth(os.path.join(HERE, "evil_os_system.pth"), evil)
# builtins.eval via STACK_GLOBAL (protocol 4 style)
evil2 = b"\x80\x02X\x08\x00\x00\x00builtinsX\x04\x00\x00\x00eval\x93X\x04\x00\x00\x001+1\x85R."
write_pth(os.path.join(HERE, "evil_eval.pth"), evil2)

# Hostile: truncated zip.
with open(os.path.join(HERE, "small.pth"), "rb") as f:
    data = f.read()
with open(os.path.join(HERE, "truncated.pth"), "wb") as f:
    f.write(data[: len(data) // 2])

small = {"a": torch.tensor([1.0, 2.0, 3.0]), "b": torch.tensor([4.0, 5.0])}
def overlap(h):
    h["b"]["data_offsets"] = [8, 16]
write_safetensors(os.path.join(HERE, "overlap.safetensors"), small, header_override=overlap)
write_safetensors(os.path.join(HERE, "badlen.safetensors"), small)
with open(os.path.join(HERE, "badlen.safetensors"), "r+b") as f:
    f.write(struct.pack("<Q", 10**6))
