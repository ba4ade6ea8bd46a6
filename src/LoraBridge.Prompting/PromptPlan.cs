using System.Text;

namespace LoraBridge.Prompting;

/// <summary>An inclusive range of 0-based denoiser calls (A1111's <c>self.step</c>).</summary>
/// <param name="First">First call.</param>
/// <param name="Last">Last call.</param>
public readonly record struct StepRange(int First, int Last);

/// <summary>One distinct conditioning text of an AND part, the calls it conditions and its emphasis fragments.</summary>
/// <param name="Text">Text sent to the text encoder.</param>
/// <param name="Ranges">Calls that use it (empty when A1111 schedules it for no call, e.g. the last entry of <c>[a:b:19]</c> at 20 steps).</param>
/// <param name="Fragments"><c>parse_prompt_attention</c> of the text, or its error.</param>
public sealed record ConditioningText(string Text, IReadOnlyList<StepRange> Ranges, PromptResult<IReadOnlyList<AttentionFragment>> Fragments)
{
    /// <summary>Fragments as plain (text, weight) pairs for the tokenizer; empty when emphasis parsing failed.</summary>
    public IReadOnlyList<(string Text, double Weight)> WeightedFragments =>
        Fragments.IsOk ? Fragments.Value!.Select(f => (f.Text, f.Weight)).ToList() : [];
}

/// <summary>One AND part of one pass.</summary>
/// <param name="Text">The part's prompt text (before scheduling).</param>
/// <param name="Weight">Composable-diffusion weight.</param>
/// <param name="Schedule">A1111's schedule (<c>[end_at_step, text]</c>), or its error.</param>
/// <param name="Texts">Distinct texts in first-use order.</param>
public sealed record AndPartPlan(string Text, double Weight, PromptResult<IReadOnlyList<ScheduleEntry>> Schedule, IReadOnlyList<ConditioningText> Texts)
{
    /// <summary>The text that conditions 0-based call <paramref name="step"/> (first entry with step ≤ end), or null on error.</summary>
    public string? TextAt(int step)
    {
        return Schedule.IsOk ? Scheduler.TextAt(Schedule.Value!, step) : null;
    }
}

/// <summary>The te and UNet multiplier of one LoRA at every call of a pass (0 where it is not applied).</summary>
/// <param name="Name">LoRA name.</param>
/// <param name="Te">Text-encoder multiplier per call.</param>
/// <param name="Unet">UNet multiplier per call.</param>
public sealed record LoraTrack(string Name, IReadOnlyList<double> Te, IReadOnlyList<double> Unet);

/// <summary>Absolute multipliers of one LoRA from a change step on.</summary>
/// <param name="Name">LoRA name.</param>
/// <param name="Te">Text-encoder multiplier.</param>
/// <param name="Unet">UNet multiplier.</param>
public readonly record struct LoraSetting(string Name, double Te, double Unet);

/// <summary>At call <paramref name="Step"/>, set these LoRAs to these values (the list sent to Python).</summary>
/// <param name="Step">0-based call.</param>
/// <param name="Loras">LoRAs whose multipliers change, with their new absolute values.</param>
public sealed record LoraChange(int Step, IReadOnlyList<LoraSetting> Loras);

/// <summary>The plan of one sampling pass.</summary>
/// <param name="Name"><c>base</c> or <c>hires</c>.</param>
/// <param name="Steps">Number of denoiser calls.</param>
/// <param name="Options">Scheduling options used.</param>
/// <param name="Parts">AND parts.</param>
/// <param name="Loras">Every LoRA's multipliers per call.</param>
/// <param name="Changes">Compact list of changes; the first entry (step 0) sets every LoRA.</param>
public sealed record PassPlan(string Name, int Steps, ScheduleOptions Options, IReadOnlyList<AndPartPlan> Parts,
    IReadOnlyList<LoraTrack> Loras, IReadOnlyList<LoraChange> Changes);

