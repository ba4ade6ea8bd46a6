using LoraBridge.Python;

namespace LoraBridge.Engine;

/// <summary>One model call's inputs, lent to before-model-call hooks (A1111's <c>on_cfg_denoiser</c>) while the step waits.</summary>
/// <remarks>
/// The three tensors are copies made for this call: a hook changes what the model sees by writing into them in place
/// from Python (e.g. <c>x.mul_(0)</c>, or <c>cond.copy_(uncond)</c> when the shapes match); the sampler's own latent
/// and the cached conditionings of later steps are not touched. Shapes must stay as they are (a changed shape fails
/// the step). The handles are valid only while the hook runs; used later they fail with a LookupError saying they
/// outlived their step.
/// </remarks>
public sealed class DenoiserStep(TensorHandle x, int step, int totalSteps, double sigma, TensorHandle cond, TensorHandle uncond)
{
    /// <summary>The latent the model is about to get, [batch, channels, height/8, width/8]; modifiable in place.</summary>
    public TensorHandle X { get; } = x;

    /// <summary>1-based model call of this pass (a hires pass counts from 1 again).</summary>
    public int Step { get; } = step;

    /// <summary>Model calls of this pass.</summary>
    public int TotalSteps { get; } = totalSteps;

    /// <summary>Noise level of the call (k-diffusion sigma; the timestep for DDIM).</summary>
    public double Sigma { get; } = sigma;

    /// <summary>
    /// Positive conditioning [rows, tokens, width]: every AND-part of every image, stacked (image 0's parts first);
    /// modifiable in place.
    /// </summary>
    public TensorHandle Cond { get; } = cond;

    /// <summary>Negative conditioning [batch, tokens, width]; modifiable in place.</summary>
    public TensorHandle Uncond { get; } = uncond;
}

/// <summary>Before-model-call hooks of an <see cref="IGenerationHooks"/> (with one subscribed, steps run one at a time).</summary>
public interface IModelCallHooks
{
    /// <summary>True when <see cref="BeforeModelCallAsync"/> must be called.</summary>
    bool HasBeforeModelCall { get; }

    /// <summary>Called on the Python thread inside each model call, right before the model runs.</summary>
    ValueTask BeforeModelCallAsync(DenoiserStep step, CancellationToken ct);
}

/// <summary>A batch (one sampler run of <see cref="GenerationRequest.BatchSize"/> images) about to start.</summary>
/// <param name="Batch">0-based batch number within the job.</param>
/// <param name="BatchCount">Batches in the job.</param>
/// <param name="Seeds">The seed of each image of the batch.</param>
public sealed record BatchStart(int Batch, int BatchCount, IReadOnlyList<long> Seeds);

/// <summary>A batch whose images are all written.</summary>
/// <param name="Batch">0-based batch number within the job.</param>
/// <param name="BatchCount">Batches in the job.</param>
/// <param name="Seeds">The seed of each image of the batch.</param>
/// <param name="Images">The files written for the batch, in seed order.</param>
public sealed record BatchDone(int Batch, int BatchCount, IReadOnlyList<long> Seeds, IReadOnlyList<GeneratedImage> Images);

/// <summary>Batch hooks of an <see cref="IGenerationHooks"/>.</summary>
public interface IBatchHooks
{
    /// <summary>True when <see cref="BeforeBatchAsync"/> or <see cref="AfterBatchAsync"/> must be called.</summary>
    bool HasBatchHooks { get; }

    /// <summary>Called before a batch's sampler run starts (before its first step).</summary>
    ValueTask BeforeBatchAsync(BatchStart batch, CancellationToken ct);

    /// <summary>Called after a batch's images are written and their after-image hooks have run.</summary>
    ValueTask AfterBatchAsync(BatchDone batch, CancellationToken ct);
}

/// <summary>What a backend needs to run before-model-call hooks.</summary>
public interface IModelCallBackend
{
    /// <summary>
    /// <see cref="IGenerationBackend.StepAsync"/> with <paramref name="before"/> right before the model call and/or
    /// <paramref name="afterCfg"/> right after the CFG combine (either may be null); an exception from either fails the
    /// step as thrown.
    /// </summary>
    Task StepWithHooksAsync(SamplingHandle sampling, IReadOnlyList<(ConditioningHandle Handle, double Weight)> positive,
        ConditioningHandle negative, double cfgScale, Func<DenoiserStep, ValueTask>? before, Func<CfgStep, ValueTask>? afterCfg, CancellationToken ct);
}
