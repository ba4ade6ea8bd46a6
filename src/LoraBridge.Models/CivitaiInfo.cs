using System.Text.Json;

namespace LoraBridge.Models;

/// <summary>
/// What Civitai Helper's sidecar <c>name.civitai.info</c> (the Civitai model-version record it downloads) says about
/// a file: trigger words, base model, model and version names.
/// </summary>
public sealed class CivitaiInfo
{
    /// <summary>No sidecar.</summary>
    public static readonly CivitaiInfo Empty = new();

    /// <summary><c>trainedWords</c>: the words that trigger the LoRA.</summary>
    public IReadOnlyList<string> TrainedWords { get; init; } = [];

    /// <summary><c>baseModel</c> as Civitai writes it ("SD 1.5", "SDXL 1.0", "Pony", ...).</summary>
    public string? BaseModel { get; init; }

    /// <summary><c>model.name</c>.</summary>
    public string? ModelName { get; init; }

    /// <summary><c>name</c>: the version name.</summary>
    public string? VersionName { get; init; }

    /// <summary>The sidecar file, when one was read.</summary>
    public string? Path { get; init; }

    /// <summary>The base model as a family when Civitai's name says it (SD 1.x, SD 2.x, SDXL and its derivatives), else Unknown.</summary>
    public BaseFamily Family => BaseModel switch
    {
        null => BaseFamily.Unknown,
        var b when b.StartsWith("SD 1", StringComparison.OrdinalIgnoreCase) => BaseFamily.SD1,
        var b when b.StartsWith("SD 2", StringComparison.OrdinalIgnoreCase) => BaseFamily.SD2,
        var b when b.StartsWith("SDXL", StringComparison.OrdinalIgnoreCase) || b.StartsWith("Pony", StringComparison.OrdinalIgnoreCase)
            || b.StartsWith("Illustrious", StringComparison.OrdinalIgnoreCase) || b.StartsWith("NoobAI", StringComparison.OrdinalIgnoreCase) => BaseFamily.SDXL,
        _ => BaseFamily.Unknown,
    };

    /// <summary>Parses a sidecar; a broken one is reported through <paramref name="error"/> and yields <see cref="Empty"/>.</summary>
    public static CivitaiInfo Read(string path, out string? error)
    {
        error = null;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            var r = doc.RootElement;
            if (r.ValueKind != JsonValueKind.Object)
            {
                error = $"{path}: Civitai sidecar is not a JSON object";
                return Empty;
            }
            var words = new List<string>();
            if (r.TryGetProperty("trainedWords", out var tw) && tw.ValueKind == JsonValueKind.Array)
                foreach (var w in tw.EnumerateArray())
                    if (w.ValueKind == JsonValueKind.String && w.GetString() is { Length: > 0 } s) words.Add(s);
            string? modelName = null;
            if (r.TryGetProperty("model", out var m) && m.ValueKind == JsonValueKind.Object) modelName = Str(m, "name");
            return new CivitaiInfo { Path = path, TrainedWords = words, BaseModel = Str(r, "baseModel"), ModelName = modelName, VersionName = Str(r, "name") };
        }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException)
        {
            error = $"{path}: cannot read Civitai sidecar ({e.Message})";
            return Empty;
        }
    }

    private static string? Str(JsonElement o, string name) =>
        o.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
}
