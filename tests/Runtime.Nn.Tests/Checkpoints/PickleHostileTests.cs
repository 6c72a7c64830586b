using System.IO.Compression;
using System.Text;
using Runtime.Nn.Checkpoints;

namespace Runtime.Nn.Tests.Checkpoints;

/// <summary>Hand-made pickles inside a PyTorch-style zip: everything off the allow-list is refused.</summary>
public class PickleHostileTests
{
    private static string WritePth(byte[] pkl, params (string Name, byte[] Data)[] extra)
    {
        var path = Path.Combine(Path.GetTempPath(), $"ckpt_{Guid.NewGuid():N}.pth");
        using (var fs = File.Create(path))
        using (var zip = new ZipArchive(fs, ZipArchiveMode.Create))
        {
            void Add(string name, byte[] data)
            {
                using var s = zip.CreateEntry("arch/" + name, CompressionLevel.NoCompression).Open();
                s.Write(data);
            }
            Add("data.pkl", pkl);
            Add("byteorder", "little"u8.ToArray());
            foreach (var (n, d) in extra) Add(n, d);
        }
        return path;
    }

    private static CheckpointFormatException Reject(byte[] pkl, params (string, byte[])[] extra)
    {
        var path = WritePth(pkl, extra);
        try
        {
            return Assert.Throws<CheckpointFormatException>(() => TorchCheckpoint.Load(path));
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static byte[] P(string s) => Encoding.Latin1.GetBytes(s);

    private static byte[] Cat(params byte[][] parts) => parts.SelectMany(p => p).ToArray();

    private static byte[] Uni(string s) => Cat(P("X"), BitConverter.GetBytes(s.Length), P(s));

    // {'w': _rebuild_tensor_v2(('storage', FloatStorage, '0', 'cpu', numel), offset, size, stride, False, OrderedDict())}
    private static byte[] TensorPickle(int numel, int offset, int[] size, int[] stride) => Cat(
        P("\u0080\u0002}"), Uni("w"), P("ctorch._utils\n_rebuild_tensor_v2\n("),
        P("("), Uni("storage"), P("ctorch\nFloatStorage\n"), Uni("0"), Uni("cpu"), P("J"), BitConverter.GetBytes(numel), P("tQ"),
        P("J"), BitConverter.GetBytes(offset),
        P("("), Cat(size.Select(s => Cat(P("J"), BitConverter.GetBytes(s))).ToArray()), P("t"),
        P("("), Cat(stride.Select(s => Cat(P("J"), BitConverter.GetBytes(s))).ToArray()), P("t"),
        P("\u0089ccollections\nOrderedDict\n)Rt"), P("Rs."));

    [Fact]
    public void HandMadeTensorPickle_Loads()
    {
        var path = WritePth(TensorPickle(6, 1, [2, 2], [1, 2]), ("data/0", Cat(new[] { 0f, 1, 2, 3, 4, 5 }.Select(BitConverter.GetBytes).ToArray())));
        try
        {
            var d = TorchCheckpoint.Load(path);
            Assert.Equal(new[] { 1f, 3, 2, 4 }, d["w"].ToArray<float>());
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void ViewPastStorage_IsRejected()
    {
        var e = Reject(TensorPickle(6, 3, [2, 2], [1, 2]), ("data/0", new byte[24]));
        Assert.Contains("past its storage", e.Message);
    }

    [Fact]
    public void MissingStorageEntry_IsRejected() => Assert.Contains("data/0", Reject(TensorPickle(6, 0, [6], [1])).Message);

    [Fact]
    public void ShortStorageEntry_IsRejected() => Assert.Contains("fewer than", Reject(TensorPickle(6, 0, [6], [1]), ("data/0", new byte[20])).Message);

    [Theory]
    [InlineData("torch.storage\n_load_from_bytes\n", "torch.storage._load_from_bytes")]
    [InlineData("posix\nsystem\n", "posix.system")]
    [InlineData("builtins\nexec\n", "builtins.exec")]
    [InlineData("subprocess\nPopen\n", "subprocess.Popen")]
    public void ForbiddenGlobals_AreRefused(string global, string name)
    {
        var e = Reject(Cat(P("\u0080\u0002c" + global), Uni("x"), P("\u0085R.")));
        Assert.Contains(name, e.Message);
        Assert.Contains("allow-list", e.Message);
    }

    [Fact]
    public void InstOpcode_IsRefused() => Assert.Contains("opcode", Reject(P("\u0080\u0002(ios\nsystem\n.")).Message);

    [Fact]
    public void ReduceOfStorageType_IsRefused() => Assert.Contains("torch.FloatStorage", Reject(P("\u0080\u0002ctorch\nFloatStorage\n)R.")).Message);

    [Fact]
    public void TruncatedPickle_IsRejected() => Assert.Contains("truncated", Reject(P("\u0080\u0002}X\u0005\u0000\u0000\u0000ab")).Message);

    [Fact]
    public void BigEndianByteorder_IsRejected()
    {
        var path = Path.Combine(Path.GetTempPath(), $"ckpt_{Guid.NewGuid():N}.pth");
        using (var fs = File.Create(path))
        using (var zip = new ZipArchive(fs, ZipArchiveMode.Create))
        {
            using (var s = zip.CreateEntry("a/data.pkl").Open()) s.Write(P("\u0080\u0002}."));
            using (var s = zip.CreateEntry("a/byteorder").Open()) s.Write("big"u8);
        }
        try
        {
            Assert.Contains("byteorder", Assert.Throws<CheckpointFormatException>(() => TorchCheckpoint.Load(path)).Message);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void NotAZip_IsRejected()
    {
        var path = Path.Combine(Path.GetTempPath(), $"ckpt_{Guid.NewGuid():N}.pth");
        File.WriteAllBytes(path, P("\u0080\u0002}."));
        try
        {
            Assert.Throws<CheckpointFormatException>(() => TorchCheckpoint.Load(path));
        }
        finally
        {
            File.Delete(path);
        }
    }
}
