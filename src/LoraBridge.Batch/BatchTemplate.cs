using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Scriban;
using Scriban.Parsing;
using Scriban.Runtime;
using Scriban.Syntax;

namespace LoraBridge.Batch;

/// <summary>
/// Renders a Scriban template into generation jobs. The rendered text holds one job per non-blank line:
/// either a plain prompt, or a line written by the <c>job</c> helper that carries per-job settings.
/// </summary>
/// <remarks>
/// Helpers available to templates:
/// <list type="bullet">
/// <item><c>lora name weight</c> → <c>&lt;lora:name:weight&gt;</c></item>
/// <item><c>range from to step</c> → the numbers from..to inclusive (no float drift)</item>
/// <item><c>xy xs ys</c> → every cell of an X/Y sweep as objects <c>{x, y}</c>, row by row</item>
/// <item><c>job {prompt: …, seed: …, x: …, y: …}</c> → a job line with settings</item>
/// <item><c>data</c> → the rows of <c>--data FILE.json|.csv</c>, when given</item>
/// </list>
/// </remarks>
public static class BatchTemplate
{
    /// <summary>Prefix of the lines the <c>job</c> helper writes; chosen so no prompt is mistaken for settings.</summary>
    public const string JobLinePrefix = "@job ";

    private static readonly HashSet<string> JobKeys = new(StringComparer.Ordinal)
    {
        "prompt", "negative_prompt", "seed", "steps", "cfg_scale", "sampler", "schedule", "width", "height", "x", "y",
        "init_image", "denoise", "resize_mode", "hires", "hr_scale", "hr_steps", "hr_upscaler",
    };

    /// <summary>Parses and renders <paramref name="templateText"/>, then reads the jobs from the output.</summary>
    /// <param name="templateText">Scriban source.</param>
    /// <param name="sourcePath">File name used in error positions.</param>
    /// <param name="data">Optional rows exposed to the template as <c>data</c>.</param>
    /// <exception cref="BatchTemplateException">Parse, render or job errors, each with file, line and column.</exception>
    public static IReadOnlyList<BatchJob> Render(string templateText, string sourcePath, IReadOnlyList<IReadOnlyDictionary<string, object?>>? data = null)
    {
        var template = Template.Parse(templateText, sourcePath);
        if (template.HasErrors)
        {
            throw new BatchTemplateException(template.Messages
                .Where(m => m.Type == ParserMessageType.Error)
                .Select(m => ToError(sourcePath, m.Span, m.Message))
                .ToList());
        }

        var globals = new ScriptObject();
        globals.Import("lora", new Func<string, object, string>(Lora));
        globals.Import("range", new Func<object, object, object, ScriptArray>(Range));
        globals.Import("xy", new Func<IEnumerable<object>, IEnumerable<object>, ScriptArray>(Sweep));
        globals.Import("job", new Func<ScriptObject, string>(JobLine));
        if (data is not null)
        {
            var rows = new ScriptArray();
            foreach (var row in data)
            {
                var obj = new ScriptObject();
                foreach (var (k, v) in row) obj[k] = v;
                rows.Add(obj);
            }
            globals["data"] = rows;
        }

        var context = new LineTrackingContext { StrictVariables = true, MemberRenamer = m => m.Name };
        context.PushGlobal(globals);
        var output = new LineTrackingOutput(templateText, context);
        context.PushOutput(output);
        try
        {
            template.Render(context);
        }
        catch (ScriptRuntimeException ex)
        {
            throw new BatchTemplateException([ToError(sourcePath, ex.Span, ex.OriginalMessage)]);
        }
        return ReadJobs(output.Text, sourcePath, output.TemplateLines);
    }

