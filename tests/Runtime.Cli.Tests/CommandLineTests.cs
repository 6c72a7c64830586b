using System.Text;
using System.Text.Json;

namespace Runtime.Cli.Tests;

/// <summary>
/// The <c>runtime</c> command run in-process through <see cref="CommandLine.Run"/>: every bad input is one
/// line on stderr and a non-zero exit code, never a stack trace or the whole help; the help lists the bench table.
/// </summary>
public sealed class CommandLineTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("runtime-cli-tests-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private sealed record Outcome(int Code, string Out, string Err);

    private static Outcome Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = CommandLine.Run(args, output, error);
        return new Outcome(code, output.ToString(), error.ToString());
    }

    /// <summary>A failed run: non-zero exit, stderr exactly one "runtime: ..." line naming each of <paramref name="mentions"/>.</summary>
    private static string AssertOneLineError(Outcome r, params string[] mentions)
    {
        Assert.NotEqual(0, r.Code);
        Assert.DoesNotContain("   at ", r.Err);
        Assert.DoesNotContain("Exception", r.Err);
        var lines = r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var line = Assert.Single(lines);
        Assert.StartsWith("runtime: ", line);
        foreach (var m in mentions) Assert.Contains(m, line);
        return line;
    }

    private static IEnumerable<string> TableNames => BenchOperators.All.Select(o => o.Name);

    [Theory]
    [InlineData("--shape", "abc")]
    [InlineData("--threads", "abc")]
    [InlineData("--repeat", "-3")]
    [InlineData("--repeat", "0")]
    [InlineData("--repeat", "1.5")]
    [InlineData("--dtype", "float16")]
    [InlineData("--device", "banana")]
    [InlineData("--device", "cuda:x")]
    public void BadOptionValueIsOneLineNamingOptionAndValue(string option, string value)
    {
        var r = Run("bench", "matmul", option, value);
        Assert.Equal(2, r.Code);
        AssertOneLineError(r, option, value);
        Assert.Empty(r.Out);
    }

    [Fact]
    public void ShapeOfBadSizesIsRejectedByEveryOperatorThatTakesOne()
    {
        foreach (var op in BenchOperators.All.Where(o => o.Options.Any(x => x.Name == "--shape")))
            AssertOneLineError(Run("bench", op.Name, "--shape", "2,abc"), "--shape", "2,abc");
    }

    [Fact]
    public void UnavailableDeviceIsOneLine()
    {
        var r = Run("bench", "matmul", "--device", "cuda:7", "--shape", "8", "--repeat", "1");
        Assert.Equal(1, r.Code);
        AssertOneLineError(r, "cuda:7");
    }

    [Fact]
    public void UnknownOperatorListsTheKnownOnes()
    {
        var line = AssertOneLineError(Run("bench", "banana", "--shape", "3"), "unknown operator 'banana'");
        foreach (var name in TableNames) Assert.Contains(name, line);
    }

    [Fact]
    public void BenchWithoutOperatorListsTheKnownOnes()
    {
        var line = AssertOneLineError(Run("bench"));
        foreach (var name in TableNames) Assert.Contains(name, line);
    }

    [Fact]
    public void UnknownCommandIsOneLine()
    {
        var line = AssertOneLineError(Run("banana"), "unknown command 'banana'");
        Assert.Contains("bench", line);
        Assert.Contains("devices", line);
    }

    [Fact]
    public void UnknownOptionIsOneLineWithAHint()
    {
        var line = AssertOneLineError(Run("bench", "matmul", "--shap", "8"), "--shap", "runtime bench matmul --help");
        Assert.Equal(2, Run("bench", "matmul", "--shap", "8").Code);
        Assert.Contains("unknown option", line);
    }

    [Fact]
    public void UsageErrorsDoNotPrintTheHelp()
    {
        foreach (var args in new[] { new[] { "bench", "matmul", "--shape", "abc" }, ["bench", "banana"], ["banana"], ["draw"], ["selfcheck"], ["bench", "conv2d", "extra"] })
        {
            var r = Run(args);
            AssertOneLineError(r);
            Assert.DoesNotContain("Usage:", r.Err);
            Assert.DoesNotContain("Options:", r.Err);
            Assert.Empty(r.Out);
        }
    }

    [Fact]
    public void DrawOnMalformedJsonIsOneLine()
    {
        var path = Path.Combine(_dir, "bad.json");
        File.WriteAllText(path, "{ \"images\": [ {\"id\": 1, ");
        var r = Run("draw", path, "all", "--out", Path.Combine(_dir, "drawn"));
        Assert.Equal(1, r.Code);
        AssertOneLineError(r, path);
    }

    [Fact]
    public void DrawOnJsonThatIsNotCocoIsOneLine()
    {
        var path = Path.Combine(_dir, "list.json");
        File.WriteAllText(path, "[1, 2, 3]");
        AssertOneLineError(Run("draw", path, "all", "--out", Path.Combine(_dir, "drawn")), path);
    }

    [Fact]
    public void DrawOnMissingFileIsOneLine()
    {
        var path = Path.Combine(_dir, "missing.json");
        var r = Run("draw", path, "all");
        Assert.Equal(1, r.Code);
        AssertOneLineError(r, path);
    }

    [Fact]
    public void ConvertOnMissingFileIsOneLine()
    {
        var path = Path.Combine(_dir, "missing.pth");
        var r = Run("convert", path, Path.Combine(_dir, "out.safetensors"));
        Assert.Equal(1, r.Code);
        AssertOneLineError(r, path);
    }

    [Theory]
    [InlineData("corrupt.pth")]
    [InlineData("corrupt.safetensors")]
    public void ConvertOnCorruptFileIsOneLine(string name)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, Encoding.ASCII.GetBytes("this is not a checkpoint, just some text that goes on for a while"));
        var output = Path.Combine(_dir, "out.safetensors");
        var r = Run("convert", path, output);
        Assert.Equal(1, r.Code);
        AssertOneLineError(r, path);
        Assert.False(File.Exists(output));
    }

    [Theory]
    [InlineData("--help")]
    [InlineData("bench", "--help")]
    [InlineData("help", "bench")]
    public void HelpListsEveryBenchOperatorOfTheTable(params string[] args)
    {
        var r = Run(args);
        Assert.Equal(0, r.Code);
        Assert.Empty(r.Err);
        foreach (var name in TableNames) Assert.Contains(name, r.Out);
        foreach (var name in new[] { "matmul", "conv2d", "resnet50", "nms", "roi_align", "deform_conv2d", "attention", "axial_attention" })
            Assert.Contains(name, r.Out);
    }

    [Fact]
    public void BenchHelpDescribesEachOperatorOnce()
    {
        var lines = Run("bench", "--help").Out.Split('\n').Select(l => l.Trim()).ToList();
        foreach (var op in BenchOperators.All)
            Assert.Single(lines, l => l.StartsWith(op.Name + " ", StringComparison.Ordinal) && l.EndsWith(op.Description, StringComparison.Ordinal));
    }

    [Fact]
    public void OperatorHelpListsItsOptions()
    {
        foreach (var op in BenchOperators.All)
        {
            var r = Run("bench", op.Name, "--help");
            Assert.Equal(0, r.Code);
            foreach (var o in op.Options.Concat(BenchOptions.Common)) Assert.Contains(o.Name, r.Out);
        }
        Assert.Contains("--offset-groups", Run("bench", "deform_conv2d", "--help").Out);
        Assert.Contains("--kernel", Run("bench", "conv2d", "--help").Out);
    }

    [Fact]
    public void TableNamesAreUnique() => Assert.Equal(TableNames.Count(), TableNames.Distinct().Count());

    [Fact]
    public void TinyBenchPrintsJson()
    {
        var r = Run("bench", "add", "--shape", "1024", "--repeat", "2", "--json");
        Assert.Equal(0, r.Code);
        Assert.Empty(r.Err);
        Assert.Contains("\"op\":\"add\"", r.Out);
        using var doc = JsonDocument.Parse(r.Out);
        Assert.Equal("add", doc.RootElement.GetProperty("op").GetString());
        Assert.Equal(2, doc.RootElement.GetProperty("repeats").GetInt32());
    }

    [Fact]
    public void DevicesListsTheCpu()
    {
        var r = Run("devices");
        Assert.Equal(0, r.Code);
        Assert.Contains("cpu", r.Out);
    }
}

