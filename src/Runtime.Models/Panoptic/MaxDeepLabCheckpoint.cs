using System.Text.Json;
using Runtime.Models.Detection;
using Runtime.Nn.Checkpoints;
using Runtime.Vision.Data;

namespace Runtime.Models.Panoptic;

/// <summary>
/// What a MaX-DeepLab checkpoint folder's <c>config.json</c> says: <c>"task": "panoptic"</c>, the catalogue name, the
/// full configuration, the data set's categories (class index k = the category of contiguous label k + 1) and the
/// epochs done.
/// </summary>
public sealed record PanopticCheckpointInfo
{
    public const string PanopticTask = "panoptic";

    public string Task { get; init; } = PanopticTask;
    public required string Model { get; init; }
    public required MaxDeepLabConfig Config { get; init; }
    public IReadOnlyList<CocoCategory>? Categories { get; init; }
    public int Epoch { get; init; }
    public string? Data { get; init; }
}

/// <summary>
/// A MaX-DeepLab checkpoint is a folder like a detector's (<see cref="DetectorCheckpoint"/>): <c>model.safetensors</c>
/// and <c>config.json</c> (<see cref="PanopticCheckpointInfo"/>), written through temporary files renamed into place,
/// so <c>eval</c> and <c>predict</c> rebuild the model from the folder alone.
/// </summary>
public static class MaxDeepLabCheckpoint
{
    public static void Save(string folder, MaxDeepLab model, PanopticCheckpointInfo info)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(info);
        Directory.CreateDirectory(folder);
        var own = model.StateDict();
        var cpu = new Dictionary<string, Tensor>();
        try
        {
            foreach (var (k, t) in own) cpu[k] = t.Device == Device.Cpu ? t : t.To(Device.Cpu);
            Safetensors.Save(Path.Combine(folder, DetectorCheckpoint.WeightsFile), cpu, new Dictionary<string, string> { ["model"] = info.Model });
        }
        finally
        {
            foreach (var (k, t) in cpu) if (!ReferenceEquals(t, own[k])) t.Dispose();
        }
        var path = Path.Combine(folder, DetectorCheckpoint.ConfigFile);
        var tmp = path + $".{Guid.NewGuid():N}.tmp";
        File.WriteAllText(tmp, JsonSerializer.Serialize(info, DetectorCheckpoint.Json));
        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>Whether a folder holds a panoptic checkpoint (its config.json says <c>"task": "panoptic"</c>).</summary>
    public static bool IsPanoptic(string folder)
    {
        var path = Path.Combine(folder, DetectorCheckpoint.ConfigFile);
        if (!File.Exists(path)) return false;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            return doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("task", out var t)
                && t.ValueKind == JsonValueKind.String && t.GetString() == PanopticCheckpointInfo.PanopticTask;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    public static PanopticCheckpointInfo ReadInfo(string folder)
    {
        var path = Path.Combine(folder, DetectorCheckpoint.ConfigFile);
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"checkpoint folder '{folder}' does not exist");
        if (!File.Exists(path)) throw new FileNotFoundException($"'{folder}' is not a checkpoint folder: it has no {DetectorCheckpoint.ConfigFile}", path);
        try
        {
            var info = JsonSerializer.Deserialize<PanopticCheckpointInfo>(File.ReadAllText(path), DetectorCheckpoint.Json)
                ?? throw new CheckpointFormatException($"{path}: empty checkpoint description");
            if (info.Task != PanopticCheckpointInfo.PanopticTask) throw new CheckpointFormatException($"{path}: not a panoptic checkpoint (task '{info.Task}')");
            info.Config.Validate();
            return info;
        }
        catch (Exception e) when (e is JsonException or NotSupportedException or ArgumentException or InvalidOperationException)
        {
            throw new CheckpointFormatException($"{path}: not a valid checkpoint description ({e.Message})", e);
        }
    }

    /// <summary>The model of a checkpoint folder with its weights, on <paramref name="device"/>.</summary>
    public static (MaxDeepLab Model, PanopticCheckpointInfo Info) Load(string folder, Device? device = null)
    {
        var info = ReadInfo(folder);
        var model = new MaxDeepLab(info.Config, device);
        try
        {
            LoadWeights(model, Path.Combine(folder, DetectorCheckpoint.WeightsFile));
            return (model, info);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>Loads a safetensors (or PyTorch .pth) state dict; keys and shapes must match exactly.</summary>
    public static void LoadWeights(MaxDeepLab model, string path)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (!File.Exists(path)) throw new FileNotFoundException($"weights file '{path}' does not exist", path);
        var ext = Path.GetExtension(path).ToLowerInvariant();
        var raw = ext is ".pth" or ".pt" ? TorchCheckpoint.Load(path) : Safetensors.Load(path);
        try
        {
            model.LoadStateDict(raw);
        }
        catch (ArgumentException ex)
        {
            throw new CheckpointFormatException($"{path} does not fit this model: {ex.Message.Replace("\n", " ")}", ex);
        }
        finally
        {
            foreach (var t in raw.Values) t.Dispose();
        }
    }
}
