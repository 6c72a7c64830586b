using System.Text.Json;
using Runtime.Vision.Evaluation;

namespace Runtime.Vision.Tests.Evaluation;

public class PyCompatTests
{
    [Theory]
    [InlineData(0.5, 3, "0.500")]
    [InlineData(-1.0, 3, "-1.000")]
    [InlineData(0.0625, 3, "0.062")]      // exact tie: half to even, as Python
    [InlineData(0.1875, 3, "0.188")]
    [InlineData(0.0005, 3, "0.001")]      // the double is a little above 0.0005
    [InlineData(0.0015, 3, "0.002")]      // a little above 0.0015
    [InlineData(0.0025, 3, "0.003")]      // a little above 0.0025
    [InlineData(2.675, 2, "2.67")]        // a little below 2.675
    [InlineData(90.00000000000001, 1, "90.0")]
    [InlineData(99.95, 1, "100.0")]       // a little above 99.95
    [InlineData(0.25, 1, "0.2")]
    [InlineData(-0.0001, 3, "-0.000")]
    [InlineData(123456.789, 0, "123457")]
    public void FormatFixedMatchesPython(double v, int d, string expected) => Assert.Equal(expected, PyCompat.FormatFixed(v, d));

    [Fact]
    public void MeanIsNumpyPairwise()
    {
        double[] scales = [1e-3, 1.0, 1e3];
        bool sawDifference = false;
        foreach (JsonElement c in GoldenFiles.Load("numpy_mean.json").EnumerateArray())
        {
            int n = c.GetProperty("n").GetInt32();
            var a = new double[n];
            for (int i = 0; i < n; i++) a[i] = ((long)i * 7919 % 1009) / 1013.0 * scales[i % 3];
            Assert.Equal(c.GetProperty("mean").GetDouble(), PyCompat.Mean(a));
            if (c.GetProperty("mean").GetDouble() != c.GetProperty("naive").GetDouble()) sawDifference = true;
        }
        Assert.True(sawDifference);   // the goldens do tell pairwise from naive summation apart
    }

    [Fact]
    public void StableDescendingArgsort()
    {
        Assert.Equal(new[] { 1, 3, 0, 2, 4 }, PyCompat.ArgsortDescendingStable([0.5, 0.9, 0.5, 0.9, double.NaN]));
        Assert.Equal(new[] { 0, 2, 1 }, PyCompat.ArgsortStable([0, 1, 0]));
        Assert.Equal(1, PyCompat.SearchSortedLeft([0.0, 0.5, 0.5, 1.0], 0.5));
        Assert.Equal(4, PyCompat.SearchSortedLeft([0.0, 0.5, 0.5, 1.0], 1.01));
    }
}