/// <summary>The command lines that benchmarks/*.sh, scripts/*.sh and the docs use still parse (nothing is run).</summary>
public sealed class ScriptCommandLineTests
{
    [Theory]
    [InlineData("devices")]
    [InlineData("selfcheck --device opencl:0")]
    [InlineData("selfcheck --device cuda:0 --seed 42 --only relu")]
    [InlineData("selfcheck --device cuda --list")]
    [InlineData("bench matmul --threads 2 --json --shape 1024")]
    [InlineData("bench matmul --device cuda:0 --json --shape 4096")]
    [InlineData("bench add --device cuda:0 --json")]
    [InlineData("bench softmax --threads 2 --json")]
    [InlineData("bench conv2d --shape 8,256,14,14 --kernel 3 --out 256 --stride 1 --padding 1")]
    [InlineData("bench conv2d --shape 8,64,56,56 --kernel 3x3 --dilation 2 --groups 4 --backward --dtype float64")]
    [InlineData("bench resnet50 --batch 8 --train --threads 2")]
    [InlineData("bench resnet50 --size 160 --repeat 3 --json")]
    [InlineData("bench resnet50 --no-fuse --threads 2 --json")]
    [InlineData("bench nms --threads 2 --json")]
    [InlineData("bench batched_nms --device cuda:0 --json")]
    [InlineData("bench roi_align --backward --threads 2 --json")]
    [InlineData("bench roi_align --backward --device cuda:0 --json")]
    [InlineData("bench roi_pool --threads 2 --json")]
    [InlineData("bench deform_conv2d --shape 2,256,64,64 --kernel 3 --out 256 --threads 2 --json")]
    [InlineData("bench deform_conv2d --shape 2,256,64,64 --kernel 3 --out 256 --backward --threads 2 --json")]
    [InlineData("bench lsa --shape 200 --threads 2 --json")]
    [InlineData("bench lsa --shape 200,300 --maximize --json")]
    [InlineData("bench attention --shape 1,8,4096,64 --threads 2 --json")]
    [InlineData("bench attention --shape 1,8,4096,64 --backward --device cuda:0 --json")]
    [InlineData("bench axial_attention --threads 2 --json")]
    [InlineData("draw instances.json all --out drawn")]
    [InlineData("draw panoptic.json 42 --images img --panoptic png --predictions res.json --score-threshold 0.3 --limit 5")]
    [InlineData("convert model.pth model.safetensors")]
    public void Parses(string line)
    {
        var parse = CommandLine.Parse(line.Split(' '));
        Assert.Empty(parse.Errors.Select(e => e.Message));
    }

}
