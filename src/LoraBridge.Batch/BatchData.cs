using System.Globalization;
using System.Text.Json;

namespace LoraBridge.Batch;

/// <summary>Loads the rows a template sees as <c>data</c>: a JSON array of objects, or a CSV file with a header row.</summary>
public static class BatchData
{
    /// <summary>Reads <paramref name="path"/> by its extension (.json or .csv).</summary>
    /// <exception cref="BatchTemplateException">Malformed data, with file and position.</exception>
    public static IReadOnlyList<IReadOnlyDictionary<string, object?>> Load(string path)
    {
        var ext = Path.GetExtension(path).ToLowerInvariant();
        if (ext is not (".json" or ".csv"))
            throw new BatchTemplateException([new BatchError(path, 1, 1, $"data file must be .json or .csv, not '{ext}'")]);
        var text = ReadCapped(path);
        var rows = ext == ".json" ? ParseJson(text, path) : ParseCsv(text, path);
        if (rows.Count > MaxRows)
            throw new BatchTemplateException([new BatchError(path, 1, 1, $"{rows.Count} data rows, more than the limit of {MaxRows}")]);
        return rows;
    }

    /// <summary>Largest <c>--data</c> file in bytes.</summary>
    public const long MaxBytes = 64L << 20;

    /// <summary>Most rows a <c>--data</c> file may hold.</summary>
    public const int MaxRows = BatchTemplate.MaxJobs;

    // Reads at most MaxBytes + 1: a device such as /dev/zero (length 0, endless) or a huge file is refused, not swallowed.
    private static string ReadCapped(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        var buffer = new MemoryStream();
        var chunk = new byte[1 << 16];
        int n;
        while ((n = stream.Read(chunk)) > 0)
        {
            if (buffer.Length + n > MaxBytes)
                throw new BatchTemplateException([new BatchError(path, 1, 1, $"data file is larger than the limit of {MaxBytes} bytes")]);
            buffer.Write(chunk, 0, n);
        }
        return new System.Text.UTF8Encoding(false, false).GetString(buffer.GetBuffer(), 0, (int)buffer.Length).TrimStart('\uFEFF');
    }

    /// <summary>Parses a JSON array of flat objects.</summary>
    public static IReadOnlyList<IReadOnlyDictionary<string, object?>> ParseJson(string text, string path)
    {
        try
        {
            using var doc = JsonDocument.Parse(text);
            if (doc.RootElement.ValueKind != JsonValueKind.Array)
                throw new BatchTemplateException([new BatchError(path, 1, 1, "data must be a JSON array of objects")]);
            var rows = new List<IReadOnlyDictionary<string, object?>>();
            foreach (var item in doc.RootElement.EnumerateArray())
            {
                if (item.ValueKind != JsonValueKind.Object)
                    throw new BatchTemplateException([new BatchError(path, 1, 1, $"data row {rows.Count + 1} is not an object")]);
                var row = new Dictionary<string, object?>();
                foreach (var p in item.EnumerateObject()) row[p.Name] = ToValue(p.Value); // a repeated key keeps its last value, as JSON parsers do
                rows.Add(row);
            }
            return rows;
        }
        catch (JsonException ex)
        {
            throw new BatchTemplateException([new BatchError(path, (int)(ex.LineNumber ?? 0) + 1, (int)(ex.BytePositionInLine ?? 0) + 1, ex.Message)]);
        }
    }

    private static object? ToValue(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.String => e.GetString(),
        JsonValueKind.Number => e.TryGetInt64(out var l) ? (object)l : e.GetDouble(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        JsonValueKind.Null => null,
        _ => e.GetRawText(),
    };

    /// <summary>Parses RFC 4180 CSV (quoted fields, doubled quotes, embedded newlines); numbers become numbers.</summary>
    public static IReadOnlyList<IReadOnlyDictionary<string, object?>> ParseCsv(string text, string path)
    {
        var records = new List<(int Line, List<string> Fields)>();
        var fields = new List<string>();
        var field = new System.Text.StringBuilder();
        bool quoted = false, fieldStarted = false;
        int line = 1, recordLine = 1;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (quoted)
            {
                if (c == '"' && i + 1 < text.Length && text[i + 1] == '"') { field.Append('"'); i++; }
                else if (c == '"') quoted = false;
                else { if (c == '\n') line++; field.Append(c); }
                continue;
            }
            switch (c)
            {
                case '"' when !fieldStarted: quoted = true; fieldStarted = true; break;
                case ',': fields.Add(field.ToString()); field.Clear(); fieldStarted = false; break;
                case '\r': break;
                case '\n':
                    fields.Add(field.ToString()); field.Clear(); fieldStarted = false;
                    if (fields.Count > 1 || fields[0].Length > 0) records.Add((recordLine, fields));
                    fields = []; line++; recordLine = line;
                    break;
                default: field.Append(c); fieldStarted = true; break;
            }
        }
        if (quoted) throw new BatchTemplateException([new BatchError(path, recordLine, 1, "unterminated quoted field")]);
        fields.Add(field.ToString());
        if (fields.Count > 1 || fields[0].Length > 0) records.Add((recordLine, fields));
        if (records.Count == 0) return [];

        var header = records[0].Fields;
        var rows = new List<IReadOnlyDictionary<string, object?>>();
        foreach (var (recLine, values) in records.Skip(1))
        {
            if (values.Count != header.Count)
                throw new BatchTemplateException([new BatchError(path, recLine, 1, $"row has {values.Count} fields, header has {header.Count}")]);
            var row = new Dictionary<string, object?>();
            for (int k = 0; k < header.Count; k++)
            {
                var v = values[k];
                row[header[k]] = long.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out var l) ? l
                    : double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? d
                    : v;
            }
            rows.Add(row);
        }
        return rows;
    }
}
