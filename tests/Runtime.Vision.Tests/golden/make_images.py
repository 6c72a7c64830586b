#!/usr/bin/python3
"""Writes the image-codec goldens under golden/images/ (run with Debian's /usr/bin/python3 + python3-pil + numpy).

Every test image <name> is written next to <name>.expected.z: the pixels PIL decodes from it (or, for 16-bit
samples PIL cannot return, the source samples), zlib-compressed raw HWC bytes (uint8, or little-endian uint16 when
bits == 16). manifest.json lists width/height/channels/bits/row_step and, for JPEGs, the comparison tolerance.

Some files are written by PIL, others by the small PNG writer and baseline JPEG encoder below (Adam7 interlace,
2/4-bit gray, 16-bit colour, per-row filter choice, many IDAT chunks; restart intervals, 4:4:0 / 4:1:1 sampling,
non-interleaved scans, Adobe RGB), which PIL cannot produce but decodes; the expected pixels still come from PIL.
"""
import io, json, os, struct, sys, zlib
import numpy as np
from PIL import Image, ImageOps

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "images")
os.makedirs(OUT, exist_ok=True)
MANIFEST = []


# ---------------------------------------------------------------- synthetic pictures

def picture(w, h, seed, noise=12.0):
    """A deterministic photo-like RGB picture: gradients, waves, discs, boxes and noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 128 + 100 * np.sin(x / max(w, 1) * 6.3 + seed) * np.cos(y / max(h, 1) * 3.1)
    g = 255 * x / max(w - 1, 1)
    b = 255 * y / max(h - 1, 1)
    img = np.stack([r, g, b], -1)
    for _ in range(4):
        cx, cy, rad = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.1, 0.35) * min(w, h)
        col = rng.uniform(0, 255, 3)
        img[(x - cx) ** 2 + (y - cy) ** 2 < rad ** 2] = col
    for _ in range(3):
        x0, y0 = int(rng.uniform(0, w)), int(rng.uniform(0, h))
        img[y0:y0 + max(1, h // 5), x0:x0 + max(1, w // 4)] = rng.uniform(0, 255, 3)
    img += rng.normal(0, noise, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def gray_picture(w, h, seed):
    p = picture(w, h, seed).astype(np.uint32)
    return ((p[..., 0] * 19595 + p[..., 1] * 38470 + p[..., 2] * 7471 + 0x8000) >> 16).astype(np.uint8)


def wide(p8, seed):
    """A 16-bit version of an 8-bit array with non-trivial low bytes."""
    rng = np.random.default_rng(seed)
    return (p8.astype(np.uint16) << 8) | rng.integers(0, 256, p8.shape, dtype=np.uint16)


# ---------------------------------------------------------------- expected pixels

def channels_of(mode):
    return {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4, "I;16": 1, "I": 1}[mode]


def record(name, arr, bits=8, kind="exact", tol_max=0, tol_mean=0.0, row_step=1, note=""):
    arr = np.asarray(arr)
    if arr.ndim == 2:
        arr = arr[..., None]
    h, w, c = arr.shape
    if bits == 16:
        raw = arr.astype("<u2").tobytes()
    else:
        assert arr.dtype == np.uint8, (name, arr.dtype)
        raw = arr[::row_step].tobytes()
    with open(os.path.join(OUT, name + ".expected.z"), "wb") as f:
        f.write(zlib.compress(raw, 9))
    MANIFEST.append(dict(file=name, width=w, height=h, channels=c, bits=bits, row_step=row_step,
                         compare=kind, tol_max=tol_max, tol_mean=tol_mean, note=note))


def pil_pixels(path, convert=None):
    im = Image.open(path)
    im.load()
    if convert:
        im = im.convert(convert)
    return np.asarray(im)


# ---------------------------------------------------------------- a small PNG writer

def _chunk(t, data):
    return struct.pack(">I", len(data)) + t + data + struct.pack(">I", zlib.crc32(t + data) & 0xFFFFFFFF)


def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def _filter_row(ftype, row, prev, bpp):
    out = bytearray(len(row))
    for i in range(len(row)):
        a = row[i - bpp] if i >= bpp else 0
        b = prev[i]
        c = prev[i - bpp] if i >= bpp else 0
        pred = (0, a, b, (a + b) >> 1, _paeth(a, b, c))[ftype]
        out[i] = (row[i] - pred) & 0xFF
    return bytes([ftype]) + bytes(out)


def _pack_rows(samples, bit_depth):
    """samples: (h, w, c) integer array -> list of packed scanlines."""
    h, w, c = samples.shape
    rows = []
    for y in range(h):
        flat = samples[y].reshape(-1)
        if bit_depth == 16:
            rows.append(flat.astype(">u2").tobytes())
        elif bit_depth == 8:
            rows.append(flat.astype(np.uint8).tobytes())
        else:
            per = 8 // bit_depth
            out = bytearray((len(flat) * bit_depth + 7) // 8)
            for i, v in enumerate(flat):
                out[i // per] |= int(v) << (8 - bit_depth * (i % per + 1))
            rows.append(bytes(out))
    return rows


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def write_png(path, samples, color_type, bit_depth, interlace=False, palette=None, trns=None, seed=0,
              idat_size=1 << 20, level=6):
    """samples (h, w, c) raw sample values (palette indices for colour type 3). Filters chosen at random per row."""
    samples = np.asarray(samples)
    if samples.ndim == 2:
        samples = samples[..., None]
    h, w, c = samples.shape
    rng = np.random.default_rng(seed)
    bpp = max(1, c * bit_depth // 8)
    raw = bytearray()
    subimages = [samples] if not interlace else [samples[y0::dy, x0::dx] for (x0, y0, dx, dy) in ADAM7]
    for sub in subimages:
        if sub.shape[0] == 0 or sub.shape[1] == 0:
            continue
        rows = _pack_rows(sub, bit_depth)
        prev = bytes(len(rows[0]))
        for row in rows:
            raw += _filter_row(int(rng.integers(0, 5)), row, prev, bpp)
            prev = row
    z = zlib.compress(bytes(raw), level)
    png = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 1 if interlace else 0))
    png += _chunk(b"tEXt", b"Comment\x00golden test image")
    if palette is not None:
        png += _chunk(b"PLTE", bytes(np.asarray(palette, np.uint8).reshape(-1)))
    if trns is not None:
        png += _chunk(b"tRNS", trns)
    for i in range(0, len(z), idat_size):
        png += _chunk(b"IDAT", z[i:i + idat_size])
    png += _chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


def png_cases():
    W, H = 33, 21  # odd sizes exercise partial bytes and the Adam7 pass edges
    gray8 = gray_picture(W, H, 1)
    rgb8 = picture(W, H, 2)
    alpha = ((np.arange(W)[None, :] * 8 + np.arange(H)[:, None] * 5) % 256).astype(np.uint8)

    # Written by PIL itself.
    Image.fromarray(rgb8).save(os.path.join(OUT, "png_pil_rgb8.png"))
    record("png_pil_rgb8.png", pil_pixels(os.path.join(OUT, "png_pil_rgb8.png")))
    Image.fromarray(np.dstack([rgb8, alpha])).save(os.path.join(OUT, "png_pil_rgba8.png"), compress_level=9)
    record("png_pil_rgba8.png", pil_pixels(os.path.join(OUT, "png_pil_rgba8.png")))
    Image.fromarray(gray8).save(os.path.join(OUT, "png_pil_gray8.png"))
    record("png_pil_gray8.png", pil_pixels(os.path.join(OUT, "png_pil_gray8.png")))
    Image.fromarray(gray8 > 128).save(os.path.join(OUT, "png_pil_gray1.png"))
    record("png_pil_gray1.png", pil_pixels(os.path.join(OUT, "png_pil_gray1.png"), "L"))
    p = Image.fromarray(rgb8).quantize(colors=200)
    p.save(os.path.join(OUT, "png_pil_palette8.png"))
    record("png_pil_palette8.png", pil_pixels(os.path.join(OUT, "png_pil_palette8.png"), "RGB"))

    for interlace in (False, True):
        sfx = "_adam7" if interlace else ""
        # gray 1/2/4/8/16
        for bd in (1, 2, 4, 8, 16):
            if bd == 16:
                s = wide(gray8, 3)
            else:
                s = (gray8.astype(np.uint32) * ((1 << bd) - 1) // 255).astype(np.uint8)
            name = f"png_gray{bd}{sfx}.png"
            write_png(os.path.join(OUT, name), s, 0, bd, interlace, seed=bd, idat_size=97)
            if bd == 16:
                got = pil_pixels(os.path.join(OUT, name)).astype(np.uint16)
                assert (got == s).all(), name
                record(name, s, bits=16)
            else:
                got = pil_pixels(os.path.join(OUT, name), "L")
                assert (got == (s.astype(np.uint32) * 255 // ((1 << bd) - 1))).all(), name
                record(name, got)
        # gray+alpha 8/16
        la = np.dstack([gray8, alpha])
        name = f"png_la8{sfx}.png"
        write_png(os.path.join(OUT, name), la, 4, 8, interlace, seed=5)
        got = pil_pixels(os.path.join(OUT, name), "LA"); assert (got == la).all(); record(name, got)
        la16 = wide(la, 6)
        name = f"png_la16{sfx}.png"
        write_png(os.path.join(OUT, name), la16, 4, 16, interlace, seed=6)
        got = pil_pixels(os.path.join(OUT, name), "LA"); assert (got == (la16 >> 8)).all(), name
        record(name, la16, bits=16)
        # RGB / RGBA 8/16
        for c, ct in ((3, 2), (4, 6)):
            s8 = rgb8 if c == 3 else np.dstack([rgb8, alpha])
            name = f"png_{'rgb' if c == 3 else 'rgba'}8{sfx}.png"
            write_png(os.path.join(OUT, name), s8, ct, 8, interlace, seed=10 + c, idat_size=61)
            got = pil_pixels(os.path.join(OUT, name)); assert (got == s8).all(), name; record(name, got)
            s16 = wide(s8, c)
            name = f"png_{'rgb' if c == 3 else 'rgba'}16{sfx}.png"
            write_png(os.path.join(OUT, name), s16, ct, 16, interlace, seed=20 + c)
            got = pil_pixels(os.path.join(OUT, name)); assert (got == (s16 >> 8)).all(), name
            record(name, s16, bits=16)
        # palette 1/2/4/8 with tRNS
        for bd in (1, 2, 4, 8):
            n = 1 << bd if bd < 8 else 180
            rng = np.random.default_rng(bd)
            pal = rng.integers(0, 256, (n, 3), dtype=np.uint8)
            idx = ((gray8.astype(np.uint32) * n) // 256).astype(np.uint8)
            trns = bytes(int(v) for v in rng.integers(0, 256, max(1, n // 2)))
            name = f"png_palette{bd}_trns{sfx}.png"
            write_png(os.path.join(OUT, name), idx, 3, bd, interlace, palette=pal, trns=trns, seed=30 + bd)
            got = pil_pixels(os.path.join(OUT, name), "RGBA")
            record(name, got)
        # gray and RGB with tRNS
        name = f"png_gray8_trns{sfx}.png"
        write_png(os.path.join(OUT, name), gray8, 0, 8, interlace, trns=struct.pack(">H", int(gray8[3, 4])), seed=40)
        record(name, pil_pixels(os.path.join(OUT, name), "LA"))
        name = f"png_rgb8_trns{sfx}.png"
        t = rgb8[5, 6]
        write_png(os.path.join(OUT, name), rgb8, 2, 8, interlace, trns=struct.pack(">HHH", *map(int, t)), seed=41)
        record(name, pil_pixels(os.path.join(OUT, name), "RGBA"))
        name = f"png_gray2_trns{sfx}.png"
        s = (gray8 >> 6).astype(np.uint8)
        write_png(os.path.join(OUT, name), s, 0, 2, interlace, trns=struct.pack(">H", 1), seed=42)
        # Pillow 9.4 compares tRNS with the 0..255-scaled sample for sub-8-bit gray and so never matches; the
        # expected alpha follows the PNG spec (and libpng): transparent where the raw 2-bit sample equals 1.
        got = pil_pixels(os.path.join(OUT, name), "L")
        assert (got == s * 85).all(), name
        record(name, np.dstack([got, np.where(s == 1, 0, 255).astype(np.uint8)]),
               note="alpha from the PNG spec; Pillow 9.4 ignores tRNS on sub-8-bit gray")

    # 16-bit gray / RGB with tRNS: PIL cannot give the alpha at 16 bits, so the expected pixels follow the spec
    # (alpha 0 where all samples equal the tRNS value, else 65535) and PIL's 8-bit view is cross-checked.
    g16 = wide(gray8, 50)
    t = int(g16[2, 3])
    name = "png_gray16_trns.png"
    write_png(os.path.join(OUT, name), g16, 0, 16, False, trns=struct.pack(">H", t), seed=50)
    assert (pil_pixels(os.path.join(OUT, name)).astype(np.uint16) == g16).all()
    record(name, np.dstack([g16, np.where(g16 == t, 0, 65535).astype(np.uint16)]), bits=16)
    c16 = wide(rgb8, 51)
    c16[7, 8] = c16[1, 1]
    t = [int(v) for v in c16[1, 1]]
    name = "png_rgb16_trns_adam7.png"
    write_png(os.path.join(OUT, name), c16, 2, 16, True, trns=struct.pack(">HHH", *t), seed=51)
    assert (pil_pixels(os.path.join(OUT, name)) == (c16 >> 8)).all()
    mask = (c16 == np.array(t, np.uint16)).all(-1)
    record(name, np.dstack([c16, np.where(mask, 0, 65535).astype(np.uint16)]), bits=16)

    # Tiny images where some Adam7 passes are empty.
    for (w, h) in ((1, 1), (3, 2), (5, 9)):
        s = picture(w, h, w * 10 + h)
        name = f"png_rgb8_adam7_{w}x{h}.png"
        write_png(os.path.join(OUT, name), s, 2, 8, True, seed=w)
        got = pil_pixels(os.path.join(OUT, name)); assert (got == s).all(); record(name, got)
    # A larger one with many IDAT chunks and no compression.
    s = picture(64, 48, 99)
    name = "png_rgb8_stored_many_idat.png"
    write_png(os.path.join(OUT, name), s, 2, 8, False, seed=99, idat_size=50, level=0)
    got = pil_pixels(os.path.join(OUT, name)); assert (got == s).all(); record(name, got)


# ---------------------------------------------------------------- a small baseline JPEG encoder

ZIGZAG = [0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14,
          21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60,
          61, 54, 47, 55, 62, 63]
QLUM = [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51,
        87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101,
        72, 92, 95, 98, 112, 100, 103, 99]
QCHR = [17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99,
        99, 99, 99] + [99] * 32
_C = np.array([[np.sqrt((1 if u == 0 else 2) / 8) * np.cos((2 * x + 1) * u * np.pi / 16) for x in range(8)] for u in range(8)])


def _qtable(base, quality):
    s = 5000 / quality if quality < 50 else 200 - 2 * quality
    return [min(255, max(1, (b * s + 50) // 100)) for b in base]


def _optimal_huffman(freq_in):
    """JPEG Annex K.2 (libjpeg's jpeg_gen_optimal_table): returns (bits[1..16], values)."""
    freq = [0] * 257
    for s, f in freq_in.items():
        freq[s] = f
    freq[256] = 1
    codesize, others = [0] * 257, [-1] * 257
    while True:
        c1 = c2 = -1
        v = v2 = 1 << 62
        for i in range(257):
            if freq[i] and freq[i] <= v:
                v, c1 = freq[i], i
        for i in range(257):
            if freq[i] and freq[i] <= v2 and i != c1:
                v2, c2 = freq[i], i
        if c2 < 0:
            break
        freq[c1] += freq[c2]; freq[c2] = 0
        codesize[c1] += 1
        while others[c1] >= 0:
            c1 = others[c1]; codesize[c1] += 1
        others[c1] = c2
        codesize[c2] += 1
        while others[c2] >= 0:
            c2 = others[c2]; codesize[c2] += 1
    bits = [0] * 33
    for i in range(257):
        if codesize[i]:
            bits[codesize[i]] += 1
    for i in range(32, 16, -1):
        while bits[i] > 0:
            j = i - 2
            while bits[j] == 0:
                j -= 1
            bits[i] -= 2; bits[i - 1] += 1; bits[j + 1] += 2; bits[j] -= 1
    i = 16
    while bits[i] == 0:
        i -= 1
    bits[i] -= 1
    vals = [j for i in range(1, 33) for j in range(256) if codesize[j] == i]
    return bits[1:17], vals


def _codes(bits, vals):
    table, code, k = {}, 0, 0
    for l in range(1, 17):
        for _ in range(bits[l - 1]):
            table[vals[k]] = (code, l); code += 1; k += 1
        code <<= 1
    return table


def _category(v):
    v = abs(int(v))
    n = 0
    while v:
        n += 1; v >>= 1
    return n


def _vbits(v, n):
    return int(v) if v >= 0 else int(v) + (1 << n) - 1


class _BitWriter:
    def __init__(self):
        self.out, self.acc, self.n = bytearray(), 0, 0

    def put(self, code, length):
        self.acc = (self.acc << length) | code; self.n += length
        while self.n >= 8:
            b = (self.acc >> (self.n - 8)) & 0xFF
            self.out.append(b)
            if b == 0xFF:
                self.out.append(0)
            self.n -= 8
        self.acc &= (1 << self.n) - 1

    def flush(self):
        if self.n:
            self.put((1 << (8 - self.n)) - 1, 8 - self.n)


def encode_jpeg(path, rgb, quality=75, sampling=((2, 2), (1, 1), (1, 1)), restart=0, gray=False,
                interleaved=True, adobe_rgb=False, jfif=True):
    """Baseline sequential JPEG with optimal Huffman tables. sampling: (h, v) per component."""
    rgb = np.asarray(rgb, np.float64)
    H, W = rgb.shape[:2]
    if gray:
        planes = [rgb if rgb.ndim == 2 else rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114]
        sampling = ((1, 1),)
    elif adobe_rgb:
        planes = [rgb[..., 0], rgb[..., 1], rgb[..., 2]]
    else:
        r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
        planes = [0.299 * r + 0.587 * g + 0.114 * b,
                  -0.168735892 * r - 0.331264108 * g + 0.5 * b + 128,
                  0.5 * r - 0.418687589 * g - 0.081312411 * b + 128]
    hmax = max(s[0] for s in sampling); vmax = max(s[1] for s in sampling)
    mcux, mcuy = -(-W // (8 * hmax)), -(-H // (8 * vmax))
    PW, PH = mcux * 8 * hmax, mcuy * 8 * vmax
    qt = [_qtable(QLUM, quality), _qtable(QCHR, quality)]
    tq = [0] + [0 if adobe_rgb else 1] * (len(planes) - 1)
    comps = []
    for ci, plane in enumerate(planes):
        hs, vs = sampling[ci]
        p = np.pad(plane, ((0, PH - H), (0, PW - W)), mode="edge")
        fx, fy = hmax // hs, vmax // vs
        p = p.reshape(PH // fy, fy, PW // fx, fx).mean(axis=(1, 3))
        q = np.array(qt[tq[ci]], np.float64).reshape(8, 8)
        by, bx = p.shape[0] // 8, p.shape[1] // 8
        blocks = np.zeros((by, bx, 64), np.int64)
        for yy in range(by):
            for xx in range(bx):
                blk = p[yy * 8:yy * 8 + 8, xx * 8:xx * 8 + 8] - 128
                f = _C @ blk @ _C.T
                blocks[yy, xx] = np.round(f / q).astype(np.int64).reshape(-1)[ZIGZAG]
        # component size (not MCU padded) for non-interleaved scans
        cw, ch = -(-W * hs // hmax), -(-H * vs // vmax)
        comps.append(dict(h=hs, v=vs, tq=tq[ci], blocks=blocks, bw=-(-cw // 8), bh=-(-ch // 8), td=0 if ci == 0 or adobe_rgb else 1))

    def mcu_sequence(scan_comps):
        """Yields lists of (comp index, block) per MCU."""
        if len(scan_comps) == 1:
            c = comps[scan_comps[0]]
            for yy in range(c["bh"]):
                for xx in range(c["bw"]):
                    yield [(scan_comps[0], c["blocks"][yy, xx])]
        else:
            for my in range(mcuy):
                for mx in range(mcux):
                    mcu = []
                    for ci in scan_comps:
                        c = comps[ci]
                        for v in range(c["v"]):
                            for h in range(c["h"]):
                                mcu.append((ci, c["blocks"][my * c["v"] + v, mx * c["h"] + h]))
                    yield mcu

    scans = [list(range(len(comps)))] if interleaved else [[i] for i in range(len(comps))]

    def symbols(scan):
        """(kind, table, symbol, extra bits, nbits) per coded item, with restart marks."""
        pred = {ci: 0 for ci in scan}
        items = []
        for k, mcu in enumerate(mcu_sequence(scan)):
            if restart and k and k % restart == 0:
                items.append(("rst",))
                pred = {ci: 0 for ci in scan}
            for ci, blk in mcu:
                td = comps[ci]["td"]
                diff = int(blk[0]) - pred[ci]; pred[ci] = int(blk[0])
                n = _category(diff)
                items.append(("dc", td, n, _vbits(diff, n), n))
                run = 0
                last = max([i for i in range(1, 64) if blk[i] != 0], default=0)
                for i in range(1, last + 1):
                    if blk[i] == 0:
                        run += 1; continue
                    while run > 15:
                        items.append(("ac", td, 0xF0, 0, 0)); run -= 16
                    n = _category(blk[i])
                    items.append(("ac", td, (run << 4) | n, _vbits(int(blk[i]), n), n)); run = 0
                if last < 63:
                    items.append(("ac", td, 0, 0, 0))
        return items

    all_items = [symbols(s) for s in scans]
    freqs = {}
    for items in all_items:
        for it in items:
            if it[0] != "rst":
                freqs.setdefault((it[0], it[1]), {}).setdefault(it[2], 0)
                freqs[(it[0], it[1])][it[2]] += 1
    tables = {k: _optimal_huffman(f) for k, f in freqs.items()}
    codes = {k: _codes(*t) for k, t in tables.items()}

    out = bytearray(b"\xff\xd8")
    if jfif:
        out += b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    if adobe_rgb:
        out += b"\xff\xee" + struct.pack(">H", 14) + b"Adobe" + struct.pack(">HHHB", 100, 0, 0, 0)
    for t in sorted(set(c["tq"] for c in comps)):
        out += b"\xff\xdb" + struct.pack(">HB", 67, t) + bytes(qt[t][z] for z in ZIGZAG)
    out += b"\xff\xc0" + struct.pack(">HBHHB", 8 + 3 * len(comps), 8, H, W, len(comps))
    for ci, c in enumerate(comps):
        out += struct.pack(">BBB", ci + 1, (c["h"] << 4) | c["v"], c["tq"])
    for (kind, td), (bits, vals) in sorted(tables.items()):
        body = struct.pack(">B", (0 if kind == "dc" else 0x10) | td) + bytes(bits) + bytes(vals)
        out += b"\xff\xc4" + struct.pack(">H", 2 + len(body)) + body
    if restart:
        out += b"\xff\xdd" + struct.pack(">HH", 4, restart)
    for scan, items in zip(scans, all_items):
        out += b"\xff\xda" + struct.pack(">HB", 6 + 2 * len(scan), len(scan))
        for ci in scan:
            td = comps[ci]["td"]
            out += struct.pack(">BB", ci + 1, (td << 4) | td)
        out += b"\x00\x3f\x00"
        bw = _BitWriter()
        rst = 0
        for it in items:
            if it[0] == "rst":
                bw.flush(); out += bw.out; bw.out = bytearray()
                out += bytes([0xFF, 0xD0 + rst]); rst = (rst + 1) % 8
                continue
            code, length = codes[(it[0], it[1])][it[2]]
            bw.put(code, length)
            if it[4]:
                bw.put(it[3], it[4])
        bw.flush(); out += bw.out
    out += b"\xff\xd9"
    with open(path, "wb") as f:
        f.write(bytes(out))


# ---------------------------------------------------------------- JPEG cases

# Our decoder reproduces libjpeg-turbo (islow IDCT, fancy upsampling) bit for bit on every file here; if the goldens
# are regenerated with a different libjpeg (e.g. IJG libjpeg 9, whose upsampling differs), relax these.
JPEG_TOL_MAX, JPEG_TOL_MEAN = 0, 0.0


def jpeg_record(name, convert=None, tol_max=JPEG_TOL_MAX, tol_mean=JPEG_TOL_MEAN, exif=False, row_step=1):
    im = Image.open(os.path.join(OUT, name))
    im.load()
    if exif:
        im = ImageOps.exif_transpose(im)
    if convert:
        im = im.convert(convert)
    record(name, np.asarray(im), kind="tolerance", tol_max=tol_max, tol_mean=tol_mean, row_step=row_step)


def jpeg_cases():
    W, H = 61, 45  # not multiples of 8/16: partial MCUs on both edges
    rgb = picture(W, H, 7)
    im = Image.fromarray(rgb)
    for q in (30, 75, 95):
        for ss, tag in ((0, "444"), (1, "422"), (2, "420")):
            name = f"jpeg_q{q}_{tag}.jpg"
            im.save(os.path.join(OUT, name), quality=q, subsampling=ss)
            jpeg_record(name)
    for ss, tag in ((0, "444"), (1, "422"), (2, "420")):
        name = f"jpeg_progressive_{tag}.jpg"
        im.save(os.path.join(OUT, name), quality=85, subsampling=ss, progressive=True)
        jpeg_record(name)
    name = "jpeg_progressive_optimized_q60.jpg"
    Image.fromarray(picture(64, 48, 8)).save(os.path.join(OUT, name), quality=60, progressive=True, optimize=True)
    jpeg_record(name)
    name = "jpeg_gray.jpg"
    Image.fromarray(gray_picture(W, H, 9)).save(os.path.join(OUT, name), quality=80)
    jpeg_record(name)
    name = "jpeg_gray_progressive.jpg"
    Image.fromarray(gray_picture(W, H, 10)).save(os.path.join(OUT, name), quality=80, progressive=True)
    jpeg_record(name)
    name = "jpeg_cmyk.jpg"
    Image.fromarray(rgb).convert("CMYK").save(os.path.join(OUT, name), quality=90)
    jpeg_record(name, convert="RGB")
    # EXIF orientations 1..8 on a non-square picture (32x24 stored).
    base = Image.fromarray(picture(32, 24, 11))
    for o in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = o
        name = f"jpeg_exif_orientation{o}.jpg"
        base.save(os.path.join(OUT, name), quality=90, exif=exif)
        jpeg_record(name, exif=True)
    # Our own encoder: restart intervals, odd sampling, non-interleaved scans, Adobe RGB.
    own = [
        ("jpeg_own_420_restart1.jpg", dict(sampling=((2, 2), (1, 1), (1, 1)), restart=1)),
        ("jpeg_own_420_restart5.jpg", dict(sampling=((2, 2), (1, 1), (1, 1)), restart=5)),
        ("jpeg_own_444_restart3.jpg", dict(sampling=((1, 1), (1, 1), (1, 1)), restart=3)),
        ("jpeg_own_422_restart2.jpg", dict(sampling=((2, 1), (1, 1), (1, 1)), restart=2)),
        ("jpeg_own_440.jpg", dict(sampling=((1, 2), (1, 1), (1, 1)))),
        ("jpeg_own_411.jpg", dict(sampling=((4, 1), (1, 1), (1, 1)))),
        ("jpeg_own_420_noninterleaved.jpg", dict(sampling=((2, 2), (1, 1), (1, 1)), interleaved=False)),
        ("jpeg_own_gray_restart4.jpg", dict(gray=True, restart=4)),
        ("jpeg_own_adobe_rgb.jpg", dict(sampling=((1, 1), (1, 1), (1, 1)), adobe_rgb=True, jfif=False)),
    ]
    for name, kw in own:
        encode_jpeg(os.path.join(OUT, name), rgb, quality=80, **kw)
        jpeg_record(name)
    # Tiny and narrow pictures: 1..2-sample-wide chroma rows (libjpeg falls back to box upsampling there).
    for (w, h) in ((1, 1), (3, 5), (4, 4), (5, 3), (17, 9)):
        for ss, tag in ((1, "422"), (2, "420")):
            name = f"jpeg_tiny_{w}x{h}_{tag}.jpg"
            Image.fromarray(picture(w, h, w * 7 + h)).save(os.path.join(OUT, name), quality=90, subsampling=ss)
            jpeg_record(name)
    for (w, h) in ((1, 1), (3, 5), (9, 2)):
        name = f"jpeg_own_tiny_{w}x{h}_440.jpg"
        encode_jpeg(os.path.join(OUT, name), picture(w, h, w + h), quality=90, sampling=((1, 2), (1, 1), (1, 1)))
        jpeg_record(name)
    # The speed-check picture: 640x480 baseline 4:2:0; expected pixels kept for every 8th row only.
    name = "jpeg_640x480_420.jpg"
    Image.fromarray(picture(640, 480, 12, noise=4.0)).save(os.path.join(OUT, name), quality=85, subsampling=2)
    jpeg_record(name, row_step=8)


# ---------------------------------------------------------------- PGM / PPM

def pnm_cases():
    W, H = 23, 17
    g8 = gray_picture(W, H, 13)
    c8 = picture(W, H, 14)

    def body_ascii(a):
        flat = a.reshape(-1)
        lines = [" ".join(str(int(v)) for v in flat[i:i + 12]) for i in range(0, len(flat), 12)]
        return ("\n".join(lines) + "\n").encode()

    cases = []
    cases.append(("pnm_p5_255.pgm", b"P5\n# a comment\n%d %d\n255\n" % (W, H) + g8.tobytes(), g8, 8))
    cases.append(("pnm_p6_255.ppm", b"P6 %d\t%d 255\r" % (W, H) + c8.tobytes(), c8, 8))
    cases.append(("pnm_p2_255.pgm", b"P2\n%d %d\n# comment\n255\n" % (W, H) + body_ascii(g8), g8, 8))
    cases.append(("pnm_p3_255.ppm", b"P3\n%d %d\n255\n" % (W, H) + body_ascii(c8), c8, 8))
    g15 = (g8 >> 4).astype(np.uint8)
    exp15 = (g15.astype(np.uint32) * 17).astype(np.uint8)
    cases.append(("pnm_p2_15.pgm", b"P2\n%d %d\n15\n" % (W, H) + body_ascii(g15), exp15, 8))
    cases.append(("pnm_p5_15.pgm", b"P5\n%d %d\n15\n" % (W, H) + g15.tobytes(), exp15, 8))
    g16 = wide(g8, 15)
    cases.append(("pnm_p5_65535.pgm", b"P5\n%d %d\n65535\n" % (W, H) + g16.astype(">u2").tobytes(), g16, 16))
    cases.append(("pnm_p2_65535.pgm", b"P2\n%d %d\n65535\n" % (W, H) + body_ascii(g16), g16, 16))
    c10 = (c8.astype(np.uint32) * 4 + 3).astype(np.uint16)  # 10-bit samples, maxval 1023
    exp10 = ((c10.astype(np.uint64) * 65535 * 2 + 1023) // (2 * 1023)).astype(np.uint16)
    cases.append(("pnm_p6_1023.ppm", b"P6\n%d %d\n1023\n" % (W, H) + c10.astype(">u2").tobytes(), exp10, 16))
    cases.append(("pnm_p3_1023.ppm", b"P3\n%d %d\n1023\n" % (W, H) + body_ascii(c10), exp10, 16))
    for name, data, expected, bits in cases:
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
        # Cross-check against PIL where PIL keeps the precision.
        im = Image.open(os.path.join(OUT, name)); im.load()
        got = np.asarray(im)
        if bits == 8 or im.mode == "I":
            assert (got.astype(np.int64) == expected.astype(np.int64)).all(), name
        else:
            assert (np.abs(got.astype(np.int64) - (expected.astype(np.int64) >> 8)) <= 1).all(), name
        record(name, expected, bits=bits)


if __name__ == "__main__":
    for f in os.listdir(OUT):
        os.remove(os.path.join(OUT, f))
    png_cases()
    jpeg_cases()
    pnm_cases()
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(MANIFEST, f, indent=1)
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"{len(MANIFEST)} images, {len(os.listdir(OUT))} files, {total / 1024:.0f} KiB in {OUT}")
