using System.Text.Json;
using System.Text.Json.Serialization;
using Runtime.Nn.Checkpoints;
using Runtime.Vision.Data;

namespace Runtime.Models.Detection;

/// <summary>What a checkpoint folder's <c>config.json</c> says: the catalogue name, the full configuration, the
/// data set's categories (label k = categories[k - 1]; none for torchvision's COCO numbering) and the epochs done.</summary>
public sealed record CheckpointInfo
{
    public required string Model { get; init; }
    public required DetectorConfig Config { get; init; }
    public IReadOnlyList<CocoCategory>? Categories { get; init; }
    public int Epoch { get; init; }
    public string? Data { get; init; }
}

/// <summary>
/// A detector checkpoint is a folder: <c>model.safetensors</c> (the state dict, torchvision's key names) and
/// <c>config.json</c> (<see cref="CheckpointInfo"/>), so <c>eval</c> and <c>predict</c> rebuild the model from the
/// folder alone. Writes go to a temporary file renamed into place, so an interrupted save never leaves a broken
/// checkpoint. torchvision <c>.pth</c> state dicts load too, with the pre-0.13 key names renamed.
/// </summary>
public static class DetectorCheckpoint
{
    public const string WeightsFile = "model.safetensors";
    public const string ConfigFile = "config.json";

    public static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public static void Save(string folder, DetectionModel model, CheckpointInfo info)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(info);
        Directory.CreateDirectory(folder);
        var own = model.StateDict();
        var cpu = new Dictionary<string, Tensor>();
        try
        {
            foreach (var (k, t) in own) cpu[k] = t.Device == Device.Cpu ? t : t.To(Device.Cpu);
            Safetensors.Save(Path.Combine(folder, WeightsFile), cpu, new Dictionary<string, string> { ["model"] = info.Model });
        }
        finally
        {
            foreach (var (k, t) in cpu) if (!ReferenceEquals(t, own[k])) t.Dispose();
        }
        WriteAtomically(Path.Combine(folder, ConfigFile), JsonSerializer.Serialize(info, Json));
    }

    /// <summary>Reads a checkpoint folder's <c>config.json</c>.</summary>
    public static CheckpointInfo ReadInfo(string folder)
    {
        var path = Path.Combine(folder, ConfigFile);
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"checkpoint folder '{folder}' does not exist");
        if (!File.Exists(path)) throw new FileNotFoundException($"'{folder}' is not a checkpoint folder: it has no {ConfigFile}", path);
        try
        {
            var info = JsonSerializer.Deserialize<CheckpointInfo>(File.ReadAllText(path), Json)
                ?? throw new CheckpointFormatException($"{path}: empty checkpoint description");
            info.Config.Validate();
            return info;
        }
        catch (Exception e) when (e is JsonException or NotSupportedException or ArgumentException or InvalidOperationException)
        {
            throw new CheckpointFormatException($"{path}: not a valid checkpoint description ({e.Message})", e);
        }
    }

    /// <summary>The model of a checkpoint folder with its weights, on <paramref name="device"/>.</summary>
    public static (DetectionModel Model, CheckpointInfo Info) Load(string folder, Device? device = null)
    {
        var info = ReadInfo(folder);
        var model = DetectionModel.Create(info.Config, device);
        try
        {
            LoadWeights(model, Path.Combine(folder, WeightsFile));
            return (model, info);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Loads a weights file into <paramref name="model"/>: safetensors, or a torchvision <c>.pth</c> / <c>.pt</c> state
    /// dict (pre-0.13 key names renamed). Keys and shapes must match exactly; a mismatch names the keys at fault.
    /// Not <paramref name="strict"/>: the keys both share are loaded (shapes must still match), the model's others
    /// keep their values and the file's others are ignored (a detector's weights starting a mask model, e.g.); the
    /// result names them.
    /// </summary>
    public static LoadStateDictResult LoadWeights(DetectionModel model, string path, bool strict = true)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"weights file '{path}' does not exist", path);
        var ext = Path.GetExtension(path).ToLowerInvariant();
        var raw = ext is ".pth" or ".pt" ? TorchCheckpoint.Load(path) : Safetensors.Load(path);
        try
        {
            var upgraded = TorchvisionKeys.Upgrade(raw);
            try
            {
                return model.LoadStateDict(upgraded, strict);
            }
            catch (ArgumentException ex)
            {
                throw new CheckpointFormatException($"{path} does not fit this model: {ex.Message.Replace("\n", " ")}", ex);
            }
        }
        finally
        {
            foreach (var t in raw.Values) t.Dispose();
        }
    }

    private static void WriteAtomically(string path, string text)
    {
        var tmp = path + $".{Guid.NewGuid():N}.tmp";
        try
        {
            File.WriteAllText(tmp, text);
            File.Move(tmp, path, overwrite: true);
        }
        catch
        {
            try { File.Delete(tmp); } catch (IOException) { }
            throw;
        }
    }
}
