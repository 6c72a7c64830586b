namespace Runtime.Tests;

public class SmokeTests
{
    [Fact]
    public void AddMulSum()
    {
        using var a = Tensor.From(new float[] { 1, 2, 3, 4, 5, 6 }, 2, 3);
        using var b = Tensor.From(new float[] { 10, 20, 30 });
        using var c = a + b;
        TestUtil.AssertClose([11, 22, 33, 14, 25, 36], c);
        using var s = c.Sum(1);
        TestUtil.AssertClose([66, 75], s);
        using var t = a.MT;
        using var p = a.MatMul(t);
        TestUtil.AssertClose([14, 32, 32, 77], p);
    }

    [Fact]
    public void GradOfMulSumMatMul()
    {
        var a = TestUtil.RandnF64([3, 4], 1);
        var b = TestUtil.RandnF64([4, 2], 2);
        TestUtil.GradCheck(x => { using var m = x[0].MatMul(x[1]); using var e = m.Tanh(); return e * m; }, [a, b]);
    }
}
