#!/usr/bin/python3
"""Writes the checkpoint goldens. Run with /usr/bin/python3 (python3-torch); tests never call python."""
import collections, io, json, os, pickle, struct, zipfile
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

# ZIP64 variant: same entries, rewritten with zip64 extra fields forced.
with zipfile.ZipFile(os.path.join(HERE, "small.pth")) as src, zipfile.ZipFile(os.path.join(HERE, "zip64.pth"), "w", zipfile.ZIP_STORED) as dst:
    for info in src.infolist():
        data = src.read(info)
        zi = zipfile.ZipInfo(info.filename, date_time=info.date_time)
        zi.compress_type = zipfile.ZIP_STORED
        with dst.open(zi, "w", force_zip64=True) as w:
            w.write(data)

# Hostile: a pickle that calls os.system via GLOBAL + REDUCE.
evil = b"\x80\x02cos\nsystem\nq\x00X\x0c\x00\x00\x00echo pwned!!q\x01\x85q\x02Rq\x03."
def write_pth(path, pkl):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pkl)
        z.writestr("archive/byteorder", "little")
        z.writestr("archive/version", "3\n")
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
