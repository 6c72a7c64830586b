using System.IO.Compression;
using System.Text;

namespace Runtime.Nn.Checkpoints;

/// <summary>
/// Reads PyTorch zip checkpoints (<c>torch.save</c> since 1.6, ZIP64 included) without executing
/// the pickle: only state-dict globals are honoured (OrderedDict, _rebuild_tensor_v2,
/// _rebuild_parameter and the typed storages).
/// </summary>
public static class TorchCheckpoint
{
    private sealed record StorageInfo(string DType, int ElemSize, byte[] Bytes, long NumEl);

    private static readonly Dictionary<string, (string DType, int Size)> StorageTypes = new()
    {
        ["FloatStorage"] = ("F32", 4),
        ["DoubleStorage"] = ("F64", 8),
        ["LongStorage"] = ("I64", 8),
        ["IntStorage"] = ("I32", 4),
        ["BoolStorage"] = ("BOOL", 1),
        ["HalfStorage"] = ("F16", 2),
        ["BFloat16Storage"] = ("BF16", 2),
        ["ByteStorage"] = ("U8", 1),
        ["CharStorage"] = ("I8", 1),
        ["ShortStorage"] = ("I16", 2),
    };

    private static bool Allowed(PyGlobal g) => g.FullName switch
    {
        "collections.OrderedDict" or "torch._utils._rebuild_tensor_v2" or "torch._utils._rebuild_parameter" => true,
        _ => g.Module == "torch" && StorageTypes.ContainsKey(g.Name),
    };

    /// <summary>
    /// Loads the state dict of a PyTorch checkpoint as an ordered name → tensor dictionary. A top-level
    /// <c>{"model": ...}</c> or <c>{"state_dict": ...}</c> wrapper is unwrapped; other nested dicts are
    /// flattened with dots; non-tensor values (epoch numbers, ...) are skipped.
    /// </summary>
    public static IReadOnlyDictionary<string, Tensor> Load(string path)
    {
        try
        {
            using var fs = File.OpenRead(path);
            using var zip = new ZipArchive(fs, ZipArchiveMode.Read);
            return Load(zip);
        }
        catch (InvalidDataException e)
        {
            throw new CheckpointFormatException($"pytorch checkpoint '{path}': not a readable zip archive (truncated or corrupt): {e.Message}", e);
        }
        catch (OverflowException e)
        {
            throw new CheckpointFormatException($"pytorch checkpoint '{path}': a tensor's size, stride or offset overflows: {e.Message}", e);
        }
        catch (EndOfStreamException e)
        {
            throw new CheckpointFormatException($"pytorch checkpoint '{path}': truncated zip archive: {e.Message}", e);
        }
    }

    private static byte[] ReadEntry(ZipArchiveEntry e)
    {
        if (e.Length > int.MaxValue) throw new CheckpointFormatException($"pytorch checkpoint: entry '{e.FullName}' is larger than 2 GB");
        using var s = e.Open();
        var buf = new byte[e.Length];
        s.ReadExactly(buf);
        return buf;
    }

    private static IReadOnlyDictionary<string, Tensor> Load(ZipArchive zip)
    {
        var pklEntry = zip.Entries.FirstOrDefault(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal) && e.FullName.IndexOf('/') == e.FullName.Length - "/data.pkl".Length)
            ?? throw new CheckpointFormatException("pytorch checkpoint: no '<top>/data.pkl' entry (a legacy non-zip torch.save file?)");
        var top = pklEntry.FullName[..^"data.pkl".Length];
        var byteorder = zip.GetEntry(top + "byteorder");
        if (byteorder != null)
        {
            var order = Encoding.ASCII.GetString(ReadEntry(byteorder)).Trim();
            if (order != "little") throw new CheckpointFormatException($"pytorch checkpoint: byteorder '{order}' is not supported (only little)");
        }
        var storages = new Dictionary<string, StorageInfo>();

        object? PersistentLoad(object? pid)
        {
            if (pid is not object?[] t || t.Length < 5 || t[0] as string != "storage")
                throw new CheckpointFormatException("pickle: persistent id is not ('storage', type, key, location, numel)");
            var type = t[1] as PyGlobal ?? throw new CheckpointFormatException("pickle: persistent id storage type is not a storage global");
            if (!StorageTypes.TryGetValue(type.Name, out var st)) throw new CheckpointFormatException($"pickle: unknown storage type '{type.FullName}'");
            var key = t[2] as string ?? throw new CheckpointFormatException("pickle: persistent id key is not a string");
            if (t[4] is not long numel || numel < 0) throw new CheckpointFormatException($"pickle: storage '{key}' has an invalid element count");
            if (storages.TryGetValue(key, out var have)) return have;
            var entry = zip.GetEntry(top + "data/" + key) ?? throw new CheckpointFormatException($"pytorch checkpoint: storage entry '{top}data/{key}' is missing");
            var bytes = ReadEntry(entry);
            if (bytes.Length < numel * st.Size)
                throw new CheckpointFormatException($"pytorch checkpoint: storage '{key}' holds {bytes.Length} bytes, fewer than {numel} x {st.Size}");
            var info = new StorageInfo(st.DType, st.Size, bytes, numel);
            storages[key] = info;
            return info;
        }

