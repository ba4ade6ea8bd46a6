using LoraBridge.Engine;

namespace LoraBridge.Extensions.Tests;

/// <summary>Records backend calls in order (copied in small from the engine tests' RecordingBackend).</summary>
internal sealed class RecordingBackend(List<string> calls) : IGenerationBackend
{
    private long _next = 1;
    private string? _loaded;
    public int Restores { get; private set; }

    public Task<bool> LoadCheckpointAsync(string path, CancellationToken ct)
    {
        bool load = _loaded != path;
        _loaded = path;
        return Task.FromResult(load);
    }
    public Task LoadNetworkAsync(string name, string path, CancellationToken ct) { calls.Add($"network {name}"); return Task.CompletedTask; }
    public Task SetNetworksAsync(IReadOnlyList<NetworkSetting> networks, CancellationToken ct)
    {
        calls.Add("set " + string.Join(",", networks.Select(n => $"{n.Name}:{n.Te}:{n.Unet}")));
        return Task.CompletedTask;
    }
    public Task RestoreAsync() { Restores++; calls.Add("restore"); return Task.CompletedTask; }
    public Task<IReadOnlyList<ConditioningHandle>> EncodeAsync(IReadOnlyList<IReadOnlyList<TokenChunk>> texts, int clipSkip, CancellationToken ct) =>
        Task.FromResult<IReadOnlyList<ConditioningHandle>>(texts.Select(_ => new ConditioningHandle(_next++)).ToList());
    public Task<SamplingHandle> StartAsync(SamplingSettings s, CancellationToken ct)
    {
        calls.Add($"start seed={s.Seed}");
        return Task.FromResult(new SamplingHandle(_next++, s.Steps, []));
    }
    public Task StepAsync(SamplingHandle sampling, IReadOnlyList<(ConditioningHandle Handle, double Weight)> positive, ConditioningHandle negative, double cfgScale, CancellationToken ct)
    {
        calls.Add("step");
        return Task.CompletedTask;
    }
    public Task<IReadOnlyList<byte[]>> DecodePngAsync(SamplingHandle sampling, IReadOnlyList<string> infotexts, CancellationToken ct) =>
        Task.FromResult<IReadOnlyList<byte[]>>(infotexts.Select(t => System.Text.Encoding.UTF8.GetBytes(t)).ToList());
    public Task ReleaseAsync(long handle) => Task.CompletedTask;
}

/// <summary>Plans the prompt unchanged for every step, with one LoRA, and records the prompts it was given.</summary>
internal sealed class RecordingPlanner(List<string> calls) : IPromptPlanner
{
    public GenerationPlan Plan(string prompt, string negativePrompt, int steps)
    {
        calls.Add($"plan {prompt}");
        var step = new StepConditioning([(prompt, 1.0)], negativePrompt, [new NetworkSetting("style", 0, 1.0, null)]);
        return new GenerationPlan(Enumerable.Repeat(step, steps).ToList(), ["style"]);
    }

    public IReadOnlyList<(string Text, double Weight)> Attention(string text) => [(text, 1.0)];
}

/// <summary>An <see cref="IExtensionHost"/> over a dictionary, without Python.</summary>
internal sealed class TestHost(string dataDir, Dictionary<string, string>? settings = null) : IExtensionHost
{
    public List<string> Lines { get; } = [];
    public string DataDir { get; } = Directory.CreateDirectory(dataDir).FullName;
    public string? GetSetting(string key) => settings is not null && settings.TryGetValue(key, out var v) ? v : null;
    public void Log(string message) => Lines.Add(message);
    public Task<string?> RunPythonAsync(string code, IReadOnlyDictionary<string, string>? inputs = null, CancellationToken ct = default) =>
        throw new InvalidOperationException("no Python in this test host");
}
