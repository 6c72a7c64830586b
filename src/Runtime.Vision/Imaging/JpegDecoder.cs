using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Runtime.Vision.Imaging;

/// <summary>
/// JPEG reader: baseline and extended sequential (SOF0/SOF1) and progressive (SOF2) Huffman-coded 8-bit JPEGs;
/// 1 (gray), 3 (YCbCr or RGB) or 4 (CMYK/YCCK, converted to RGB as PIL does) components; any integral sampling
/// factors (4:4:4, 4:2:2, 4:2:0, 4:4:0, 4:1:1, ...); interleaved and non-interleaved scans; restart markers;
/// EXIF orientation. Output: 1 channel for gray files, else 3 (RGB).
/// <para>
/// The pixel pipeline reproduces libjpeg(-turbo)'s defaults, which PIL uses: the 'islow' integer IDCT, "fancy"
/// (triangle-filter) upsampling for h2v1, h1v2 and h2v2 chroma (box replication for other ratios) and the
/// fixed-point YCbCr-&gt;RGB tables of jdcolor.c; see docs/imaging.md for the measured differences.
/// </para>
/// </summary>
public static class JpegDecoder
{
    public static bool IsJpeg(ReadOnlySpan<byte> data) => data.Length >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF;

    public static unsafe Image Decode(ReadOnlySpan<byte> data, ImageDecodeOptions? options = null)
    {
        options ??= ImageDecodeOptions.Default;
        if (data.Length < 4 || data[0] != 0xFF || data[1] != 0xD8) throw new ImageFormatException("JPEG: missing SOI marker");
        fixed (byte* p = data)
        {
            using var reader = new JpegReader(p, data.Length, options);
            return reader.Decode();
        }
    }

    /// <summary>The EXIF orientation (1..8) of a JPEG, or 1 when it has none.</summary>
    public static int ReadExifOrientation(ReadOnlySpan<byte> data)
    {
        int pos = 2;
        while (pos + 4 <= data.Length && data[pos] == 0xFF)
        {
            int m = data[pos + 1];
            if (m == 0xFF) { pos++; continue; }
            if (m == 0xDA || m == 0xD9) break;
            int len = data[pos + 2] << 8 | data[pos + 3];
            if (len < 2 || pos + 2 + len > data.Length) break;
            if (m == 0xE1)
            {
                int o = JpegReader.ParseExifOrientation(data.Slice(pos + 4, len - 2));
                if (o > 0) return o;
            }
            pos += 2 + len;
        }
        return 1;
    }
}

internal sealed unsafe class JpegReader : IDisposable
{
    // Zigzag index -> natural index, with 16 extra entries (as libjpeg) so corrupt runs past 63 land on 63.
    internal static readonly byte[] NaturalOrder =
    [
        0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
        35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
        63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63,
    ];

    private readonly byte* _data;
    private readonly int _len;
    private readonly ImageDecodeOptions _options;
    private int _pos;

    private readonly HuffTable?[] _dcTables = new HuffTable?[4];
    private readonly HuffTable?[] _acTables = new HuffTable?[4];
    private readonly int[]?[] _qt = new int[]?[4]; // natural order
    private int _restartInterval;
    private bool _jfif, _adobe;
    private int _adobeTransform = -1;
    private int _orientation = 1;

    // frame
    private bool _frameSeen, _progressive;
    private int _width, _height, _hmax, _vmax, _mcusX, _mcusY;
    private Component[] _comps = [];
    private bool _anyScan;

    // bit reader: _bits holds _nbits valid bits, left-aligned
    private ulong _bits;
    private int _nbits;
    private int _padBits;
    private bool _markerHit;
    private int _eobrun;

    public JpegReader(byte* data, int len, ImageDecodeOptions options)
    {
        _data = data; _len = len; _options = options;
    }

    private sealed class Component
    {
        public int Id, H, V, Tq;
        public int BlocksPerLine, BlocksPerColumn; // padded to whole MCUs
        public int BW, BH; // blocks covering the component's own size
        public int DsWidth, DsHeight; // downsampled size in samples
        public int Stride; // plane row bytes = BlocksPerLine * 8
        public byte* Plane;
        public short* Coefs; // progressive only
        public PinnedBuffer PlaneBuffer, CoefBuffer;
        public int Pred;
        public HuffTable? Dc, Ac;
    }

    public void Dispose()
    {
        foreach (var c in _comps)
        {
            if (c == null) continue;
            c.Plane = null; c.Coefs = null;
            c.PlaneBuffer.Dispose();
            c.CoefBuffer.Dispose();
        }
    }

    private static ImageFormatException Error(string msg) => new("JPEG: " + msg);

    // ---------------------------------------------------------------- markers