        object? Call(PyGlobal f, object?[] args)
        {
            switch (f.FullName)
            {
                case "collections.OrderedDict":
                    if (args.Length != 0) throw new CheckpointFormatException("pickle: OrderedDict called with arguments");
                    return new PyDict();
                case "torch._utils._rebuild_tensor_v2":
                    return Rebuild(args);
                case "torch._utils._rebuild_parameter":
                    return args.Length >= 1 && args[0] is Tensor p ? p : throw new CheckpointFormatException("pickle: _rebuild_parameter without a tensor");
                default:
                    throw new CheckpointFormatException($"pickle: refusing to call global '{f.FullName}'");
            }
        }

        var pkl = ReadEntry(pklEntry);
        var root = new SafeUnpickler(pkl, Allowed, Call, PersistentLoad).Load();
        if (root is not PyDict d) throw new CheckpointFormatException("pytorch checkpoint: the pickled object is not a dict / state dict");
        if (!d.Items.Any(kv => kv.Value is Tensor))
        {
            foreach (var w in new[] { "model", "state_dict", "model_state_dict" })
            {
                var hit = d.Items.FirstOrDefault(kv => kv.Key as string == w);
                if (hit.Value is PyDict inner) { d = inner; break; }
            }
        }
        var result = new OrderedDictionary<string, Tensor>();
        Flatten(d, "", result);
        return result;
    }

    private static void Flatten(PyDict d, string prefix, OrderedDictionary<string, Tensor> into)
    {
        foreach (var kv in d.Items)
        {
            var name = prefix + (kv.Key?.ToString() ?? "None");
            if (kv.Value is Tensor t) into[name] = t;
            else if (kv.Value is PyDict inner) Flatten(inner, name + ".", into);
        }
    }

    private static long[] Ints(object? o, string what)
    {
        if (o is not object?[] t) throw new CheckpointFormatException($"pickle: _rebuild_tensor_v2 {what} is not a tuple");
        var r = new long[t.Length];
        for (int i = 0; i < t.Length; i++) r[i] = t[i] is long v ? v : throw new CheckpointFormatException($"pickle: _rebuild_tensor_v2 {what} holds a non-integer");
        return r;
    }

    private static Tensor Rebuild(object?[] args)
    {
        if (args.Length < 4) throw new CheckpointFormatException("pickle: _rebuild_tensor_v2 needs (storage, offset, size, stride, ...)");
        var s = args[0] as StorageInfo ?? throw new CheckpointFormatException("pickle: _rebuild_tensor_v2 first argument is not a storage");
        if (args[1] is not long offset || offset < 0) throw new CheckpointFormatException("pickle: _rebuild_tensor_v2 offset is invalid");
        var size = Ints(args[2], "size");
        var stride = Ints(args[3], "stride");
        if (size.Length != stride.Length) throw new CheckpointFormatException($"pickle: _rebuild_tensor_v2 size has {size.Length} dims, stride {stride.Length}");
        var shape = new int[size.Length];
        long numel = 1, maxReach = offset;
        for (int i = 0; i < size.Length; i++)
        {
            if (size[i] < 0 || size[i] > int.MaxValue) throw new CheckpointFormatException($"pickle: tensor has a negative or invalid size {size[i]}");
            if (stride[i] < 0) throw new CheckpointFormatException($"pickle: tensor has a negative stride {stride[i]}");
            shape[i] = (int)size[i];
            numel = checked(numel * size[i]);
        }
        if (numel > 0)
        {
            for (int i = 0; i < size.Length; i++) maxReach = checked(maxReach + (size[i] - 1) * stride[i]);
            if (maxReach >= s.NumEl)
                throw new CheckpointFormatException($"pickle: tensor view (offset {offset}, size [{string.Join(", ", size)}], stride [{string.Join(", ", stride)}]) reaches past its storage of {s.NumEl} elements");
        }
        int es = s.ElemSize;
        var dst = new byte[checked(numel * es)];
        var idx = new long[size.Length];
        long src = offset;
        for (long k = 0; k < numel; k++)
        {
            Buffer.BlockCopy(s.Bytes, (int)(src * es), dst, (int)(k * es), es);
            for (int d = size.Length - 1; d >= 0; d--)
            {
                if (++idx[d] < size[d]) { src += stride[d]; break; }
                src -= (size[d] - 1) * stride[d];
                idx[d] = 0;
            }
        }
        return RawTensor.Make(dst, s.DType, shape);
    }
}
