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
        Engine = new GenerationEngine(new PythonGenerationBackend(bridge) { Upscalers = UpscalerLocations.Folders(settings) },
            Planner, ResolveNetwork);
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

    /// <summary>
    /// When true, <see cref="PrepareAsync"/> starts loading the checkpoint (<see cref="GenerationEngine.BeginCheckpointLoad"/>)
    /// as soon as its file and family are known, so the model loads on the Python thread while the tokenizer,
    /// embeddings and the first job's prompt planning run in C#. For one-shot commands (generate, batch); a caller
    /// that prepares without generating at once (the TUI) leaves it off.
    /// </summary>
    public bool LoadCheckpointEarly { get; set; }

    // What StartLocalPreparation found without Python; null when it could not (PrepareAsync then does it all itself).
    private Task<LocalParts?>? _local;

    private sealed record LocalParts(string Path, CheckpointEntry Entry, CheckpointKind Kind, ClipTokenizer Tokenizer, Task<string> ShortHash);

    /// <summary>
    /// Starts, on the thread pool, the part of <see cref="PrepareAsync"/> that needs no Python when the checkpoint file
    /// exists already (a configured one, or the demo model an earlier run made): its header and family, the tokenizer
    /// and the model hash. A command calls this while Python boots, and <see cref="PrepareAsync"/> uses the results.
    /// Nothing is reported from here: whatever fails is done again by <see cref="PrepareAsync"/> in its usual order,
    /// so a run gives the same errors, in the same order, as without it.
    /// </summary>
    public void StartLocalPreparation()
    {
        if (_checkpoint is not null || _local is not null) return;
        _local = Task.Run(PrepareLocal);
    }

    private LocalParts? PrepareLocal()
    {
        try
        {
            if ((Sources.FindConfiguredCheckpoint() ?? ExistingDemoCheckpoint()) is not { } path) return null;
            var entry = CheckpointEntry.Load(path, Path.GetDirectoryName(path)!);
            var kind = CheckpointKind.Detect(path);
            var tokenizer = ClipTokenizer.Load(Sources.LocateTokenizer(path));
            // The SHA-256 (infotext "Model hash") reads the whole file unless the catalog has it: on its own thread,
            // so a big checkpoint seen for the first time is hashed while Python boots and the model loads. Started
            // last, so it runs only when PrepareAsync takes these parts (and not its own catalog look-ups) meanwhile.
            var hash = Task.Run(() => entry.ShortHash(Sources.Catalog.Hashes));
            return new LocalParts(path, entry, kind, tokenizer, hash);
        }
        catch (Exception)
        {
            // Deliberately broad: PrepareAsync repeats this work in order and reports the failure as it always has.
            return null;
        }
    }

    /// <summary>Finds the checkpoint (creating the demo model when none is configured) and its tokenizer.</summary>
    /// <exception cref="FileNotFoundException">The checkpoint does not exist.</exception>
    /// <exception cref="TokenizerNotFoundException">No tokenizer files for the checkpoint.</exception>
    public async Task<CheckpointContext> PrepareAsync(CancellationToken ct)
    {
        if (_checkpoint is not null) return _checkpoint;
        var local = _local is null ? null : await _local.ConfigureAwait(false);
        await CheckpointFamilies.ApplyPrecisionAsync(_bridge, Sources.Settings, ct).ConfigureAwait(false);
        string path = local?.Path
            ?? Sources.FindConfiguredCheckpoint()
            ?? ExistingDemoCheckpoint()
            ?? await (Sources.UsesSdxlDemoModel ? _bridge.EnsureDemoModelXlAsync(Sources.DemoDir, ct) : _bridge.EnsureDemoModelAsync(Sources.DemoDir, ct)).ConfigureAwait(false);
        var entry = local?.Entry ?? CheckpointEntry.Load(path, Path.GetDirectoryName(path)!);
        var family = await CheckpointFamilies.ResolveAsync(_bridge, path, local?.Kind ?? CheckpointKind.Detect(path), ct).ConfigureAwait(false);
        if (LoadCheckpointEarly) Engine.BeginCheckpointLoad(path, ct);
        var tokenizer = local?.Tokenizer ?? ClipTokenizer.Load(Sources.LocateTokenizer(path));
        // The hash before the embeddings: both use the catalog's hash cache, which is not shared between threads.
        string shortHash = local is not null && await Succeeded(local.ShortHash).ConfigureAwait(false)
            ? local.ShortHash.Result
            : entry.ShortHash(Sources.Catalog.Hashes);
        var embeddings = await EmbeddingSources.LoadAsync(Sources, path, tokenizer, _bridge, ct).ConfigureAwait(false);
        var chunker = new PromptChunker(tokenizer, embeddings: embeddings?.Lookup);
        return _checkpoint = new CheckpointContext(path, entry.ModelName, shortHash, chunker, family, embeddings);
    }

    // Waits for a task without throwing; a failed early hash is computed again in place, where its error belongs.
    private static async Task<bool> Succeeded(Task task)
    {
        try
        {
            await task.ConfigureAwait(false);
            return true;
        }
        catch (Exception)
        {
            return false;
        }
    }

    /// <summary>File name of the demo checkpoint (<c>demo.CHECKPOINT_NAME</c> in python/lorabridge/demo.py).</summary>
    public const string DemoCheckpointFile = "lorabridge-demo.safetensors";

    /// <summary>File name of the SDXL demo checkpoint (<c>demo_xl.CHECKPOINT_NAME</c> in python/lorabridge/demo_xl.py).</summary>
    public const string DemoXlCheckpointFile = "lorabridge-demo-xl.safetensors";

    /// <summary>
    /// The demo checkpoint when it exists already. Python writes it last, after the tokenizer and LoRAs, and its own
    /// check is the same file test, so finding it here saves a bridge call (and importing the demo builder) per command.
    /// </summary>
    private string? ExistingDemoCheckpoint() => FindExistingDemoCheckpoint(Sources);

    /// <summary>The built-in demo checkpoint <paramref name="sources"/> would use, when it exists already; else null.</summary>
    public static string? FindExistingDemoCheckpoint(ModelSources sources)
    {
        var path = Path.Combine(sources.DemoDir, "Stable-diffusion", sources.UsesSdxlDemoModel ? DemoXlCheckpointFile : DemoCheckpointFile);
        return File.Exists(path) ? path : null;
    }

    /// <summary>Everything that would stop <paramref name="request"/> before it renders (<see cref="ModelSources.Check"/>).</summary>
    /// <returns>Problems, empty when the job can run.</returns>
    public IReadOnlyList<string> Check(GenerationRequest request) => Sources.Check(request);

    private NetworkFile? ResolveNetwork(string name)
    {
        var catalog = Sources.Catalog;
        if (catalog.Resolve(name) is not { } entry)
        {
            Warnings.Add(LoraCatalog.SkippedNote(name));
            return null;
        }
        if (_checkpoint is not null && LoraCatalog.FamilyMismatch(entry, _checkpoint.Family) is { } warning)
            Warnings.Add(warning);
        return new NetworkFile(name, entry.FilePath, LoraCatalog.MentionedName(name), catalog.ShortHashOf(entry));
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
