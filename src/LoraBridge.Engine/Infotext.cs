using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace LoraBridge.Engine;

/// <summary>
/// A1111's generation-parameters text (the PNG <c>parameters</c> chunk): prompt, optional
/// "Negative prompt:" line, and one line of "Key: value" pairs, so A1111's PNG Info reads our images.
/// </summary>
/// <param name="Prompt">Positive prompt as the user wrote it (LoRA tags included, as A1111 writes it).</param>
/// <param name="NegativePrompt">Negative prompt; empty when none.</param>
/// <param name="Parameters">The "Key: value" pairs in order, values unquoted.</param>
public sealed record Infotext(string Prompt, string NegativePrompt, IReadOnlyList<KeyValuePair<string, string>> Parameters)
{
    // A1111 v1.10.1 infotext_utils.re_param is \s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$), applied with finditer.
    // ParameterScanner matches exactly what that pattern matches, in one pass: with a backtracking regex a long run
    // that never reaches a colon costs quadratic time (a 234 KB infotext took 40 s, 50 MB never finished).
    /// <summary>Value of a parameter, or <c>null</c>.</summary>
    public string? this[string key] => Parameters.FirstOrDefault(p => p.Key == key).Value;

    /// <summary>Formats the text exactly as A1111's <c>create_infotext</c> joins it.</summary>
    public string Format()
    {
        var parameters = string.Join(", ", Parameters.Select(p => $"{p.Key}: {Quote(p.Value)}"));
        var negative = NegativePrompt.Length > 0 ? $"\nNegative prompt: {NegativePrompt}" : "";
        return $"{Prompt}{negative}\n{parameters}".Trim();
    }

    /// <summary>A1111's <c>quote</c>: values holding a comma, newline or colon become JSON strings.</summary>
    public static string Quote(string value) =>
        value.Contains(',') || value.Contains('\n') || value.Contains(':') ? PythonJsonString(value) : value;

    /// <summary>
    /// Python's <c>json.dumps(value, ensure_ascii=False)</c>: only quotes, backslashes and control characters are
    /// escaped, everything else (emoji included) is written as is, so the bytes equal A1111's.
    /// </summary>
    public static string PythonJsonString(string value)
    {
        var sb = new StringBuilder(value.Length + 2).Append('"');
        foreach (char c in value)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                case < ' ': sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture)); break;
                default: sb.Append(c); break;
            }
        }
        return sb.Append('"').ToString();
    }

    /// <summary>Parses text written by A1111 or by <see cref="Format"/> (A1111's <c>parse_generation_parameters</c> rules).</summary>
    public static Infotext Parse(string text)
    {
        var lines = text.Trim().Split('\n').ToList();
        var last = lines[^1];
        // Like A1111: a last line with fewer than 3 parameters is part of the prompt, not the parameter line.
        var found = ParameterScanner.Scan(last);
        if (found.Count < 3) last = "";
        else lines.RemoveAt(lines.Count - 1);

        var prompt = new StringBuilder();
        var negative = new StringBuilder();
        bool inNegative = false;
        foreach (var raw in lines)
        {
            var line = raw.Trim();
            if (line.StartsWith("Negative prompt:", StringComparison.Ordinal))
            {
                inNegative = true;
                line = line["Negative prompt:".Length..].Trim();
            }
            var target = inNegative ? negative : prompt;
            if (target.Length > 0) target.Append('\n');
            target.Append(line);
        }

        var parameters = new List<KeyValuePair<string, string>>();
        if (last.Length > 0)
            foreach (var (key, value) in found)
                parameters.Add(new(key.Trim(), Unquote(value)));
        return new Infotext(prompt.ToString(), negative.ToString(), parameters);
    }

    private static string Unquote(string value)
    {
        if (value.Length < 2 || value[0] != '"' || value[^1] != '"') return value;
        try { return JsonSerializer.Deserialize<string>(value) ?? value; }
        catch (JsonException) { return value; }
    }

    /// <summary>Formats a number as A1111 does in infotext (Python's str of an int or float).</summary>
    public static string FormatNumber(double value) =>
        value == Math.Floor(value) && Math.Abs(value) < 1e16
            ? ((long)value).ToString(CultureInfo.InvariantCulture)
            : value.ToString("R", CultureInfo.InvariantCulture);
}
