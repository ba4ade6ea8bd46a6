using LoraBridge.Models;
using LoraBridge.Python;
using LoraBridge.Tokenizers;

namespace LoraBridge.Engine;

/// <summary>
/// Puts the pieces of a generation together for one process: the model sources, the checkpoint (or the built-in
/// demo model, created on first use), its tokenizer and one <see cref="GenerationEngine"/> that keeps the model and
/// the conditioning cache between jobs.
/// </summary>
public sealed class GenerationWorkspace
{
    private readonly PythonBridge _bridge;
    private CheckpointContext? _checkpoint;

    /// <summary>Creates the workspace; nothing is loaded until <see cref="PrepareAsync"/>.</summary>
    public GenerationWorkspace(WorkspaceSettings settings, PythonBridge bridge)
    {
        _bridge = bridge;
        Sources = new ModelSources(settings);
        Engine = new GenerationEngine(new PythonGenerationBackend(bridge), Planner, ResolveNetwork);
    }

    /// <summary>The prompt planner, with the block-weight presets of the data folder (<c>lbwpresets.txt</c>, <c>elempresets.txt</c>).</summary>
    public A1111PromptPlanner Planner => _planner ??= new A1111PromptPlanner { BlockWeightPresets = LoraBridge.Prompting.LbwPresets.Load(Sources.Settings.DataDir) };

    private A1111PromptPlanner? _planner;

    /// <summary>Catalog, checkpoint and tokenizer discovery.</summary>
    public ModelSources Sources { get; }

    /// <summary>The LoRA and checkpoint catalog (<see cref="ModelSources.Catalog"/>).</summary>
    public LoraCatalog Catalog => Sources.Catalog;

    /// <summary>The engine; reuse it so the model and conditionings stay loaded.</summary>
    public GenerationEngine Engine { get; }

    /// <summary>True when the built-in demo model is in use.</summary>
    public bool UsesDemoModel => Sources.UsesDemoModel;

    /// <summary>Warnings gathered while resolving networks (e.g. a LoRA made for another model family).</summary>
    public List<string> Warnings { get; } = [];

    /// <summary>Finds the checkpoint (creating the demo model when none is configured) and its tokenizer.</summary>
    /// <exception cref="FileNotFoundException">The checkpoint does not exist.</exception>
    /// <exception cref="TokenizerNotFoundException">No tokenizer files for the checkpoint.</exception>
    public async Task<CheckpointContext> PrepareAsync(CancellationToken ct)
    {
        if (_checkpoint is not null) return _checkpoint;
        string path = Sources.FindConfiguredCheckpoint()
            ?? await _bridge.EnsureDemoModelAsync(Sources.DemoDir, ct).ConfigureAwait(false);
        var entry = CheckpointEntry.Load(path, Path.GetDirectoryName(path)!);
        var chunker = new PromptChunker(ClipTokenizer.Load(Sources.LocateTokenizer(path)));
        return _checkpoint = new CheckpointContext(path, entry.ModelName, entry.ShortHash(Sources.Catalog.Hashes), chunker, entry.Family);
    }

    /// <summary>
    /// Everything that would stop <paramref name="request"/> before it renders: settings, prompt errors, unknown
    /// LoRAs. A batch checks all its jobs first, so a typo in job 50 is not found after 49 renders.
    /// </summary>
    /// <returns>Problems, empty when the job can run.</returns>
    public IReadOnlyList<string> Check(GenerationRequest request)
    {
        var problems = new List<string>();
        try
        {
            GenerationEngine.ValidateRequest(request);
            var plan = Planner.Plan(request.Prompt, request.NegativePrompt, request.Steps);
            foreach (var name in plan.NetworkNames)
            {
                if (Sources.Catalog.TryFind(name) is null && Sources.Settings.LoraNotFound == LoraNotFoundBehavior.Error)
                    problems.Add(new LoraNotFoundException(name, Sources.Catalog.Suggest(name), Sources.Catalog.Options.EffectiveLoraDirs).Message);
            }
        }
        catch (Exception ex) when (ex is ArgumentException or PromptPlanException)
        {
            problems.Add(ex.Message);
        }
        return problems;
    }

    private NetworkFile? ResolveNetwork(string name)
    {
        var catalog = Sources.Catalog;
        if (Sources.Settings.LoraNotFound == LoraNotFoundBehavior.SkipAndNote && catalog.TryFind(name) is null)
        {
            Warnings.Add($"Lora not found: {name} (skipped, as A1111 does with LoraBridge:LoraNotFound=SkipAndNote)");
            return null;
        }
        var entry = catalog.Find(name);
        if (_checkpoint is not null && LoraCatalog.FamilyMismatch(entry, _checkpoint.Family) is { } warning)
            Warnings.Add(warning);
        // A1111 writes the name as mentioned in the prompt, without ':' and ','.
        var mentioned = name.Replace(":", "", StringComparison.Ordinal).Replace(",", "", StringComparison.Ordinal);
        return new NetworkFile(name, entry.FilePath, mentioned, catalog.ShortHashOf(entry));
    }

    /// <summary>Runs one job with the workspace's checkpoint.</summary>
    public async Task<IReadOnlyList<GeneratedImage>> GenerateAsync(GenerationRequest request, IProgress<GenerationProgress>? progress, CancellationToken ct)
    {
        var checkpoint = await PrepareAsync(ct).ConfigureAwait(false);
        try
        {
            return await Engine.GenerateAsync(request, checkpoint, progress, ct).ConfigureAwait(false);
        }
        finally
        {
            Warnings.AddRange(Engine.LastJobWarnings);
        }
    }
}
