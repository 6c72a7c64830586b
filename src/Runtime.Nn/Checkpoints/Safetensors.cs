using System.Buffers.Binary;
using System.Text.Json;

namespace Runtime.Nn.Checkpoints;

/// <summary>Reads and writes the safetensors format (8-byte header length, JSON header, data).</summary>
public static class Safetensors
{
    /// <summary>Largest header accepted.</summary>
    public const long MaxHeaderBytes = 100L * 1024 * 1024;

    /// <summary>Loads every tensor, in file order of their data.</summary>
    public static IReadOnlyDictionary<string, Tensor> Load(string path) => Load(path, out _);

    /// <summary>Loads every tensor and the <c>__metadata__</c> strings.</summary>
    public static IReadOnlyDictionary<string, Tensor> Load(string path, out IReadOnlyDictionary<string, string> metadata)
    {
        using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.RandomAccess);
        long fileLength = f.Length;
        Span<byte> len = stackalloc byte[8];
        if (fileLength < 8) throw new CheckpointFormatException($"safetensors: file of {fileLength} bytes has no 8-byte header length");
        f.ReadExactly(len);
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(len);
        CheckHeaderLength(n, fileLength);
        var header = new byte[n];
        f.ReadExactly(header);
        long dataStart = 8 + (long)n;
        var entries = ParseHeader(header, fileLength - dataStart, out metadata);
        var result = new Dictionary<string, Tensor>();
        foreach (var e in entries)
        {
            long size = e.End - e.Begin;
            if (size > Array.MaxLength) throw new CheckpointFormatException($"safetensors: tensor '{e.Name}' of {size} bytes is too large to load");
            var buf = new byte[size];
            f.Position = dataStart + e.Begin;
            f.ReadExactly(buf);
            result[e.Name] = RawTensor.Make(buf, e.DType, e.Shape);
        }
        return result;
    }

    private static void CheckHeaderLength(ulong n, long fileLength)
    {
        if (n > MaxHeaderBytes) throw new CheckpointFormatException($"safetensors: header length {n} exceeds the 100 MB limit");
        if ((long)n > fileLength - 8) throw new CheckpointFormatException($"safetensors: header length {n} exceeds the file length {fileLength}");
    }

    /// <summary>Parses a whole safetensors file held in memory.</summary>
    public static IReadOnlyDictionary<string, Tensor> Parse(byte[] file, out IReadOnlyDictionary<string, string> metadata)
    {
        if (file.Length < 8) throw new CheckpointFormatException($"safetensors: file of {file.Length} bytes has no 8-byte header length");
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(file);
        CheckHeaderLength(n, file.Length);
        long dataStart = 8 + (long)n;
        var entries = ParseHeader(file.AsMemory(8, (int)n), file.Length - dataStart, out metadata);
        var result = new Dictionary<string, Tensor>();
        foreach (var e in entries)
            result[e.Name] = RawTensor.Make(file.AsSpan((int)(dataStart + e.Begin), (int)(e.End - e.Begin)), e.DType, e.Shape);
        return result;
    }

    private sealed record Entry(string Name, string DType, int[] Shape, long Begin, long End);

    /// <summary>Parses and validates the JSON header; entries come back sorted by data offset.</summary>
    private static List<Entry> ParseHeader(ReadOnlyMemory<byte> header, long dataLen, out IReadOnlyDictionary<string, string> metadata)
    {
        var meta = new Dictionary<string, string>();
        var entries = new List<Entry>();
        try
        {
            using var doc = JsonDocument.Parse(header);
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new CheckpointFormatException("safetensors: header is not a JSON object");
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                if (p.Name == "__metadata__")
                {
                    if (p.Value.ValueKind != JsonValueKind.Object) throw new CheckpointFormatException("safetensors: __metadata__ is not an object");
                    foreach (var m in p.Value.EnumerateObject())
                        meta[m.Name] = m.Value.ValueKind == JsonValueKind.String ? m.Value.GetString()! : throw new CheckpointFormatException($"safetensors: metadata '{m.Name}' is not a string");
                    continue;
                }
                var v = p.Value;
                if (v.ValueKind != JsonValueKind.Object || !v.TryGetProperty("dtype", out var dt) || !v.TryGetProperty("shape", out var sh) || !v.TryGetProperty("data_offsets", out var off)
                    || dt.ValueKind != JsonValueKind.String || sh.ValueKind != JsonValueKind.Array || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
                    throw new CheckpointFormatException($"safetensors: entry '{p.Name}' lacks dtype, shape or data_offsets [begin, end]");
                var dtype = dt.GetString()!;
                if (RawTensor.SizeOf(dtype) == 0) throw new CheckpointFormatException($"safetensors: tensor '{p.Name}' has unknown dtype '{dtype}'");
                var shape = new int[sh.GetArrayLength()];
                int k = 0;
                foreach (var d in sh.EnumerateArray())
                {
                    if (!d.TryGetInt64(out long dim) || dim < 0 || dim > int.MaxValue)
                        throw new CheckpointFormatException($"safetensors: tensor '{p.Name}' has a negative or invalid shape dimension {d.GetRawText()}");
                    shape[k++] = (int)dim;
                }
                if (!off[0].TryGetInt64(out long b) || !off[1].TryGetInt64(out long e) || b < 0 || e < b)
                    throw new CheckpointFormatException($"safetensors: tensor '{p.Name}' has invalid data_offsets {off.GetRawText()}");
                entries.Add(new Entry(p.Name, dtype, shape, b, e));
            }
        }
        catch (JsonException ex)
        {
            throw new CheckpointFormatException($"safetensors: header is not valid JSON: {ex.Message}", ex);
        }
        entries.Sort((a, c) => a.Begin != c.Begin ? a.Begin.CompareTo(c.Begin) : a.End.CompareTo(c.End));
        long pos = 0;
        foreach (var e in entries)
        {
            if (e.Begin < pos) throw new CheckpointFormatException($"safetensors: tensor '{e.Name}' data [{e.Begin}, {e.End}) overlaps the previous tensor (ends at {pos})");
            if (e.Begin > pos) throw new CheckpointFormatException($"safetensors: tensor '{e.Name}' data [{e.Begin}, {e.End}) is non-contiguous: gap after {pos}");
            long want;
            try { want = checked(ShapeMath.NumEl(e.Shape) * RawTensor.SizeOf(e.DType)); }
            catch (OverflowException) { throw new CheckpointFormatException($"safetensors: tensor '{e.Name}' shape [{string.Join(", ", e.Shape)}] overflows the element count"); }
            if (e.End - e.Begin != want)
                throw new CheckpointFormatException($"safetensors: tensor '{e.Name}' data size {e.End - e.Begin} != numel*size {want}");
            pos = e.End;
        }
        if (pos != dataLen) throw new CheckpointFormatException($"safetensors: file length mismatch: data section is {dataLen} bytes, tensors cover {pos}");
        metadata = meta;
        return entries;
    }

    /// <summary>Writes tensors atomically (temp file in the same folder, then rename over <paramref name="path"/>).</summary>
    public static void Save(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var datas = new List<byte[]>();
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            if (metadata != null && metadata.Count > 0)
            {
                w.WriteStartObject("__metadata__");
                foreach (var kv in metadata) w.WriteString(kv.Key, kv.Value);
                w.WriteEndObject();
            }
            long off = 0;
            foreach (var kv in tensors)
            {
                if (kv.Key == "__metadata__") throw new ArgumentException("'__metadata__' cannot name a tensor", nameof(tensors));
                var data = RawTensor.Bytes(kv.Value);
                datas.Add(data);
                w.WriteStartObject(kv.Key);
                w.WriteString("dtype", RawTensor.Name(kv.Value.DType));
                w.WriteStartArray("shape");
                foreach (var d in kv.Value.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(off);
                w.WriteNumberValue(off + data.Length);
                w.WriteEndArray();
                w.WriteEndObject();
                off += data.Length;
            }
            w.WriteEndObject();
        }
        // Pad the header with spaces to a multiple of 8 so the data section is aligned.
        var header = ms.ToArray();
        int padded = (header.Length + 7) / 8 * 8;
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        var tmp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var f = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write))
            {
                Span<byte> len = stackalloc byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)padded);
                f.Write(len);
                f.Write(header);
                for (int i = header.Length; i < padded; i++) f.WriteByte((byte)' ');
                foreach (var d in datas) f.Write(d);
                f.Flush(true);
            }
            File.Move(tmp, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(tmp); } catch (IOException) { }
            throw;
        }
    }

}
