using System.Text.Json;

namespace Runtime.Vision.Tests.Evaluation;

/// <summary>
/// Reads the JSON goldens under golden/ (copied next to the test assembly): golden/eval/ from
/// make_eval_goldens.py by default, or another folder (golden/ops/ for the operator goldens).
/// </summary>
internal static class GoldenFiles
{
    private static readonly Dictionary<string, JsonElement> Cache = new();
    private static readonly object Gate = new();

    public static JsonElement Load(string name, string folder = "eval")
    {
        lock (Gate)
        {
            string path = Path.Combine(AppContext.BaseDirectory, "golden", folder, name);
            if (!Cache.TryGetValue(path, out JsonElement e))
            {
                using JsonDocument doc = JsonDocument.Parse(File.ReadAllText(path));
                e = doc.RootElement.Clone();
                Cache[path] = e;
            }
            return e;
        }
    }
}
