using Runtime.Backends;

namespace Runtime.Gpu.Tests;

/// <summary>Devices: mixing devices is refused clearly, moving between them is differentiable, calls from several threads are safe.</summary>
public class DeviceTests
{
    [GpuFact]
    public void OperatorsOnTwoDevices_RaiseArgumentException()
    {
        using var g = Tensor.Ones([2, 2], DType.Float32, Parity.Gpu);
        using var c = Tensor.Ones([2, 2], DType.Float32, Device.Cpu);
        var e = Assert.Throws<ArgumentException>(() => g + c);
        Assert.Contains("one device", e.Message);
        Assert.Contains(Parity.Gpu.ToString(), e.Message);
        Assert.Throws<ArgumentException>(() => g.MatMul(c));
        Assert.Throws<ArgumentException>(() => Tensor.Where(c.Gt(0.0), g, g));
        Assert.Throws<ArgumentException>(() => Tensor.Cat([g, c]));
        using var idx = Tensor.From(new long[] { 0, 1 });
        if (idx.Device != Parity.Gpu) Assert.Throws<ArgumentException>(() => g.IndexSelect(0, idx));
    }

    [GpuFact]
    public void BackendGivenAnotherDevicesStorage_RaisesArgumentException()
    {
        var b = GpuTestDevice.Backend;
        var cpuStorage = BackendRegistry.For(Device.Cpu).Allocate(16); // freed by its finalizer
        var view = new TensorView(cpuStorage, 0, [4], [1], DType.Float32);
        var e = Assert.Throws<ArgumentException>(() => b.Fill(view, 1));
        Assert.Contains("cpu", e.Message);
    }

    [GpuFact]
    public void To_IsDifferentiable_AcrossDevices()
    {
        using var x = Tensor.From(new double[] { 1, 2, 3 }).To(Device.Cpu).RequiresGrad_();
        using var g = x.To(Parity.Gpu);
        using var y = (g * g).Sum();
        y.Backward();
        Assert.Equal(Device.Cpu, x.Grad!.Device);
        Assert.Equal([2.0, 4, 6], x.Grad.ToArray<double>());
    }

    [GpuFact]
    public void ManyThreads_OnOneDevice_GetTheirOwnResults()
    {
        var dev = Parity.Gpu;
        Parallel.For(0, 8, i =>
        {
            for (int r = 0; r < 20; r++)
            {
                using var a = Tensor.Full([257], i + r, DType.Float32, dev);
                using var b = a * 2.0;
                using var s = b.Sum();
                Assert.Equal(257.0 * 2 * (i + r), s.Item());
            }
        });
    }

    [GpuFact]
    public void Describe_NamesTheDevice()
    {
        var b = GpuTestDevice.Backend;
        Assert.Contains(b.Name, b.Describe());
        Assert.Contains(GpuDevices.List(), d => d.Device == b.Device && d.Available);
    }
}