    public Image Decode()
    {
        _pos = 2;
        bool done = false;
        while (!done)
        {
            int marker = NextMarker();
            if (marker < 0)
            {
                // Data ends without EOI: accept when image data was decoded (libjpeg warns too).
                if (_anyScan) break;
                throw Error("file ends before any image data (truncated file?)");
            }
            switch (marker)
            {
                case 0xD8: throw Error("second SOI marker");
                case 0xD9: done = true; break;
                case >= 0xD0 and <= 0xD7: break; // stray RST: ignore
                case 0x01: break; // TEM
                case 0xC0 or 0xC1 or 0xC2: ReadSof(marker == 0xC2); break;
                case 0xC3 or 0xC5 or 0xC6 or 0xC7:
                    throw Error("lossless and hierarchical JPEG are not supported");
                case >= 0xC9 and <= 0xCF when marker != 0xCC:
                    throw Error("arithmetic-coded JPEG is not supported");
                case 0xC4: ReadDht(); break;
                case 0xDB: ReadDqt(); break;
                case 0xDD: ReadDri(); break;
                case 0xDA: ReadSosAndDecodeScan(); break;
                case 0xE0: ReadApp0(); break;
                case 0xE1: ReadApp1(); break;
                case 0xEE: ReadApp14(); break;
                case 0xDC: ReadSegment(); break; // DNL after a frame with a height: ignore
                default:
                    if (marker == 0xCC || (marker >= 0xE0 && marker <= 0xFE) || marker >= 0xC0) { ReadSegment(); break; }
                    throw Error($"unexpected marker 0xFF{marker:X2} at offset {_pos - 2}");
            }
        }
        if (!_frameSeen) throw Error("no SOF (frame header) marker");
        if (!_anyScan) throw Error("no scan (SOS) in the file");
        if (_progressive) FinishProgressive();
        var img = Output();
        if (_options.ApplyExifOrientation && _orientation != 1) img = img.ApplyExifOrientation(_orientation);
        return img;
    }

    /// <summary>Reads the next marker code at _pos (skipping fill bytes); -1 at end of data.</summary>
    private int NextMarker()
    {
        while (_pos < _len && _data[_pos] != 0xFF) _pos++; // tolerate garbage between segments (libjpeg warns)
        while (_pos < _len && _data[_pos] == 0xFF) _pos++;
        if (_pos >= _len) return -1;
        int m = _data[_pos++];
        if (m == 0) return NextMarker(); // a stuffed FF00 outside a scan: skip
        return m;
    }

    /// <summary>The current segment's payload (after the 2-byte length); advances past it.</summary>
    private ReadOnlySpan<byte> ReadSegment()
    {
        if (_len - _pos < 2) throw Error("truncated marker segment");
        int l = _data[_pos] << 8 | _data[_pos + 1];
        if (l < 2) throw Error($"invalid segment length {l}");
        if (l > _len - _pos) throw Error($"segment at offset {_pos} claims {l} bytes but only {_len - _pos} remain (truncated file?)");
        var s = new ReadOnlySpan<byte>(_data + _pos + 2, l - 2);
        _pos += l;
        return s;
    }

    private void ReadApp0()
    {
        var s = ReadSegment();
        if (s.Length >= 5 && s[0] == 'J' && s[1] == 'F' && s[2] == 'I' && s[3] == 'F' && s[4] == 0) _jfif = true;
    }

    private void ReadApp14()
    {
        var s = ReadSegment();
        if (s.Length >= 12 && s[0] == 'A' && s[1] == 'd' && s[2] == 'o' && s[3] == 'b' && s[4] == 'e')
        {
            _adobe = true;
            _adobeTransform = s[11];
        }
    }

    private void ReadApp1()
    {
        var s = ReadSegment();
        int o = ParseExifOrientation(s);
        if (o > 0) _orientation = o;
    }

    /// <summary>Orientation tag (0x0112) from an APP1 payload "Exif\0\0" + TIFF; 0 when absent or malformed.</summary>
    internal static int ParseExifOrientation(ReadOnlySpan<byte> s)
    {
        if (s.Length < 14 || s[0] != 'E' || s[1] != 'x' || s[2] != 'i' || s[3] != 'f' || s[4] != 0 || s[5] != 0) return 0;
        var t = s[6..];
        bool le;
        if (t[0] == 'I' && t[1] == 'I') le = true;
        else if (t[0] == 'M' && t[1] == 'M') le = false;
        else return 0;
        if (U16(t, 2, le) != 42) return 0;
        long ifd = U32(t, 4, le);
        if (ifd < 8 || ifd > t.Length - 2) return 0;
        int n = U16(t, (int)ifd, le);
        for (int i = 0; i < n; i++)
        {
            int e = (int)ifd + 2 + i * 12;
            if (e + 12 > t.Length) return 0;
            if (U16(t, e, le) == 0x0112)
            {
                int type = U16(t, e + 2, le);
                int v = type == 3 ? U16(t, e + 8, le) : type == 4 ? (int)Math.Min(U32(t, e + 8, le), 100) : -1;
                return v >= 1 && v <= 8 ? v : 0;
            }
        }
        return 0;
    }

