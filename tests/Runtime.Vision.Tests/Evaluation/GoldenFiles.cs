using System.Text.Json;

namespace Runtime.Vision.Tests.Evaluation;

/// <summary>Reads the JSON goldens written by golden/eval/make_eval_goldens.py (copied next to the test assembly).</summary>
internal static class GoldenFiles
{
    private static readonly Dictionary<string, JsonElement> Cache = new();
    private static readonly object Gate = new();

    public static JsonElement Load(string name)
    {
        lock (Gate)
        {
            if (!Cache.TryGetValue(name, out JsonElement e))
            {
                string path = Path.Combine(AppContext.BaseDirectory, "golden", "eval", name);
                using JsonDocument doc = JsonDocument.Parse(File.ReadAllText(path));
                e = doc.RootElement.Clone();
                Cache[name] = e;
            }
            return e;
        }
    }
}
