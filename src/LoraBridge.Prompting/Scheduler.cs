using System.Text;

namespace LoraBridge.Prompting;

/// <summary>One schedule entry: the text conditions denoiser calls up to and including <paramref name="EndAtStep"/>.</summary>
/// <param name="EndAtStep">Last step (A1111's <c>end_at_step</c>).</param>
/// <param name="Text">Conditioning text.</param>
public readonly record struct ScheduleEntry(int EndAtStep, string Text);

/// <summary>Which scheduling rules to apply.</summary>
/// <param name="Steps">Base steps (<c>base_steps</c>).</param>
/// <param name="HiresSteps">Hires steps, or null for the first pass.</param>
/// <param name="UseOldScheduling">A1111's <c>use_old_scheduling</c>: v &lt; 1 is a fraction, hires ignored.</param>
public readonly record struct ScheduleOptions(int Steps, int? HiresSteps = null, bool UseOldScheduling = false)
{
    /// <summary>The step count the schedule spans.</summary>
    public int TotalSteps => HiresSteps is { } h && !UseOldScheduling ? h : Steps;
}

/// <summary><c>prompt_parser.get_learned_conditioning_prompt_schedules</c> for one prompt.</summary>
public static class Scheduler
{
    /// <summary>
    /// The text that conditions 0-based call <paramref name="step"/>: A1111's <c>reconstruct_cond_batch</c> takes the
    /// first entry with <c>step &lt;= end_at_step</c>, and falls back to the first entry.
    /// </summary>
    public static string TextAt(IReadOnlyList<ScheduleEntry> schedule, int step) => schedule[EntryAt(schedule, step)].Text;

    /// <summary>
    /// Index of the entry that conditions 0-based call <paramref name="step"/> (<see cref="TextAt"/>): the first with
    /// <c>step &lt;= end_at_step</c>, else 0, as A1111's <c>reconstruct_cond_batch</c>. The one home of that rule: the plan's
    /// step ranges and LoRA tracks use it too.
    /// </summary>
    public static int EntryAt(IReadOnlyList<ScheduleEntry> schedule, int step)
    {
        for (int i = 0; i < schedule.Count; i++)
            if (step <= schedule[i].EndAtStep) return i;
        return 0;
    }

    /// <summary>Parses and schedules <paramref name="prompt"/>.</summary>
    public static PromptResult<IReadOnlyList<ScheduleEntry>> Schedule(string prompt, ScheduleOptions options)
    {
        var tree = ScheduleParser.Parse(prompt);
        return tree.IsOk ? Schedule(tree.Value!, options) : PromptResult<IReadOnlyList<ScheduleEntry>>.Fail(tree.Error!);
    }

    /// <summary>Schedules an already parsed tree.</summary>
    public static PromptResult<IReadOnlyList<ScheduleEntry>> Schedule(ScheduleTree tree, ScheduleOptions options)
    {
        int steps = options.TotalSteps;
        if (!tree.Parsed)
            return PromptResult<IReadOnlyList<ScheduleEntry>>.Ok([new ScheduleEntry(steps, tree.Source)]);
        if (tree.Depth == 0) // only text: nothing to schedule
            return PromptResult<IReadOnlyList<ScheduleEntry>>.Ok([new ScheduleEntry(steps, tree.Source)]);
        var whens = new Dictionary<EditNode, int>(ReferenceEqualityComparer.Instance);
        var set = new SortedSet<int> { steps };
        foreach (var node in PromptSyntax.Walk(tree.Nodes))
        {
            if (node is EditNode edit)
            {
                var when = SwitchStep(edit.Number, options);
                if (when is null)
                    return PromptResult<IReadOnlyList<ScheduleEntry>>.Fail(new PromptError(PromptErrorKind.OverflowError, edit.NumberStart,
                        $"edit step '{edit.Number}' is infinite (A1111 raises OverflowError in int())"));
                whens[edit] = when.Value;
                if (when.Value >= 1) set.Add(when.Value);
            }
            else if (node is AlternateNode)
                for (int s = 1; s <= steps; s++) set.Add(s);
        }
        var result = new List<ScheduleEntry>(set.Count);
        var sb = new StringBuilder();
        foreach (int t in set)
        {
            sb.Clear();
            Render(tree.Nodes, t, whens, sb);
            result.Add(new ScheduleEntry(t, sb.ToString()));
        }
        return PromptResult<IReadOnlyList<ScheduleEntry>>.Ok(result);
    }

    /// <summary>
    /// The step an edit switches after, as A1111's CollectSteps computes it (<c>min(steps, int(v))</c>), or null
    /// where <c>int()</c> overflows. A number with a dot is a fraction; without one, an absolute step.
    /// </summary>
    public static int? SwitchStep(string number, ScheduleOptions options)
    {
        int steps = options.TotalSteps;
        double v = double.Parse(number, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture);
        bool hires = options.HiresSteps is not null && !options.UseOldScheduling;
        if (options.UseOldScheduling) v = v < 1 ? v * steps : v;
        else if (number.Contains('.')) v = (v - (hires ? 1.0 : 0.0)) * steps;
        else v -= hires ? options.Steps : 0;
        if (double.IsInfinity(v) || double.IsNaN(v)) return null;
        if (v >= steps) return steps;
        // Only "when >= 1" and "step <= when" matter, so very negative values can be clamped.
        return v <= -1e9 ? -1_000_000_000 : (int)Math.Truncate(v);
    }

    /// <summary>The text of a node sequence at one step.</summary>
    public static void Render(IReadOnlyList<ScheduleNode> nodes, int step, IReadOnlyDictionary<EditNode, int> whens, StringBuilder sb)
    {
        foreach (var node in nodes)
        {
            switch (node)
            {
                case TextNode t:
                    sb.Append(t.Text);
                    break;
                case EmphasisNode e:
                    sb.Append(e.Open);
                    Render(e.Inner, step, whens, sb);
                    if (e.AfterColon is not null) { sb.Append(':'); Render(e.AfterColon, step, whens, sb); }
                    sb.Append(e.Open == '(' ? ')' : ']');
                    break;
                case EditNode ed:
                    if (step <= whens[ed]) { if (ed.Before is not null) Render(ed.Before, step, whens, sb); }
                    else Render(ed.After, step, whens, sb);
                    break;
                case AlternateNode a:
                    Render(a.Options[(step - 1) % a.Options.Count], step, whens, sb);
                    break;
            }
        }
    }
}
