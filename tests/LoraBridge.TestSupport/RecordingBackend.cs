using LoraBridge.Engine;
using Xunit;

namespace LoraBridge.TestSupport;

/// <summary>
/// An <see cref="IGenerationBackend"/> without Python that records every call, checks the engine's contract (77-token
/// chunks, one chunk count per batch, handles used only while live) and can fail at a chosen step or network load.
/// </summary>
public sealed class RecordingBackend(List<string>? calls = null) : IGenerationBackend
{
    private long _next = 1;

    /// <summary>Every call in order ("load PATH", "network NAME", "set a:te:unet,…", "encode ID", "start seed=S batch=B",
    /// "step POS+… / NEG", "restore", "release ID"); a list passed in is shared with other recorders.</summary>
    public List<string> Calls { get; } = calls ?? [];
    /// <summary>Every network set the engine commanded, in order.</summary>
    public List<IReadOnlyList<NetworkSetting>> NetworkCommands { get; } = [];
    /// <summary>Handles handed out and not yet released.</summary>
    public HashSet<long> Live { get; } = [];
    /// <summary>How many times the weights were restored.</summary>
    public int Restores { get; private set; }
    /// <summary>The 1-based step (counted over the backend's life) at which StepAsync throws.</summary>
    public int? FailAtStep { get; set; }
    /// <summary>Called with the step count at every step (e.g. to cancel midway).</summary>
    public Action<int>? OnStep { get; set; }
    /// <summary>The model-call count StartAsync reports; -1: the request's steps.</summary>
    public int TotalCalls { get; set; } = -1;
    private int _steps;

    private string? _loaded;
    /// <summary>When set, the next LoadCheckpointAsync fails with it (a corrupt checkpoint).</summary>
    public Exception? NextLoadFailure { get; set; }
    /// <inheritdoc/>
    public Task<bool> LoadCheckpointAsync(string path, CancellationToken ct)
    {
        if (NextLoadFailure is { } failure)
        {
            NextLoadFailure = null;
            Calls.Add($"failed load {path}");
            return Task.FromException<bool>(failure);
        }
        bool load = _loaded != path;
        _loaded = path;
        if (load) Calls.Add($"load {path}");
        return Task.FromResult(load);
    }
    /// <summary>The next LoadNetworkAsync throws InvalidDataException naming the file.</summary>
    public bool FailNextNetworkLoad { get; set; }
    /// <inheritdoc/>
    public Task LoadNetworkAsync(string name, string path, CancellationToken ct)
    {
        Calls.Add($"network {name}");
        if (FailNextNetworkLoad)
        {
            FailNextNetworkLoad = false;
            throw new InvalidDataException($"{path}: corrupt");
        }
        return Task.CompletedTask;
    }
    /// <inheritdoc/>
    public Task SetNetworksAsync(IReadOnlyList<NetworkSetting> networks, CancellationToken ct)
    {
        NetworkCommands.Add(networks.ToList());
        Calls.Add("set " + string.Join(",", networks.Select(n => $"{n.Name}:{n.Te}:{n.Unet}")));
        return Task.CompletedTask;
    }
    /// <inheritdoc/>
    public Task RestoreAsync() { Restores++; Calls.Add("restore"); return Task.CompletedTask; }
    /// <summary>The number of texts of each EncodeAsync call.</summary>
    public List<int> BatchSizes { get; } = [];
    /// <inheritdoc/>
    public Task<IReadOnlyList<ConditioningHandle>> EncodeAsync(IReadOnlyList<IReadOnlyList<TokenChunk>> texts, int clipSkip, CancellationToken ct)
    {
        Assert.All(texts, t => Assert.All(t, c => Assert.Equal(77, c.Ids.Length)));
        Assert.Single(texts.Select(t => t.Count).Distinct()); // padded to one chunk count
        BatchSizes.Add(texts.Count);
        var handles = new List<ConditioningHandle>();
        foreach (var _ in texts)
        {
            var id = _next++;
            Live.Add(id);
            Calls.Add($"encode {id}");
            handles.Add(new ConditioningHandle(id));
        }
        return Task.FromResult<IReadOnlyList<ConditioningHandle>>(handles);
    }
    /// <inheritdoc/>
    public Task<SamplingHandle> StartAsync(SamplingSettings s, CancellationToken ct)
    {
        var id = _next++;
        Live.Add(id);
        Calls.Add($"start seed={s.Seed} batch={s.BatchSize}");
        return Task.FromResult(new SamplingHandle(id, TotalCalls > 0 ? TotalCalls : s.Steps, [new("Schedule type", "Karras")]));
    }
    /// <inheritdoc/>
    public Task StepAsync(SamplingHandle sampling, IReadOnlyList<(ConditioningHandle Handle, double Weight)> positive, ConditioningHandle negative, double cfgScale, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        Assert.All(positive, p => Assert.Contains(p.Handle.Id, Live));
        Assert.Contains(negative.Id, Live);
        _steps++;
        OnStep?.Invoke(_steps);
        if (_steps == FailAtStep) throw new InvalidOperationException("model failed");
        Calls.Add($"step {string.Join("+", positive.Select(p => p.Handle.Id))} / {negative.Id}");
        return Task.CompletedTask;
    }
    /// <summary>Returns each image's infotext as its "PNG" bytes.</summary>
    public Task<IReadOnlyList<byte[]>> DecodePngAsync(SamplingHandle sampling, IReadOnlyList<string> infotexts, CancellationToken ct) =>
        Task.FromResult<IReadOnlyList<byte[]>>(infotexts.Select(t => System.Text.Encoding.UTF8.GetBytes(t)).ToList());
    /// <inheritdoc/>
    public Task ReleaseAsync(long handle) { Live.Remove(handle); Calls.Add($"release {handle}"); return Task.CompletedTask; }
}
