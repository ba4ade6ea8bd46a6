using LoraBridge.Prompting;

namespace LoraBridge.Engine;

/// <summary>What conditions one sampler step: AND-parts of the positive prompt, the negative text, and networks.</summary>
/// <param name="Positive">Scheduled texts of the AND-parts with their weights.</param>
/// <param name="Negative">Scheduled negative-prompt text.</param>
/// <param name="Networks">Network multipliers in prompt order; networks at 0/0 may be left out.</param>
public sealed record StepConditioning(IReadOnlyList<(string Text, double Weight)> Positive, string Negative, IReadOnlyList<NetworkSetting> Networks);

/// <summary>The per-step plan of one prompt pair.</summary>
/// <param name="Steps">Entry i conditions sampler step i (0-based, A1111's denoiser step counter).</param>
/// <param name="NetworkNames">Every network the prompt mentions, in order of first appearance.</param>
public sealed record GenerationPlan(IReadOnlyList<StepConditioning> Steps, IReadOnlyList<string> NetworkNames)
{
    /// <summary>
    /// The texts A1111 encodes together, per AND part (index k holds part k's schedule texts in schedule order,
    /// repeats included): emphasis restores the mean of that whole batch and shorter texts are padded with empty
    /// chunks, so a text's conditioning depends on its batch. Null: every text is encoded on its own.
    /// </summary>
    public IReadOnlyList<IReadOnlyList<string>>? PositiveBatches { get; init; }

    /// <summary>The negative prompt's schedule texts, encoded together; null: each on its own.</summary>
    public IReadOnlyList<string>? NegativeBatch { get; init; }

    /// <summary>LoRA block weights (<c>lbw=</c>/<c>lbwe=</c>) per network name; empty when the prompt has none.</summary>
    public IReadOnlyList<LoraBlockWeights> BlockWeights { get; init; } = [];
}

/// <summary>A prompt the engine cannot run, with where the problem is.</summary>
public sealed class PromptPlanException(string message) : Exception(message);

/// <summary>Turns prompts into per-step plans and texts into weighted fragments (the prompt engine's view).</summary>
public interface IPromptPlanner
{
    /// <summary>Plans <paramref name="steps"/> sampler steps.</summary>
    /// <exception cref="PromptPlanException">The prompt cannot be scheduled (A1111 would fail too).</exception>
    GenerationPlan Plan(string prompt, string negativePrompt, int steps);

    /// <summary>A1111's <c>parse_prompt_attention</c> of a scheduled text: fragments with emphasis weights (BREAK = -1).</summary>
    IReadOnlyList<(string Text, double Weight)> Attention(string text);
}

/// <summary>A prompt engine that also plans A1111's hires pass.</summary>
public interface IHiresPromptPlanner
{
    /// <summary>Plans the hires pass: <paramref name="hiresSteps"/> calls scheduled after <paramref name="steps"/> first-pass steps.</summary>
    /// <exception cref="PromptPlanException">The prompt cannot be scheduled.</exception>
    GenerationPlan PlanHires(string prompt, string negativePrompt, int steps, int hiresSteps);
}
