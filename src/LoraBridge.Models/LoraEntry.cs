using System.Globalization;
using System.Text.Json;

namespace LoraBridge.Models;

/// <summary>
/// The user's sidecar <c>name.json</c> next to a network file, with A1111's field names (written by its
/// "Edit metadata" dialog).
/// </summary>
public sealed class UserMetadata
{
    /// <summary>No sidecar.</summary>
    public static readonly UserMetadata Empty = new();

    /// <summary><c>description</c>.</summary>
    public string? Description { get; init; }

    /// <summary><c>activation text</c>: trigger words added to the prompt with the LoRA.</summary>
    public string? ActivationText { get; init; }

    /// <summary><c>preferred weight</c>; A1111 treats 0 as "use the default multiplier".</summary>
    public double? PreferredWeight { get; init; }

    /// <summary><c>negative text</c>: added to the negative prompt.</summary>
    public string? NegativeText { get; init; }

    /// <summary><c>sd version</c> as stored (SD1, SD2, SDXL, Unknown).</summary>
    public string? SdVersion { get; init; }

    /// <summary><c>notes</c>.</summary>
    public string? Notes { get; init; }

    /// <summary>The sidecar file, when one was read.</summary>
    public string? Path { get; init; }

    /// <summary>Parses a sidecar; a broken one is reported through <paramref name="error"/> and yields <see cref="Empty"/>, as A1111 shows the error and carries on.</summary>
    public static UserMetadata Read(string path, out string? error)
    {
        error = null;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                error = $"{path}: sidecar is not a JSON object";
                return Empty;
            }
            var r = doc.RootElement;
            return new UserMetadata
            {
                Path = path,
                Description = Str(r, "description"),
                ActivationText = Str(r, "activation text"),
                PreferredWeight = Num(r, "preferred weight"),
                NegativeText = Str(r, "negative text"),
                SdVersion = Str(r, "sd version"),
                Notes = Str(r, "notes"),
            };
        }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException)
        {
            error = $"{path}: cannot read sidecar ({e.Message})";
            return Empty;
        }
    }

    private static string? Str(JsonElement o, string name) =>
        o.TryGetProperty(name, out var v) ? v.ValueKind switch
        {
            JsonValueKind.String => v.GetString(),
            JsonValueKind.Null => null,
            _ => v.GetRawText(),
        } : null;

    private static double? Num(JsonElement o, string name)
    {
        if (!o.TryGetProperty(name, out var v)) return null;
        if (v.ValueKind == JsonValueKind.Number) return v.GetDouble();
        if (v.ValueKind == JsonValueKind.String && double.TryParse(v.GetString(), NumberStyles.Float, CultureInfo.InvariantCulture, out var d)) return d;
        return null;
    }
}

/// <summary>A LoRA-family file found on disk (A1111's <c>NetworkOnDisk</c>).</summary>
public sealed class LoraEntry
{
    internal LoraEntry(string name, string path) { Name = name; FilePath = path; }

    /// <summary>File stem: the name A1111 lists and always accepts.</summary>
    public string Name { get; }

    /// <summary>Full path of the file.</summary>
    public string FilePath { get; }

    /// <summary>True for <c>.safetensors</c> (the only format whose header and metadata can be read without unpickling).</summary>
    public bool IsSafetensors => FilePath.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase);

    /// <summary>The alias the file declares: <c>ss_output_name</c>, else the name. Whether it is usable depends on the catalog (<see cref="LoraCatalog.AliasOf"/>).</summary>
    public string DeclaredAlias { get; internal set; } = "";

    /// <summary>Safetensors metadata (empty for other formats or unreadable files). Entries from the catalog index
    /// read it from the index on first use (it can be large: kohya's tag frequencies).</summary>
    public IReadOnlyDictionary<string, string> Metadata
    {
        get => _metadata ??= MetadataLoader?.Invoke() ?? new Dictionary<string, string>();
        internal set => _metadata = value;
    }

    private IReadOnlyDictionary<string, string>? _metadata;

    /// <summary>Reads the metadata lazily (entries restored from the index).</summary>
    internal Func<IReadOnlyDictionary<string, string>>? MetadataLoader { get; set; }

    /// <summary>Facts kept by the index for entries restored without reading the file.</summary>
    internal string? StoredNetworkType { get; set; }

    /// <summary>Rank text kept by the index.</summary>
    internal string? StoredRankText { get; set; }

    /// <summary><c>sshs_model_hash</c> kept by the index ("" for none).</summary>
    internal string? StoredMetadataHash { get; set; }

    /// <summary>Civitai Helper's <c>name.civitai.info</c> facts, or <see cref="CivitaiInfo.Empty"/>.</summary>
    public CivitaiInfo Civitai { get; internal set; } = CivitaiInfo.Empty;

    /// <summary>Rank as text ("4", "2-8"), or empty when unknown.</summary>
    public string RankText => Analysis?.RankText ?? StoredRankText ?? "";

    /// <summary>The header, for safetensors files that read cleanly.</summary>
    public SafetensorsHeader? Header { get; internal set; }

    /// <summary>Key/shape analysis, when the header was readable.</summary>
    public NetworkAnalysis? Analysis { get; internal set; }

    /// <summary>Why the file could not be read (names the file), or null.</summary>
    public string? Error { get; internal set; }

    /// <summary>Non-fatal problems (unreadable sidecar, groups no module type accepts).</summary>
    public IReadOnlyList<string> Warnings { get; internal set; } = [];

    /// <summary>The sidecar <c>name.json</c>, or <see cref="UserMetadata.Empty"/>.</summary>
    public UserMetadata User { get; internal set; } = UserMetadata.Empty;

    /// <summary>Preview image as A1111's <c>find_preview</c> picks it, or null.</summary>
    public string? PreviewPath { get; internal set; }

    /// <summary><c>name.txt</c> or <c>name.description.txt</c>, as A1111's <c>find_description</c>, or null.</summary>
    public string? DescriptionPath { get; internal set; }

    /// <summary>File size in bytes.</summary>
    public long Size { get; internal set; }

    /// <summary>Last write time (UTC).</summary>
    public DateTime ModifiedUtc { get; internal set; }

    /// <summary>A1111's <c>NetworkOnDisk.detect_version</c> exactly: sdxl_ base version, else ss_v2, else SD1 whenever there is any metadata.</summary>
    public BaseFamily A1111SdVersion { get; internal set; }

    /// <summary>
    /// Best family guess: the sidecar's <c>sd version</c> (as A1111's UI honours it), else explicit metadata
    /// (<c>ss_base_model_version</c>, <c>ss_v2</c>, <c>modelspec.architecture</c>), else key shapes.
    /// </summary>
    public BaseFamily Family { get; internal set; }

    /// <summary>File-level network type from the keys, "unknown" for unreadable or pickled files.</summary>
    public string NetworkType => Analysis?.NetworkType ?? StoredNetworkType ?? (Error is not null ? "error" : "unknown");

    /// <summary>The <c>sshs_model_hash</c> metadata, which A1111 prefers over computing a hash.</summary>
    public string? MetadataHash => StoredMetadataHash is { } stored
        ? (stored.Length > 0 ? stored : null)
        : Metadata.TryGetValue("sshs_model_hash", out var h) && h.Length > 0 ? h : null;
}
