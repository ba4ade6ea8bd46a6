using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace LoraBridge.Models;

/// <summary>One line of <c>lorabridge embeddings list</c>.</summary>
/// <param name="Name">Name prompts use (empty for a file that could not be read).</param>
/// <param name="Vectors">Placeholder tokens.</param>
/// <param name="Width">Width of the vectors (the fit test's shape).</param>
/// <param name="File">File relative to its folder.</param>
/// <param name="ShortHash">A1111's 12-digit short hash.</param>
/// <param name="Status">loaded, skipped or error.</param>
/// <param name="Reason">Why it was skipped or failed; null when loaded.</param>
public sealed record EmbeddingRow(string Name, int? Vectors, int? Width, string File, string? ShortHash, string Status, string? Reason);

/// <summary>Rows and text/JSON output for <c>embeddings list</c>.</summary>
public static class EmbeddingReports
{
    /// <summary>Loaded (A1111's order), then skipped, then unreadable files.</summary>
    public static IReadOnlyList<EmbeddingRow> List(EmbeddingDatabase db)
    {
        var rows = new List<EmbeddingRow>();
        foreach (var e in db.Loaded)
        {
            string? reason = e.Info.FitsEncoder(db.ExpectedShape) ? null
                : $"vectors of shape {e.Info.VecShape?.ToJsonString()} cannot be used by this text encoder (prompts using it fail, as in A1111)";
            rows.Add(new EmbeddingRow(e.Name, e.Info.Vectors, e.Info.Shape, e.File.RelativePath, e.ShortHash, "loaded", reason));
        }
        foreach (var e in db.Skipped)
            rows.Add(new EmbeddingRow(e.Name, e.Info.Vectors, e.Info.Shape, e.File.RelativePath, e.ShortHash, "skipped",
                $"width {e.Info.Shape} does not fit the text encoder's {db.ExpectedShape}; the name stays plain text"));
        foreach (var e in db.Errors)
            rows.Add(new EmbeddingRow("", null, null, e.File.RelativePath, null, "error",
                e.Kind == "data_issue" ? $"data issue: {e.Message}" : $"{e.Exception}: {e.Message}"));
        return rows;
    }

    /// <summary>A text table, with the folders and the encoder width first.</summary>
    public static string FormatTable(EmbeddingDatabase db, IReadOnlyList<EmbeddingRow> rows)
    {
        var sb = new StringBuilder();
        sb.Append("folders: ").AppendLine(db.Folders.Count == 0 ? "(none configured: --embeddings-dir or --webui-dir)" : string.Join(", ", db.Folders));
        sb.Append("text encoder width: ").AppendLine(db.ExpectedShape < 0 ? "unknown (every width accepted)" : db.ExpectedShape.ToString(System.Globalization.CultureInfo.InvariantCulture));
        int nameW = Math.Max(4, rows.Select(r => r.Name.Length).DefaultIfEmpty(0).Max());
        int fileW = Math.Max(4, rows.Select(r => r.File.Length).DefaultIfEmpty(0).Max());
        sb.AppendLine($"{"name".PadRight(nameW)}  vectors  width  {"file".PadRight(fileW)}  hash          status");
        foreach (var r in rows)
        {
            sb.Append(r.Name.PadRight(nameW)).Append("  ")
              .Append((r.Vectors?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "-").PadLeft(7)).Append("  ")
              .Append((r.Width?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "-").PadLeft(5)).Append("  ")
              .Append(r.File.PadRight(fileW)).Append("  ")
              .Append((r.ShortHash ?? "-").PadRight(12)).Append("  ")
              .Append(r.Status);
            if (r.Reason is not null) sb.Append(": ").Append(r.Reason);
            sb.AppendLine();
        }
        sb.AppendLine($"{db.Loaded.Count} loaded, {db.Skipped.Count} skipped, {db.Errors.Count} unreadable");
        return sb.ToString();
    }

    /// <summary>The rows as a JSON array.</summary>
    public static string FormatJson(IReadOnlyList<EmbeddingRow> rows) =>
        new JsonArray(rows.Select(r => (JsonNode)new JsonObject
        {
            ["name"] = r.Name,
            ["vectors"] = r.Vectors,
            ["width"] = r.Width,
            ["file"] = r.File,
            ["shorthash"] = r.ShortHash,
            ["status"] = r.Status,
            ["reason"] = r.Reason,
        }).ToArray()).ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";
}