    private static int U16(ReadOnlySpan<byte> t, int o, bool le) =>
        o < 0 || o + 2 > t.Length ? -1 : le ? t[o] | t[o + 1] << 8 : t[o] << 8 | t[o + 1];

    private static long U32(ReadOnlySpan<byte> t, int o, bool le) => o < 0 || o + 4 > t.Length ? -1 : le
        ? (uint)(t[o] | t[o + 1] << 8 | t[o + 2] << 16 | t[o + 3] << 24)
        : (uint)(t[o] << 24 | t[o + 1] << 16 | t[o + 2] << 8 | t[o + 3]);

    private void ReadDri()
    {
        var s = ReadSegment();
        if (s.Length < 2) throw Error("DRI segment too short");
        _restartInterval = s[0] << 8 | s[1];
    }

    private void ReadDqt()
    {
        var s = ReadSegment();
        int p = 0;
        while (p < s.Length)
        {
            int pq = s[p] >> 4, tq = s[p] & 15;
            p++;
            if (tq > 3) throw Error($"quantization table id {tq} is invalid");
            if (pq > 1) throw Error($"quantization table precision {pq} is invalid");
            int need = pq == 0 ? 64 : 128;
            if (s.Length - p < need) throw Error("DQT segment too short");
            var q = new int[64];
            for (int k = 0; k < 64; k++)
                q[NaturalOrder[k]] = pq == 0 ? s[p + k] : s[p + 2 * k] << 8 | s[p + 2 * k + 1];
            p += need;
            _qt[tq] = q;
        }
    }

    private void ReadDht()
    {
        var s = ReadSegment();
        int p = 0;
        Span<int> counts = stackalloc int[17];
        while (p < s.Length)
        {
            if (s.Length - p < 17) throw Error("DHT segment too short");
            int tc = s[p] >> 4, th = s[p] & 15;
            if (tc > 1 || th > 3) throw Error($"Huffman table class {tc} / id {th} is invalid");
            int total = 0;
            for (int l = 1; l <= 16; l++) { counts[l] = s[p + l]; total += counts[l]; }
            p += 17;
            if (total > 256 || s.Length - p < total) throw Error("DHT segment too short for its code counts");
            var table = new HuffTable(counts, s.Slice(p, total));
            p += total;
            (tc == 0 ? _dcTables : _acTables)[th] = table;
        }
    }

    private void ReadSof(bool progressive)
    {
        var s = ReadSegment();
        if (_frameSeen) throw Error("more than one frame (SOF) marker");
        if (s.Length < 6) throw Error("SOF segment too short");
        int precision = s[0];
        if (precision != 8) throw Error($"{precision}-bit samples are not supported (8 only)");
        int h = s[1] << 8 | s[2], w = s[3] << 8 | s[4], n = s[5];
        if (h == 0) throw Error("images whose height is given by a DNL marker are not supported");
        if (w == 0) throw Error("image width 0");
        _options.CheckSize("JPEG", w, h);
        if (n != 1 && n != 3 && n != 4) throw Error($"{n} components are not supported (1, 3 or 4)");
        if (s.Length < 6 + 3 * n) throw Error("SOF segment too short for its components");
        var comps = new Component[n];
        for (int i = 0; i < n; i++)
        {
            int id = s[6 + 3 * i], hv = s[7 + 3 * i], tq = s[8 + 3 * i];
            int hs = hv >> 4, vs = hv & 15;
            if (hs < 1 || hs > 4 || vs < 1 || vs > 4) throw Error($"invalid sampling factors {hs}x{vs}");
            if (tq > 3) throw Error($"invalid quantization table id {tq}");
            for (int j = 0; j < i; j++) if (comps[j].Id == id) throw Error($"duplicate component id {id}");
            comps[i] = new Component { Id = id, H = hs, V = vs, Tq = tq };
        }
        _comps = comps;
        _width = w; _height = h; _progressive = progressive; _frameSeen = true;
        _hmax = 1; _vmax = 1;
        foreach (var c in _comps) { _hmax = Math.Max(_hmax, c.H); _vmax = Math.Max(_vmax, c.V); }
        foreach (var c in _comps)
            if (_hmax % c.H != 0 || _vmax % c.V != 0)
                throw Error($"non-integral sampling ratio {_hmax}/{c.H} x {_vmax}/{c.V} is not supported");
        _mcusX = (w + 8 * _hmax - 1) / (8 * _hmax);
        _mcusY = (h + 8 * _vmax - 1) / (8 * _vmax);
        long blocks = 0;
        foreach (var c in _comps)
        {
            c.DsWidth = (int)(((long)w * c.H + _hmax - 1) / _hmax);
            c.DsHeight = (int)(((long)h * c.V + _vmax - 1) / _vmax);
            c.BW = (c.DsWidth + 7) / 8; c.BH = (c.DsHeight + 7) / 8;
            c.BlocksPerLine = _mcusX * c.H; c.BlocksPerColumn = _mcusY * c.V;
            c.Stride = c.BlocksPerLine * 8;
            blocks += (long)c.BW * c.BH;
        }
        // Every block costs at least one bit of entropy-coded data (its DC code): a header that promises more
        // blocks than the file has bits is corrupt, and is rejected before any big allocation.
        if (blocks > 8L * _len + 4096)
            throw Error($"{_len} bytes cannot hold a {w}x{h} image (truncated or corrupt header)");
        foreach (var c in _comps)
        {
            long n64 = (long)c.BlocksPerLine * c.BlocksPerColumn * 64;
            c.Plane = c.PlaneBuffer.Rent(n64);
            if (progressive) c.Coefs = (short*)c.CoefBuffer.Rent(n64 * 2);
        }
    }

