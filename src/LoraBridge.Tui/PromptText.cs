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
    public static (string Text, int Cursor) InsertLora(string text, int offset, string alias, double weight = 1) =>
        Insert(text, offset, $"<lora:{alias}:{weight.ToString("0.###", CultureInfo.InvariantCulture)}>");

    /// <summary>Inserts <paramref name="snippet"/> (a LoRA card's tag and trigger words) with the spacing of <see cref="InsertLora"/>.</summary>
    /// <returns>The new text and the offset just after the snippet.</returns>
    public static (string Text, int Cursor) Insert(string text, int offset, string snippet)
    {
        offset = Math.Clamp(offset, 0, text.Length);
        var tag = snippet;
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

    /// <summary>
    /// "line L, column C: message" (1-based) followed by the offending line and a caret under the position. With a
    /// <paramref name="width"/>, the message wraps to it (nothing is cut) and a long prompt line is shown as the window of
    /// it around the caret.
    /// </summary>
    public static string DescribeError(string text, PromptError error, string what = "prompt", int width = 0)
    {
        var (line, column) = LineColumn(text, error.Position);
        var start = Offset(text, line, 0);
        var end = text.IndexOf('\n', start);
        var lineText = text[start..(end < 0 ? text.Length : end)];
        // Messages may quote a multi-line text; keep the description's first line self-contained.
        var message = error.Message.Replace("\n", "\\n", StringComparison.Ordinal);
        var head = $"{what} line {line + 1}, column {column + 1}: {message}";
        var caret = column;
        if (width > 8 && lineText.Length > width - 2)
        {
            // Keep the caret in view: show the part of the line around it.
            var first = Math.Clamp(column - (width - 2) / 2, 0, lineText.Length - (width - 2));
            lineText = lineText.Substring(first, width - 2);
            caret = column - first;
        }
        var body = width > 8 ? string.Join("\n", Wrap(head, width, "    ")) : head;
        return $"{body}\n  {lineText}\n  {new string(' ', caret)}^";
    }

    /// <summary>Splits <paramref name="text"/> into lines of at most <paramref name="width"/> characters, at spaces where possible.</summary>
    /// <param name="text">One line of text.</param>
    /// <param name="width">Line width (at least 2).</param>
    /// <param name="indent">Prefix of every continuation line.</param>
    public static IReadOnlyList<string> Wrap(string text, int width, string indent = "")
    {
        width = Math.Max(2, width);
        var lines = new List<string>();
        var rest = text;
        var prefix = "";
        while (prefix.Length + rest.Length > width)
        {
            var room = Math.Max(1, width - prefix.Length);
            var cut = rest.LastIndexOf(' ', Math.Min(room, rest.Length - 1));
            if (cut <= 0) cut = room;
            lines.Add(prefix + rest[..cut].TrimEnd());
            rest = rest[cut..].TrimStart();
            prefix = indent.Length < width - 1 ? indent : "";
        }
        lines.Add(prefix + rest);
        return lines;
    }

    /// <summary>
    /// The plan panel: errors with their positions, then one row per run of denoiser calls in which nothing changes,
    /// with each AND part's text and each LoRA's te/unet multipliers. Texts wrap at <paramref name="textWidth"/> (a row
    /// grows in height; nothing is cut, so two steps whose texts differ late still look different); errors wrap at
    /// <paramref name="width"/> when it is given, with the caret under the prompt column they refer to.
    /// </summary>
    public static string RenderPlan(PromptPlan plan, int textWidth = 40, int width = 0)
    {
        var sb = new StringBuilder();
        foreach (var e in plan.Errors)
            sb.Append(PromptPlan.ErrorIsFatalInA1111(e) ? "error: " : "error (A1111 would skip the network): ")
              .AppendLine(DescribeError(plan.Prompt, PromptCaret.InPrompt(plan, e), width: width));
        foreach (var pass in plan.Passes)
        {
            var loras = pass.Loras.Count == 0 ? "no LoRA" : string.Join(", ", pass.Loras.Select(l => l.Name));
            sb.Append(CultureInfo.InvariantCulture, $"{pass.Name}: {pass.Steps} steps, {pass.Parts.Count} part{(pass.Parts.Count == 1 ? "" : "s")}, {loras}");
            if (plan.UsesExtendedSyntax) sb.Append(" (extended syntax)");
            sb.AppendLine();
            var runs = PlanRows.Of(pass);
            string Lora(LoraTrack l, int s) => $"{l.Name} {Num(l.Te[s])}/{Num(l.Unet[s])}";
            // The texts get what the step and LoRA columns leave of the panel, so the LoRA columns stay on screen.
            int tw = textWidth;
            if (width > 0 && runs.Count > 0 && pass.Parts.Count > 0)
            {
                int fixedWidth = 2 + runs.Max(r => r.Steps.Length) + pass.Loras.Sum(l => runs.Max(r => Lora(l, r.First).Length))
                    + 2 * (pass.Parts.Count + pass.Loras.Count);
                tw = Math.Max(12, Math.Min(textWidth, (width - fixedWidth) / pass.Parts.Count));
            }
            var rows = new List<List<IReadOnlyList<string>>>();
            foreach (var run in runs)
            {
                var row = new List<IReadOnlyList<string>> { new[] { run.Steps } };
                row.AddRange(pass.Parts.Select(p => Cell(p.TextAt(run.First), tw)));
                row.AddRange(pass.Loras.Select(l => (IReadOnlyList<string>)[Lora(l, run.First)]));
                rows.Add(row);
            }
            if (rows.Count == 0) continue;
            var widths = Enumerable.Range(0, rows[0].Count).Select(c => rows.Max(r => r[c].Max(l => l.Length))).ToArray();
            foreach (var r in rows)
                for (int l = 0; l < r.Max(c => c.Count); l++)
                    sb.AppendLine(("  " + string.Join("  ", r.Select((cell, c) => (l < cell.Count ? cell[l] : "").PadRight(widths[c])))).TrimEnd());
        }
        return sb.ToString();
    }

    private static IReadOnlyList<string> Cell(string? text, int width)
    {
        if (text is null) return ["(error)"];
        var t = "\"" + text.Replace("\n", "\\n", StringComparison.Ordinal) + "\"";
        return width > 4 ? Wrap(t, width) : [t];
    }

    private static string Num(double v) => v.ToString("0.##", CultureInfo.InvariantCulture);
}
