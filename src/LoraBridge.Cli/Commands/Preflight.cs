using LoraBridge.Engine;
using LoraBridge.Python;

namespace LoraBridge.Cli.Commands;

/// <summary>
/// What <c>generate</c> and <c>batch</c> check before any work (issue 17): limits and values of every job, the output
/// and data folders; then, once Python is up but before a checkpoint loads, the sampler, schedule and RNG names.
/// Each problem is one line; the command exits 2.
/// </summary>
public static class Preflight
{
    /// <summary>Problems found without Python: limits, values, folders.</summary>
    /// <param name="workspace">The workspace (its data folder is checked).</param>
    /// <param name="requests">Every job.</param>
    /// <param name="label">How a job is named in messages (e.g. "job 2 (line 7)"); default "job N" when there are several.</param>
    public static IReadOnlyList<string> CheckLocal(GenerationWorkspace workspace, IReadOnlyList<GenerationRequest> requests, Func<int, string>? label = null)
    {
        var problems = new List<string>();
        for (int i = 0; i < requests.Count; i++)
        {
            try
            {
                GenerationEngine.ValidateRequest(requests[i]);
            }
            catch (ArgumentException ex)
            {
                var name = label?.Invoke(i) ?? (requests.Count > 1 ? $"job {i + 1}" : null);
                problems.Add(name is null ? ex.Message : $"{name}: {ex.Message}");
                if (problems.Count >= 20) break; // enough to act on; a bad default repeats in every job
            }
        }
        foreach (var dir in requests.Select(r => r.OutputDir).Distinct(StringComparer.Ordinal))
            if (GenerationLimits.FolderProblem(dir, "--out") is { } p) problems.Add(p);
        if (GenerationLimits.FolderProblem(workspace.Sources.Settings.DataDir, "--data-dir") is { } d) problems.Add(d);
        return problems;
    }

    /// <summary>Prints why the data folder cannot be used and returns 2, or returns null when it can (checked before extensions or models touch it).</summary>
    public static int? DataDirProblem(string dataDir)
    {
        if (GenerationLimits.FolderProblem(dataDir, "--data-dir") is not { } problem) return null;
        Console.Error.WriteLine($"error: {TerminalText.Escape(problem)}");
        return 2;
    }

    /// <summary>Names Python does not know, before the checkpoint loads.</summary>
    public static async Task<IReadOnlyList<string>> CheckNamesAsync(PythonBridge bridge, IReadOnlyList<GenerationRequest> requests, CancellationToken ct)
    {
        var names = await bridge.GetGenerationNamesAsync(ct).ConfigureAwait(false);
        var problems = new List<string>();
        void Check(string option, string value, IReadOnlyList<string> known)
        {
            var line = $"{option} '{TerminalText.Escape(value)}' is unknown; expected one of {string.Join(", ", known)}";
            if (!known.Contains(value, StringComparer.Ordinal) && !problems.Contains(line)) problems.Add(line);
        }
        foreach (var r in requests)
        {
            Check("--sampler", r.Sampler, names.Samplers);
            Check("--schedule", r.Schedule, names.Schedules);
            Check("--randn-source", r.RandnSource, names.RngSources);
        }
        return problems;
    }
}