    // ---------------------------------------------------------------- bit reader

    private void ResetBits()
    {
        _bits = 0; _nbits = 0; _padBits = 0; _markerHit = false;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Fill()
    {
        if (!_markerHit && _len - _pos >= 8)
        {
            // Fast path: the next 8 bytes hold no 0xFF (so no stuffing and no marker): take whole bytes at once.
            ulong v = System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(new ReadOnlySpan<byte>(_data + _pos, 8));
            ulong nv = ~v;
            if (((nv - 0x0101010101010101UL) & ~nv & 0x8080808080808080UL) == 0)
            {
                int k = (64 - _nbits) >> 3;
                int kb = k * 8;
                _bits |= (kb == 64 ? v : v >> (64 - kb)) << (64 - _nbits - kb);
                _nbits += kb;
                _pos += k;
                return;
            }
        }
        while (_nbits <= 56)
        {
            uint b;
            if (_markerHit || _pos >= _len) { _markerHit = true; b = 0; _padBits += 8; }
            else
            {
                b = _data[_pos];
                if (b != 0xFF) _pos++;
                else if (_pos + 1 < _len && _data[_pos + 1] == 0) _pos += 2;
                else { _markerHit = true; b = 0; _padBits += 8; }
            }
            _bits |= (ulong)b << (56 - _nbits);
            _nbits += 8;
        }
    }

    /// <summary>Throws when decoding consumed bits past the end of the entropy-coded data (a marker or EOF).</summary>
    private void CheckNotOverrun()
    {
        if (_padBits > _nbits) throw Error("entropy-coded data ends early (truncated or corrupt file)");
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int GetBits(int n)
    {
        if (_nbits < n) Fill();
        int v = (int)(_bits >> (64 - n));
        _bits <<= n; _nbits -= n;
        return v;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int GetBit()
    {
        if (_nbits < 1) Fill();
        int v = (int)(_bits >> 63);
        _bits <<= 1; _nbits--;
        return v;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Extend(int v, int s) => v < (1 << (s - 1)) ? v - (1 << s) + 1 : v;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int DecodeSymbol(HuffTable t)
    {
        if (_nbits < 16) Fill();
        int e = t.Fast[(int)(_bits >> (64 - HuffTable.FastBits))];
        if (e != 0)
        {
            int l = e >> 8;
            _bits <<= l; _nbits -= l;
            return e & 0xFF;
        }
        return DecodeSlow(t);
    }

    private int DecodeSlow(HuffTable t)
    {
        for (int l = HuffTable.FastBits + 1; l <= 16; l++)
        {
            int code = (int)(_bits >> (64 - l));
            if (code <= t.MaxCode[l])
            {
                _bits <<= l; _nbits -= l;
                int idx = code + t.ValOffset[l];
                if ((uint)idx >= (uint)t.Values.Length) throw Error("corrupt Huffman code");
                return t.Values[idx];
            }
        }
        throw Error("invalid Huffman code (corrupt data)");
    }

    // ---------------------------------------------------------------- scans

    private void ReadSosAndDecodeScan()
    {
        var s = ReadSegment();
        if (!_frameSeen) throw Error("SOS before SOF");
        if (s.Length < 1) throw Error("SOS segment too short");
        int ns = s[0];
        if (ns < 1 || ns > 4 || s.Length < 1 + 2 * ns + 3) throw Error("SOS segment is invalid");
        var scomps = new Component[ns];
        int blocksPerMcu = 0;
        for (int i = 0; i < ns; i++)
        {
            int id = s[1 + 2 * i], tabs = s[2 + 2 * i];
            Component? c = null;
            foreach (var x in _comps) if (x.Id == id) c = x;
            if (c == null) throw Error($"scan names unknown component {id}");
            for (int j = 0; j < i; j++) if (scomps[j] == c) throw Error($"scan names component {id} twice");
            int td = tabs >> 4, ta = tabs & 15;
            if (td > 3 || ta > 3) throw Error("invalid Huffman table selector");
            c.Dc = _dcTables[td]; c.Ac = _acTables[ta];
            scomps[i] = c;
            blocksPerMcu += c.H * c.V;
        }
        if (ns > 1 && blocksPerMcu > 10) throw Error($"an MCU of {blocksPerMcu} blocks is invalid (at most 10)");
        int ss = s[1 + 2 * ns], se = s[2 + 2 * ns], ah = s[3 + 2 * ns] >> 4, al = s[3 + 2 * ns] & 15;

        if (!_progressive)
        {
            // Spectral selection must be 0..63 in sequential JPEG; libjpeg only warns, so do we (ignore it).
            foreach (var c in scomps)
            {
                if (c.Dc == null || c.Ac == null) throw Error("scan uses an undefined Huffman table");
                if (_qt[c.Tq] == null) throw Error($"quantization table {c.Tq} is not defined");
            }
        }
        else
        {
            if (ss > 63 || se > 63 || se < ss || al > 13 || ah > 13) throw Error($"invalid progressive scan parameters Ss={ss} Se={se} Ah={ah} Al={al}");
            if (ss == 0 && se != 0) throw Error("progressive DC scan with AC coefficients");
            if (ss > 0 && ns != 1) throw Error("progressive AC scan with more than one component");
            foreach (var c in scomps)
            {
                if (ss == 0 && ah == 0 && c.Dc == null) throw Error("scan uses an undefined DC Huffman table");
                if (ss > 0 && c.Ac == null) throw Error("scan uses an undefined AC Huffman table");
            }
        }

        ResetBits();
        _eobrun = 0;
        foreach (var c in scomps) c.Pred = 0;
        DecodeScan(scomps, ss, se, ah, al);
        _anyScan = true;
        // Skip to the next marker (tolerating trailing bytes, as libjpeg does).
        CheckNotOverrun();
        ResetBits();
        while (_pos < _len)
        {
            if (_data[_pos] == 0xFF && _pos + 1 < _len && _data[_pos + 1] != 0 && _data[_pos + 1] != 0xFF &&
                !(_data[_pos + 1] >= 0xD0 && _data[_pos + 1] <= 0xD7)) break;
            _pos++;
        }
    }

    private void ProcessRestart(Component[] scomps)
    {
        CheckNotOverrun();
        ResetBits();
        // Find the next marker; it must be RSTn.
        while (_pos < _len)
        {
            if (_data[_pos] == 0xFF && _pos + 1 < _len && _data[_pos + 1] != 0 && _data[_pos + 1] != 0xFF) break;
            _pos++;
        }
        if (_pos + 1 >= _len) throw Error("missing RST marker (truncated file?)");
        int m = _data[_pos + 1];
        if (m < 0xD0 || m > 0xD7) throw Error($"expected an RST marker, found 0xFF{m:X2}");
        _pos += 2;
        foreach (var c in scomps) c.Pred = 0;
        _eobrun = 0;
    }

    private void DecodeScan(Component[] scomps, int ss, int se, int ah, int al)
    {
        int* block = stackalloc int[64];
        int ri = _restartInterval;
        int mcu = 0;
        if (scomps.Length == 1)
        {
            var c = scomps[0];
            for (int by = 0; by < c.BH; by++)
            {
                for (int bx = 0; bx < c.BW; bx++)
                {
                    if (ri > 0 && mcu > 0 && mcu % ri == 0) ProcessRestart(scomps);
                    mcu++;
                    DecodeBlock(c, bx, by, ss, se, ah, al, block);
                }
                CheckNotOverrun();
            }
        }
        else
        {
            for (int my = 0; my < _mcusY; my++)
            {
                for (int mx = 0; mx < _mcusX; mx++)
                {
                    if (ri > 0 && mcu > 0 && mcu % ri == 0) ProcessRestart(scomps);
                    mcu++;
                    foreach (var c in scomps)
                        for (int v = 0; v < c.V; v++)
                            for (int h = 0; h < c.H; h++)
                                DecodeBlock(c, mx * c.H + h, my * c.V + v, ss, se, ah, al, block);
                }
                CheckNotOverrun();
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void DecodeBlock(Component c, int bx, int by, int ss, int se, int ah, int al, int* block)
    {
        if (!_progressive)
        {
            byte* dst = c.Plane + (long)by * 8 * c.Stride + bx * 8;
            if (DecodeBaseline(c, block)) Idct.Islow(block, dst, c.Stride);
            else Idct.DcOnly(block[0], dst, c.Stride);
            return;
        }
        short* coefs = c.Coefs + ((long)by * c.BlocksPerLine + bx) * 64;
        if (ss == 0)
        {
            if (ah == 0) DecodeDcFirst(c, coefs, al);
            else if (GetBit() != 0) coefs[0] |= (short)(1 << al);
        }
        else if (ah == 0) DecodeAcFirst(c, coefs, ss, se, al);
        else DecodeAcRefine(c, coefs, ss, se, al);
    }

    /// <summary>Decodes one block into <paramref name="block"/> (dequantized, natural order); returns false when only the DC coefficient is set.</summary>
    private bool DecodeBaseline(Component c, int* block)
    {
        new Span<int>(block, 64).Clear();
        var q = _qt[c.Tq]!;
        var natural = NaturalOrder;
        int t = DecodeSymbol(c.Dc!);
        if (t > 16) throw Error("invalid DC coefficient size");
        int diff = t == 0 ? 0 : Extend(GetBits(t), t);
        c.Pred += diff;
        block[0] = c.Pred * q[0];
        var ac = c.Ac!;
        bool any = false;
        for (int k = 1; k < 64;)
        {
            int rs = DecodeSymbol(ac);
            int r = rs >> 4, sz = rs & 15;
            if (sz != 0)
            {
                k += r;
                int z = natural[k];
                block[z] = Extend(GetBits(sz), sz) * q[z];
                any = true;
                k++;
            }
            else
            {
                if (r != 15) break;
                k += 16;
            }
        }
        return any;
    }

    private void DecodeDcFirst(Component c, short* coefs, int al)
    {
        int t = DecodeSymbol(c.Dc!);
        if (t > 16) throw Error("invalid DC coefficient size");
        int diff = t == 0 ? 0 : Extend(GetBits(t), t);
        c.Pred += diff;
        coefs[0] = (short)(c.Pred << al);
    }

    private void DecodeAcFirst(Component c, short* coefs, int ss, int se, int al)
    {
        if (_eobrun > 0) { _eobrun--; return; }
        var ac = c.Ac!;
        var natural = NaturalOrder;
        for (int k = ss; k <= se; k++)
        {
            int rs = DecodeSymbol(ac);
            int r = rs >> 4, s = rs & 15;
            if (s != 0)
            {
                k += r;
                coefs[natural[k]] = (short)(Extend(GetBits(s), s) * (1 << al));
            }
            else
            {
                if (r < 15)
                {
                    _eobrun = (1 << r) - 1;
                    if (r > 0) _eobrun += GetBits(r);
                    break;
                }
                k += 15;
            }
        }
    }

    private void DecodeAcRefine(Component c, short* coefs, int ss, int se, int al)
    {
        int p1 = 1 << al, m1 = -1 << al;
        var natural = NaturalOrder;
        int k = ss;
        if (_eobrun == 0)
        {
            var ac = c.Ac!;
            for (; k <= se; k++)
            {
                int rs = DecodeSymbol(ac);
                int r = rs >> 4, s = rs & 15;
                if (s != 0)
                {
                    if (s != 1) throw Error("corrupt progressive refinement data");
                    s = GetBit() != 0 ? p1 : m1;
                }
                else if (r != 15)
                {
                    _eobrun = 1 << r;
                    if (r > 0) _eobrun += GetBits(r);
                    break;
                }
                do
                {
                    short* coef = coefs + natural[k];
                    if (*coef != 0)
                    {
                        if (GetBit() != 0 && (*coef & p1) == 0)
                            *coef = (short)(*coef >= 0 ? *coef + p1 : *coef + m1);
                    }
                    else if (--r < 0) break;
                    k++;
                } while (k <= se);
                if (s != 0) coefs[natural[k]] = (short)s;
            }
        }
        if (_eobrun > 0)
        {
            for (; k <= se; k++)
            {
                short* coef = coefs + natural[k];
                if (*coef != 0 && GetBit() != 0 && (*coef & p1) == 0)
                    *coef = (short)(*coef >= 0 ? *coef + p1 : *coef + m1);
            }
            _eobrun--;
        }
    }

    private void FinishProgressive()
    {
        int* block = stackalloc int[64];
        foreach (var c in _comps)
        {
            var q = _qt[c.Tq] ?? throw Error($"quantization table {c.Tq} is not defined");
            for (int by = 0; by < c.BlocksPerColumn; by++)
                for (int bx = 0; bx < c.BlocksPerLine; bx++)
                {
                    short* src = c.Coefs + ((long)by * c.BlocksPerLine + bx) * 64;
                    for (int i = 0; i < 64; i++) block[i] = src[i] * q[i];
                    Idct.Islow(block, c.Plane + (long)by * 8 * c.Stride + bx * 8, c.Stride);
                }
        }
    }

    // ---------------------------------------------------------------- output: upsampling and colour

    private Image Output()
    {
        int w = _width, h = _height, n = _comps.Length;
        int outCh = n == 1 ? 1 : 3;
        var pixels = GC.AllocateUninitializedArray<byte>(w * h * outCh);
        if (n == 1)
        {
            var c = _comps[0];
            // A single component is never upsampled (libjpeg treats its factors as 1x1).
            fixed (byte* dst = pixels)
                for (int y = 0; y < h; y++)
                    new ReadOnlySpan<byte>(c.Plane + (long)y * c.Stride, w).CopyTo(new Span<byte>(dst + (long)y * w, w));
            return new Image(w, h, 1, pixels);
        }

        // colour space as libjpeg's default_decompress_parms
        int kind; // 0 YCbCr, 1 RGB, 2 CMYK, 3 YCCK
        if (n == 3)
        {
            if (_jfif) kind = 0;
            else if (_adobe) kind = _adobeTransform == 0 ? 1 : 0;
            else if (_comps[0].Id == 82 && _comps[1].Id == 71 && _comps[2].Id == 66) kind = 1;
            else kind = 0;
        }
        else kind = _adobe && _adobeTransform == 0 ? 2 : (_adobe ? 3 : 2);

        int rowLen = _mcusX * _hmax * 8 + 16;
        var rowBufs = new byte[n][];
        for (int i = 0; i < n; i++) rowBufs[i] = new byte[rowLen];
        var tables = ColorTables.Instance;
        fixed (byte* r0 = rowBufs[0], r1 = rowBufs[1], r2 = rowBufs[2], r3 = n == 4 ? rowBufs[3] : rowBufs[2], dst = pixels)
        fixed (int* crr = tables.CrR, cbb = tables.CbB, crg = tables.CrG, cbg = tables.CbG)
        fixed (byte* clampBase = tables.Clamp)
        fixed (short* colsum = new short[rowLen])
        {
            byte* clamp = clampBase + ColorTables.ClampOffset;
            byte** rows = stackalloc byte*[4];
            byte** bufs = stackalloc byte*[4] { r0, r1, r2, r3 };
            for (int y = 0; y < h; y++)
            {
                for (int i = 0; i < n; i++) rows[i] = UpsampleRow(_comps[i], y, bufs[i], colsum);
                byte* o = dst + (long)y * w * 3;
                byte* py = rows[0], pcb = rows[1], pcr = rows[2];
                if (kind == 0) JpegPixels.YccToRgb(py, pcb, pcr, o, w);
                else if (kind == 1)
                {
                    for (int x = 0; x < w; x++, o += 3) { o[0] = py[x]; o[1] = pcb[x]; o[2] = pcr[x]; }
                }
                else
                {
                    byte* pk = rows[3];
                    for (int x = 0; x < w; x++, o += 3)
                    {
                        int c0 = py[x], c1 = pcb[x], c2 = pcr[x], k = pk[x];
                        if (kind == 3)
                        {
                            // libjpeg's YCCK -> CMYK: C = 255 - R(YCC) etc.
                            int yy = c0, cb = c1, cr = c2;
                            c0 = 255 - clamp[yy + crr[cr]];
                            c1 = 255 - clamp[yy + ((cbg[cb] + crg[cr]) >> 16)];
                            c2 = 255 - clamp[yy + cbb[cb]];
                        }
                        // PIL reads 4-component JPEGs as Adobe-inverted CMYK, then converts as its cmyk2rgb.
                        int cc = 255 - c0, mm = 255 - c1, ye = 255 - c2, nk = k; // nk = 255 - (255 - k)
                        o[0] = Cmyk(cc, nk); o[1] = Cmyk(mm, nk); o[2] = Cmyk(ye, nk);
                    }
                }
            }
        }
        return new Image(w, h, 3, pixels);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static byte Cmyk(int c, int nk)
    {
        int tmp = c * nk + 128;
        int v = nk - (((tmp >> 8) + tmp) >> 8);
        return (byte)(v < 0 ? 0 : v > 255 ? 255 : v);
    }

    /// <summary>Returns a pointer to output row <paramref name="y"/> of component <paramref name="c"/> at full resolution.</summary>
    private byte* UpsampleRow(Component c, int y, byte* buf, short* colsum)
    {
        int fx = _hmax / c.H, fy = _vmax / c.V;
        int dsw = c.DsWidth, dsh = c.DsHeight;
        if (fx == 1 && fy == 1) return c.Plane + (long)y * c.Stride;
        if (fx == 2 && fy == 1 && dsw > 2)
        {
            JpegPixels.H2V1Fancy(c.Plane + (long)y * c.Stride, buf, dsw);
            return buf;
        }
        if (fx == 1 && fy == 2)
        {
            int iy = y >> 1;
            byte* in0 = c.Plane + (long)iy * c.Stride;
            int ny = (y & 1) == 0 ? Math.Max(iy - 1, 0) : Math.Min(iy + 1, dsh - 1);
            JpegPixels.H1V2Fancy(in0, c.Plane + (long)ny * c.Stride, buf, dsw, (y & 1) == 0 ? 1 : 2);
            return buf;
        }
        if (fx == 2 && fy == 2 && dsw > 2)
        {
            int iy = y >> 1;
            byte* in0 = c.Plane + (long)iy * c.Stride;
            int ny = (y & 1) == 0 ? Math.Max(iy - 1, 0) : Math.Min(iy + 1, dsh - 1);
            JpegPixels.H2V2Fancy(in0, c.Plane + (long)ny * c.Stride, buf, dsw, colsum);
            return buf;
        }
        // Box replication (libjpeg's int_upsample / h2v1_upsample / h2v2_upsample).
        byte* src = c.Plane + (long)(y / fy) * c.Stride;
        for (int x = 0, i = 0; i < dsw; i++)
        {
            byte v = src[i];
            for (int k = 0; k < fx; k++) buf[x++] = v;
        }
        return buf;
    }

}

/// <summary>
/// A zeroed, pinned byte buffer rented from <see cref="ArrayPool{T}.Shared"/>: decoding many images then reuses
/// memory that is already mapped, instead of paying fresh-page faults for every plane (a large cost in some VMs).
/// </summary>
internal unsafe struct PinnedBuffer : IDisposable
{
    private byte[]? _array;
    private GCHandle _handle;

    public byte* Rent(long length)
    {
        if (length > Array.MaxLength) throw new ImageFormatException("JPEG: image too large");
        _array = ArrayPool<byte>.Shared.Rent((int)length);
        Array.Clear(_array, 0, (int)length);
        _handle = GCHandle.Alloc(_array, GCHandleType.Pinned);
        return (byte*)_handle.AddrOfPinnedObject();
    }

    public void Dispose()
    {
        if (_array == null) return;
        _handle.Free();
        ArrayPool<byte>.Shared.Return(_array);
        _array = null;
    }
}

/// <summary>A Huffman decoding table: a 9-bit lookahead plus libjpeg's maxcode/valoffset for longer codes.</summary>
internal sealed class HuffTable
{
    public const int FastBits = 9;
    public readonly ushort[] Fast = new ushort[1 << FastBits]; // (length << 8) | symbol; 0 = longer code
    public readonly int[] MaxCode = new int[18];
    public readonly int[] ValOffset = new int[18];
    public readonly byte[] Values;

    public HuffTable(ReadOnlySpan<int> counts, ReadOnlySpan<byte> values)
    {
        Values = values.ToArray();
        int code = 0, k = 0;
        for (int l = 1; l <= 16; l++)
        {
            ValOffset[l] = k - code;
            for (int i = 0; i < counts[l]; i++)
            {
                if (code >= 1 << l) throw new ImageFormatException("JPEG: invalid Huffman table (code lengths over-subscribed)");
                if (l <= FastBits)
                {
                    int first = code << (FastBits - l), n = 1 << (FastBits - l);
                    for (int j = 0; j < n; j++) Fast[first + j] = (ushort)(l << 8 | Values[k]);
                }
                code++; k++;
            }
            MaxCode[l] = counts[l] > 0 ? code - 1 : -1;
            code <<= 1;
        }
        MaxCode[17] = int.MaxValue;
    }
}

/// <summary>libjpeg's jdcolor.c YCbCr->RGB tables (16-bit fixed point) and a clamping table.</summary>
internal sealed class ColorTables
{
    public static readonly ColorTables Instance = new();
    public const int ClampOffset = 384;
    public readonly int[] CrR = new int[256], CbB = new int[256], CrG = new int[256], CbG = new int[256];
    public readonly byte[] Clamp = new byte[1024];

    private ColorTables()
    {
        const int scaleBits = 16, oneHalf = 1 << (scaleBits - 1);
        static int Fix(double x) => (int)(x * (1 << scaleBits) + 0.5);
        for (int i = 0, x = -128; i < 256; i++, x++)
        {
            CrR[i] = (Fix(1.40200) * x + oneHalf) >> scaleBits;
            CbB[i] = (Fix(1.77200) * x + oneHalf) >> scaleBits;
            CrG[i] = -Fix(0.71414) * x;
            CbG[i] = -Fix(0.34414) * x + oneHalf;
        }
        for (int i = 0; i < Clamp.Length; i++) Clamp[i] = (byte)Math.Clamp(i - ClampOffset, 0, 255);
    }
}
