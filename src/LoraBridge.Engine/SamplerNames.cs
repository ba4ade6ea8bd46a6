namespace LoraBridge.Engine;

/// <summary>
/// The samplers python/lorabridge/samplers.py implements (its <c>SAMPLERS</c> registry, in its order), with A1111's
/// API aliases: the C# list for front ends that show or check names without starting Python (the server's
/// <c>/sdapi/v1/samplers</c>, the TUI's choice, help texts). A test compares it with the Python registry, so a sampler
/// added there fails the build's tests until it is listed here. With Python running, <c>PythonBridge.GetGenerationNamesAsync</c>
/// reads the registry itself.
/// </summary>
public static class SamplerNames
{
    /// <summary>A1111 name and the aliases A1111's API accepts for it.</summary>
    public static readonly IReadOnlyList<(string Name, string[] Aliases)> All =
    [
        ("Euler", ["k_euler"]),
        ("Euler a", ["k_euler_a", "k_euler_ancestral"]),
        ("DPM++ 2M", ["k_dpmpp_2m"]),
        ("DDIM", []),
    ];

    /// <summary>The names alone, in registry order.</summary>
    public static IReadOnlyList<string> Names { get; } = [.. All.Select(s => s.Name)];
}
