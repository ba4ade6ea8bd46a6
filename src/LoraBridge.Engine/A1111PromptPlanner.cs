using LoraBridge.Prompting;

namespace LoraBridge.Engine;

/// <summary>
/// The engine's view of the prompt engine: A1111's pipeline for the positive prompt (tags out, AND split,
/// scheduling, LoRA tracks with LoraBridge's extensions) and for the negative prompt (scheduled as is, tags kept
/// as text and no AND split, exactly as A1111 treats negative prompts).
/// </summary>
public sealed class A1111PromptPlanner : IPromptPlanner, IHiresPromptPlanner
{
    /// <summary>Block-weight presets for <c>lbw=</c>/<c>lbwe=</c> (LBW's defaults unless set).</summary>
    public LbwPresets BlockWeightPresets { get; init; } = LbwPresets.Default;

    /// <inheritdoc />
    public GenerationPlan Plan(string prompt, string negativePrompt, int steps) => PlanPass(prompt, negativePrompt, steps, null);

    /// <inheritdoc />
    public GenerationPlan PlanHires(string prompt, string negativePrompt, int steps, int hiresSteps) =>
        PlanPass(prompt, negativePrompt, steps, hiresSteps);

    private GenerationPlan PlanPass(string prompt, string negativePrompt, int steps, int? hiresSteps)
    {
        var plan = PromptPlan.Create(prompt, steps, hiresSteps);
        if (!plan.IsOk) throw new PromptPlanException(Describe(hiresSteps is null ? "prompt" : "hires prompt", plan.Errors));
        var blockWeights = BlockWeightReader.Read(prompt, BlockWeightPresets);
        if (!blockWeights.IsOk) throw new PromptPlanException(Describe("prompt", [blockWeights.Error!]));
        var negative = Scheduler.Schedule(negativePrompt, new ScheduleOptions(steps, hiresSteps));
        if (!negative.IsOk) throw new PromptPlanException(Describe(hiresSteps is null ? "negative prompt" : "hires negative prompt", [negative.Error!]));

        // The hires pass is scheduled as A1111's calculate_hr_conds does: over the hires steps, offset by the first pass.
        var pass = hiresSteps is null ? plan.Base : plan.Hires!;
        CheckMultipliers(prompt, pass.Loras.Select(t => (t.Name, t.Te.Concat(t.Unet))));
        var calls = new List<StepConditioning>(pass.Steps);
        for (int i = 0; i < pass.Steps; i++)
        {
            var positive = pass.Parts.Select(p => (p.TextAt(i) ?? "", p.Weight)).ToList();
            var networks = pass.Loras
                .Select(t => new NetworkSetting(t.Name, t.Te[i], t.Unet[i], null))
                .Where(n => n.Te != 0 || n.Unet != 0)
                .ToList();
            calls.Add(new StepConditioning(positive, Scheduler.TextAt(negative.Value!, i), networks));
        }
        // Every text must tokenize; emphasis errors abort the generation in A1111 too.
        foreach (var text in calls.SelectMany(c => c.Positive.Select(p => p.Text).Append(c.Negative)).Distinct())
            _ = Attention(text);
        return new GenerationPlan(calls, pass.Loras.Select(t => t.Name).Distinct().ToList())
        {
            PositiveBatches = pass.Parts.Select(p => (IReadOnlyList<string>)p.Schedule.Value!.Select(e => e.Text).ToList()).ToList(),
            NegativeBatch = negative.Value!.Select(e => e.Text).ToList(),
            BlockWeights = blockWeights.Value!,
        };
    }

    /// <inheritdoc />
    public IReadOnlyList<(string Text, double Weight)> Attention(string text)
    {
        var parsed = LoraBridge.Prompting.Attention.Parse(text);
        if (!parsed.IsOk) throw new PromptPlanException(Describe($"text \"{text}\"", [parsed.Error!]));
        return parsed.Value!.Select(f => (f.Text, f.Weight)).ToList();
    }

    // A1111 takes float("nan") and float("inf") as multipliers and renders a black image; here they are refused
    // (A1111's prompt plan still shows them as parsed, which the prompt conformance checks).
    private static void CheckMultipliers(string prompt, IEnumerable<(string Name, IEnumerable<double> Values)> tracks)
    {
        foreach (var (name, values) in tracks)
        {
            foreach (var v in values)
            {
                if (double.IsFinite(v) && Math.Abs(v) <= GenerationLimits.MaxMultiplier) continue;
                int at = prompt.IndexOf("<lora:" + name, StringComparison.Ordinal);
                if (at < 0) at = Math.Max(0, prompt.IndexOf(name, StringComparison.Ordinal));
                throw new PromptPlanException($"cannot use the prompt: LoRA '{name}' has multiplier {PyText.FloatRepr(v)}; multipliers must be finite numbers " +
                    $"between {-GenerationLimits.MaxMultiplier} and {GenerationLimits.MaxMultiplier} (at character {at + 1})");
            }
        }
    }

    private static string Describe(string what, IReadOnlyList<PromptError> errors) =>
        $"cannot use the {what}: " + string.Join("; ", errors.Select(e => $"{e.Message} (at character {e.Position + 1})"));
}
