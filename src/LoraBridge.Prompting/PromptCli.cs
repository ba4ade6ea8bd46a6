using System.Globalization;
using System.Text;
using System.Text.Json;

namespace LoraBridge.Prompting;

/// <summary>The logic behind <c>lorabridge prompt plan</c>; the command-line layer only forwards arguments.</summary>
public static class PromptCli
{
    /// <summary>Writes the plan of one prompt as a readable table or as JSON. Returns 0, or 1 when the plan has errors.</summary>
    public static int Plan(string prompt, int steps, int? hiresSteps, bool json, TextWriter output) =>
        Plan(prompt, steps, hiresSteps, json, output, width: 0);

    /// <summary>
    /// As <see cref="Plan(string, int, int?, bool, TextWriter)"/>, with the table fitted to <paramref name="width"/>
    /// columns (the terminal's width; 0: no limit). JSON is not affected.
    /// </summary>
    public static int Plan(string prompt, int steps, int? hiresSteps, bool json, TextWriter output, int width)
    {
        var plan = PromptPlan.Create(prompt, steps, hiresSteps);
        if (json) output.WriteLine(PlanJson(plan, indented: true));
        else WriteTable(plan, output, width);
        return plan.IsOk ? 0 : 1;
    }

    /// <summary>
    /// Reads lines <c>{"prompt","steps","hires_steps"}</c> and writes one object per line with the conformance
    /// records' fields. A line that cannot be read gives <c>{"error": "..."}</c> with the line number, and exit code 2.
    /// </summary>
    public static int PlanJsonl(TextReader input, TextWriter output)
    {
        int lineNo = 0, bad = 0;
        string? line;
        while ((line = input.ReadLine()) is not null)
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            if (!TryReadRequest(line, out var prompt, out int steps, out int? hires, out var problem))
            {
                bad++;
                output.WriteLine(JsonSerializer.Serialize(new Dictionary<string, string> { ["error"] = $"stdin line {lineNo}: {problem}" }));
                continue;
            }
            output.WriteLine(A1111Result.Compute(prompt!, steps, hires).ToJsonLine());
        }
        return bad == 0 ? 0 : 2;
    }

    private static bool TryReadRequest(string line, out string? prompt, out int steps, out int? hires, out string problem)
    {
        prompt = null; steps = 0; hires = null; problem = "";
        try
        {
            using var doc = JsonDocument.Parse(line);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) { problem = "expected a JSON object"; return false; }
            if (!root.TryGetProperty("prompt", out var p) || p.ValueKind != JsonValueKind.String) { problem = "key \"prompt\" must be a string"; return false; }
            if (!root.TryGetProperty("steps", out var s) || !s.TryGetInt32(out steps) || steps < 1) { problem = "key \"steps\" must be an integer >= 1"; return false; }
            if (root.TryGetProperty("hires_steps", out var h) && h.ValueKind != JsonValueKind.Null)
            {
                if (!h.TryGetInt32(out int hv) || hv < 1) { problem = "key \"hires_steps\" must be null or an integer >= 1"; return false; }
                hires = hv;
            }
            prompt = p.GetString();
            return true;
        }
        catch (JsonException e)
        {
            problem = "invalid JSON: " + e.Message;
            return false;
        }
        catch (InvalidOperationException e)
        {
            // e.g. a "\ud800" escape without its low surrogate
            problem = "unreadable string: " + e.Message;
            return false;
        }
    }

    /// <summary>The plan as JSON: passes, AND parts with texts, ranges and fragments, LoRA tracks and changes, errors.</summary>
    public static string PlanJson(PromptPlan plan, bool indented = false)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = indented }))
        {
            w.WriteStartObject();
            w.WriteString("prompt", plan.Prompt);
            w.WriteBoolean("extended", plan.UsesExtendedSyntax);
            w.WritePropertyName("errors");
            w.WriteStartArray();
            foreach (var e in plan.Errors)
            {
                w.WriteStartObject();
                w.WriteString("kind", e.PythonType);
                w.WriteString("source", e.Source.ToString().ToLowerInvariant());
                w.WriteNumber("position", e.Position);
                w.WriteString("message", e.Message);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WritePropertyName("passes");
            w.WriteStartArray();
            foreach (var pass in plan.Passes)
            {
                w.WriteStartObject();
                w.WriteString("name", pass.Name);
                w.WriteNumber("steps", pass.Steps);
                w.WritePropertyName("parts");
                w.WriteStartArray();
                foreach (var part in pass.Parts)
                {
                    w.WriteStartObject();
                    w.WriteString("text", part.Text);
                    w.WritePropertyName("weight");
                    A1111Result.WriteFloat(w, part.Weight);
                    w.WritePropertyName("texts");
                    w.WriteStartArray();
                    foreach (var t in part.Texts)
                    {
                        w.WriteStartObject();
                        w.WriteString("text", t.Text);
                        w.WritePropertyName("ranges");
                        w.WriteStartArray();
                        foreach (var r in t.Ranges)
                        {
                            w.WriteStartArray();
                            w.WriteNumberValue(r.First);
                            w.WriteNumberValue(r.Last);
                            w.WriteEndArray();
                        }
                        w.WriteEndArray();
                        w.WritePropertyName("fragments");
                        w.WriteStartArray();
                        foreach (var (text, weight) in t.WeightedFragments)
                        {
                            w.WriteStartArray();
                            w.WriteStringValue(text);
                            A1111Result.WriteFloat(w, weight);
                            w.WriteEndArray();
                        }
                        w.WriteEndArray();
                        w.WriteEndObject();
                    }
                    w.WriteEndArray();
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WritePropertyName("loras");
                w.WriteStartArray();
                foreach (var l in pass.Loras)
                {
                    w.WriteStartObject();
                    w.WriteString("name", l.Name);
                    w.WritePropertyName("te");
                    w.WriteStartArray();
                    foreach (var v in l.Te) A1111Result.WriteFloat(w, v);
                    w.WriteEndArray();
                    w.WritePropertyName("unet");
                    w.WriteStartArray();
                    foreach (var v in l.Unet) A1111Result.WriteFloat(w, v);
                    w.WriteEndArray();
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WritePropertyName("changes");
                w.WriteStartArray();
                foreach (var c in pass.Changes)
                {
                    w.WriteStartObject();
                    w.WriteNumber("step", c.Step);
                    w.WritePropertyName("loras");
                    w.WriteStartArray();
                    foreach (var s in c.Loras)
                    {
                        w.WriteStartObject();
                        w.WriteString("name", s.Name);
                        w.WritePropertyName("te");
                        A1111Result.WriteFloat(w, s.Te);
                        w.WritePropertyName("unet");
                        A1111Result.WriteFloat(w, s.Unet);
                        w.WriteEndObject();
                    }
                    w.WriteEndArray();
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray());
    }

    /// <summary>
    /// A table per pass: one row per run of calls in which nothing changes, one column per AND part (its text) and
    /// per LoRA (te/unet).
    /// </summary>
    public static void WriteTable(PromptPlan plan, TextWriter output) => WriteTable(plan, output, width: 0);

    /// <summary>
    /// The table fitted to <paramref name="width"/> columns (0: no limit): when it is wider, the text columns share
    /// what the step and LoRA columns leave and their texts wrap onto continuation lines under their column, so a
    /// late difference between two steps stays visible (nothing is cut).
    /// </summary>
    public static void WriteTable(PromptPlan plan, TextWriter output, int width)
    {
        output.WriteLine($"prompt: {plan.Prompt}");
        if (plan.UsesExtendedSyntax) output.WriteLine("extended syntax: yes (LoRA scheduling/keyframes)");
        foreach (var e in plan.Errors) output.WriteLine($"error: {e}");
        foreach (var pass in plan.Passes)
        {
            output.WriteLine();
            output.WriteLine($"{pass.Name} pass, {pass.Steps} steps (0-based denoiser calls)");
            for (int k = 0; k < pass.Parts.Count; k++)
                output.WriteLine($"  part {k + 1}: weight {PyText.FloatRepr(pass.Parts[k].Weight)}");
            var header = new List<string> { "steps" };
            header.AddRange(pass.Parts.Select((p, k) => pass.Parts.Count > 1 ? $"text {k + 1}" : "text"));
            header.AddRange(pass.Loras.Select(l => $"{l.Name} te/unet"));
            var rows = new List<List<string>>();
            foreach (var run in PlanRows.Of(pass))
            {
                var row = new List<string> { run.Steps };
                row.AddRange(pass.Parts.Select(p => Quote(p.TextAt(run.First))));
                row.AddRange(pass.Loras.Select(l => $"{Num(l.Te[run.First])}/{Num(l.Unet[run.First])}"));
                rows.Add(row);
            }
            var widths = header.Select((h, c) => Math.Max(h.Length, rows.Count == 0 ? 0 : rows.Max(r => r[c].Length))).ToList();
            if (width > 0) FitTextColumns(widths, header, firstText: 1, textColumns: pass.Parts.Count, width);
            WriteRow(output, header, widths);
            output.WriteLine("  " + string.Join("-+-", widths.Select(wd => new string('-', wd))));
            foreach (var r in rows) WriteRow(output, r, widths);
        }
    }

    /// <summary>Narrows the text columns (never below their header or 12 columns) so the row fits <paramref name="width"/>.</summary>
    private static void FitTextColumns(List<int> widths, List<string> header, int firstText, int textColumns, int width)
    {
        int total = 2 + widths.Sum() + 3 * (widths.Count - 1);
        if (total <= width || textColumns == 0) return;
        int room = width - (total - widths.Skip(firstText).Take(textColumns).Sum());
        // Narrow columns keep their natural width; the wide ones share the rest equally.
        var order = Enumerable.Range(firstText, textColumns).OrderBy(c => widths[c]).ToList();
        for (int k = 0; k < order.Count; k++)
        {
            int c = order[k];
            int share = room / (order.Count - k);
            widths[c] = Math.Max(Math.Max(12, header[c].Length), Math.Min(widths[c], share));
            room -= widths[c];
        }
    }

    /// <summary>One table row; cells longer than their column wrap (at spaces where possible) onto more lines.</summary>
    private static void WriteRow(TextWriter output, List<string> cells, List<int> widths)
    {
        var wrapped = cells.Select((v, c) => Wrap(v, widths[c])).ToList();
        int lines = wrapped.Max(w => w.Count);
        for (int i = 0; i < lines; i++)
            output.WriteLine("  " + string.Join(" | ", wrapped.Select((w, c) => (i < w.Count ? w[i] : "").PadRight(widths[c]))));
    }

    private static List<string> Wrap(string text, int width)
    {
        var lines = new List<string>();
        while (text.Length > width)
        {
            int cut = text.LastIndexOf(' ', width);
            if (cut <= 0) cut = width;   // no space to break at: break inside the word
            else cut++;                  // the space stays at the end of the line
            lines.Add(text[..cut].TrimEnd());
            text = text[cut..];
        }
        lines.Add(text);
        return lines;
    }

    private static string Quote(string? text)
    {
        if (text is null) return "(error)";
        var t = text.Replace("\n", "\\n");
        return "\"" + t + "\"";
    }

    private static string Num(double v) => v.ToString("0.###", CultureInfo.InvariantCulture);
}
