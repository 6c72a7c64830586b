namespace Runtime.Nn.Checkpoints;

/// <summary>A checkpoint file (safetensors or PyTorch zip) is malformed, hostile or unsupported.</summary>
public sealed class CheckpointFormatException : IOException
{
    public CheckpointFormatException(string message) : base(message) { }
    public CheckpointFormatException(string message, Exception inner) : base(message, inner) { }
}
