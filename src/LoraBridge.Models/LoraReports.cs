using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace LoraBridge.Models;

/// <summary>One row of <c>lorabridge loras list</c>.</summary>
/// <param name="Name">File stem.</param>
/// <param name="Alias">Alias in effect (<see cref="LoraCatalog.AliasOf"/>).</param>
/// <param name="Type">Network type from the keys.</param>
/// <param name="Rank">Rank text ("4", "2-8", or empty).</param>
/// <param name="Family">Base family.</param>
/// <param name="Size">Bytes.</param>
/// <param name="ShortHash">12-character hash, or null when not computed or unreadable.</param>
/// <param name="Path">Full path.</param>
/// <param name="Error">Why the file could not be read, or null.</param>
public sealed record LoraRow(string Name, string Alias, string Type, string Rank, string Family, long Size, string? ShortHash, string Path, string? Error);

/// <summary>Everything <c>lorabridge loras show</c> prints about one file.</summary>
/// <param name="Row">The list row.</param>
/// <param name="Hash">Full hash (sshs_model_hash or computed).</param>
/// <param name="A1111SdVersion">What A1111's own detection says.</param>
/// <param name="User">Sidecar fields.</param>
/// <param name="PreviewPath">Preview image, or null.</param>
/// <param name="Tags">Most frequent training tags, A1111's way.</param>
/// <param name="Metadata">All metadata.</param>
/// <param name="Warnings">Non-fatal problems.</param>
public sealed record LoraDetails(LoraRow Row, string? Hash, BaseFamily A1111SdVersion, UserMetadata User, string? PreviewPath,
    IReadOnlyList<(string Tag, int Count)> Tags, IReadOnlyDictionary<string, string> Metadata, IReadOnlyList<string> Warnings)
{
    /// <summary>Civitai Helper's sidecar facts (trained words, base model, model and version names).</summary>
    public CivitaiInfo Civitai { get; init; } = CivitaiInfo.Empty;

    /// <summary>The base model to show: Civitai's name for it when known, else the detected family.</summary>
    public string BaseModel => Civitai.BaseModel ?? Row.Family;
}

/// <summary>The logic behind the <c>loras</c> CLI commands, kept here so it is tested without a console.</summary>
public static partial class LoraReports
{
    /// <summary>Rows for every LoRA in scan order; hashes are computed (and cached) unless <paramref name="withHashes"/> is false,
    /// in which case only hashes already cached are shown.</summary>
    public static IReadOnlyList<LoraRow> List(LoraCatalog catalog, bool withHashes = true) =>
        catalog.Loras.Select(e => Row(catalog, e, withHashes)).ToList();

    /// <summary>
    /// Rows of the LoRAs made for <paramref name="family"/> (null: any) whose name, alias, activation text, Civitai trained
    /// words or model name contain <paramref name="search"/> (case-insensitive; null: any). Hashes as in <see cref="List(LoraCatalog, bool)"/>.
    /// </summary>
    public static IReadOnlyList<LoraRow> List(LoraCatalog catalog, BaseFamily? family, string? search, bool withHashes) =>
        catalog.Loras.Where(e => Matches(catalog, e, family, search)).Select(e => Row(catalog, e, withHashes)).ToList();

    /// <summary>The filter of <see cref="List(LoraCatalog, BaseFamily?, string?, bool)"/> for one entry.</summary>
    public static bool Matches(LoraCatalog catalog, LoraEntry e, BaseFamily? family, string? search)
    {
        if (family is { } f && e.Family != f) return false;
        if (string.IsNullOrEmpty(search)) return true;
        bool Has(string? s) => s is not null && s.Contains(search, StringComparison.OrdinalIgnoreCase);
        return Has(e.Name) || Has(catalog.AliasOf(e)) || Has(e.User.ActivationText) || Has(e.Civitai.ModelName)
            || e.Civitai.TrainedWords.Any(Has);
    }

    /// <summary>The row for one entry.</summary>
    public static LoraRow Row(LoraCatalog catalog, LoraEntry e, bool withHash = true)
    {
        string? shortHash = null;
        if (withHash && e.Error is null)
        {
            try { shortHash = catalog.ShortHashOf(e); }
            catch (IOException) { shortHash = null; }
        }
        else if (e.Error is null)
        {
            shortHash = catalog.CachedHashOf(e) is { } h ? (h.Length > 12 ? h[..12] : h) : null;
        }
        return new LoraRow(e.Name, catalog.AliasOf(e), e.NetworkType, e.RankText, e.Family.ToString(), e.Size, shortHash, e.FilePath, e.Error);
    }

