using Runtime.Autograd;

namespace Runtime.Tests;

/// <summary>End-to-end: small MLPs trained with hand-written SGD on seeded synthetic tasks, using only core tensor ops.</summary>
public class MlpTrainingTests
{
    private sealed class Mlp : IDisposable
    {
        private readonly Tensor[] _w, _b;

        public Mlp(Generator gen, params int[] sizes)
        {
            _w = new Tensor[sizes.Length - 1];
            _b = new Tensor[sizes.Length - 1];
            for (int i = 0; i < _w.Length; i++)
            {
                using var r = Tensor.Randn([sizes[i], sizes[i + 1]], gen);
                _w[i] = (r * Math.Sqrt(1.0 / sizes[i])).RequiresGrad_();
                _b[i] = Tensor.Zeros(sizes[i + 1]).RequiresGrad_();
            }
        }

        public IEnumerable<Tensor> Parameters => _w.Concat(_b);

        public Tensor Forward(Tensor x)
        {
            var h = x;
            for (int i = 0; i < _w.Length; i++)
            {
                using var m = h.MatMul(_w[i]);
                var z = m + _b[i];
                if (!ReferenceEquals(h, x)) h.Dispose();
                if (i < _w.Length - 1)
                {
                    h = z.Tanh();
                    z.Dispose();
                }
                else h = z;
            }
            return h;
        }

        public void SgdStep(double lr)
        {
            using var _ = GradMode.NoGrad();
            foreach (var p in Parameters)
            {
                p.AddInPlace(p.Grad!, -lr);
                p.Grad!.Dispose();
                p.Grad = null;
            }
        }

        public void Dispose()
        {
            foreach (var p in Parameters) p.Dispose();
        }
    }

    /// <summary>Four Gaussian blobs at (+-1, +-1); the class is 1 where x * y &lt; 0 (XOR).</summary>
    private static (Tensor X, Tensor Y, long[] Labels) XorBlobs(int n, ulong seed)
    {
        var gen = new Generator(seed);
        var xs = new float[n * 2];
        var labels = new long[n];
        for (int i = 0; i < n; i++)
        {
            double cx = (i & 1) == 0 ? 1 : -1, cy = (i & 2) == 0 ? 1 : -1;
            xs[2 * i] = (float)(cx + 0.3 * gen.NextNormal());
            xs[2 * i + 1] = (float)(cy + 0.3 * gen.NextNormal());
            labels[i] = cx * cy < 0 ? 1 : 0;
        }
        return (Tensor.From(xs, n, 2), Tensor.From(labels), labels);
    }

    private static double CrossEntropyLossStep(Mlp net, Tensor x, Tensor y, double lr)
    {
        using var scope = new TensorScope();
        var logits = net.Forward(x);
        var logp = logits.LogSoftmax(1);
        var picked = logp.Gather(1, y.Unsqueeze(1));
        var loss = picked.Mean().Neg();
        double value = loss.Item();
        loss.Backward();
        net.SgdStep(lr);
        return value;
    }

    private static double Accuracy(Mlp net, Tensor x, long[] labels)
    {
        using var scope = new TensorScope();
        using var _ = GradMode.NoGrad();
        var pred = net.Forward(x).Argmax(1).ToArray<long>();
        int correct = 0;
        for (int i = 0; i < labels.Length; i++) if (pred[i] == labels[i]) correct++;
        return (double)correct / labels.Length;
    }

    [Fact]
    public void XorBlobs_TwoClassMlp_Learns()
    {
        var (x, y, labels) = XorBlobs(256, 2024);
        using var _x = x;
        using var _y = y;
        using var net = new Mlp(new Generator(7), 2, 16, 16, 2);
        double initial = CrossEntropyLossStep(net, x, y, 0.5);
        Assert.InRange(initial, 0.4, 1.5); // about ln 2 for an untrained net
        double last = initial;
        for (int epoch = 0; epoch < 300; epoch++) last = CrossEntropyLossStep(net, x, y, 0.5);
        Assert.True(last < initial / 10, $"loss went from {initial} to {last}");
        double acc = Accuracy(net, x, labels);
        Assert.True(acc > 0.95, $"training accuracy {acc}");

        // Held-out points from the same distribution.
        var (xt, yt, lt) = XorBlobs(200, 99);
        using var _xt = xt;
        using var _yt = yt;
        double testAcc = Accuracy(net, xt, lt);
        Assert.True(testAcc > 0.95, $"test accuracy {testAcc}");
        Assert.All(net.Parameters, p => Assert.Null(p.Grad));
    }

    [Fact]
    public void Regression_SingleOutputMlp_FitsSmoothFunction()
    {
        // y = sin(2 x0) * cos(x1) on [-1.5, 1.5]^2, mean squared error.
        var gen = new Generator(11);
        const int n = 200;
        var xs = new float[n * 2];
        var ys = new float[n];
        for (int i = 0; i < n; i++)
        {
            double a = 3 * gen.NextDouble() - 1.5, b = 3 * gen.NextDouble() - 1.5;
            xs[2 * i] = (float)a;
            xs[2 * i + 1] = (float)b;
            ys[i] = (float)(Math.Sin(2 * a) * Math.Cos(b));
        }
        using var x = Tensor.From(xs, n, 2);
        using var y = Tensor.From(ys, n, 1);
        using var net = new Mlp(new Generator(3), 2, 16, 16, 1);

        double Step()
        {
            using var scope = new TensorScope();
            var diff = net.Forward(x) - y;
            var loss = (diff * diff).Mean();
            double v = loss.Item();
            loss.Backward();
            net.SgdStep(0.2);
            return v;
        }

        double initial = Step(), last = initial;
        for (int i = 0; i < 600; i++) last = Step();
        Assert.True(last < initial / 10, $"MSE went from {initial} to {last}");
    }
}