    /// <summary>Reads jobs from rendered text: one per non-blank line.</summary>
    /// <param name="rendered">The rendered template.</param>
    /// <param name="sourcePath">File name used in error positions.</param>
    /// <param name="templateLines">Per rendered line (0-based), the 1-based template line it came from (0: unknown);
    /// null: the rendered text is the template (a job's line is its rendered line).</param>
    public static IReadOnlyList<BatchJob> ReadJobs(string rendered, string sourcePath, IReadOnlyList<int>? templateLines = null)
    {
        var jobs = new List<BatchJob>();
        var errors = new List<BatchError>();
        var lines = rendered.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            var line = lines[i].TrimEnd('\r');
            if (string.IsNullOrWhiteSpace(line)) continue;
            var trimmed = line.Trim();
            int templateLine = templateLines is null ? i + 1 : i < templateLines.Count && templateLines[i] > 0 ? templateLines[i] : 0;
            if (!trimmed.StartsWith(JobLinePrefix, StringComparison.Ordinal))
            {
                jobs.Add(new BatchJob(trimmed, templateLine));
                continue;
            }
            try
            {
                jobs.Add(ParseJobLine(trimmed[JobLinePrefix.Length..], templateLine));
            }
            catch (Exception ex) when (ex is JsonException or FormatException or InvalidOperationException)
            {
                errors.Add(templateLine > 0
                    ? new BatchError(sourcePath, templateLine, 1, $"{ex.Message} (rendered line {i + 1})")
                    : new BatchError(sourcePath + " (rendered)", i + 1, 1, ex.Message));
            }
        }
        if (errors.Count > 0) throw new BatchTemplateException(errors);
        return jobs;
    }

    private static BatchJob ParseJobLine(string json, int line)
    {
        var obj = JsonNode.Parse(json) as JsonObject ?? throw new FormatException("job settings must be an object");
        foreach (var key in obj.Select(p => p.Key))
        {
            if (!JobKeys.Contains(key)) throw new FormatException($"unknown job setting '{key}' (known: {string.Join(", ", JobKeys.Order())})");
        }
        var prompt = obj["prompt"]?.GetValue<string>() ?? throw new FormatException("job has no 'prompt'");
        return new BatchJob(prompt, line)
        {
            NegativePrompt = obj["negative_prompt"]?.GetValue<string>(),
            Seed = obj["seed"] is { } s ? checked((long)s.GetValue<double>()) : null,
            Steps = obj["steps"] is { } st ? checked((int)st.GetValue<double>()) : null,
            CfgScale = obj["cfg_scale"]?.GetValue<double>(),
            Sampler = obj["sampler"]?.GetValue<string>(),
            Schedule = obj["schedule"]?.GetValue<string>(),
            Width = obj["width"] is { } w ? checked((int)w.GetValue<double>()) : null,
            Height = obj["height"] is { } h ? checked((int)h.GetValue<double>()) : null,
            X = obj["x"]?.GetValue<string>(),
            Y = obj["y"]?.GetValue<string>(),
            InitImage = obj["init_image"]?.GetValue<string>(),
            Denoise = obj["denoise"]?.GetValue<double>(),
            ResizeMode = obj["resize_mode"]?.GetValue<string>(),
            Hires = obj["hires"]?.GetValue<bool>(),
            HrScale = obj["hr_scale"]?.GetValue<double>(),
            HrSteps = obj["hr_steps"] is { } hs ? checked((int)hs.GetValue<double>()) : null,
            HrUpscaler = obj["hr_upscaler"]?.GetValue<string>(),
        };
    }

    private static BatchError ToError(string file, SourceSpan span, string message) =>
        new(string.IsNullOrEmpty(span.FileName) ? file : span.FileName, span.Start.Line + 1, span.Start.Column + 1, message);

    /// <summary>Formats a number the way a user would type it: shortest round-trip, invariant culture.</summary>
    public static string FormatNumber(double value) => value.ToString("R", CultureInfo.InvariantCulture);

    private static double ToDouble(object value, string what) => value switch
    {
        double d => d,
        float f => f,
        int i => i,
        long l => l,
        decimal m => (double)m,
        string s when double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) => d,
        _ => throw new ArgumentException($"{what} must be a number, got '{value}'"),
    };

    private static string Lora(string name, object weight) => $"<lora:{name}:{FormatNumber(ToDouble(weight, "lora weight"))}>";

    private static ScriptArray Range(object from, object to, object step)
    {
        double a = ToDouble(from, "range start"), b = ToDouble(to, "range end"), s = ToDouble(step, "range step");
        if (s == 0 || double.IsNaN(s) || Math.Sign(b - a) * Math.Sign(s) < 0)
            throw new ArgumentException($"range {FormatNumber(a)} {FormatNumber(b)} {FormatNumber(s)} never reaches its end");
        var result = new ScriptArray();
        // Index-based stepping, rounded to 12 significant decimals, so 0..1 by 0.1 ends exactly at 1.
        int count = (int)Math.Floor((b - a) / s + 1e-9) + 1;
        if (count > 100_000) throw new ArgumentException($"range has {count} values; at most 100000");
        for (int k = 0; k < count; k++) result.Add(Math.Round(a + k * s, 12));
        return result;
    }

    private static ScriptArray Sweep(IEnumerable<object> xs, IEnumerable<object> ys)
    {
        var result = new ScriptArray();
        var xList = xs.ToList();
        foreach (var y in ys)
        {
            foreach (var x in xList)
            {
                result.Add(new ScriptObject { ["x"] = x, ["y"] = y });
            }
        }
        return result;
    }

    private static string JobLine(ScriptObject settings)
    {
        var obj = new JsonObject();
        foreach (var (key, value) in settings)
        {
            obj[key] = value switch
            {
                null => null,
                string s => JsonValue.Create(s),
                bool b => JsonValue.Create(b),
                double or float or int or long or decimal when key is "x" or "y" => JsonValue.Create(FormatNumber(ToDouble(value, key))),
                double or float or int or long or decimal => JsonValue.Create(ToDouble(value, key)),
                _ when key is "x" or "y" => JsonValue.Create(value.ToString()),
                _ => throw new ArgumentException($"job setting '{key}' has an unsupported value '{value}'"),
            };
        }
        // Newlines in a prompt would split the job across lines; JSON escapes them.
        return JobLinePrefix + obj.ToJsonString();
    }
}
