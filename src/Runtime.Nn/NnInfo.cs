namespace Runtime.Nn;
/// <summary>Modules, layers, losses, optimizers and checkpoints (torch.nn counterparts).</summary>
public static class NnInfo { public const string Name = "Runtime.Nn"; }
