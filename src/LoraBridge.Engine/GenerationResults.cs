namespace LoraBridge.Engine;

/// <summary>One image written.</summary>
/// <param name="Path">PNG file.</param>
/// <param name="Seed">Its seed.</param>
/// <param name="Infotext">Its parameters text.</param>
public sealed record GeneratedImage(string Path, long Seed, string Infotext);

/// <summary>Weight patching done by one job.</summary>
/// <param name="LayersPatched">Layers re-merged or restored.</param>
/// <param name="PatchMs">Milliseconds spent doing it (measured in the backend).</param>
public sealed record PatchStatistics(long LayersPatched, double PatchMs);

/// <summary>Progress after each sampler step.</summary>
/// <param name="Batch">0-based sampler run.</param>
/// <param name="BatchCount">Sampler runs in the job.</param>
/// <param name="Step">Steps done in this run.</param>
/// <param name="TotalSteps">Steps of this run.</param>
/// <param name="StepsPerSecond">Rate over the job so far.</param>
/// <param name="Remaining">Estimated time left for the whole job.</param>
public sealed record GenerationProgress(int Batch, int BatchCount, int Step, int TotalSteps, double StepsPerSecond, TimeSpan Remaining);

