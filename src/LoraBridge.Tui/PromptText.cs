using System.Globalization;
using System.Text;
using LoraBridge.Prompting;

namespace LoraBridge.Tui;

/// <summary>Text helpers behind the prompt editor: LoRA tag insertion, line/column positions and the plan panel.</summary>
public static class PromptText
{
    /// <summary>
    /// Inserts <c>&lt;lora:ALIAS:WEIGHT&gt;</c> at <paramref name="offset"/>, adding a space on a side where the tag would
    /// otherwise touch a word (A1111 reads <c>cat&lt;lora:x:1&gt;</c> fine, but the prompt stays readable this way).
    /// </summary>
    /// <param name="text">Prompt text.</param>
    /// <param name="offset">UTF-16 offset of the cursor (clamped to the text).</param>
    /// <param name="alias">LoRA alias as the catalog writes it into prompts.</param>
    /// <param name="weight">Multiplier.</param>
    /// <returns>The new text and the offset just after the inserted tag.</returns>
    public static (string Text, int Cursor) InsertLora(string text, int offset, string alias, double weight = 1)
    {
        offset = Math.Clamp(offset, 0, text.Length);
        var tag = $"<lora:{alias}:{weight.ToString("0.###", CultureInfo.InvariantCulture)}>";
        if (offset > 0 && !char.IsWhiteSpace(text[offset - 1])) tag = " " + tag;
        var after = offset < text.Length && !char.IsWhiteSpace(text[offset]) && text[offset] != ',';
        var inserted = after ? tag + " " : tag;
        return (text.Insert(offset, inserted), offset + tag.Length);
    }

    /// <summary>0-based (line, column) of a UTF-16 offset; lines end at <c>\n</c>.</summary>
    public static (int Line, int Column) LineColumn(string text, int offset)
    {
        offset = Math.Clamp(offset, 0, text.Length);
        int line = 0, start = 0;
        for (int i = 0; i < offset; i++)
        {
            if (text[i] != '\n') continue;
            line++;
            start = i + 1;
        }
        return (line, offset - start);
    }

    /// <summary>UTF-16 offset of a 0-based (line, column); both are clamped to the text.</summary>
    public static int Offset(string text, int line, int column)
    {
        int start = 0;
        for (int l = 0; l < line; l++)
        {
            var nl = text.IndexOf('\n', start);
            if (nl < 0) return text.Length;
            start = nl + 1;
        }
        var end = text.IndexOf('\n', start);
        if (end < 0) end = text.Length;
        return start + Math.Clamp(column, 0, end - start);
    }

    /// <summary>"line L, column C: message" (1-based) followed by the offending line and a caret under the position.</summary>
    public static string DescribeError(string text, PromptError error, string what = "prompt")
    {
        var (line, column) = LineColumn(text, error.Position);
        var start = Offset(text, line, 0);
        var end = text.IndexOf('\n', start);
        var lineText = text[start..(end < 0 ? text.Length : end)];
        // Messages may quote a multi-line text; keep the description's first line self-contained.
        var message = error.Message.Replace("\n", "\\n", StringComparison.Ordinal);
        return $"{what} line {line + 1}, column {column + 1}: {message}\n  {lineText}\n  {new string(' ', column)}^";
    }

    /// <summary>
    /// The plan panel: errors with their positions, then one row per run of denoiser calls in which nothing changes,
    /// with each AND part's text and each LoRA's te/unet multipliers (texts cut to <paramref name="textWidth"/>).
    /// </summary>
    public static string RenderPlan(PromptPlan plan, int textWidth = 40)
    {
        var sb = new StringBuilder();
        foreach (var e in plan.Errors)
            sb.Append(PromptPlan.ErrorIsFatalInA1111(e) ? "error: " : "error (A1111 would skip the network): ")
              .AppendLine(DescribeError(plan.Prompt, e));
        foreach (var pass in plan.Passes)
        {
            var loras = pass.Loras.Count == 0 ? "no LoRA" : string.Join(", ", pass.Loras.Select(l => l.Name));
            sb.Append(CultureInfo.InvariantCulture, $"{pass.Name}: {pass.Steps} steps, {pass.Parts.Count} part{(pass.Parts.Count == 1 ? "" : "s")}, {loras}");
            if (plan.UsesExtendedSyntax) sb.Append(" (extended syntax)");
            sb.AppendLine();
            var rows = new List<string[]>();
            int start = 0;
            for (int i = 1; i <= pass.Steps; i++)
            {
                if (i < pass.Steps && Same(pass, i - 1, i)) continue;
                var row = new List<string> { start == i - 1 ? $"{start}" : $"{start}-{i - 1}" };
                row.AddRange(pass.Parts.Select(p => Cut(p.TextAt(start), textWidth)));
                row.AddRange(pass.Loras.Select(l => $"{l.Name} {Num(l.Te[start])}/{Num(l.Unet[start])}"));
                rows.Add([.. row]);
                start = i;
            }
            if (rows.Count == 0) continue;
            var widths = Enumerable.Range(0, rows[0].Length).Select(c => rows.Max(r => r[c].Length)).ToArray();
            foreach (var r in rows)
                sb.AppendLine(("  " + string.Join("  ", r.Select((v, c) => v.PadRight(widths[c])))).TrimEnd());
        }
        return sb.ToString();
    }

    private static bool Same(PassPlan pass, int a, int b) =>
        pass.Parts.All(p => p.TextAt(a) == p.TextAt(b))
        && pass.Loras.All(l => l.Te[a].Equals(l.Te[b]) && l.Unet[a].Equals(l.Unet[b]));

    private static string Cut(string? text, int width)
    {
        if (text is null) return "(error)";
        var t = "\"" + text.Replace("\n", "\\n", StringComparison.Ordinal) + "\"";
        return t.Length > width && width > 4 ? t[..(width - 4)] + "...\"" : t;
    }

    private static string Num(double v) => v.ToString("0.##", CultureInfo.InvariantCulture);
}
