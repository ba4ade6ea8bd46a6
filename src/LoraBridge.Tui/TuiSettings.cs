using System.Text.Json;
using System.Text.Json.Serialization;

namespace LoraBridge.Tui;

/// <summary>The form as saved between sessions (field texts, so that a half-typed value comes back as it was).</summary>
public sealed record TuiSettings
{
    /// <summary>Positive prompt.</summary>
    public string Prompt { get; init; } = "";
    /// <summary>Negative prompt.</summary>
    public string NegativePrompt { get; init; } = "";
    /// <summary>Steps field.</summary>
    public string Steps { get; init; } = "20";
    /// <summary>CFG field.</summary>
    public string Cfg { get; init; } = "7";
    /// <summary>Seed field.</summary>
    public string Seed { get; init; } = "-1";
    /// <summary>Size field; null keeps the checkpoint's default size.</summary>
    public string? Size { get; init; }
    /// <summary>Sampler.</summary>
    public string Sampler { get; init; } = "Euler a";
    /// <summary>Schedule type.</summary>
    public string Schedule { get; init; } = "Automatic";
    /// <summary>Batch count field.</summary>
    public string BatchCount { get; init; } = "1";
    /// <summary>Batch size field.</summary>
    public string BatchSize { get; init; } = "1";
    /// <summary>Clip skip field.</summary>
    public string ClipSkip { get; init; } = "1";
    /// <summary>Checkpoint chosen in the form; empty: the configured one.</summary>
    public string Checkpoint { get; init; } = "";
    /// <summary>Hires fix upscaler, "Off" for none.</summary>
    public string HiresUpscaler { get; init; } = GeneratorViewModel.HiresOff;
    /// <summary>Hires upscale factor field.</summary>
    public string HiresScale { get; init; } = "2";
    /// <summary>Hires steps field (0: the first pass's steps).</summary>
    public string HiresSteps { get; init; } = "0";
    /// <summary>Hires denoising strength field.</summary>
    public string HiresDenoise { get; init; } = "0.7";
    /// <summary>Live preview method (A1111's setting): "Auto", "Approx cheap" or "TAESD".</summary>
    public string PreviewMethod { get; init; } = GeneratorViewModel.PreviewDefault;
}

/// <summary>Reads and writes <see cref="TuiSettings"/> as JSON in the data folder.</summary>
public static class SettingsStore
{
    /// <summary>File name in the data folder.</summary>
    public const string FileName = "tui-settings.json";

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    /// <summary>Reads the settings; null when the file does not exist. A damaged file is reported, never thrown.</summary>
    /// <param name="path">Settings file.</param>
    /// <param name="problem">Why the file was not used (names the file), or null.</param>
    public static TuiSettings? Load(string path, out string? problem)
    {
        problem = null;
        if (!File.Exists(path)) return null;
        try
        {
            return JsonSerializer.Deserialize<TuiSettings>(File.ReadAllText(path), Json)
                ?? throw new JsonException("the file holds null");
        }
        catch (Exception ex) when (ex is JsonException or IOException or UnauthorizedAccessException)
        {
            problem = $"settings {path} not used: {ex.Message}";
            return null;
        }
    }

    /// <summary>
    /// Writes the settings atomically: a temporary file in the same folder, then a rename over the old one, so a crash
    /// or a full disk leaves the previous settings intact rather than a half-written file.
    /// </summary>
    public static void Save(string path, TuiSettings settings)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(dir);
        var temp = Path.Combine(dir, $".{Path.GetFileName(path)}.{Environment.ProcessId}.tmp");
        try
        {
            File.WriteAllText(temp, JsonSerializer.Serialize(settings, Json));
            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }
}
