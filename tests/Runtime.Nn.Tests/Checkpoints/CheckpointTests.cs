using System.Text.Json;
using Runtime.Nn.Checkpoints;

namespace Runtime.Nn.Tests.Checkpoints;

public class CheckpointTests
{
    private static string Golden(string name) => Path.Combine(AppContext.BaseDirectory, "golden", "checkpoints", name);

    private static void AssertMatchesExpected(IReadOnlyDictionary<string, Tensor> got)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Golden("expected.json")));
        var names = doc.RootElement.EnumerateObject().Select(p => p.Name).ToList();
        Assert.Equal(names, got.Keys.ToList());
        foreach (var p in doc.RootElement.EnumerateObject())
        {
            var t = got[p.Name];
            var shape = p.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            Assert.Equal(shape, t.Shape.ToArray());
            var vals = p.Value.GetProperty("values").EnumerateArray().ToList();
            switch (p.Value.GetProperty("dtype").GetString())
            {
                case "F32":
                    Assert.Equal(DType.Float32, t.DType);
                    Assert.Equal(vals.Select(v => (float)v.GetDouble()).ToArray(), t.ToArray<float>());
                    break;
                case "F64":
                    Assert.Equal(DType.Float64, t.DType);
                    Assert.Equal(vals.Select(v => v.GetDouble()).ToArray(), t.ToArray<double>());
                    break;
                case "I64":
                    Assert.Equal(DType.Int64, t.DType);
                    Assert.Equal(vals.Select(v => v.GetInt64()).ToArray(), t.ToArray<long>());
                    break;
                case "I32":
                    Assert.Equal(DType.Int32, t.DType);
                    Assert.Equal(vals.Select(v => v.GetInt32()).ToArray(), t.ToArray<int>());
                    break;
                case "BOOL":
                    Assert.Equal(DType.Bool, t.DType);
                    Assert.Equal(vals.Select(v => v.GetBoolean()).ToArray(), t.ToArray<bool>());
                    break;
                default:
                    Assert.Fail("unexpected dtype");
                    break;
            }
        }
    }

    [Fact]
    public void Safetensors_Golden_LoadsExpectedValues()
    {
        var d = Safetensors.Load(Golden("small.safetensors"), out var meta);
        Assert.Equal("pt", meta["format"]);
        AssertMatchesExpected(d);
    }

    [Theory]
    [InlineData("small.pth")]
    [InlineData("zip64.pth")]
    [InlineData("wrapped.pth")]
    public void Pth_Golden_LoadsExpectedValues(string file) => AssertMatchesExpected(TorchCheckpoint.Load(Golden(file)));

    [Fact]
    public void Pth_SharedStorageView_IsCopiedOutCorrectly()
    {
        var d = TorchCheckpoint.Load(Golden("small.pth"));
        var b = d["extra.base"].ToArray<float>(); // 4x6
        var v = d["extra.view"]; // base[1:, ::2].t() -> 3x3
        Assert.Equal(new[] { 3, 3 }, v.Shape.ToArray());
        var got = v.ToArray<float>();
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++)
                Assert.Equal(b[(1 + j) * 6 + 2 * i], got[i * 3 + j]);
        Assert.Equal(0L, d["1.num_batches_tracked"].Shape.Length);
        Assert.Equal(1L, d["1.num_batches_tracked"].ToArray<long>()[0]);
    }

    [Fact]
    public void Safetensors_RoundTrip()
    {
        var dir = Directory.CreateTempSubdirectory("ckpt");
        try
        {
            var path = Path.Combine(dir.FullName, "rt.safetensors");
            var src = new Dictionary<string, Tensor>
            {
                ["f"] = Tensor.From(new[] { 1.5f, -2f, 3.25f, 0f, 7f, 8f }, 2, 3),
                ["d"] = Tensor.From(new[] { Math.PI }, 1),
                ["i"] = Tensor.From(new[] { int.MinValue, 5 }, 2),
                ["l"] = Tensor.From(new[] { long.MaxValue }, 1),
                ["b"] = Tensor.From(new[] { true, false, true }, 3),
                ["s"] = Tensor.Scalar(4.0),
                ["e"] = Tensor.Zeros([0, 3], DType.Float32),
            };
            Safetensors.Save(path, src, new Dictionary<string, string> { ["k"] = "v" });
            Safetensors.Save(path, src, new Dictionary<string, string> { ["k"] = "v" }); // overwrite
            Assert.Single(Directory.GetFiles(dir.FullName)); // no temp file left behind
            var back = Safetensors.Load(path, out var meta);
            Assert.Equal("v", meta["k"]);
            Assert.Equal(src.Keys.OrderBy(k => k), back.Keys.OrderBy(k => k));
            foreach (var (k, t) in src)
            {
                Assert.Equal(t.DType, back[k].DType);
                Assert.Equal(t.Shape.ToArray(), back[k].Shape.ToArray());
                Assert.Equal(t.ToDoubleArray(), back[k].ToDoubleArray());
            }
        }
        finally
        {
            dir.Delete(true);
        }
    }

    [Fact]
    public void PthToSafetensors_MatchesSafetensorsGolden()
    {
        // What `runtime convert small.pth out.safetensors` does.
        var dir = Directory.CreateTempSubdirectory("ckpt");
        try
        {
            var path = Path.Combine(dir.FullName, "out.safetensors");
            Safetensors.Save(path, TorchCheckpoint.Load(Golden("small.pth")), new Dictionary<string, string> { ["format"] = "pt" });
            AssertMatchesExpected(Safetensors.Load(path));
            var golden = Safetensors.Load(Golden("small.safetensors"));
            var mine = Safetensors.Load(path);
            Assert.Equal(golden.Keys, mine.Keys);
            foreach (var (k, t) in golden)
            {
                Assert.Equal(t.DType, mine[k].DType);
                Assert.Equal(t.Shape.ToArray(), mine[k].Shape.ToArray());
                Assert.Equal(t.ToDoubleArray(), mine[k].ToDoubleArray());
            }
            static byte[] Data(string p)
            {
                var b = File.ReadAllBytes(p);
                return b[(8 + (int)BitConverter.ToUInt64(b, 0))..];
            }
            Assert.Equal(Data(Golden("small.safetensors")), Data(path));
        }
        finally
        {
            dir.Delete(true);
        }
    }

    [Theory]
    [InlineData("evil_os_system.pth", "os.system")]
    [InlineData("evil_eval.pth", "builtins.eval")]
    [InlineData("truncated.pth", "zip")]
    public void Pth_Hostile_IsRejected(string file, string mention)
    {
        var e = Assert.Throws<CheckpointFormatException>(() => TorchCheckpoint.Load(Golden(file)));
        Assert.Contains(mention, e.Message);
    }

    [Theory]
    [InlineData("overlap.safetensors", "overlaps")]
    [InlineData("badlen.safetensors", "header length")]
    public void Safetensors_Hostile_IsRejected(string file, string mention)
    {
        var e = Assert.Throws<CheckpointFormatException>(() => Safetensors.Load(Golden(file)));
        Assert.Contains(mention, e.Message);
    }

    private static byte[] Build(string header, int dataBytes)
    {
        var h = System.Text.Encoding.UTF8.GetBytes(header);
        var f = new byte[8 + h.Length + dataBytes];
        BitConverter.TryWriteBytes(f.AsSpan(0, 8), (ulong)h.Length);
        h.CopyTo(f, 8);
        return f;
    }

    [Theory]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", 8, "JSON")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 12, "length mismatch")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "numel")]
    [InlineData("{\"a\":{\"dtype\":\"Q7\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "unknown dtype")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "negative")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "non-contiguous")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2147483647,2147483647,2147483647],\"data_offsets\":[0,8]}}", 8, "overflows")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "overlaps")]
    [InlineData("[1,2]", 0, "not a JSON object")]
    public void Safetensors_BadHeaders_AreRejected(string header, int dataBytes, string mention)
    {
        var e = Assert.Throws<CheckpointFormatException>(() => Safetensors.Parse(Build(header, dataBytes), out _));
        Assert.Contains(mention, e.Message);
    }

    [Fact]
    public void Safetensors_HugeHeader_IsRejected()
    {
        var f = new byte[16];
        BitConverter.TryWriteBytes(f.AsSpan(0, 8), 200UL * 1024 * 1024);
        var e = Assert.Throws<CheckpointFormatException>(() => Safetensors.Parse(f, out _));
        Assert.Contains("100 MB", e.Message);
    }
}