    /// <summary>A plain-text table with a header line; columns are padded to their widest cell. <paramref name="searched"/> names the folders in the "nothing found" line.</summary>
    public static string FormatTable(IReadOnlyList<LoraRow> rows, IReadOnlyList<string>? searched = null)
    {
        string[] head = ["NAME", "ALIAS", "TYPE", "RANK", "BASE", "SIZE", "HASH"];
        var cells = rows.Select(r => new[] { r.Name, r.Alias, r.Type, r.Rank, r.Family, HumanSize(r.Size), r.ShortHash ?? "" }).ToList();
        var widths = head.Select((h, i) => Math.Max(h.Length, cells.Count == 0 ? 0 : cells.Max(c => c[i].Length))).ToArray();
        var sb = new StringBuilder();
        void Line(string[] c) => sb.AppendLine(string.Join("  ", c.Select((x, i) => i == c.Length - 1 ? x : x.PadRight(widths[i]))).TrimEnd());
        Line(head);
        foreach (var c in cells) Line(c);
        foreach (var r in rows.Where(r => r.Error is not null)) sb.AppendLine("error: " + r.Error);
        if (rows.Count == 0)
        {
            sb.AppendLine(searched is { Count: 0 }
                ? "(no LoRA files found: no LoRA folder is configured; pass --webui-dir)"
                : searched is null ? "(no LoRA files found)" : "(no LoRA files found in " + string.Join(", ", searched) + ")");
        }
        return sb.ToString();
    }

