using System.Text;
using System.Text.Json;

namespace LoraBridge.Prompting;

/// <summary>
/// Everything A1111 v1.10.1 computes from one positive prompt, in pipeline order: tag removal, activation, AND split,
/// schedules (per sub-prompt, old scheduling, negative-prompt path) and emphasis for every distinct scheduled text.
/// </summary>
/// <param name="Prompt">Original prompt.</param>
/// <param name="Steps">Base steps.</param>
/// <param name="HiresSteps">Hires steps or null.</param>
/// <param name="ExtraNetworks">Tag removal result.</param>
/// <param name="Activation">Network activation.</param>
/// <param name="AndParts">AND parts of the stripped prompt.</param>
/// <param name="Schedules">Whole stripped prompt scheduled.</param>
/// <param name="MulticondSchedules">Each AND part scheduled (what the pipeline uses).</param>
/// <param name="SchedulesOld">Stripped prompt with <c>use_old_scheduling</c>.</param>
/// <param name="NegativeSchedules">Raw prompt as a negative prompt (tags kept, no AND split).</param>
/// <param name="Attention">Emphasis of every distinct scheduled text, first-appearance order.</param>
public sealed record A1111Result(
    string Prompt,
    int Steps,
    int? HiresSteps,
    ExtraNetworkParse ExtraNetworks,
    ActivationResult Activation,
    IReadOnlyList<AndPart> AndParts,
    PromptResult<IReadOnlyList<ScheduleEntry>> Schedules,
    IReadOnlyList<PromptResult<IReadOnlyList<ScheduleEntry>>> MulticondSchedules,
    PromptResult<IReadOnlyList<ScheduleEntry>> SchedulesOld,
    PromptResult<IReadOnlyList<ScheduleEntry>> NegativeSchedules,
    IReadOnlyList<KeyValuePair<string, PromptResult<IReadOnlyList<AttentionFragment>>>> Attention)
{
    /// <summary>Runs A1111's pipeline for one prompt.</summary>
    public static A1111Result Compute(string prompt, int steps, int? hiresSteps)
    {
        var en = Prompting.ExtraNetworks.Parse(prompt);
        var activation = Prompting.ExtraNetworks.Activate(en);
        var parts = Multicond.Split(en.Prompt);
        var opts = new ScheduleOptions(steps, hiresSteps);
        var cache = new Dictionary<string, PromptResult<IReadOnlyList<ScheduleEntry>>>();
        PromptResult<IReadOnlyList<ScheduleEntry>> Sched(string text)
        {
            if (!cache.TryGetValue(text, out var r)) cache[text] = r = Scheduler.Schedule(text, opts);
            return r;
        }
        var schedules = Sched(en.Prompt);
        var multicond = parts.Select(p => Sched(p.Text)).ToList();
        var old = Scheduler.Schedule(en.Prompt, opts with { UseOldScheduling = true });
        var negative = Sched(prompt);
        var attention = new List<KeyValuePair<string, PromptResult<IReadOnlyList<AttentionFragment>>>>();
        var seen = new HashSet<string>();
        void Add(PromptResult<IReadOnlyList<ScheduleEntry>> r)
        {
            if (!r.IsOk) return;
            foreach (var e in r.Value!)
                if (seen.Add(e.Text)) attention.Add(new(e.Text, Prompting.Attention.Parse(e.Text)));
        }
        Add(schedules);
        Add(old);
        foreach (var m in multicond) Add(m);
        Add(negative);
        return new A1111Result(prompt, steps, hiresSteps, en, activation, parts, schedules, multicond, old, negative, attention);
    }

    /// <summary>
    /// Writes the result with the field names and shapes of the conformance records (without id, prompt_id,
    /// category). Errors appear as <c>{"error": "&lt;Python type&gt;"}</c>; non-finite floats as named literals.
    /// </summary>
    public void WriteJson(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteString("prompt", Prompt);
        w.WriteNumber("steps", Steps);
        if (HiresSteps is { } h) w.WriteNumber("hires_steps", h); else w.WriteNull("hires_steps");
        w.WritePropertyName("extra_networks");
        w.WriteStartObject();
        w.WriteString("prompt", ExtraNetworks.Prompt);
        w.WritePropertyName("networks");
        w.WriteStartObject();
        foreach (var type in ExtraNetworks.TypeOrder)
        {
            w.WritePropertyName(type);
            w.WriteStartArray();
            foreach (var tag in ExtraNetworks.OfType(type))
            {
                w.WriteStartObject();
                WriteStrings(w, "items", tag.Items);
                WriteStrings(w, "positional", tag.Positional);
                w.WritePropertyName("named");
                w.WriteStartObject();
                foreach (var kv in tag.Named) w.WriteString(kv.Key, kv.Value);
                w.WriteEndObject();
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }
        w.WriteEndObject();
        w.WriteEndObject();

        w.WritePropertyName("activation");
        w.WriteStartObject();
        w.WritePropertyName("calls");
        w.WriteStartArray();
        foreach (var call in Activation.Calls)
        {
            w.WriteStartArray();
            w.WriteStringValue(call.Network);
            w.WriteStartObject();
            if (call.Error is not null) w.WriteString("error", call.Error.PythonType);
            else if (call.Network == "lora")
            {
                WriteStrings(w, "names", call.Loras.Select(l => l.Name));
                WriteFloats(w, "te_multipliers", call.Loras.Select(l => l.TeMultiplier));
                WriteFloats(w, "unet_multipliers", call.Loras.Select(l => l.UnetMultiplier));
                w.WritePropertyName("dyn_dims");
                w.WriteStartArray();
                foreach (var l in call.Loras)
                    if (l.DynDim is { } d) w.WriteRawValue(d.ToString(System.Globalization.CultureInfo.InvariantCulture)); else w.WriteNullValue();
                w.WriteEndArray();
            }
            else
            {
                WriteStrings(w, "names", call.Hypernets.Select(x => x.Name));
                WriteFloats(w, "multipliers", call.Hypernets.Select(x => x.Multiplier));
            }
            w.WriteEndObject();
            w.WriteEndArray();
        }
        w.WriteEndArray();
        WriteStrings(w, "skipped", Activation.Skipped);
        w.WriteEndObject();

        w.WritePropertyName("multicond");
        w.WriteStartArray();
        foreach (var p in AndParts)
        {
            w.WriteStartArray();
            w.WriteStringValue(p.Text);
            WriteFloat(w, p.Weight);
            w.WriteEndArray();
        }
        w.WriteEndArray();
        w.WritePropertyName("schedules");
        WriteSchedule(w, Schedules);
        w.WritePropertyName("multicond_schedules");
        w.WriteStartArray();
        foreach (var m in MulticondSchedules) WriteSchedule(w, m);
        w.WriteEndArray();
        w.WritePropertyName("schedules_old");
        WriteSchedule(w, SchedulesOld);
        w.WritePropertyName("negative_schedules");
        WriteSchedule(w, NegativeSchedules);
        // One deterministic reading per prompt (see ScheduleParser), so there are never variants to list.
        w.WriteNull("schedule_variants");
        w.WritePropertyName("attention");
        w.WriteStartObject();
        foreach (var kv in Attention)
        {
            w.WritePropertyName(kv.Key);
            if (!kv.Value.IsOk) { WriteError(w, kv.Value.Error!); continue; }
            w.WriteStartArray();
            foreach (var f in kv.Value.Value!)
            {
                w.WriteStartArray();
                w.WriteStringValue(f.Text);
                if (f.IsIntegerWeight) w.WriteNumberValue((int)f.Weight); else WriteFloat(w, f.Weight);
                w.WriteEndArray();
            }
            w.WriteEndArray();
        }
        w.WriteEndObject();
        w.WriteEndObject();
    }

    /// <summary>The record as one line of JSON.</summary>
    public string ToJsonLine()
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, JsonOutput.WriterOptions)) WriteJson(w);
        return Encoding.UTF8.GetString(ms.ToArray());
    }

    private static void WriteSchedule(Utf8JsonWriter w, PromptResult<IReadOnlyList<ScheduleEntry>> r)
    {
        if (!r.IsOk) { WriteError(w, r.Error!); return; }
        w.WriteStartArray();
        foreach (var e in r.Value!)
        {
            w.WriteStartArray();
            w.WriteNumberValue(e.EndAtStep);
            w.WriteStringValue(e.Text);
            w.WriteEndArray();
        }
        w.WriteEndArray();
    }

    private static void WriteError(Utf8JsonWriter w, PromptError e)
    {
        w.WriteStartObject();
        w.WriteString("error", e.PythonType);
        w.WriteEndObject();
    }

    private static void WriteStrings(Utf8JsonWriter w, string name, IEnumerable<string> values)
    {
        w.WritePropertyName(name);
        w.WriteStartArray();
        foreach (var v in values) w.WriteStringValue(v);
        w.WriteEndArray();
    }

    private static void WriteFloats(Utf8JsonWriter w, string name, IEnumerable<double> values)
    {
        w.WritePropertyName(name);
        w.WriteStartArray();
        foreach (var v in values) WriteFloat(w, v);
        w.WriteEndArray();
    }

    /// <summary>Writes a float as Python's repr would (<c>1.0</c>, <c>1e+16</c>) or as a named literal when not finite.</summary>
    public static void WriteFloat(Utf8JsonWriter w, double v)
    {
        if (double.IsNaN(v)) w.WriteStringValue("NaN");
        else if (double.IsPositiveInfinity(v)) w.WriteStringValue("Infinity");
        else if (double.IsNegativeInfinity(v)) w.WriteStringValue("-Infinity");
        else w.WriteRawValue(PyText.FloatRepr(v), skipInputValidation: true);
    }
}

/// <summary>Shared JSON settings.</summary>
public static class JsonOutput
{
    /// <summary>Compact writer; non-ASCII is escaped like Python's <c>ensure_ascii=True</c>.</summary>
    public static readonly JsonWriterOptions WriterOptions = new() { Indented = false };
}
