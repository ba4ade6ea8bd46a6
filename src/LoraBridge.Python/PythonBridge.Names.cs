using Python.Runtime;

namespace LoraBridge.Python;

/// <summary>The names generation accepts, as the Python modules define them.</summary>
/// <param name="Samplers">Sampler names (A1111 spelling).</param>
/// <param name="Schedules">Schedule types.</param>
/// <param name="RngSources">Random number sources.</param>
public sealed record GenerationNames(IReadOnlyList<string> Samplers, IReadOnlyList<string> Schedules, IReadOnlyList<string> RngSources);

// Names: lets the host refuse a misspelt sampler before a checkpoint loads.
public sealed partial class PythonBridge
{
    /// <summary>Sampler, schedule and RNG-source names (<c>gen_names</c>); needs no checkpoint.</summary>
    public Task<GenerationNames> GetGenerationNamesAsync(CancellationToken ct = default) => CallAsync(m =>
    {
        using var d = Invoke(m, "gen_names");
        IReadOnlyList<string> List(string key)
        {
            using var list = d.GetItem(key);
            var result = new List<string>();
            for (long i = 0, n = list.Length(); i < n; i++)
                using (var item = list.GetItem((int)i)) result.Add(item.As<string>());
            return result;
        }
        return new GenerationNames(List("samplers"), List("schedules"), List("rng_sources"));
    }, ct);
}
