using System.Numerics;
using System.Runtime.CompilerServices;
using Runtime.Backends;

namespace Runtime.Cpu;

/// <summary>
/// Convolution weights packed once into the GEMM's A slivers (<see cref="Gemm.PackWhole{T}"/>) and reused by later
/// inference calls, so a layer's weight is not repacked on every forward.
/// </summary>
/// <remarks>
/// An entry is keyed by the weight's storage (weakly: when the storage object is collected, its entries go with it),
/// the weight's address inside it, its shape as the GEMM sees it (groups x rows x depth) and the configuration, and
/// remembers the storage's <see cref="Storage.Version"/> at packing time: a weight written in place since then
/// (optimizer step, checkpoint load, <c>CopyFrom</c>) is packed again into a new buffer, so a call still reading
/// the old one is not disturbed. Each storage keeps at most <see cref="MaxPerStorage"/> entries (one per weight view
/// in practice), so the cache holds about one extra copy of the weights in use. Thread-safe.
/// </remarks>
internal static unsafe class PackedWeights
{
    /// <summary>Entries kept per storage (a storage shared by many weight views drops its oldest beyond this).</summary>
    private const int MaxPerStorage = 64;

    private static readonly ConditionalWeakTable<Storage, List<Entry>> Table = new();

    /// <summary>One packed weight: groups packed A's, each <see cref="GroupStride"/> elements apart, in a pinned array.</summary>
    internal sealed class Entry
    {
        private readonly Array _data;

        internal Entry(nint address, long version, int groups, int rows, int depth, object config, Array data, void* packed, long groupStride)
        {
            (Address, Version, Groups, Rows, Depth, Config, _data) = (address, version, groups, rows, depth, config, data);
            Packed = packed;
            GroupStride = groupStride;
        }

        public nint Address { get; }
        public long Version { get; }
        public int Groups { get; }
        public int Rows { get; }
        public int Depth { get; }
        public object Config { get; }
        public void* Packed { get; }
        public long GroupStride { get; }

        public bool Matches(nint address, int groups, int rows, int depth, object config) =>
            Address == address && Groups == groups && Rows == rows && Depth == depth && Equals(Config, config);
    }

    /// <summary>
    /// The packed form of the weight at <paramref name="w"/> inside <paramref name="storage"/>: <paramref name="groups"/>
    /// row-major matrices of rows x depth, one after another. Packs it (again) when there is no entry for this version.
    /// The caller keeps the returned entry alive while it reads the packed data.
    /// </summary>
    public static Entry Get<T>(Gemm.Config<T> cfg, Storage storage, T* w, int groups, int rows, int depth) where T : unmanaged, INumber<T> =>
        Lookup(storage, (nint)w, groups, rows, depth, cfg, version => Pack(cfg, w, version, groups, rows, depth));

    /// <summary>
    /// Another form derived from the weight at <paramref name="w"/> (rows x depth), cached the same way: <paramref name="kind"/>
    /// names the derivation (compared with <see cref="object.Equals(object, object)"/>), <paramref name="fill"/> writes
    /// its <paramref name="length"/> elements into a 64-byte aligned buffer when there is none for this version.
    /// </summary>
    public static Entry Derived<T>(Storage storage, T* w, int rows, int depth, object kind, long length, Action<nint> fill) where T : unmanaged =>
        Lookup(storage, (nint)w, 1, rows, depth, kind, version =>
        {
            var data = GC.AllocateUninitializedArray<T>(checked((int)(length + 64 / sizeof(T))), pinned: true);
            T* p = (T*)(((nuint)Unsafe.AsPointer(ref data[0]) + 63) & ~(nuint)63);
            fill((nint)p);
            return new Entry((nint)w, version, 1, rows, depth, kind, data, p, length);
        });

    private static Entry Lookup(Storage storage, nint w, int groups, int rows, int depth, object kind, Func<long, Entry> make)
    {
        ArgumentNullException.ThrowIfNull(storage);
        long version = storage.Version;
        var list = Table.GetValue(storage, _ => []);
        lock (list)
        {
            for (int i = 0; i < list.Count; i++)
            {
                var e = list[i];
                if (!e.Matches(w, groups, rows, depth, kind)) continue;
                if (e.Version == version) return e;
                list.RemoveAt(i);
                break;
            }
            var entry = make(version);
            if (list.Count >= MaxPerStorage) list.RemoveAt(0);
            list.Add(entry);
            return entry;
        }
    }

    /// <summary>Entries held for <paramref name="storage"/> (for tests).</summary>
    internal static int Count(Storage storage) => Table.TryGetValue(storage, out var list) ? list.Count : 0;

    private static Entry Pack<T>(Gemm.Config<T> cfg, T* w, long version, int groups, int rows, int depth) where T : unmanaged, INumber<T>
    {
        long stride = Gemm.PackedLength(cfg, rows, depth);
        // Pinned, so the packed data has a fixed address; 64 extra bytes to align it to a cache line.
        var data = GC.AllocateUninitializedArray<T>(checked((int)(groups * stride + 64 / sizeof(T))), pinned: true);
        T* p = (T*)Unsafe.AsPointer(ref data[0]);
        p = (T*)(((nuint)p + 63) & ~(nuint)63);
        for (int grp = 0; grp < groups; grp++)
            Gemm.PackWhole(cfg, p + grp * stride, w + (long)grp * rows * depth, rows, depth, depth, 1);
        return new Entry((nint)w, version, groups, rows, depth, cfg, data, p, stride);
    }
}
