using System.Text.Json;
using Runtime.Models.Panoptic;
using Runtime.Nn.Checkpoints;

namespace Runtime.Models.Tests;

/// <summary>
/// The dual-path block against golden/make_max_deeplab.py's PyTorch reference (same weights, from its .pth): the
/// pixel and memory outputs and the gradients of the inputs and of every parameter, in training mode (batch
/// statistics, and the running statistics it leaves) and in eval mode, on every device, to 1e-4 of each tensor's
/// largest magnitude in float32. Gradients that are zero in theory (the similarity batch norms' biases: softmax
/// ignores a constant shift; the height attention's output bias: the width attention's batch norm on q/k/v removes
/// it) are held to 1e-4 of a hundredth of the largest gradient instead.
/// </summary>
public class MaxDeepLabBlockTests
{
    private static readonly JsonElement Doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Golden.Folder, "max_deeplab_block.json"))).RootElement.Clone();

    private static Tensor Load(JsonElement t, Device device) =>
        Tensor.From<float>(Golden.Data(t).Select(v => (float)v).ToArray(), Golden.Shape(t)).To(device);

    internal static void AssertClose(JsonElement expected, Tensor actual, double rel, string what, double floor = 0)
    {
        Assert.Equal(Golden.Shape(expected), actual.Shape.ToArray());
        var e = Golden.Data(expected);
        var a = actual.To(DType.Float64).To(Device.Cpu).ToArray<double>();
        double scale = e.Max(Math.Abs), worst = 0;
        int at = -1;
        for (int i = 0; i < e.Length; i++)
        {
            double d = Math.Abs(a[i] - e[i]);
            if (d > worst) { worst = d; at = i; }
        }
        Assert.True(scale > 0 || floor > 0, $"{what}: the golden is all zeros");
        scale = Math.Max(scale, floor);
        Assert.True(worst <= rel * scale, $"{what}: max error {worst:G3} at {at} (got {(at >= 0 ? a[at] : 0):G6}, expected {(at >= 0 ? e[at] : 0):G6}) exceeds {rel} x {scale:G3}");
    }

    private static DualPathBlock Build(Device device)
    {
        var c = Doc.GetProperty("config");
        int I(string k) => c.GetProperty(k).GetInt32();
        var block = new DualPathBlock(I("in_channels"), I("filters"), I("axial_heads"), I("span"), I("memory_channels"),
            I("transformer_filters"), I("transformer_heads"), I("ffn_channels"), device: device, generator: new Generator(1));
        LoadGolden(block, Doc.GetProperty("checkpoint").GetString()!);
        return block;
    }

    /// <summary>Loads the golden folder's .pth <paramref name="checkpoint"/> into <paramref name="module"/>.</summary>
    internal static void LoadGolden(Module module, string checkpoint)
    {
        var state = TorchCheckpoint.Load(Path.Combine(Golden.Folder, checkpoint));
        try
        {
            module.LoadStateDict(state);
        }
        finally
        {
            foreach (var t in state.Values) t.Dispose();
        }
    }

    [Theory]
    [MemberData(nameof(Runtime.Testing.TestDevices.All), MemberType = typeof(Runtime.Testing.TestDevices))]
    public void MatchesTorchReference(string device)
    {
        var dev = Device.Parse(device);
        foreach (var mode in new[] { "train", "eval" })
        {
            using var block = Build(dev);
            block.Train(mode == "train");
            var inputs = Doc.GetProperty("inputs");
            var expected = Doc.GetProperty(mode);
            using var scope = new TensorScope();
            var pixels = Load(inputs.GetProperty("pixels"), dev);
            var memory = Load(inputs.GetProperty("memory"), dev);
            pixels.RequiresGrad = true;
            memory.RequiresGrad = true;
            var (po, mo) = block.Forward(pixels, memory);
            AssertClose(expected.GetProperty("pixels_out"), po, 1e-4, $"{mode} pixels");
            AssertClose(expected.GetProperty("memory_out"), mo, 1e-4, $"{mode} memory");
            var loss = (po * Load(inputs.GetProperty("grad_pixels"), dev)).Sum() + (mo * Load(inputs.GetProperty("grad_memory"), dev)).Sum();
            loss.Backward();
            var grads = expected.GetProperty("grads");
            AssertClose(grads.GetProperty("pixels"), pixels.Grad!, 1e-4, $"{mode} d pixels");
            AssertClose(grads.GetProperty("memory"), memory.Grad!, 1e-4, $"{mode} d memory");
            if (mode != "train") continue;
            var parameters = block.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter);
            int checkedCount = 0;
            double largest = grads.EnumerateObject().Max(g => Golden.Data(g.Value).Max(Math.Abs));
            foreach (var g in grads.EnumerateObject())
            {
                if (g.Name is "pixels" or "memory") continue;
                Assert.True(parameters.TryGetValue(g.Name, out var p), $"no parameter {g.Name}");
                bool zeroInTheory = Golden.Data(g.Value).Max(Math.Abs) < 1e-10 * largest;
                AssertClose(g.Value, p!.Grad!, 1e-4, $"d {g.Name}", floor: zeroInTheory ? largest / 100 : 0);
                checkedCount++;
            }
            Assert.Equal(parameters.Count, checkedCount);
            var buffers = block.NamedBuffers().ToDictionary(b => b.Name, b => b.Buffer);
            foreach (var r in expected.GetProperty("running").EnumerateObject())
                AssertClose(r.Value, buffers[r.Name], 1e-4, $"running {r.Name}");
        }
    }

    [Fact]
    public void TransformerLayerStartsAsIdentityOnThePixels()
    {
        // Zero-initialised output batch norms: at initialisation the pixel path passes through and the memory only
        // goes through its ReLU (DeepLab2's residual initialisation).
        using var layer = new DualPathTransformerLayer(16, 8, filters: 8, heads: 2, ffnChannels: 12, generator: new Generator(3));
        var gen = new Generator(4);
        using var pixels = Tensor.Randn([2, 16, 10], gen);
        using var memory = Tensor.Randn([2, 8, 4], gen);
        var (p, m) = layer.Forward(pixels, memory);
        using (p)
        using (m)
        {
            Assert.Equal(pixels.ToArray<float>(), p.ToArray<float>());
            using var relu = memory.Relu();
            Assert.Equal(relu.ToArray<float>(), m.ToArray<float>());
        }
    }
}
