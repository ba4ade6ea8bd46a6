using LoraBridge.Engine;

namespace LoraBridge.Extensions.Tests;

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
