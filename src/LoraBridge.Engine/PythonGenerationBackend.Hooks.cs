using LoraBridge.Python;

namespace LoraBridge.Engine;

// Sampling and image hooks over the bridge (python/lorabridge/ext_host.py).
public sealed partial class PythonGenerationBackend : IHookedGenerationBackend, IModelCallBackend
{
    /// <inheritdoc />
    public Task StepWithAfterCfgAsync(SamplingHandle sampling, IReadOnlyList<(ConditioningHandle Handle, double Weight)> positive,
        ConditioningHandle negative, double cfgScale, Func<CfgStep, ValueTask> afterCfg, CancellationToken ct) =>
        bridge.StepWithAfterCfgAsync(sampling.Id, positive.Select(p => (p.Handle.Id, p.Weight)).ToList(), negative.Id, cfgScale,
            (denoised, step, total, sigma, cond, uncond) =>
            {
                // On the Python thread, inside the step: a hook that completes synchronously (its Python calls run
                // inline here) costs nothing more; one that truly awaits is waited for while its Python work runs here.
                var pending = afterCfg(new CfgStep(denoised, step, total, sigma) { Cond = cond, Uncond = uncond });
                if (pending.IsCompleted) pending.GetAwaiter().GetResult();
                else bridge.Runtime.WaitOnPythonThread(pending.AsTask());
            }, ct);

    /// <inheritdoc />
    public Task StepWithHooksAsync(SamplingHandle sampling, IReadOnlyList<(ConditioningHandle Handle, double Weight)> positive,
        ConditioningHandle negative, double cfgScale, Func<DenoiserStep, ValueTask>? before, Func<CfgStep, ValueTask>? afterCfg, CancellationToken ct) =>
        bridge.StepWithHooksAsync(sampling.Id, positive.Select(p => (p.Handle.Id, p.Weight)).ToList(), negative.Id, cfgScale,
            before is null ? null : (x, step, total, sigma, cond, uncond) => Wait(before(new DenoiserStep(x, step, total, sigma, cond, uncond))),
            afterCfg is null ? null : (denoised, step, total, sigma, cond, uncond) =>
                Wait(afterCfg(new CfgStep(denoised, step, total, sigma) { Cond = cond, Uncond = uncond })), ct);

    // On the Python thread, inside the step: see StepWithAfterCfgAsync.
    private void Wait(ValueTask pending)
    {
        if (pending.IsCompleted) pending.GetAwaiter().GetResult();
        else bridge.Runtime.WaitOnPythonThread(pending.AsTask());
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<RgbImage>> DecodeRgbAsync(SamplingHandle sampling, CancellationToken ct) => bridge.DecodeRgbAsync(sampling.Id, ct);

    /// <inheritdoc />
    public Task<byte[]> EncodePngAsync(RgbImage image, string infotext, CancellationToken ct) => bridge.EncodePngAsync(image, infotext, ct);
}