    /// <summary>The rows as a JSON array (snake_case keys, size in bytes).</summary>
    public static string FormatJson(IReadOnlyList<LoraRow> rows)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartArray();
            foreach (var r in rows) WriteRow(w, r);
            w.WriteEndArray();
        }
        return Encoding.UTF8.GetString(ms.ToArray()) + Environment.NewLine;
    }

    private static void WriteRow(Utf8JsonWriter w, LoraRow r)
    {
        w.WriteStartObject();
        w.WriteString("name", r.Name);
        w.WriteString("alias", r.Alias);
        w.WriteString("type", r.Type);
        w.WriteString("rank", r.Rank);
        w.WriteString("base", r.Family);
        w.WriteNumber("size", r.Size);
        if (r.ShortHash is null) w.WriteNull("short_hash"); else w.WriteString("short_hash", r.ShortHash);
        w.WriteString("path", r.Path);
        if (r.Error is null) w.WriteNull("error"); else w.WriteString("error", r.Error);
        w.WriteEndObject();
    }

    /// <summary>Details of the LoRA named <paramref name="name"/> (name or alias, as prompts use it).</summary>
    /// <exception cref="LoraNotFoundException">Unknown name; the message lists the closest ones.</exception>
    public static LoraDetails Show(LoraCatalog catalog, string name, int maxTags = 20)
    {
        var e = catalog.Find(name);
        var row = Row(catalog, e);
        string? hash = null;
        if (e.Error is null)
        {
            try { hash = catalog.HashOf(e); } catch (IOException) { }
        }
        return new LoraDetails(row, hash, e.A1111SdVersion, e.User, e.PreviewPath, TrainingTags(e.Metadata).Take(maxTags).ToList(), e.Metadata, e.Warnings)
        {
            Civitai = e.Civitai,
        };
    }

    /// <summary>Human-readable details.</summary>
    public static string FormatShow(LoraDetails d)
    {
        var sb = new StringBuilder();
        void Field(string label, string? value)
        {
            if (!string.IsNullOrEmpty(value)) sb.Append(label.PadRight(18)).AppendLine(value);
        }
        var r = d.Row;
        Field("Name", r.Name);
        Field("Alias", r.Alias);
        Field("File", r.Path);
        Field("Type", r.Type);
        Field("Rank", r.Rank);
        Field("Base", r.Family == d.A1111SdVersion.ToString() ? r.Family : $"{r.Family} (A1111 detects {d.A1111SdVersion})");
        Field("Size", $"{HumanSize(r.Size)} ({r.Size} bytes)");
        Field("Hash", d.Hash);
        Field("Short hash", r.ShortHash);
        Field("Activation text", d.User.ActivationText);
        Field("Trained words", d.Civitai.TrainedWords.Count > 0 ? string.Join(", ", d.Civitai.TrainedWords) : null);
        Field("Base model", d.Civitai.BaseModel);
        Field("Civitai model", d.Civitai.ModelName is null ? null : d.Civitai.VersionName is null ? d.Civitai.ModelName : $"{d.Civitai.ModelName} ({d.Civitai.VersionName})");
        Field("Preferred weight", d.User.PreferredWeight?.ToString(CultureInfo.InvariantCulture));
        Field("Negative text", d.User.NegativeText);
        Field("SD version (json)", d.User.SdVersion);
        Field("Description", d.User.Description);
        Field("Notes", d.User.Notes);
        Field("Preview", d.PreviewPath);
        Field("Error", r.Error);
        foreach (var w in d.Warnings) Field("Warning", w);
        if (d.Tags.Count > 0)
        {
            sb.AppendLine("Training tags:");
            foreach (var (tag, count) in d.Tags) sb.Append("  ").Append(count.ToString(CultureInfo.InvariantCulture).PadLeft(6)).Append("  ").AppendLine(tag);
        }
        var meta = d.Metadata.Where(kv => kv.Key != "ss_tag_frequency").ToList();
        if (meta.Count > 0)
        {
            sb.AppendLine("Metadata:");
            int width = meta.Max(kv => kv.Key.Length);
            foreach (var (k, v) in meta) sb.Append("  ").Append(k.PadRight(width)).Append("  ").AppendLine(v);
        }
        return sb.ToString();
    }

    /// <summary>Details as JSON.</summary>
    public static string FormatShowJson(LoraDetails d)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WritePropertyName("lora");
            WriteRow(w, d.Row);
            if (d.Hash is null) w.WriteNull("hash"); else w.WriteString("hash", d.Hash);
            w.WriteString("a1111_sd_version", d.A1111SdVersion.ToString());
            w.WriteString("activation_text", d.User.ActivationText);
            if (d.User.PreferredWeight is { } pw) w.WriteNumber("preferred_weight", pw); else w.WriteNull("preferred_weight");
            w.WriteString("negative_text", d.User.NegativeText);
            w.WriteString("sd_version", d.User.SdVersion);
            w.WriteString("notes", d.User.Notes);
            w.WriteString("preview", d.PreviewPath);
            w.WriteStartArray("trained_words");
            foreach (var t in d.Civitai.TrainedWords) w.WriteStringValue(t);
            w.WriteEndArray();
            w.WriteString("base_model", d.BaseModel);
            w.WriteString("civitai_model", d.Civitai.ModelName);
            w.WriteString("civitai_version", d.Civitai.VersionName);
            w.WriteStartArray("tags");
            foreach (var (tag, count) in d.Tags)
            {
                w.WriteStartObject();
                w.WriteString("tag", tag);
                w.WriteNumber("count", count);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartObject("metadata");
            foreach (var (k, v) in d.Metadata) w.WriteString(k, v);
            w.WriteEndObject();
            w.WriteStartArray("warnings");
            foreach (var x in d.Warnings) w.WriteStringValue(x);
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray()) + Environment.NewLine;
    }

    [GeneratedRegex(@"[-_\w']+")]
    private static partial Regex Word();

    /// <summary>
    /// A1111's <c>build_tags</c>: sums <c>ss_tag_frequency</c> ({dataset: {tag: count}}) over datasets (tags stripped); when
    /// the average tag is 16+ characters the tags are captions, so counts go to their words of 3+ characters instead.
    /// Most frequent first; ties keep first-seen order. Malformed metadata yields nothing.
    /// </summary>
    public static IReadOnlyList<(string Tag, int Count)> TrainingTags(IReadOnlyDictionary<string, string> metadata)
    {
        var freq = SafetensorsHeader.MetadataJson(metadata, "ss_tag_frequency");
        if (freq is not { ValueKind: JsonValueKind.Object }) return [];
        var tags = new Dictionary<string, int>(StringComparer.Ordinal);
        var order = new List<string>();
        void Add(Dictionary<string, int> d, List<string> o, string k, int n)
        {
            if (!d.ContainsKey(k)) { d[k] = 0; o.Add(k); }
            d[k] += n;
        }
        foreach (var dataset in freq.Value.EnumerateObject())
        {
            if (dataset.Value.ValueKind != JsonValueKind.Object) continue;
            foreach (var t in dataset.Value.EnumerateObject())
            {
                if (t.Value.ValueKind != JsonValueKind.Number) continue;
                Add(tags, order, t.Name.Trim(), (int)Math.Truncate(t.Value.GetDouble()));
            }
        }
        if (order.Count > 0 && order.Average(t => t.Length) >= 16)
        {
            var words = new Dictionary<string, int>(StringComparer.Ordinal);
            var wordOrder = new List<string>();
            foreach (var text in order)
                foreach (Match m in Word().Matches(text))
                    if (m.Value.Length >= 3) Add(words, wordOrder, m.Value, tags[text]);
            tags = words;
            order = wordOrder;
        }
        return order.OrderByDescending(t => tags[t]).Select(t => (t, tags[t])).ToList();
    }

    /// <summary>Bytes as B/KB/MB/GB with one decimal (powers of 1024).</summary>
    public static string HumanSize(long bytes)
    {
        string[] units = ["B", "KB", "MB", "GB", "TB"];
        double v = bytes;
        int u = 0;
        while (v >= 1024 && u < units.Length - 1) { v /= 1024; u++; }
        return u == 0 ? $"{bytes} B" : v.ToString("0.0", CultureInfo.InvariantCulture) + " " + units[u];
    }
}
