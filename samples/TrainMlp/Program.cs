// Trains a two-layer MLP to separate two interleaved spirals, using only the tensor core:
// tensors, autograd and a hand-written SGD step. Runs on the CPU unless RUNTIME_DEVICE says otherwise.
using Runtime;
using Runtime.Autograd;

int steps = args.Length > 0 ? int.Parse(args[0]) : 1000;
var device = Device.Default;
var gen = new Generator(42);

// Data: 2 x 256 points on two spirals, labels 0 and 1.
const int perClass = 256;
var xs = new float[2 * perClass * 2];
var ys = new long[2 * perClass];
for (int c = 0; c < 2; c++)
    for (int i = 0; i < perClass; i++)
    {
        double r = (i + 1.0) / perClass, theta = 2.5 * r * Math.PI + c * Math.PI + 0.1 * gen.NextNormal();
        int row = c * perClass + i;
        xs[2 * row] = (float)(r * Math.Cos(theta));
        xs[2 * row + 1] = (float)(r * Math.Sin(theta));
        ys[row] = c;
    }
using var x = Tensor.From(xs, 2 * perClass, 2).To(device);
using var y = Tensor.From(ys).To(device);
using var target = y.OneHot(2).To(DType.Float32);

// Parameters (PyTorch's default Linear initialisation: U(-1/sqrt(fan_in), 1/sqrt(fan_in))).
Tensor Param(int fanIn, params int[] shape)
{
    double bound = 1 / Math.Sqrt(fanIn);
    using var u = Tensor.Rand(shape, gen, device: device);
    using var scaled = u * (2 * bound);
    return (scaled - bound).RequiresGrad_();
}
const int hidden = 64;
Tensor[] ps = [Param(2, 2, hidden), Param(2, hidden), Param(hidden, hidden, hidden), Param(hidden, hidden), Param(hidden, hidden, 2), Param(hidden, 2)];

// SGD with momentum 0.9 (PyTorch's update: v = 0.9 v + g; p -= lr v).
double lr = 0.1, first = 0, last = 0;
var velocity = ps.Select(p => Tensor.ZerosLike(p)).ToArray();
for (int step = 0; step < steps; step++)
{
    using var scope = new TensorScope();
    var h1 = (x.MatMul(ps[0]) + ps[1]).Relu();
    var h2 = (h1.MatMul(ps[2]) + ps[3]).Relu();
    var logits = h2.MatMul(ps[4]) + ps[5];
    var loss = -(logits.LogSoftmax(1) * target).Sum(1).Mean();
    loss.Backward();
    using (GradMode.NoGrad())
        for (int i = 0; i < ps.Length; i++)
        {
            var p = ps[i];
            velocity[i].MulInPlace(0.9).AddInPlace(p.Grad!);
            p.AddInPlace(velocity[i], -lr);
            p.Grad!.Dispose();
            p.Grad = null;
        }
    last = loss.Item();
    if (step == 0) first = last;
    if (step % 100 == 0 || step == steps - 1)
    {
        var acc = logits.Argmax(1).Eq(y).To(DType.Float32).Mean().Item();
        Console.WriteLine($"step {step,4}  loss {last:F4}  accuracy {acc:P1}");
    }
}
Console.WriteLine($"loss fell from {first:F4} to {last:F4} ({first / last:F1}x) on {device}");
foreach (var t in ps.Concat(velocity)) t.Dispose();
