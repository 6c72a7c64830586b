using Runtime.Nn.Checkpoints;

namespace Runtime.Cli;

/// <summary><c>runtime convert in.pth out.safetensors</c>: a PyTorch checkpoint's state dict to safetensors.</summary>
internal static class ConvertCommand
{
    public const string Usage = """
        usage: runtime convert <in.pth|in.pt|in.safetensors> <out.safetensors>
        reads a PyTorch zip checkpoint (state dict; the pickle is never executed) and writes its tensors as safetensors
        """;

    public static int Run(string[] args)
    {
        if (args.Length == 1 && args[0] is "--help" or "-h")
        {
            Console.WriteLine(Usage);
            return 0;
        }
        if (args.Length != 2) throw new ArgumentException("convert needs <in> <out.safetensors>");
        var (input, output) = (args[0], args[1]);
        if (!File.Exists(input)) throw new ArgumentException($"input file '{input}' not found");
        IReadOnlyDictionary<string, Tensor> tensors;
        try
        {
            tensors = input.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase)
                ? Safetensors.Load(input)
                : TorchCheckpoint.Load(input);
        }
        catch (CheckpointFormatException e)
        {
            Console.Error.WriteLine($"runtime convert: {input}: {e.Message}");
            return 1;
        }
        try
        {
            Safetensors.Save(output, tensors, new Dictionary<string, string> { ["format"] = "pt" });
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
        Console.WriteLine($"wrote {tensors.Count} tensors to {output}");
        return 0;
    }
}
