using System.Diagnostics;

namespace LoraBridge.Engine;

// The engine's paths for sampling and image hooks. Without subscribers nothing here runs: steps stay queued one ahead
// (RunPassAsync) and images go straight from latents to PNG bytes in Python.
public sealed partial class GenerationEngine
{
    /// <summary>
    /// Whether a pass must run one step at a time: an after-CFG hook runs inside step i, and an after-step hook must see
    /// step i before step i+1 is issued (with the queued path it ran while step i+1 was already running). Hooks that
    /// are not <see cref="ISamplingHooks"/> say nothing about what they use, so they get the exact order.
    /// </summary>
    private static bool StepsOneAtATime(IGenerationHooks? hooks) => hooks switch
    {
        null => false,
        ISamplingHooks s => s.HasAfterCfg || s.HasAfterStep || s is IModelCallHooks { HasBeforeModelCall: true },
        IModelCallHooks m => m.HasBeforeModelCall,
        _ => true,
    };

    /// <summary>Step i's network multipliers, positive AND-parts and negative conditioning.</summary>
    private (List<NetworkSetting> Settings, List<(ConditioningHandle, double)> Positive, ConditioningHandle Negative) StepInputs(
        GenerationPlan plan, EncodedConditionings conds, ConditioningEncoder encoder, int i)
    {
        var step = plan.Steps[Math.Min(i, plan.Steps.Count - 1)];
        var settings = SamplingNetworks(step, conds.TextEncoderState);
        var texts = TextsOf(plan, step).ToList();
        var positive = step.Positive.Select((p, k) => (conds.Handles[Key(texts[k].Batch, p.Text, step, encoder, false)], p.Weight)).ToList();
        var negative = conds.Handles[Key(plan.NegativeBatch, step.Negative, step, encoder, true)];
        return (settings, positive, negative);
    }

    /// <summary>
    /// <see cref="RunPassAsync"/> one step at a time: issue step i (with the after-CFG callback inside it when
    /// subscribed), wait for it, report progress, run the after-step hooks, then issue step i+1.
    /// </summary>
    private async Task<int> RunPassSerialAsync(SamplingHandle sampling, GenerationPlan plan, EncodedConditionings conds, GenerationRequest request,
        ConditioningEncoder encoder, int batch, int offset, int total, int stepsDone, Stopwatch clock, IProgress<GenerationProgress>? progress,
        IGenerationHooks hooks, CancellationToken ct)
    {
        var samplingHooks = hooks as ISamplingHooks;
        IHookedGenerationBackend? hooked = null;
        if (samplingHooks is { HasAfterCfg: true })
            hooked = _backend as IHookedGenerationBackend ?? throw new NotSupportedException("this backend cannot run after-CFG hooks");
        var modelHooks = hooks is IModelCallHooks { HasBeforeModelCall: true } m ? m : null;
        IModelCallBackend? modelBackend = null;
        if (modelHooks is not null)
            modelBackend = _backend as IModelCallBackend ?? throw new NotSupportedException("this backend cannot run before-model-call hooks");
        bool afterStep = samplingHooks is null || samplingHooks.HasAfterStep;
        IReadOnlyList<NetworkSetting>? applied = null;
        for (int i = 0; i < sampling.TotalCalls; i++)
        {
            ct.ThrowIfCancellationRequested();
            var (settings, positive, negative) = StepInputs(plan, conds, encoder, i);
            if (applied is null || !settings.SequenceEqual(applied))
            {
                await SetNetworksAsync(settings, ct).ConfigureAwait(false);
                applied = settings;
            }
            if (modelBackend is not null)
                await modelBackend.StepWithHooksAsync(sampling, positive, negative, request.CfgScale, s => modelHooks!.BeforeModelCallAsync(s, ct),
                    hooked is null ? null : s => samplingHooks!.AfterCfgAsync(s, ct), ct).ConfigureAwait(false);
            else if (hooked is not null)
                await hooked.StepWithAfterCfgAsync(sampling, positive, negative, request.CfgScale, s => samplingHooks!.AfterCfgAsync(s, ct), ct).ConfigureAwait(false);
            else
                await _backend.StepAsync(sampling, positive, negative, request.CfgScale, ct).ConfigureAwait(false);
            stepsDone++;
            int done = offset + i + 1;
            var stepProgress = Progress(batch, request.BatchCount, done, Math.Max(total, done), stepsDone, clock.Elapsed);
            progress?.Report(stepProgress);
            if (afterStep) await hooks.AfterStepAsync(stepProgress, ct).ConfigureAwait(false);
        }
        return stepsDone;
    }

    /// <summary>Runs the before-batch hooks with the seeds of the batch that starts at <paramref name="batchSeed"/>.</summary>
    private static ValueTask BeforeBatchAsync(IBatchHooks hooks, GenerationRequest request, int batch, long batchSeed, CancellationToken ct) =>
        hooks.BeforeBatchAsync(new BatchStart(batch, request.BatchCount, Enumerable.Range(0, request.BatchSize).Select(k => batchSeed + k).ToList()), ct);

    /// <summary>
    /// PNG bytes for a batch. With before-save hooks the latents are decoded to pixels, every image of the batch goes
    /// through the hooks before any file is written, and the PNGs are encoded from what the hooks left (pixels and
    /// infotext); <paramref name="infotexts"/> then holds the texts written. Without, Python decodes straight to PNG.
    /// </summary>
    private async Task<IReadOnlyList<byte[]>> DecodeForSavingAsync(SamplingHandle final, IReadOnlyList<Infotext> records, List<string> infotexts,
        IReadOnlyList<long> seeds, int firstIndex, IGenerationHooks? hooks, CancellationToken ct)
    {
        if (hooks is not IImageSaveHooks { HasBeforeImageSaved: true } imageHooks)
            return await _backend.DecodePngAsync(final, infotexts, ct).ConfigureAwait(false);
        var backend = _backend as IHookedGenerationBackend ?? throw new NotSupportedException("this backend cannot run before-save hooks");
        var decoded = await backend.DecodeRgbAsync(final, ct).ConfigureAwait(false);
        var images = decoded.Select((rgb, k) => new ImageToSave(rgb.Pixels, rgb.Width, rgb.Height, records[k], seeds[k], firstIndex + k)).ToList();
        foreach (var image in images)
        {
            await imageHooks.BeforeImageSavedAsync(image, ct).ConfigureAwait(false);
            image.Validate();
        }
        var pngs = new List<byte[]>(images.Count);
        for (int k = 0; k < images.Count; k++)
        {
            infotexts[k] = images[k].Infotext.Format();
            pngs.Add(await backend.EncodePngAsync(new Python.RgbImage(images[k].Pixels, images[k].Width, images[k].Height), infotexts[k], ct).ConfigureAwait(false));
        }
        return pngs;
    }
}