/// <summary>
/// The per-step plan of one prompt: conditioning texts per AND part and LoRA multipliers per step, for the base pass
/// and optionally the hires pass. Without extended syntax it is exactly A1111 v1.10.1's behaviour; with it, LoRA tags
/// inside prompt editing are scheduled, multipliers may be keyframed and <c>start=</c>/<c>stop=</c> bound a LoRA
/// (see docs/PROMPT_SYNTAX.md). Never throws for any prompt.
/// </summary>
/// <param name="Prompt">The prompt.</param>
/// <param name="UsesExtendedSyntax">True when extended syntax was found and applied.</param>
/// <param name="Activation">A1111's activation of the prompt's tags (what A1111 itself would load).</param>
/// <param name="Passes">Base pass, then the hires pass if requested.</param>
/// <param name="Errors">
/// Typed errors: schedule overflow/recursion and emphasis weights (A1111 aborts the generation), bad step counts, and
/// LoRA/hypernet tags whose arguments cannot be read, extended syntax included (A1111 prints those, unloads that network
/// type and generates anyway; the plan's LoRA tracks show that outcome, see <see cref="ErrorIsFatalInA1111"/>).
/// </param>
public sealed record PromptPlan(string Prompt, bool UsesExtendedSyntax, ActivationResult Activation,
    IReadOnlyList<PassPlan> Passes, IReadOnlyList<PromptError> Errors)
{
    // Tags become private-use characters while prompt editing is evaluated, so they can ride along in edits.
    private const char PlaceholderBase = '\uE000';
    private const int MaxPlaceholders = 0x1900;

    /// <summary>True when nothing failed.</summary>
    public bool IsOk => Errors.Count == 0;

    /// <summary>True for errors that abort A1111's generation (as opposed to network-argument errors it only prints).</summary>
    public static bool ErrorIsFatalInA1111(PromptError error) => error.Source != PromptErrorSource.Network;

    /// <summary>The base pass.</summary>
    public PassPlan Base => Passes[0];

    /// <summary>The hires pass, if requested.</summary>
    public PassPlan? Hires => Passes.Count > 1 ? Passes[1] : null;

    /// <summary>Builds the plan.</summary>
    /// <param name="prompt">Positive prompt.</param>
    /// <param name="steps">Base steps (≥ 1).</param>
    /// <param name="hiresSteps">Hires steps (≥ 1) or null.</param>
    /// <param name="extensions">False to get A1111's behaviour even for extended syntax.</param>
    public static PromptPlan Create(string prompt, int steps, int? hiresSteps = null, bool extensions = true)
    {
        var errors = new List<PromptError>();
        var en = ExtraNetworks.Parse(prompt);
        var activation = ExtraNetworks.Activate(en);
        if (steps < 1 || hiresSteps is < 1)
        {
            errors.Add(new PromptError(PromptErrorKind.ValueError, 0, $"steps must be at least 1 (steps={steps}, hires steps={hiresSteps?.ToString() ?? "none"})", PromptErrorSource.Request));
            return new PromptPlan(prompt, false, activation, [], errors);
        }
        var loraTags = en.Tags.Where(t => t.Type is "lora" or "lyco").ToList();
        string? placeholderPrompt = extensions ? PlaceholderPrompt(prompt, en, loraTags) : null;
        bool tagsInEdits = placeholderPrompt is not null && TagsInsideEdits(placeholderPrompt);
        bool extended = extensions && (tagsInEdits || loraTags.Any(LoraDirective.UsesExtendedSyntax));

        var passes = new List<PassPlan>();
        var opts = new List<(string Name, ScheduleOptions Options)> { ("base", new ScheduleOptions(steps)) };
        if (hiresSteps is { } h) opts.Add(("hires", new ScheduleOptions(steps, h)));
        List<LoraDirective>? directives = null;
        if (extended)
        {
            directives = [];
            foreach (var tag in loraTags)
            {
                var d = LoraDirective.Read(tag);
                if (!d.IsOk) { errors.Add(d.Error! with { Source = PromptErrorSource.Network }); directives = null; break; } // as in A1111, one bad tag unloads every LoRA
                directives.Add(d.Value!);
            }
        }
        // A1111 prints activation errors and generates anyway; they are reported. In extended mode the LoRA tags
        // were read above, so only hypernet errors remain.
        foreach (var call in activation.Calls)
            if (call.Error is not null && (!extended || call.Network != "lora")) errors.Add(call.Error);
        var attention = new Dictionary<string, PromptResult<IReadOnlyList<AttentionFragment>>>();
        foreach (var (name, o) in opts)
        {
            string source = tagsInEdits ? placeholderPrompt! : en.Prompt;
            int before = errors.Count;
            var parts = BuildParts(source, o, errors, attention);
            // Schedule errors point into the tag-free text; report them against the prompt as written.
            for (int k = before; k < errors.Count; k++)
                if (errors[k].Kind is PromptErrorKind.OverflowError or PromptErrorKind.RecursionError)
                    errors[k] = errors[k] with { Position = en.ToOriginalOffset(errors[k].Position, tagsInEdits ? t => t.Type is "lora" or "lyco" : null) };
            IReadOnlyList<LoraTrack> tracks = extended
                ? ExtendedTracks(directives ?? [], parts, o, tagsInEdits)
                : ConstantTracks(activation.LoadedLoras, o.TotalSteps);
            passes.Add(new PassPlan(name, o.TotalSteps, o, parts.Select(p => p.Plan).ToList(), tracks, Changes(tracks, o.TotalSteps)));
        }
        return new PromptPlan(prompt, extended, activation, passes, errors);
    }

    private static string? PlaceholderPrompt(string prompt, ExtraNetworkParse en, List<ExtraNetworkTag> loraTags)
    {
        if (loraTags.Count == 0 || loraTags.Count > MaxPlaceholders) return null;
        foreach (char c in prompt)
            if (c >= PlaceholderBase && c < PlaceholderBase + MaxPlaceholders) return null;
        var sb = new StringBuilder(prompt.Length);
        int copied = 0, index = 0;
        foreach (var tag in en.Tags)
        {
            sb.Append(prompt, copied, tag.Start - copied);
            if (tag.Type is "lora" or "lyco") sb.Append((char)(PlaceholderBase + index++));
            copied = tag.End;
        }
        sb.Append(prompt, copied, prompt.Length - copied);
        return sb.ToString();
    }

    private static bool IsPlaceholder(char c) => c >= PlaceholderBase && c < PlaceholderBase + MaxPlaceholders;

    private static bool TagsInsideEdits(string placeholderPrompt)
    {
        foreach (var part in Multicond.Split(placeholderPrompt))
        {
            var tree = ScheduleParser.Parse(part.Text);
            if (!tree.IsOk || !tree.Value!.Parsed) continue;
            foreach (var node in PromptSyntax.Walk(tree.Value.Nodes))
                if (node is EditNode or AlternateNode && part.Text.AsSpan(node.Start, node.End - node.Start).IndexOfAnyInRange(PlaceholderBase, (char)(PlaceholderBase + MaxPlaceholders - 1)) >= 0)
                    return true;
        }
        return false;
    }

    private sealed record PartWork(AndPartPlan Plan, IReadOnlyList<ScheduleEntry>? RawSchedule);

    private static List<PartWork> BuildParts(string source, ScheduleOptions o, List<PromptError> errors,
        Dictionary<string, PromptResult<IReadOnlyList<AttentionFragment>>> attention)
    {
        var list = new List<PartWork>();
        foreach (var part in Multicond.Split(source, IsPlaceholder))
        {
            var sched = Scheduler.Schedule(part.Text, o);
            if (!sched.IsOk)
            {
                errors.Add(sched.Error! with { Position = sched.Error!.Position + part.Start });
                list.Add(new PartWork(new AndPartPlan(StripPlaceholders(part.Text), part.Weight, sched, []), null));
                continue;
            }
            var raw = sched.Value!;
            var clean = raw.Select(e => e with { Text = StripPlaceholders(e.Text) }).ToList();
            // Every entry's text gets a slot (in schedule order, even one no call uses); each call joins the range of
            // the entry Scheduler.EntryAt picks for it.
            var texts = new List<(string Text, List<StepRange> Ranges)>();
            var slotOf = new int[clean.Count];
            for (int k = 0; k < clean.Count; k++)
            {
                var slot = texts.FindIndex(t => t.Text == clean[k].Text);
                if (slot < 0) { texts.Add((clean[k].Text, [])); slot = texts.Count - 1; }
                slotOf[k] = slot;
            }
            for (int i = 0; i < o.TotalSteps; i++)
            {
                var ranges = texts[slotOf[Scheduler.EntryAt(clean, i)]].Ranges;
                if (ranges.Count > 0 && ranges[^1].Last + 1 == i) ranges[^1] = ranges[^1] with { Last = i };
                else ranges.Add(new StepRange(i, i));
            }
            var conditioning = new List<ConditioningText>();
            foreach (var (text, ranges) in texts)
            {
                bool fresh = !attention.TryGetValue(text, out var frags);
                if (fresh) attention[text] = frags = Attention.Parse(text);
                // The position of an emphasis error is an offset in the scheduled text, which the message quotes.
                if (!frags.IsOk && fresh) errors.Add(frags.Error! with { Message = frags.Error.Message + $" (in scheduled text \"{text}\")" });
                conditioning.Add(new ConditioningText(text, ranges, frags));
            }
            list.Add(new PartWork(new AndPartPlan(StripPlaceholders(part.Text), part.Weight,
                PromptResult<IReadOnlyList<ScheduleEntry>>.Ok(clean), conditioning), raw));
        }
        return list;
    }

    private static string StripPlaceholders(string s)
    {
        if (s.AsSpan().IndexOfAnyInRange(PlaceholderBase, (char)(PlaceholderBase + MaxPlaceholders - 1)) < 0) return s;
        var sb = new StringBuilder(s.Length);
        foreach (char c in s) if (!IsPlaceholder(c)) sb.Append(c);
        return sb.ToString();
    }

    private static IReadOnlyList<LoraTrack> ConstantTracks(IReadOnlyList<LoraActivation> loras, int n)
    {
        var tracks = new List<(string Name, double[] Te, double[] Unet)>();
        foreach (var l in loras)
        {
            var t = Track(tracks, l.Name, n);
            for (int i = 0; i < n; i++) { t.Te[i] += l.TeMultiplier; t.Unet[i] += l.UnetMultiplier; }
        }
        return tracks.Select(t => new LoraTrack(t.Name, t.Te, t.Unet)).ToList();
    }

    // Duplicate tags of one LoRA add up, as A1111 applies every loaded copy.
    private static (string Name, double[] Te, double[] Unet) Track(List<(string Name, double[] Te, double[] Unet)> tracks, string name, int n)
    {
        int i = tracks.FindIndex(t => t.Name == name);
        if (i >= 0) return tracks[i];
        var t = (name, new double[n], new double[n]);
        tracks.Add(t);
        return t;
    }

    private static IReadOnlyList<LoraTrack> ExtendedTracks(List<LoraDirective> directives, List<PartWork> parts, ScheduleOptions o, bool placeholders)
    {
        int n = o.TotalSteps;
        // Entry used by each call, per part (first entry with call <= end_at_step).
        var entryOfCall = parts.Select(p => p.RawSchedule is { } raw ? Enumerable.Range(0, n).Select(i => Scheduler.EntryAt(raw, i)).ToArray() : null).ToList();
        var tracks = new List<(string Name, double[] Te, double[] Unet)>();
        for (int index = 0; index < directives.Count; index++)
        {
            var d = directives[index];
            var t = Track(tracks, d.Name, n);
            char mark = (char)(PlaceholderBase + index);
            var present = new bool[n];
            if (!placeholders) Array.Fill(present, true);
            else
                for (int k = 0; k < parts.Count; k++)
                {
                    if (parts[k].RawSchedule is not { } raw) continue;
                    var has = raw.Select(e => e.Text.Contains(mark)).ToArray();
                    for (int i = 0; i < n; i++) present[i] |= has[entryOfCall[k]![i]];
                }
            var window = d.Window(n, o);
            var te = d.Te.Sample(n, o);
            var unet = d.Unet.Sample(n, o);
            for (int i = 0; i < n; i++)
            {
                if (!present[i] || !window[i]) continue;
                t.Te[i] += te[i];
                t.Unet[i] += unet[i];
            }
        }
        return tracks.Select(t => new LoraTrack(t.Name, t.Te, t.Unet)).ToList();
    }

    private static IReadOnlyList<LoraChange> Changes(IReadOnlyList<LoraTrack> tracks, int n)
    {
        var changes = new List<LoraChange>();
        for (int i = 0; i < n; i++)
        {
            var set = new List<LoraSetting>();
            foreach (var t in tracks)
                if (i == 0 || !t.Te[i].Equals(t.Te[i - 1]) || !t.Unet[i].Equals(t.Unet[i - 1]))
                    set.Add(new LoraSetting(t.Name, t.Te[i], t.Unet[i]));
            if (set.Count > 0) changes.Add(new LoraChange(i, set));
        }
        return changes;
    }
}
