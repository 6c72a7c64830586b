using System.CommandLine;
using Runtime.Nn.Checkpoints;

namespace Runtime.Cli;

/// <summary><c>runtime convert in.pth out.safetensors</c>: a PyTorch checkpoint's state dict to safetensors.</summary>
internal static class ConvertCommand
{
    public static Command Create()
    {
        var input = new Argument<string>("in") { Description = "PyTorch zip checkpoint (.pth, .pt; the pickle is never executed) or .safetensors" };
        var output = new Argument<string>("out") { Description = "the .safetensors file to write" };
        var command = new Command("convert", "a PyTorch checkpoint (state dict) to safetensors") { input, output };
        command.SetAction(parse => Run(parse.GetValue(input)!, parse.GetValue(output)!, parse.Output()));
        return command;
    }

    private static int Run(string input, string output, TextWriter log)
    {
        if (!File.Exists(input)) throw new FileNotFoundException($"no such file: {input}", input);
        IReadOnlyDictionary<string, Tensor> tensors;
        try
        {
            tensors = input.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase)
                ? Safetensors.Load(input)
                : TorchCheckpoint.Load(input);
        }
        catch (CheckpointFormatException e) when (!e.Message.Contains(input, StringComparison.Ordinal))
        {
            throw new CheckpointFormatException($"{input}: {e.Message}", e);
        }
        try
        {
            Safetensors.Save(output, tensors, new Dictionary<string, string> { ["format"] = "pt" });
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
        log.WriteLine($"wrote {tensors.Count} tensors to {output}");
        return 0;
    }
}
