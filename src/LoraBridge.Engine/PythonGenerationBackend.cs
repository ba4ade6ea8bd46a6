using LoraBridge.Prompting;
using LoraBridge.Python;

namespace LoraBridge.Engine;

/// <summary>The engine's backend over the embedded Python runtime (<c>lorabridge.generation</c> via the bridge).</summary>
public sealed partial class PythonGenerationBackend(PythonBridge bridge) : IGenerationBackend, ISdxlGenerationBackend
{
    /// <inheritdoc />
    public async Task<IReadOnlyList<ConditioningHandle>> EncodeSdxlAsync(SdxlEncoding e, CancellationToken ct)
    {
        var texts = e.Texts.Select((t, i) => (IReadOnlyList<(int[], int[], double[])>)t.Select((c, k) => (c.Ids, e.Te2Ids[i][k], c.Weights)).ToList()).ToList();
        var fixes = e.Texts.Any(t => t.Any(c => c.Fixes is { Count: > 0 })) ? EmbeddingRequest.FixesJson(e.Texts) : null;
        var handles = await bridge.EncodeSdxlAsync(texts, e.Size.Width, e.Size.Height, e.ZeroText, e.Size.CropTop, e.Size.CropLeft,
            e.Size.OriginalWidth, e.Size.OriginalHeight, fixes, ct).ConfigureAwait(false);
        return handles.Select(h => new ConditioningHandle(h)).ToList();
    }

    /// <inheritdoc />
    public Task<bool> LoadCheckpointAsync(string path, CancellationToken ct) => bridge.LoadCheckpointAsync(path, ct);

    /// <inheritdoc />
    public Task LoadNetworkAsync(string name, string path, CancellationToken ct) => bridge.LoadNetworkAsync(name, path, ct);

    /// <inheritdoc />
    public Task SetNetworksAsync(IReadOnlyList<NetworkSetting> networks, CancellationToken ct) =>
        bridge.SetNetworksAsync(networks.Select(n => (n.Name, n.Te, n.Unet, n.Dyn)).ToList(), ct);

    /// <inheritdoc />
    public Task RestoreAsync() => bridge.RestoreNetworksAsync();

    /// <inheritdoc />
    public Task<IReadOnlyList<string>> LayerWarningsAsync(CancellationToken ct) => bridge.GetLayerWarningsAsync(ct);

    /// <inheritdoc />
    public async Task<(long Layers, double Seconds)?> PatchTotalsAsync(CancellationToken ct) =>
        await bridge.GetPatchTotalsAsync(ct).ConfigureAwait(false);

    /// <inheritdoc />
    public Task SetBlockWeightsAsync(IReadOnlyList<LoraBlockWeights> weights, CancellationToken ct) =>
        bridge.SetBlockWeightsAsync(weights.Select(w => (w.Name, w.Weights, w.Elemental)).ToList(), ct);

    /// <inheritdoc />
    public async Task<IReadOnlyList<ConditioningHandle>> EncodeAsync(IReadOnlyList<IReadOnlyList<TokenChunk>> texts, int clipSkip, CancellationToken ct)
    {
        if (texts.Any(t => t.Any(c => c.Fixes is { Count: > 0 })))
        {
            var fixedHandles = await bridge.EncodeWithEmbeddingsAsync(EmbeddingRequest.Json(texts), clipSkip, ct).ConfigureAwait(false);
            return fixedHandles.Select(h => new ConditioningHandle(h)).ToList();
        }
        var batch = texts.Select(t => (IReadOnlyList<(int[], double[])>)t.Select(c => (c.Ids, c.Weights)).ToList()).ToList();
        var handles = await bridge.EncodePromptsAsync(batch, clipSkip, ct).ConfigureAwait(false);
        return handles.Select(h => new ConditioningHandle(h)).ToList();
    }

    /// <inheritdoc />
    public async Task<SamplingHandle> StartAsync(SamplingSettings s, CancellationToken ct)
    {
        var run = await bridge.StartSamplingAsync(s.Sampler, s.Schedule, s.Steps, s.Seed, s.BatchSize, s.Width, s.Height,
            s.RandnSource, s.EtaNoiseSeedDelta, ct).ConfigureAwait(false);
        return new SamplingHandle(run.Handle, run.TotalCalls, run.InfotextParams);
    }

    /// <inheritdoc />
    public Task StepAsync(SamplingHandle sampling, IReadOnlyList<(ConditioningHandle Handle, double Weight)> positive,
        ConditioningHandle negative, double cfgScale, CancellationToken ct) =>
        bridge.StepAsync(sampling.Id, positive.Select(p => (p.Handle.Id, p.Weight)).ToList(), negative.Id, cfgScale, ct);

    /// <inheritdoc />
    public Task<IReadOnlyList<byte[]>> DecodePngAsync(SamplingHandle sampling, IReadOnlyList<string> infotexts, CancellationToken ct) =>
        bridge.DecodePngAsync(sampling.Id, infotexts, ct);

    /// <inheritdoc />
    public Task ReleaseAsync(long handle) => bridge.ReleaseGenerationHandleAsync(handle);
}
